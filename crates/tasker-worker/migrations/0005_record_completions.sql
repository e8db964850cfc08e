-- 0005_record_completions: a batch of successful attempts is recorded by a statement
-- that only does what success needs.
--
-- Most batches hold nothing but successes. record_results decides every result twice
-- (for a task still open and one that stopped), orders the batch to find each task's
-- first failure, and reads each step through a fence before writing it by TID. For a
-- batch of successes all of that decides nothing: a success completes its step whatever
-- state its task is in. Measured with bin/bench-compare against the commit before this
-- migration (3 interleaved rounds, medians, 1 worker at concurrency 5), the no-op drain
-- went from 17,977 to 21,604 steps/s, two-step chains from 16,673 to 21,199 and
-- diamonds from 16,570 to 18,634; on a no-op drain the server's CPU per step fell from
-- about 70 to 60 us.
--
-- record_completions writes exactly what record_results writes for a batch of
-- successes: the step completes (fenced by its event id), its dependents' counters fall
-- and those with nothing left to wait for are enqueued, the task's counters and status
-- move (a finished task is appended to finished_tasks) and the throughput counts grow.
-- A task that stopped (failed or cancel requested) also skips its unstarted steps when a
-- result arrives; a batch with such a task is handed to record_results whole.
--
-- Per result (arrays of one length): the step (task, step index and uuid, event id: the
-- fence), the stored result and history entry, and where its dependents' indexes are in
-- p_child_index (from p_child_from, p_child_count of them). The event ids of one call
-- must differ (the caller's batches hold each attempt once).
--
-- Every statement finds its rows through a primary key, one row per result: each reads
-- its inputs in order (the batch, then each written row's RETURNING), and nothing joins
-- two batch-sized sets, so the cost is linear in the batch whatever the planner
-- estimates. (Joins between batch-sized CTEs, whose row counts the planner cannot know,
-- were planned as nested loops: quadratic.) Hash and merge joins are off for the same
-- reason: with statistics that lag a burst of claims, the planner otherwise reads every
-- in-progress step to hash-join the batch (and with them off, to loop over them).
--
-- Returns a row per applied result (its position, true: the task was open, NULL), and
-- one more per task this batch finished (its last result's position, true, the task's
-- final status). Sends tasker_steps_ready when dependents became claimable and
-- tasker_task_finished with the finished tasks' uuids (200 per notification).
CREATE FUNCTION tasker.record_completions(
    p_task        uuid[],
    p_index       integer[],
    p_step        uuid[],
    p_event       uuid[],
    p_result      jsonb[],
    p_history     jsonb[],
    p_child_from  integer[],
    p_child_count integer[],
    p_child_index integer[],
    p_rule        text[],
    p_source      text
) RETURNS TABLE (ord integer, opened boolean, finished text) LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
#variable_conflict use_column
DECLARE
    v_stopped    boolean;
    v_ord        integer[];
    v_fin_ord    integer[];
    v_fin_status text[];
    v_ready      boolean;
    v_done       uuid[];
    v_chunk      text;
    v_n          integer := cardinality(p_task);
    v_child_ord  integer[];
    v_child      integer[];
BEGIN
    -- The tasks first, in uuid order, as every writer of a task's started steps does.
    SELECT coalesce(bool_or(x.stopped), false) INTO v_stopped
    FROM (SELECT t.failed OR t.cancel_requested_at IS NOT NULL AS stopped
          FROM tasker.tasks t WHERE t.task_uuid = ANY(p_task)
          ORDER BY t.task_uuid FOR UPDATE) x;
    IF v_stopped THEN
        SELECT coalesce(array_agg(x.ord ORDER BY x.ord, g), '{}'), coalesce(array_agg(p_child_index[g] ORDER BY x.ord, g), '{}')
        INTO v_child_ord, v_child
        FROM unnest(p_child_from, p_child_count) WITH ORDINALITY AS x(first, n, ord),
             generate_series(x.first, x.first + x.n - 1) AS g;
        RETURN QUERY SELECT r.ord, r.opened, r.finished
                     FROM tasker.record_results(p_task, p_step, p_event,
                                                array_fill('complete'::text, ARRAY[v_n]), array_fill(0::bigint, ARRAY[v_n]),
                                                array_fill('complete'::text, ARRAY[v_n]), array_fill(0::bigint, ARRAY[v_n]),
                                                p_result, array_fill(NULL::jsonb, ARRAY[v_n]), p_history,
                                                v_child_ord, v_child, p_rule, p_source) r;
        RETURN;
    END IF;

    WITH recorded AS (
        UPDATE tasker.steps s
        SET status = 'complete', result = b.result, error = NULL,
            history = coalesce(s.history, '[]'::jsonb) || jsonb_build_array(b.history),
            event_id = NULL, worker_id = NULL, claim_id = NULL
        FROM unnest(p_task, p_index, p_step, p_event, p_result, p_history, p_child_from, p_child_count)
             WITH ORDINALITY AS b(task_uuid, step_index, step_uuid, event_id, result, history, child_from, child_count, ord)
        -- The fence is written so that it does not match steps_in_progress' predicate: the
        -- step is then found by its primary key, never by reading the in-progress steps.
        WHERE s.task_uuid = b.task_uuid AND s.step_index = b.step_index AND s.step_uuid = b.step_uuid
          AND CASE WHEN s.status = 'in_progress' THEN s.event_id END = b.event_id
        RETURNING s.task_uuid, b.ord, b.child_from, b.child_count
    ), children AS (
        SELECT r.task_uuid, p_child_index[g] AS step_index, count(*)::integer AS done
        FROM recorded r, generate_series(r.child_from, r.child_from + r.child_count - 1) AS g
        GROUP BY r.task_uuid, p_child_index[g]
    ), others AS (
        UPDATE tasker.steps s
        SET remaining_deps = s.remaining_deps - c.done,
            status = CASE WHEN s.status = 'pending' AND s.remaining_deps - c.done <= 0 THEN 'enqueued'
                          ELSE s.status END,
            ready_at = CASE WHEN s.status = 'pending' AND s.remaining_deps - c.done <= 0 THEN now()
                            ELSE s.ready_at END
        FROM children c
        WHERE s.task_uuid = c.task_uuid AND s.step_index = c.step_index
        RETURNING s.status
    ), per_task AS (
        SELECT r.task_uuid, count(*)::integer AS n, max(r.ord) AS last_ord
        FROM recorded r GROUP BY r.task_uuid
    ), moved AS (
        UPDATE tasker.tasks t
        SET steps_complete = t.steps_complete + p.n,
            steps_ended = t.steps_ended + p.n,
            status = tasker.task_status_of(p_rule, t.steps_complete + p.n >= t.steps_total,
                                           t.steps_ended + p.n >= t.steps_total, false, false, true),
            completed_at = CASE WHEN tasker.task_status_of(p_rule, t.steps_complete + p.n >= t.steps_total,
                                                           t.steps_ended + p.n >= t.steps_total, false, false, true)
                                     IN ('complete', 'error', 'cancelled')
                                THEN now() END
        FROM per_task p
        WHERE t.task_uuid = p.task_uuid
        RETURNING t.task_uuid, t.status, t.created_at, t.task_seq, t.completed_at, p.last_ord
    ), appended AS (
        INSERT INTO tasker.finished_tasks (task_uuid, status, created_at, task_seq, completed_at)
        SELECT m.task_uuid, m.status, m.created_at, m.task_seq, m.completed_at
        FROM moved m WHERE m.completed_at IS NOT NULL
        RETURNING task_uuid
    ), counters AS (
        INSERT INTO tasker.throughput AS th (minute, source, succeeded, failed)
        SELECT date_trunc('minute', now()), p_source, count(*), 0
        FROM recorded
        HAVING count(*) > 0
        ON CONFLICT (minute, source) DO UPDATE SET succeeded = th.succeeded + EXCLUDED.succeeded
        RETURNING 1
    )
    SELECT (SELECT array_agg(r.ord::integer) FROM recorded r),
           (SELECT array_agg(m.last_ord::integer) FROM moved m WHERE m.completed_at IS NOT NULL),
           (SELECT array_agg(m.status) FROM moved m WHERE m.completed_at IS NOT NULL),
           (SELECT bool_or(o.status = 'enqueued') FROM others o),
           (SELECT array_agg(a.task_uuid) FROM appended a)
    INTO v_ord, v_fin_ord, v_fin_status, v_ready, v_done;

    IF v_ready THEN
        PERFORM pg_notify('tasker_steps_ready', '');
    END IF;
    FOR v_chunk IN
        SELECT string_agg(f.task_uuid::text, ',')
        FROM (SELECT x.task_uuid, (x.n - 1) / 200 AS chunk
              FROM unnest(v_done) WITH ORDINALITY AS x(task_uuid, n)) f
        GROUP BY f.chunk
    LOOP
        PERFORM pg_notify('tasker_task_finished', v_chunk);
    END LOOP;

    RETURN QUERY SELECT x.ord, true, NULL::text FROM unnest(v_ord) AS x(ord)
                 UNION ALL
                 SELECT f.ord, true, f.status FROM unnest(v_fin_ord, v_fin_status) AS f(ord, status);
END;
$$;
