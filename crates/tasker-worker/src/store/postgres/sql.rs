//! The statements the store runs, each a fixed, parameterised text prepared once per
//! connection. They are public so operators (and the plan tests) can `EXPLAIN` exactly
//! what the store runs; every hot one is served by an index of
//! `migrations/0001_initial.sql` (named next to it, and checked by
//! `tests/postgres_query_plans.rs` on both the custom and the generic plan).
//!
//! Rows picked under `FOR UPDATE SKIP LOCKED` are then written by `ctid = ANY(ARRAY(...))`
//! (a TID scan of exactly those rows, which the lock keeps in place): with a join instead,
//! the generic plan a prepared statement switches to after five runs may hash-join the
//! whole table.
//!
//! Both claim statements answer, per claimed step and in this order: task_uuid,
//! step_index, step_uuid, attempts, event_id, ready_at, revision_id, context,
//! correlation_id, trace_id, read_index (int[]) and read_result (jsonb[]): the results of
//! the complete steps whose results the step's event carries (empty for a root step,
//! without reading steps: most steps of the busiest workloads are roots).

/// Planner settings every connection of the store starts with (sent as startup options,
/// see [`session_options`]), so that a claim is one autocommitted statement: one round trip
/// instead of four (BEGIN, `SET LOCAL`, the claim, COMMIT). The claim is a LIMITed walk of
/// `steps_claim` in its order; when the statistics lag a burst of new tasks (the table
/// analysed while nearly empty), the planner otherwise reads every claimable step through
/// a bitmap and sorts them: 6.9 ms instead of 0.6 ms for a claim of 18 of 16,400 claimable
/// steps, growing with the backlog. No other statement of the store wants a bitmap scan
/// (the counts of `stats` read trigger-kept tables; the plan test checks every hot
/// statement under these settings). JIT is off because compiling costs milliseconds and
/// the store's statements run in well under one.
pub const PLANNER_SETTINGS: &[(&str, &str)] = &[("enable_bitmapscan", "off"), ("jit", "off")];

/// The startup `options` of a store connection: the URL's own, then [`PLANNER_SETTINGS`].
pub fn session_options(url_options: Option<&str>) -> String {
    let ours = PLANNER_SETTINGS.iter().map(|(name, value)| format!("-c {name}={value}"));
    url_options.into_iter().map(str::to_owned).chain(ours).collect::<Vec<_>>().join(" ")
}

/// [`PLANNER_SETTINGS`] as `SET LOCAL` statements, for a session that did not start with
/// them (the plan tests, a psql session reproducing a plan).
pub fn planner_settings_local() -> String {
    PLANNER_SETTINGS.iter().map(|(name, value)| format!("SET LOCAL {name} = {value}")).collect::<Vec<_>>().join("; ")
}

