//! The statements of the hot paths, each a fixed, parameterised text prepared once per
//! connection. They are public so operators (and the plan tests) can `EXPLAIN` exactly
//! what the store runs; every one is served by an index of `migrations/0001_initial.sql`
//! (named next to it).
//!
//! Rows picked under `FOR UPDATE SKIP LOCKED` are then written by `ctid = ANY(ARRAY(...))`
//! (a TID scan of exactly those rows, which the lock keeps in place): with a join instead,
//! the generic plan a prepared statement switches to after five runs may hash-join the
//! whole table.

/// Claims up to `$2` claimable steps of the templates `$1` for worker `$3`, highest task
/// priority first, then longest ready; skips rows other workers are claiming. Each claimed
/// step gets a fresh event id (the fencing token), one more attempt and the lease; a task
/// whose first step starts becomes `in_progress` (unless another transaction holds it:
/// then the first recorded result does it, so a claim never waits). Returns what an event needs, the
/// parents' results aligned with `parents`.
///
/// Index: `steps_claim (priority DESC, ready_at, template_id) WHERE status = 'enqueued'`,
/// scanned in order; the LIMIT stops it after `$2` unlocked rows.
pub const CLAIM_STEPS: &str = "
WITH picked AS (
    SELECT s.ctid
    FROM tasker.steps s
    WHERE s.status = 'enqueued' AND s.template_id = ANY($1::bigint[])
    ORDER BY s.priority DESC, s.ready_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasker.steps s
    SET status = 'in_progress', attempts = s.attempts + 1, event_id = gen_random_uuid(),
        worker_id = $3, claimed_at = now()
    WHERE s.ctid = ANY(ARRAY(SELECT p.ctid FROM picked p))
    RETURNING s.task_uuid, s.step_index, s.step_uuid, s.attempts, s.event_id, s.parents
), started AS (
    UPDATE tasker.tasks t SET status = 'in_progress'
    WHERE t.ctid = ANY(ARRAY(SELECT p.ctid FROM tasker.tasks p
                             WHERE p.task_uuid = ANY(ARRAY(SELECT c.task_uuid FROM claimed c))
                               AND p.status = 'pending'
                             FOR UPDATE SKIP LOCKED))
)
SELECT c.task_uuid, c.step_index, c.step_uuid, c.attempts, c.event_id, t.revision_id, t.context,
       t.correlation_id, t.trace_id,
       CASE WHEN c.parents IS NULL THEN NULL ELSE
           ARRAY(SELECT p.result
                 FROM unnest(c.parents) WITH ORDINALITY AS x(step_index, ord)
                 JOIN tasker.steps p ON p.task_uuid = c.task_uuid AND p.step_index = x.step_index
                 ORDER BY x.ord)
       END AS parent_results
FROM claimed c
JOIN tasker.tasks t ON t.task_uuid = c.task_uuid";

/// The claim of a template with a `max_in_flight` cap: run after
/// [`LOCK_TEMPLATE_CLAIMS`] in the same transaction, so no other worker counts and claims
/// at the same time. `$1` template id, `$2` most wanted, `$3` worker, `$4` the cap.
///
/// Index: `steps_claim` as above (one template); the count reads `steps_in_progress`.
pub const CLAIM_CAPPED_STEPS: &str = "
WITH room AS (
    SELECT greatest(0, least($2::bigint, $4::bigint - count(*))) AS n
    FROM tasker.steps i
    WHERE i.status = 'in_progress' AND i.template_id = $1
), picked AS (
    SELECT s.ctid
    FROM tasker.steps s
    WHERE s.status = 'enqueued' AND s.template_id = $1
    ORDER BY s.priority DESC, s.ready_at
    LIMIT (SELECT n FROM room)
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasker.steps s
    SET status = 'in_progress', attempts = s.attempts + 1, event_id = gen_random_uuid(),
        worker_id = $3, claimed_at = now()
    WHERE s.ctid = ANY(ARRAY(SELECT p.ctid FROM picked p))
    RETURNING s.task_uuid, s.step_index, s.step_uuid, s.attempts, s.event_id, s.parents
), started AS (
    UPDATE tasker.tasks t SET status = 'in_progress'
    WHERE t.ctid = ANY(ARRAY(SELECT p.ctid FROM tasker.tasks p
                             WHERE p.task_uuid = ANY(ARRAY(SELECT c.task_uuid FROM claimed c))
                               AND p.status = 'pending'
                             FOR UPDATE SKIP LOCKED))
)
SELECT c.task_uuid, c.step_index, c.step_uuid, c.attempts, c.event_id, t.revision_id, t.context,
       t.correlation_id, t.trace_id,
       CASE WHEN c.parents IS NULL THEN NULL ELSE
           ARRAY(SELECT p.result
                 FROM unnest(c.parents) WITH ORDINALITY AS x(step_index, ord)
                 JOIN tasker.steps p ON p.task_uuid = c.task_uuid AND p.step_index = x.step_index
                 ORDER BY x.ord)
       END AS parent_results
FROM claimed c
JOIN tasker.tasks t ON t.task_uuid = c.task_uuid";

/// Serialises the claims of one capped template (`$1` its id) until the transaction ends.
pub const LOCK_TEMPLATE_CLAIMS: &str = "SELECT pg_advisory_xact_lock(1952543346, CAST($1::bigint AS integer))";

/// Makes due steps claimable (run_at reached, retry backoff over), `$1` at a time, and
/// says when the next one is due. Index: `steps_scheduled (ready_at)`.
pub const PROMOTE_DUE_STEPS: &str = "
WITH due AS (
    SELECT s.ctid
    FROM tasker.steps s
    WHERE s.status IN ('pending', 'waiting_for_retry') AND s.ready_at IS NOT NULL AND s.ready_at <= now()
    ORDER BY s.ready_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), promoted AS (
    UPDATE tasker.steps s SET status = 'enqueued'
    WHERE s.ctid = ANY(ARRAY(SELECT d.ctid FROM due d))
    RETURNING s.template_id
)
SELECT (SELECT count(*) FROM promoted) AS promoted,
       (SELECT array_agg(DISTINCT p.template_id) FROM promoted p) AS template_ids,
       (SELECT min(s.ready_at) FROM tasker.steps s
        WHERE s.status IN ('pending', 'waiting_for_retry') AND s.ready_at IS NOT NULL AND s.ready_at > now())
           AS next_due";

/// The read half of a completion batch: locks each step whose attempt `$3[i]` is still in
/// progress (the fence), in (task, step) order so concurrent batches never deadlock on
/// steps, and locks their tasks (so the counters read are the latest: two batches of one
/// task run one after the other). Returns per accepted result its position in the batch,
/// the step's state and the task's state.
///
/// Index: `steps_in_progress (task_uuid)` (only steps in progress: a task's few running
/// ones, then the row's step_uuid and event_id), the tasks primary key.
pub const LOCK_RESULTS: &str = "
SELECT r.ord::integer, s.step_index, s.attempts, s.template_id, s.claimed_at,
       t.revision_id, t.halt, t.status, t.steps_unfinished
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) WITH ORDINALITY AS r(task_uuid, step_uuid, event_id, ord)
JOIN tasker.steps s ON s.task_uuid = r.task_uuid AND s.step_uuid = r.step_uuid
JOIN tasker.tasks t ON t.task_uuid = s.task_uuid
WHERE s.status = 'in_progress' AND s.event_id = r.event_id
ORDER BY s.task_uuid, s.step_index
FOR UPDATE OF s, t";