/// Claims up to `$2` claimable steps of the revisions `$1` for worker `$3` under claim id
/// `$4`, highest task priority first, then longest ready; skips rows other workers are
/// claiming. Each claimed step gets a fresh event id (the fencing token), one more attempt
/// and the lease. When steps are still leased under `$4` (a repeated call whose first
/// answer was lost), those are answered instead and nothing new is claimed. On the way it
/// makes up to 100 due steps claimable (run_at reached, retry backoff over), notifying
/// other processes when it did.
///
/// Answers one row per step (the claimed columns above) in claim order (priority, then
/// readiness, then creation and template order for steps that became ready together), or
/// a single row of NULLs when it
/// claimed nothing, with three more columns: `promoted` (steps made claimable),
/// `next_due_ms` (how long until the earliest scheduled step is due, NULL when none) and
/// `repeated` (the steps are a repeated claim's).
///
/// The claim commits asynchronously (`synchronous_commit` off for its transaction): it
/// returns as soon as its commit is in the WAL buffer, without waiting for the flush,
/// on an idle worker about 0.3 ms of the 1.5 ms from a task's commit to its handler's
/// start. Nothing can be lost by it: a claim that a server crash takes back leaves its
/// steps claimable, so they run again (delivery is at least once, and the crashed claim's
/// event ids are stale, so its results are refused); a result is recorded with a
/// synchronous commit, whose flush also makes every earlier claim durable.
///
/// Indexes: `steps_claim (priority DESC, ready_at) INCLUDE (revision_id) WHERE status = 'enqueued'`,
/// scanned in order (the LIMIT stops it after `$2` unlocked rows); `steps_in_progress
/// (worker_id, claim_id)` for the repeat; `steps_scheduled (ready_at)` for promotion and
/// the next due time; then the primary keys of tasks, template_steps and steps.
pub const CLAIM_STEPS: &str = "
WITH previous AS (
    SELECT s.ctid AS row_id
    FROM tasker.steps s
    WHERE s.status = 'in_progress' AND s.worker_id = $3 AND s.claim_id = $4
), promoted AS (
    UPDATE tasker.steps s SET status = 'enqueued'
    WHERE s.ctid = ANY(ARRAY(SELECT d.ctid FROM tasker.steps d
                             WHERE d.status IN ('pending', 'waiting_for_retry') AND d.ready_at IS NOT NULL
                               AND d.ready_at <= now()
                             ORDER BY d.ready_at
                             LIMIT 100
                             FOR UPDATE SKIP LOCKED))
    RETURNING 1
), picked AS (
    SELECT s.ctid
    FROM tasker.steps s
    WHERE s.status = 'enqueued' AND s.revision_id = ANY($1::bigint[])
      AND NOT EXISTS (SELECT 1 FROM previous)
    ORDER BY s.priority DESC, s.ready_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasker.steps s
    SET status = 'in_progress', attempts = s.attempts + 1, event_id = gen_random_uuid(),
        worker_id = $3, claim_id = $4, claimed_at = now()
    WHERE s.ctid = ANY(ARRAY(SELECT p.ctid FROM picked p))
    RETURNING s.task_uuid, s.step_index, s.step_uuid, s.attempts, s.event_id, s.ready_at, s.priority, s.task_seq
), answered AS (
    SELECT c.* FROM claimed c
    UNION ALL
    SELECT s.task_uuid, s.step_index, s.step_uuid, s.attempts, s.event_id, s.ready_at, s.priority, s.task_seq
    FROM tasker.steps s WHERE s.ctid = ANY(ARRAY(SELECT p.row_id FROM previous p))
), summary AS (
    SELECT (SELECT count(*) FROM promoted) AS promoted,
           (SELECT count(*) FROM (SELECT pg_notify('tasker_steps_ready', '') FROM promoted LIMIT 1) n) AS notified,
           (SELECT extract(epoch FROM min(d.ready_at) - now()) * 1000
            FROM tasker.steps d
            WHERE d.status IN ('pending', 'waiting_for_retry') AND d.ready_at IS NOT NULL)::double precision
               AS next_due_ms,
           EXISTS (SELECT 1 FROM previous) AS repeated,
           -- The claim commits without waiting for its WAL flush (see the doc comment).
           set_config('synchronous_commit', 'off', true) AS commit_mode
)
SELECT a.task_uuid, a.step_index, a.step_uuid, a.attempts, a.event_id, a.ready_at, t.revision_id, t.context,
       t.correlation_id, t.trace_id,
       CASE WHEN ts.reads IS NULL THEN '{}'::integer[] ELSE
       ARRAY(SELECT r.step_index FROM tasker.steps r
             WHERE r.task_uuid = a.task_uuid AND r.step_index = ANY(ts.reads) AND r.status = 'complete'
             ORDER BY r.step_index) END AS read_index,
       CASE WHEN ts.reads IS NULL THEN '{}'::jsonb[] ELSE
       ARRAY(SELECT r.result FROM tasker.steps r
             WHERE r.task_uuid = a.task_uuid AND r.step_index = ANY(ts.reads) AND r.status = 'complete'
             ORDER BY r.step_index) END AS read_result,
       m.promoted, m.next_due_ms, m.repeated, m.notified
FROM summary m
LEFT JOIN (answered a
           JOIN tasker.tasks t ON t.task_uuid = a.task_uuid
           JOIN tasker.template_steps ts ON ts.revision_id = t.revision_id AND ts.step_index = a.step_index) ON true
ORDER BY a.priority DESC, a.ready_at, a.task_seq, a.step_index";

/// The claim of a template with a `max_in_flight` cap: run after
/// [`LOCK_TEMPLATE_CLAIMS`] in the same transaction, so no other worker counts and claims
/// at the same time. `$1` the revisions of the template this worker loaded, `$2` most
/// wanted, `$3` worker, `$4` claim id, `$5` the cap, `$6` the template id (its in-progress
/// steps of every revision count). Answers the claimed columns.
///
/// Index: `steps_claim` as above; the count reads `steps_in_progress`.
pub const CLAIM_CAPPED_STEPS: &str = "
WITH room AS (
    SELECT greatest(0, least($2::bigint, $5::bigint - count(*))) AS n
    FROM tasker.steps i
    WHERE i.status = 'in_progress'
      AND i.revision_id = ANY(ARRAY(SELECT r.revision_id FROM tasker.template_revisions r WHERE r.template_id = $6))
), picked AS (
    SELECT s.ctid
    FROM tasker.steps s
    WHERE s.status = 'enqueued' AND s.revision_id = ANY($1::bigint[])
    ORDER BY s.priority DESC, s.ready_at
    LIMIT (SELECT n FROM room)
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasker.steps s
    SET status = 'in_progress', attempts = s.attempts + 1, event_id = gen_random_uuid(),
        worker_id = $3, claim_id = $4, claimed_at = now()
    WHERE s.ctid = ANY(ARRAY(SELECT p.ctid FROM picked p))
    RETURNING s.task_uuid, s.step_index, s.step_uuid, s.attempts, s.event_id, s.ready_at, s.priority, s.task_seq
)
SELECT a.task_uuid, a.step_index, a.step_uuid, a.attempts, a.event_id, a.ready_at, t.revision_id, t.context,
       t.correlation_id, t.trace_id,
       CASE WHEN ts.reads IS NULL THEN '{}'::integer[] ELSE
       ARRAY(SELECT r.step_index FROM tasker.steps r
             WHERE r.task_uuid = a.task_uuid AND r.step_index = ANY(ts.reads) AND r.status = 'complete'
             ORDER BY r.step_index) END AS read_index,
       CASE WHEN ts.reads IS NULL THEN '{}'::jsonb[] ELSE
       ARRAY(SELECT r.result FROM tasker.steps r
             WHERE r.task_uuid = a.task_uuid AND r.step_index = ANY(ts.reads) AND r.status = 'complete'
             ORDER BY r.step_index) END AS read_result
FROM claimed a
JOIN tasker.tasks t ON t.task_uuid = a.task_uuid
JOIN tasker.template_steps ts ON ts.revision_id = t.revision_id AND ts.step_index = a.step_index
ORDER BY a.priority DESC, a.ready_at, a.task_seq, a.step_index";

/// Serialises the claims of one capped template (`$1` its id) until the transaction ends,
/// and makes the transaction commit asynchronously, as [`CLAIM_STEPS`] does.
pub const LOCK_TEMPLATE_CLAIMS: &str = "SELECT pg_advisory_xact_lock(1952543346, CAST($1::bigint AS integer)), \
                                        set_config('synchronous_commit', 'off', true)";

/// Where results whose claim this process does not remember belong (a result recorded by
/// another store than the one that claimed it, a lease being expired): per result
/// (`$1` task, `$2` step, `$3` event id) still in progress under that event, its position
/// (1-based), step index, attempts and revision. Index: the steps primary key.
pub const LOCATE_RESULTS: &str = "
SELECT r.ord::integer, s.step_index, s.attempts, t.revision_id
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) WITH ORDINALITY AS r(task_uuid, step_uuid, event_id, ord)
JOIN tasker.steps s ON s.task_uuid = r.task_uuid AND s.step_uuid = r.step_uuid
JOIN tasker.tasks t ON t.task_uuid = s.task_uuid
WHERE s.status = 'in_progress' AND s.event_id = r.event_id";

/// A completion batch (see `tasker.record_results`): one statement, one transaction.
pub const RECORD_RESULTS: &str =
    "SELECT ord, opened, finished FROM tasker.record_results($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// A completion batch of successes only (see `tasker.record_completions`): one statement,
/// one transaction, none of `record_results`' deciding. `$1` tasks, `$2` step indexes,
/// `$3` step uuids, `$4` event ids (each once), `$5` results, `$6` history entries, `$7`
/// and `$8` where each result's dependents are in `$9` (first position, count), `$10` the
/// status rule, `$11` the source of the throughput counts. Answers as [`RECORD_RESULTS`],
/// with one more row per finished task (its last result's position and final status).
pub const RECORD_COMPLETIONS: &str =
    "SELECT ord, opened, finished FROM tasker.record_completions($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// A task through the SQL function: `$1` namespace, `$2` name, `$3` version or NULL,
/// `$4` context, `$5` idempotency key, `$6` run_at, `$7` priority, `$8` revision or NULL.
pub const CREATE_TASK: &str = "SELECT task_uuid, created FROM tasker.create_task_with($1, $2, $3, $4, $5, $6, $7, $8)";