/// The write half of a completion batch (see `tasker.apply_results`).
pub const APPLY_RESULTS: &str = "
SELECT ready, finished
FROM tasker.apply_results($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

/// A task through the SQL function: `$1` namespace, `$2` name, `$3` version or NULL,
/// `$4` context, `$5` idempotency key, `$6` run_at, `$7` priority.
pub const CREATE_TASK: &str = "SELECT task_uuid, created FROM tasker.create_task_with($1, $2, $3, $4, $5, $6, $7)";

/// Registers a template (see `tasker.register_template`).
pub const REGISTER_TEMPLATE: &str =
    "SELECT template_id, revision_id FROM tasker.register_template($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// The columns of one row of `TaskerCore.tasks`, in the order every list statement returns them.
pub const LIST_COLUMNS: &str = "task_uuid, status, namespace, name, version, created_at, completed_at, priority";

/// `TaskerCore.tasks` without a filter: newest first, below the cursor `($1, $2)` =
/// (created_at, task_seq) (`'infinity', 0` for the first page), `$3` rows.
/// Index: `tasks_newest (created_at DESC, task_seq DESC)`.
pub const LIST_TASKS: &str = "
SELECT task_uuid, status, namespace, name, version, created_at, completed_at, priority
FROM tasker.tasks
WHERE (created_at, task_seq) < ($1, $2)
ORDER BY created_at DESC, task_seq DESC
LIMIT $3";

/// The same with a status filter `$4`. Index: `tasks_by_status (status, created_at DESC, task_seq DESC)`.
pub const LIST_TASKS_BY_STATUS: &str = "
SELECT task_uuid, status, namespace, name, version, created_at, completed_at, priority
FROM tasker.tasks
WHERE status = $4 AND (created_at, task_seq) < ($1, $2)
ORDER BY created_at DESC, task_seq DESC
LIMIT $3";

/// The same for one template `$4`/`$5` (namespace, name), and a status `$6` when not NULL.
/// Index: `tasks_by_template (namespace, name, created_at DESC, task_seq DESC)`.
pub const LIST_TASKS_BY_TEMPLATE: &str = "
SELECT task_uuid, status, namespace, name, version, created_at, completed_at, priority
FROM tasker.tasks
WHERE namespace = $4 AND name = $5 AND ($6::text IS NULL OR status = $6) AND (created_at, task_seq) < ($1, $2)
ORDER BY created_at DESC, task_seq DESC
LIMIT $3";

/// The same for a namespace `$4` (any name), and a status `$5` when not NULL. Served by
/// `tasks_newest` with the namespace checked per row (a namespace holds most tasks of a
/// deployment), or `tasks_by_status` when the status is rare.
pub const LIST_TASKS_BY_NAMESPACE: &str = "
SELECT task_uuid, status, namespace, name, version, created_at, completed_at, priority
FROM tasker.tasks
WHERE namespace = $4 AND ($5::text IS NULL OR status = $5) AND (created_at, task_seq) < ($1, $2)
ORDER BY created_at DESC, task_seq DESC
LIMIT $3";

/// Where a `before:` task uuid cursor points. Index: the tasks primary key.
pub const LIST_CURSOR: &str = "SELECT created_at, task_seq FROM tasker.tasks WHERE task_uuid = $1";

/// Retention: deletes up to `$2` tasks that finished more than `$1` seconds ago, with their
/// steps, in one short transaction. Index: `tasks_finished (completed_at)`, then the steps
/// primary key (task_uuid prefix).
pub const PURGE_FINISHED: &str = "
WITH doomed AS (
    SELECT t.ctid, t.task_uuid
    FROM tasker.tasks t
    WHERE t.completed_at IS NOT NULL AND t.completed_at < now() - make_interval(secs => $1::double precision)
    ORDER BY t.completed_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), steps_gone AS (
    DELETE FROM tasker.steps s WHERE s.task_uuid = ANY(ARRAY(SELECT d.task_uuid FROM doomed d))
)
DELETE FROM tasker.tasks t WHERE t.ctid = ANY(ARRAY(SELECT d.ctid FROM doomed d))";

/// Steps whose lease lapsed: in progress under a worker whose heartbeat is older than `$1`
/// seconds (or that has no row), claimed more than `$1` seconds ago.
/// Index: `steps_in_progress` (all of it: bounded by the workers' concurrency).
pub const LAPSED_LEASES: &str = "
SELECT s.task_uuid, s.step_uuid, s.event_id, s.worker_id, s.attempts
FROM tasker.steps s
WHERE s.status = 'in_progress'
  AND s.claimed_at < now() - make_interval(secs => $1::double precision)
  AND NOT EXISTS (SELECT 1 FROM tasker.workers w
                  WHERE w.worker_id = s.worker_id
                    AND w.heartbeat_at >= now() - make_interval(secs => $1::double precision))";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_statements_return_the_same_columns() {
        for statement in [LIST_TASKS, LIST_TASKS_BY_STATUS, LIST_TASKS_BY_TEMPLATE, LIST_TASKS_BY_NAMESPACE] {
            assert!(statement.contains(&format!("SELECT {LIST_COLUMNS}\n")), "{statement}");
        }
    }
}