/// The template a task request names: its template and current revision ids, or one of
/// the errors TK001-TK004 (see `tasker.resolve_template`).
pub const RESOLVE_TEMPLATE: &str = "SELECT template_id, current_revision_id FROM tasker.resolve_template($1, $2, $3)";

/// Every version of `$1`/`$2`, lowest first (for an error naming what exists).
pub const TEMPLATE_VERSIONS: &str = "
SELECT version FROM tasker.templates
WHERE namespace = $1 AND name = $2
ORDER BY version_major, version_minor, version_patch, version_pre = '', version_pre";

/// The definition of revision `$1`.
pub const REVISION_DEFINITION: &str = "SELECT definition FROM tasker.template_revisions WHERE revision_id = $1";

/// Every template's current revision and its definition.
pub const CURRENT_TEMPLATES: &str = "
SELECT r.revision_id, r.definition
FROM tasker.templates t
JOIN tasker.template_revisions r ON r.revision_id = t.current_revision_id";

/// Registers a template (see `tasker.register_template`).
pub const REGISTER_TEMPLATE: &str = "
SELECT template_id, revision_id
FROM tasker.register_template($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// One task (`$1`) as `task_status` shows it. Index: the tasks primary key.
pub const TASK: &str = "
SELECT task_uuid, namespace, name, version, status, priority, correlation_id, context, created_at, completed_at,
       run_at, idempotency_key, cancel_requested_at, cancel_reason, revision_id
FROM tasker.tasks WHERE task_uuid = $1";

/// The steps of task `$1` in template order. Index: the steps primary key.
pub const TASK_STEPS: &str = "
SELECT step_index, step_uuid, status, attempts, result, error, history
FROM tasker.steps WHERE task_uuid = $1 ORDER BY step_index";

/// Whether (and when) task `$1` was removed by retention. Index: its primary key.
pub const EVICTED_TASK: &str =
    "SELECT evicted_at, extract(epoch FROM retention)::double precision FROM tasker.evicted_tasks WHERE task_uuid = $1";

/// Where a `before:` task uuid cursor points. Index: the tasks primary key.
pub const LIST_CURSOR: &str = "SELECT created_at, task_seq FROM tasker.tasks WHERE task_uuid = $1";

/// The columns of one row of `TaskerCore.tasks`, in the order every list statement returns them.
pub const LIST_COLUMNS: &str = "task_uuid, status, namespace, name, version, created_at, completed_at, priority";

/// `TaskerCore.tasks` without a status: newest first (a task whose first step runs but whose
/// first result is not recorded yet is stored as pending; its in-progress step says
/// otherwise) below the cursor `($1, $2)` =
/// (created_at, task_seq), `$3` rows, `$4` namespace and `$5` name when not NULL.
/// Index: `tasks_newest (created_at DESC, task_seq DESC)` (a namespace or name alone is
/// checked per row: one namespace usually holds most tasks).
pub const LIST_TASKS: &str = "
SELECT t.task_uuid,
       CASE WHEN t.status = 'pending' AND EXISTS (SELECT 1 FROM tasker.steps s
                                                 WHERE s.task_uuid = t.task_uuid AND s.status = 'in_progress')
            THEN 'in_progress' ELSE t.status END AS status,
       t.namespace, t.name, t.version, t.created_at, t.completed_at, t.priority
FROM tasker.tasks t
WHERE (t.created_at, t.task_seq) < ($1, $2)
  AND ($4::text IS NULL OR t.namespace = $4) AND ($5::text IS NULL OR t.name = $5)
ORDER BY t.created_at DESC, t.task_seq DESC
LIMIT $3";

/// The same for one template `$4`/`$5` (namespace, name).
/// Index: `tasks_by_template (namespace, name, created_at DESC, task_seq DESC)`.
pub const LIST_TASKS_BY_TEMPLATE: &str = "
SELECT t.task_uuid,
       CASE WHEN t.status = 'pending' AND EXISTS (SELECT 1 FROM tasker.steps s
                                                 WHERE s.task_uuid = t.task_uuid AND s.status = 'in_progress')
            THEN 'in_progress' ELSE t.status END AS status,
       t.namespace, t.name, t.version, t.created_at, t.completed_at, t.priority
FROM tasker.tasks t
WHERE t.namespace = $4 AND t.name = $5 AND (t.created_at, t.task_seq) < ($1, $2)
ORDER BY t.created_at DESC, t.task_seq DESC
LIMIT $3";

/// Finished tasks with status `$4` ('complete', 'error', 'cancelled'), newest first below
/// the cursor, `$5` namespace and `$6` name when not NULL.
/// Index: `finished_by_status (status, created_at DESC, task_seq DESC)`, then the tasks
/// primary key.
pub const LIST_FINISHED_TASKS: &str = "
SELECT t.task_uuid, f.status, t.namespace, t.name, t.version, t.created_at, t.completed_at, t.priority
FROM tasker.finished_tasks f
JOIN tasker.tasks t ON t.task_uuid = f.task_uuid
WHERE f.status = $4 AND (f.created_at, f.task_seq) < ($1, $2)
  AND ($5::text IS NULL OR t.namespace = $5) AND ($6::text IS NULL OR t.name = $6)
ORDER BY f.created_at DESC, f.task_seq DESC
LIMIT $3";

/// Unfinished tasks newest first below the cursor `($1, $2)`: the next `$3` tasks that
/// have a frontier step (ready, running, waiting for a retry or scheduled), each with the
/// status callers see, for `TaskerCore.tasks(status: pending|in_progress)`. The store
/// filters the chunk by status (and namespace, name) and reads the next chunk from the
/// last key when it needs more: every chunk is one bounded index scan, whatever the
/// filters match. Answers (task_created_at, task_seq) first, then the listing columns.
/// Index: `steps_unfinished (task_created_at DESC, task_seq DESC)`, then the primary keys.
pub const LIST_UNFINISHED_TASKS: &str = "
WITH heads AS (
    SELECT DISTINCT ON (s.task_created_at, s.task_seq) s.task_created_at, s.task_seq, s.task_uuid
    FROM tasker.steps s
    WHERE s.status IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry') AND s.ready_at IS NOT NULL
      AND (s.task_created_at, s.task_seq) < ($1, $2)
    ORDER BY s.task_created_at DESC, s.task_seq DESC
    LIMIT $3
)
SELECT h.task_created_at, h.task_seq, t.task_uuid,
       CASE WHEN t.status = 'pending' AND EXISTS (SELECT 1 FROM tasker.steps r
                                                 WHERE r.task_uuid = t.task_uuid AND r.status = 'in_progress')
            THEN 'in_progress' ELSE t.status END AS status,
       t.namespace, t.name, t.version, t.created_at, t.completed_at, t.priority
FROM heads h
JOIN tasker.tasks t ON t.task_uuid = h.task_uuid
ORDER BY h.task_created_at DESC, h.task_seq DESC";

/// Tasks and steps by status (`relation` 'tasks' or 'steps'): the folded counts plus the
/// changes not folded yet (both kept by the triggers of migration 0002), so no read of
/// either table however many rows they hold.
pub const STATUS_COUNTS: &str = "
SELECT c.relation, c.status, sum(c.n)::bigint
FROM (SELECT relation, status, n FROM tasker.status_counts
      UNION ALL
      SELECT relation, status, n FROM tasker.status_count_changes) c
GROUP BY c.relation, c.status";

/// Pending tasks whose first step is running (a claim does not touch the task row, so the
/// row still reads 'pending'; they count as in progress), and workers whose heartbeat is
/// younger than `$1` seconds. Index: `steps_in_progress` (bounded by the workers'
/// concurrency).
pub const STARTED_AND_ALIVE: &str = "
SELECT (SELECT count(*)
        FROM (SELECT DISTINCT s.task_uuid FROM tasker.steps s WHERE s.status = 'in_progress') r
        -- One primary-key probe per running task, never a scan of tasks.
        WHERE (SELECT t.status FROM tasker.tasks t WHERE t.task_uuid = r.task_uuid) = 'pending'),
       (SELECT count(*) FROM tasker.workers
        WHERE heartbeat_at >= now() - make_interval(secs => $1::double precision))";

/// Moves up to `$1` appended status-count changes into the folded counts; answers how many.
pub const FOLD_STATUS_COUNTS: &str = "SELECT tasker.fold_status_counts($1)";

/// Attempts that ended per minute over the last hour (minute as epoch seconds).
pub const THROUGHPUT: &str = "
SELECT extract(epoch FROM minute)::bigint, sum(succeeded)::bigint, sum(failed)::bigint
FROM tasker.throughput
WHERE minute > now() - interval '61 minutes'
GROUP BY minute";

/// Registers worker `$1` or refreshes its heartbeat (on the database's clock).
pub const HEARTBEAT: &str = "
INSERT INTO tasker.workers AS w (worker_id, host, pid, started_at, heartbeat_at, in_flight, concurrency)
VALUES ($1, $2, $3, $4, now(), $5, $6)
ON CONFLICT (worker_id) DO UPDATE
SET heartbeat_at = now(), in_flight = EXCLUDED.in_flight, concurrency = EXCLUDED.concurrency,
    host = EXCLUDED.host, pid = EXCLUDED.pid";

pub const DEREGISTER_WORKER: &str = "DELETE FROM tasker.workers WHERE worker_id = $1";

/// Workers whose heartbeat is younger than `$1` seconds, newest heartbeat first, with the
/// heartbeat's age in milliseconds.
pub const WORKERS: &str = "
SELECT worker_id, host, pid, started_at, (extract(epoch FROM now() - heartbeat_at) * 1000)::double precision,
       concurrency, in_flight
FROM tasker.workers
WHERE heartbeat_at >= now() - make_interval(secs => $1::double precision)
ORDER BY heartbeat_at DESC";

/// Steps whose lease lapsed: in progress under a worker whose heartbeat is older than `$1`
/// seconds (or that has no row), claimed more than `$1` seconds ago; with what their
/// `worker_lost` result needs. Index: `steps_in_progress` (all of it: bounded by the
/// workers' concurrency), then the tasks primary key.
pub const LAPSED_LEASES: &str = "
SELECT s.task_uuid, s.step_uuid, s.event_id, s.step_index, s.attempts, t.revision_id, s.worker_id
FROM tasker.steps s
JOIN tasker.tasks t ON t.task_uuid = s.task_uuid
WHERE s.status = 'in_progress'
  AND s.claimed_at < now() - make_interval(secs => $1::double precision)
  AND NOT EXISTS (SELECT 1 FROM tasker.workers w
                  WHERE w.worker_id = s.worker_id
                    AND w.heartbeat_at >= now() - make_interval(secs => $1::double precision))";

/// Forgets workers whose heartbeat is older than `$1` seconds.
pub const FORGET_DEAD_WORKERS: &str =
    "DELETE FROM tasker.workers WHERE heartbeat_at < now() - make_interval(secs => $1::double precision)";

/// The steps table's dead row versions and live rows as the statistics count them, and
/// whether this role may vacuum it (owners and their members may). Reads the statistics
/// views only, never the table.
pub const STEP_QUEUE_DEAD_ROWS: &str = "
SELECT coalesce(s.n_dead_tup, 0)::bigint, coalesce(s.n_live_tup, 0)::bigint, pg_has_role(c.relowner, 'USAGE')
FROM pg_class c
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = 'tasker.steps'::regclass";

/// Vacuums the steps table unless another vacuum of it (autovacuum, or another process's)
/// holds its lock: then this one skips it at once instead of queueing behind it.
pub const VACUUM_STEP_QUEUE: &str = "VACUUM (SKIP_LOCKED) tasker.steps";

/// Cancels task `$1` with reason `$2` (see `tasker.cancel_task`); `$3` the status rule.
pub const CANCEL_TASK: &str = "SELECT outcome, status, in_flight FROM tasker.cancel_task($1, $2, $3)";

/// Retries task `$1` (see `tasker.retry_task`).
pub const RETRY_TASK: &str = "SELECT outcome, status, failed_steps, skipped_steps FROM tasker.retry_task($1)";

/// Retention: up to `$2` tasks finished more than `$1` seconds ago, never one of `$3`
/// (see `tasker.purge_finished`). Index: `finished_by_time (completed_at)`.
pub const PURGE_FINISHED: &str =
    "SELECT tasker.purge_finished(make_interval(secs => $1::double precision), $2, $3::uuid[])";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_statements_return_the_same_columns() {
        for statement in [LIST_TASKS, LIST_TASKS_BY_TEMPLATE, LIST_FINISHED_TASKS, LIST_UNFINISHED_TASKS] {
            let select = statement.rsplit("\nSELECT").next().unwrap_or_default();
            let select = select.split("\nFROM").next().unwrap_or_default();
            for column in LIST_COLUMNS.split(", ") {
                assert!(select.contains(column), "{column} missing from {statement}");
            }
        }
    }
}
