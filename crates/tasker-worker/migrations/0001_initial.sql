-- 0001_initial: the tasker schema.
--
-- Templates (with immutable revisions, so a changed definition never alters running
-- tasks), tasks, their steps, the workers that claim steps, and the SQL functions that
-- create tasks, record attempt results, cancel, retry and purge. The Rust store calls
-- these same functions, so each of those writes exists once, here. The decisions behind
-- them (what a result does to its step, when a task is finished) are made by the Rust
-- rules: the store passes their outcomes in, and the rule "when is a task finished" as a
-- table it computed (see tasker.record_results); SQL only applies them to locked rows.
--
-- Hot tables carry no foreign keys on purpose: a foreign key check takes a KEY SHARE lock
-- on the referenced row for every inserted step (every create, from every process, on the
-- same template row), which costs more than it protects when rows are only ever written
-- by the functions below. Rows of a task are removed together (tasker.purge_finished).
--
-- Locking order, which keeps every writer free of deadlocks: a writer locks the task rows
-- it changes first (in task_uuid order), then only steps of those tasks. Claims are the
-- one exception (they lock enqueued steps alone), and they never wait: SKIP LOCKED.
--
-- Why the task row carries no indexed column that changes (status listing and retention
-- are served by tasker.finished_tasks and a partial index of tasker.steps instead):
-- updating a row is HOT (heap-only: no index entry written, the old version pruned in
-- place) only when no indexed column changes. With indexes on tasks.status and
-- tasks.completed_at, finishing a task rewrote every index of the table. Measured on the
-- statements below, per single-step task (create + claim + completion, pg_stat_statements
-- execution time, variants run interleaved in one pgbench run):
--   no status or retention index at all (the floor, not an option)   ~48 us
--   status + completed_at indexes on tasks (finish not HOT)           ~63 us
--   open-task and finished-task side tables (insert, delete, insert)   ~64 us
--   finish markers on the completing step's row + partial indexes      ~60 us
--   finished_tasks appended at finish + steps_unfinished (this one)    ~59 us
-- This arrangement and the finish markers are within noise of each other and about 6 %
-- cheaper than indexing the task row; finished_tasks is the simpler of the two to read
-- and to purge (an append-only table in completion order, written in the completion's
-- own statement), so it is the one used. The tasks row is updated HOT: its status,
-- counters and completed_at are unindexed.

-- ---------------------------------------------------------------------------------------
-- Templates
-- ---------------------------------------------------------------------------------------

-- One row per namespace/name/version. The version is stored canonical (as semver prints
-- it) and split into sortable parts so "the highest version that is not a prerelease" is
-- an index scan.
CREATE TABLE tasker.templates (
    template_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace           text NOT NULL,
    name                text NOT NULL,
    version             text NOT NULL,
    version_major       bigint NOT NULL CHECK (version_major >= 0),
    version_minor       bigint NOT NULL CHECK (version_minor >= 0),
    version_patch       bigint NOT NULL CHECK (version_patch >= 0),
    -- The prerelease part ('beta.1'); '' for a release.
    version_pre         text NOT NULL DEFAULT '',
    -- The revision new tasks use: the definition registered last.
    current_revision_id bigint,
    -- Most steps of this template in progress at once, across all workers (NULL: no cap).
    max_in_flight       integer CHECK (max_in_flight > 0),
    registered_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, name, version)
);

CREATE INDEX templates_releases ON tasker.templates
    (namespace, name, version_major DESC, version_minor DESC, version_patch DESC)
    WHERE version_pre = '';

-- A definition as one process compiled it. Identical definitions share a revision; a
-- changed one (same version, other handler or steps) gets a new revision, and tasks keep
-- the revision they were created with.
CREATE TABLE tasker.template_revisions (
    revision_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template_id   bigint NOT NULL REFERENCES tasker.templates,
    -- md5 of the definition's jsonb text (jsonb normalises key order and spacing).
    digest        text NOT NULL,
    -- The compiled template, as serde serialises it (read back by processes that did not
    -- load the template themselves: clients, the dashboard).
    definition    jsonb NOT NULL,
    step_count    integer NOT NULL CHECK (step_count > 0),
    registered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (template_id, digest)
);

-- The DAG of a revision, one row per step: what task creation copies into tasker.steps,
-- and which results a claimed step's event carries.
CREATE TABLE tasker.template_steps (
    revision_id bigint NOT NULL REFERENCES tasker.template_revisions,
    step_index  integer NOT NULL CHECK (step_index >= 0),
    name        text NOT NULL,
    -- Indexes of the steps this one waits for; NULL for a root step.
    parents     integer[] CHECK (parents IS NULL OR cardinality(parents) > 0),
    -- Indexes of every step whose result its event carries (parents and their ancestors);
    -- NULL for a root step.
    reads       integer[],
    PRIMARY KEY (revision_id, step_index)
);

-- ---------------------------------------------------------------------------------------
-- Tasks
-- ---------------------------------------------------------------------------------------

CREATE TABLE tasker.tasks (
    task_uuid           uuid PRIMARY KEY,
    -- Creation order, breaking ties of created_at (one transaction creating many tasks).
    task_seq            bigint GENERATED ALWAYS AS IDENTITY,
    template_id         bigint NOT NULL,
    revision_id         bigint NOT NULL,
    namespace           text NOT NULL,
    name                text NOT NULL,
    version             text NOT NULL,
    -- 'pending' until the first result is recorded (claims do not touch this row, so a
    -- task whose first step runs still reads 'pending' here; task_status derives
    -- 'in_progress' from its steps), then 'in_progress', then how it ended.
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'in_progress', 'complete', 'error', 'cancelled')),
    -- A step failed for good: no new step starts; the task ends when the running ones have.
    failed              boolean NOT NULL DEFAULT false,
    context             jsonb NOT NULL CHECK (jsonb_typeof(context) = 'object'),
    priority            integer NOT NULL DEFAULT 0,
    -- Unique over all tasks (see tasks_idempotency) while the task is retained.
    idempotency_key     text,
    run_at              timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    correlation_id      uuid NOT NULL,
    -- W3C trace id (32 hex digits), shared by every step.
    trace_id            text NOT NULL,
    -- Set once a cancel was asked for (no new step starts from then on).
    cancel_requested_at timestamptz,
    cancel_reason       text,
    steps_total         integer NOT NULL,
    steps_complete      integer NOT NULL DEFAULT 0,
    -- Steps that will not run again: complete, error or skipped. A stopping task is idle
    -- (nothing in flight) when this reaches steps_total, since all it has not started is
    -- skipped at once.
    steps_ended         integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- TaskerCore.tasks: newest first, with or without a filter, cursor on (created_at, task_seq).
CREATE INDEX tasks_newest ON tasker.tasks (created_at DESC, task_seq DESC);
CREATE INDEX tasks_by_template ON tasker.tasks (namespace, name, created_at DESC, task_seq DESC);
-- Idempotency keys: one task per key.
CREATE UNIQUE INDEX tasks_idempotency ON tasker.tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Finished tasks, appended in the statement that finishes them (and removed by a retry
-- or by retention): what the status listing of finished tasks and retention read.
CREATE TABLE tasker.finished_tasks (
    task_uuid    uuid NOT NULL,
    status       text NOT NULL CHECK (status IN ('complete', 'error', 'cancelled')),
    created_at   timestamptz NOT NULL,
    task_seq     bigint NOT NULL,
    completed_at timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.02);

-- TaskerCore.tasks(status: complete|error|cancelled), newest first.
CREATE INDEX finished_by_status ON tasker.finished_tasks (status, created_at DESC, task_seq DESC);
-- Retention: oldest finished first.
CREATE INDEX finished_by_time ON tasker.finished_tasks (completed_at);

-- How many finished tasks there are, by status: what `stats` (the dashboard's overview)
-- reads instead of counting finished_tasks (which took ~500 ms on a million rows). Kept
-- by statement-level triggers on finished_tasks, so every writer (completions, cancel,
-- retry, retention) keeps it right in its own transaction. A writer adds to the row of
-- its own shard (its backend pid modulo 16), so concurrent completions of different
-- workers do not queue on one counter row; a count is the sum over the shards.
CREATE TABLE tasker.finished_counts (
    status text NOT NULL CHECK (status IN ('complete', 'error', 'cancelled')),
    shard  integer NOT NULL,
    tasks  bigint NOT NULL,
    PRIMARY KEY (status, shard)
);

CREATE FUNCTION tasker.count_finished_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.finished_counts AS c (status, shard, tasks)
    SELECT a.status, pg_backend_pid() % 16, count(*) FROM added a GROUP BY a.status
    ON CONFLICT (status, shard) DO UPDATE SET tasks = c.tasks + EXCLUDED.tasks;
    RETURN NULL;
END;
$$;

CREATE FUNCTION tasker.count_finished_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.finished_counts AS c (status, shard, tasks)
    SELECT r.status, pg_backend_pid() % 16, -count(*) FROM removed r GROUP BY r.status
    ON CONFLICT (status, shard) DO UPDATE SET tasks = c.tasks + EXCLUDED.tasks;
    RETURN NULL;
END;
$$;

CREATE TRIGGER finished_tasks_counted_in AFTER INSERT ON tasker.finished_tasks
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_finished_inserted();
CREATE TRIGGER finished_tasks_counted_out AFTER DELETE ON tasker.finished_tasks
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_finished_deleted();

-- Tasks removed by retention, so task_status can say "evicted at ..." rather than
-- "unknown". Kept as long as finished tasks are (at least a day), then removed too.
CREATE TABLE tasker.evicted_tasks (
    task_uuid  uuid PRIMARY KEY,
    evicted_at timestamptz NOT NULL DEFAULT now(),
    retention  interval NOT NULL
);

CREATE INDEX evicted_by_time ON tasker.evicted_tasks (evicted_at);

-- ---------------------------------------------------------------------------------------
-- Steps
-- ---------------------------------------------------------------------------------------

CREATE TABLE tasker.steps (
    task_uuid       uuid NOT NULL,
    step_index      integer NOT NULL,
    step_uuid       uuid NOT NULL,
    -- Copies of the task's, so the claim and the listing read one table.
    revision_id     bigint NOT NULL,
    priority        integer NOT NULL,
    task_created_at timestamptz NOT NULL,
    task_seq        bigint NOT NULL,
    -- pending: waiting for parents, or for ready_at (run_at); enqueued: claimable now;
    -- waiting_for_retry: claimable from ready_at; skipped: will never run (task stopped).
    status          text NOT NULL
                    CHECK (status IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry',
                                      'complete', 'error', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Parents not complete yet.
    remaining_deps  integer NOT NULL,
    parents         integer[],
    -- When the step became (or becomes) claimable; NULL while it waits for parents.
    ready_at        timestamptz,
    -- The attempt in progress: its fencing token (a result for another event is stale)...
    event_id        uuid,
    -- ...the lease (the worker that claimed it, and when)...
    worker_id       text,
    claimed_at      timestamptz,
    -- ...and the claim call it came from (a repeated call answers the same steps).
    claim_id        uuid,
    result          jsonb,
    -- The last failure (kept while waiting for a retry and after failing for good).
    error           jsonb,
    -- Every attempt that ended, oldest first.
    history         jsonb,
    PRIMARY KEY (task_uuid, step_index)
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The claim: claimable steps in claim order. Exactly the claim query's WHERE and ORDER BY.
-- revision_id is carried (INCLUDE), not a key column: as a key column an `= ANY(...)` on it
-- lets the planner read every claimable step through a bitmap and sort them, which it
-- picks whenever the statistics lag a burst of new tasks (6.9 ms instead of 0.6 ms for a
-- claim of 18 of 16,400 claimable steps). The store also runs its claims with bitmap
-- scans off, so a claim walks this index in order and stops at its LIMIT.
CREATE INDEX steps_claim ON tasker.steps (priority DESC, ready_at) INCLUDE (revision_id) WHERE status = 'enqueued';
-- Steps waiting for a time (run_at, retry backoff), soonest first: promotion to enqueued.
CREATE INDEX steps_scheduled ON tasker.steps (ready_at)
    WHERE status IN ('pending', 'waiting_for_retry') AND ready_at IS NOT NULL;
-- Steps in progress: per worker (leases of dead workers, a repeated claim) and per
-- revision (max_in_flight). Small: bounded by the workers' concurrency.
CREATE INDEX steps_in_progress ON tasker.steps (worker_id, claim_id) INCLUDE (revision_id)
    WHERE status = 'in_progress';
-- Unfinished tasks, newest first: every unfinished task has a step that is ready, running,
-- waiting for a retry or scheduled (its frontier); finished tasks have none. Serves
-- TaskerCore.tasks(status: pending|in_progress) and the unfinished counts of stats.
CREATE INDEX steps_unfinished ON tasker.steps (task_created_at DESC, task_seq DESC)
    WHERE status IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry') AND ready_at IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- Workers and throughput
-- ---------------------------------------------------------------------------------------

-- Live worker processes. heartbeat_at is the database's clock (now()), so liveness is
-- judged on one clock whatever the hosts' clocks say.
CREATE TABLE tasker.workers (
    worker_id    text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    in_flight    integer NOT NULL DEFAULT 0,
    concurrency  integer NOT NULL DEFAULT 0
);

-- Attempts that ended, per minute and per recording process (one row per process and
-- minute, so processes never wait for each other's counter). Kept for an hour.
CREATE TABLE tasker.throughput (
    minute    timestamptz NOT NULL,
    source    text NOT NULL,
    succeeded bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, source)
);

-- ---------------------------------------------------------------------------------------
-- Registering a template
-- ---------------------------------------------------------------------------------------

-- Upserts the template and its revision; makes the revision current. Safe when several
-- processes register the same template at once. Returns the ids. Sends
-- tasker_templates_changed when the current revision changed (other processes forget what
-- they resolved).
CREATE FUNCTION tasker.register_template(
    p_namespace     text,
    p_name          text,
    p_version       text,
    p_major         bigint,
    p_minor         bigint,
    p_patch         bigint,
    p_pre           text,
    p_max_in_flight integer,
    p_definition    jsonb,
    p_step_names    text[],
    -- The DAG as edges: step p_edge_child[i] waits for step p_edge_parent[i].
    p_edge_child    integer[],
    p_edge_parent   integer[],
    -- What each step's event carries: step p_read_step[i] reads step p_read_index[i].
    p_read_step     integer[],
    p_read_index    integer[],
    OUT template_id bigint,
    OUT revision_id bigint
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_digest text := md5(p_definition::text);
BEGIN
    IF cardinality(p_step_names) IS NULL OR cardinality(p_step_names) = 0 THEN
        RAISE EXCEPTION 'template %/%:% has no steps', p_namespace, p_name, p_version
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO tasker.templates AS t
        (namespace, name, version, version_major, version_minor, version_patch, version_pre, max_in_flight)
    VALUES (p_namespace, p_name, p_version, p_major, p_minor, p_patch, coalesce(p_pre, ''), p_max_in_flight)
    ON CONFLICT (namespace, name, version) DO UPDATE SET max_in_flight = EXCLUDED.max_in_flight
    RETURNING t.template_id INTO template_id;

    SELECT r.revision_id INTO revision_id
    FROM tasker.template_revisions r
    WHERE r.template_id = register_template.template_id AND r.digest = v_digest;
    IF NOT FOUND THEN
        INSERT INTO tasker.template_revisions AS r (template_id, digest, definition, step_count)
        VALUES (register_template.template_id, v_digest, p_definition, cardinality(p_step_names))
        ON CONFLICT (template_id, digest) DO NOTHING
        RETURNING r.revision_id INTO revision_id;
        IF revision_id IS NULL THEN
            -- Another process inserted the same revision a moment ago.
            SELECT r.revision_id INTO revision_id
            FROM tasker.template_revisions r
            WHERE r.template_id = register_template.template_id AND r.digest = v_digest;
        ELSE
            INSERT INTO tasker.template_steps (revision_id, step_index, name, parents, reads)
            SELECT register_template.revision_id, s.ord - 1, s.name,
                   (SELECT array_agg(e.parent ORDER BY e.parent)
                    FROM unnest(p_edge_child, p_edge_parent) AS e(child, parent)
                    WHERE e.child = s.ord - 1),
                   (SELECT array_agg(r.step_index ORDER BY r.step_index)
                    FROM unnest(p_read_step, p_read_index) AS r(step, step_index)
                    WHERE r.step = s.ord - 1)
            FROM unnest(p_step_names) WITH ORDINALITY AS s(name, ord);
        END IF;
    END IF;

    UPDATE tasker.templates t SET current_revision_id = register_template.revision_id
    WHERE t.template_id = register_template.template_id
      AND t.current_revision_id IS DISTINCT FROM register_template.revision_id;
    IF FOUND THEN
        PERFORM pg_notify('tasker_templates_changed', template_id::text);
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------------------
-- Creating a task (the one implementation: SQL callers and the Rust store both use it)
-- ---------------------------------------------------------------------------------------

-- Finds the template a task request names: p_version NULL means the highest version that
-- is not a prerelease; otherwise the exact (canonical) version. Raises, with what is known
-- in DETAIL (a comma-separated list), when there is none:
--   TK001 unknown namespace, TK002 unknown template name, TK003 unknown version,
--   TK004 only prereleases (they run only when named).
CREATE FUNCTION tasker.resolve_template(p_namespace text, p_name text, p_version text)
RETURNS tasker.templates LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_template tasker.templates;
    v_known    text;
BEGIN
    IF p_version IS NULL THEN
        SELECT * INTO v_template FROM tasker.templates t
        WHERE t.namespace = p_namespace AND t.name = p_name AND t.version_pre = ''
        ORDER BY t.version_major DESC, t.version_minor DESC, t.version_patch DESC, t.version DESC
        LIMIT 1;
    ELSE
        SELECT * INTO v_template FROM tasker.templates t
        WHERE t.namespace = p_namespace AND t.name = p_name AND t.version = p_version;
    END IF;
    IF FOUND AND v_template.current_revision_id IS NOT NULL THEN
        RETURN v_template;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM tasker.templates t WHERE t.namespace = p_namespace) THEN
        SELECT string_agg(DISTINCT t.namespace, ', ' ORDER BY t.namespace) INTO v_known FROM tasker.templates t;
        RAISE EXCEPTION 'unknown namespace "%" (task template "%")', p_namespace, p_name
            USING ERRCODE = 'TK001', DETAIL = coalesce(v_known, '');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tasker.templates t WHERE t.namespace = p_namespace AND t.name = p_name) THEN
        SELECT string_agg(DISTINCT t.name, ', ' ORDER BY t.name) INTO v_known
        FROM tasker.templates t WHERE t.namespace = p_namespace;
        RAISE EXCEPTION 'unknown task template "%" in namespace "%"', p_name, p_namespace
            USING ERRCODE = 'TK002', DETAIL = coalesce(v_known, '');
    END IF;
    SELECT string_agg(t.version, ', '
                      ORDER BY t.version_major, t.version_minor, t.version_patch, t.version_pre = '', t.version_pre)
    INTO v_known FROM tasker.templates t WHERE t.namespace = p_namespace AND t.name = p_name;
    IF p_version IS NULL THEN
        RAISE EXCEPTION 'task template %/% has only prerelease versions, which run only when named', p_namespace, p_name
            USING ERRCODE = 'TK004', DETAIL = v_known;
    END IF;
    RAISE EXCEPTION 'unknown version "%" of task template %/%', p_version, p_namespace, p_name
        USING ERRCODE = 'TK003', DETAIL = v_known;
END;
$$;

-- Creates a task and its steps inside the caller's transaction: nothing exists, and no
-- worker wakes, unless that transaction commits (NOTIFY is delivered at commit).
--   p_context          a JSON object (NULL: {})
--   p_idempotency_key  when a task already has the key, its uuid comes back with
--                      created = false and nothing is created; when that task is of
--                      another template, TK005 (DETAIL: its uuid, namespace/name version)
--   p_run_at           no step is claimable before then (NULL: now)
--   p_priority         higher is claimed first
--   p_revision_id      the revision to use (the Rust store passes the one it checked the
--                      context against); NULL: resolve namespace/name/version
-- Root steps are enqueued (or scheduled for p_run_at); the others wait for their parents.
-- The template's input_schema is not checked here (the Rust store checks it before).
CREATE FUNCTION tasker.create_task_with(
    p_namespace       text,
    p_name            text,
    p_version         text,
    p_context         jsonb,
    p_idempotency_key text,
    p_run_at          timestamptz,
    p_priority        integer,
    p_revision_id     bigint,
    OUT task_uuid     uuid,
    OUT created       boolean
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_template tasker.templates;
    v_revision bigint;
    v_context  jsonb := coalesce(p_context, '{}'::jsonb);
    v_due      boolean := p_run_at IS NULL OR p_run_at <= now();
    v_ready_at timestamptz := CASE WHEN p_run_at IS NULL OR p_run_at <= now() THEN now() ELSE p_run_at END;
    v_steps    integer;
    v_seq      bigint;
    v_existing tasker.tasks;
BEGIN
    IF jsonb_typeof(v_context) <> 'object' THEN
        RAISE EXCEPTION 'task context must be a JSON object, got %', jsonb_typeof(v_context)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_revision_id IS NULL THEN
        v_template := tasker.resolve_template(p_namespace, p_name, p_version);
        v_revision := v_template.current_revision_id;
    ELSE
        SELECT t.* INTO v_template FROM tasker.templates t
        JOIN tasker.template_revisions r ON r.template_id = t.template_id
        WHERE r.revision_id = p_revision_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown template revision %', p_revision_id USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_revision := p_revision_id;
    END IF;

    IF p_idempotency_key IS NOT NULL THEN
        SELECT * INTO v_existing FROM tasker.tasks t WHERE t.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            PERFORM tasker.check_idempotency(v_existing, v_template, p_idempotency_key);
            task_uuid := v_existing.task_uuid;
            created := false;
            RETURN;
        END IF;
    END IF;

    SELECT r.step_count INTO v_steps FROM tasker.template_revisions r WHERE r.revision_id = v_revision;

    task_uuid := gen_random_uuid();
    INSERT INTO tasker.tasks AS t
        (task_uuid, template_id, revision_id, namespace, name, version, context, priority, idempotency_key,
         run_at, correlation_id, trace_id, steps_total)
    VALUES (create_task_with.task_uuid, v_template.template_id, v_revision,
            v_template.namespace, v_template.name, v_template.version, v_context, coalesce(p_priority, 0),
            p_idempotency_key, p_run_at, gen_random_uuid(),
            replace(gen_random_uuid()::text, '-', ''), v_steps)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING t.task_seq INTO v_seq;
    IF NOT FOUND THEN
        -- A concurrent transaction committed a task with this key while we waited for it.
        SELECT * INTO v_existing FROM tasker.tasks t WHERE t.idempotency_key = p_idempotency_key;
        IF NOT FOUND THEN
            -- Only under REPEATABLE READ or SERIALIZABLE: the winner is not visible to us.
            RAISE EXCEPTION 'a concurrent transaction created a task with idempotency key "%"; retry', p_idempotency_key
                USING ERRCODE = 'serialization_failure';
        END IF;
        PERFORM tasker.check_idempotency(v_existing, v_template, p_idempotency_key);
        task_uuid := v_existing.task_uuid;
        created := false;
        RETURN;
    END IF;

    INSERT INTO tasker.steps
        (task_uuid, step_index, step_uuid, revision_id, priority, task_created_at, task_seq, status,
         remaining_deps, parents, ready_at)
    SELECT create_task_with.task_uuid, s.step_index, gen_random_uuid(), v_revision, coalesce(p_priority, 0),
           now(), v_seq,
           CASE WHEN s.parents IS NULL AND v_due THEN 'enqueued' ELSE 'pending' END,
           coalesce(cardinality(s.parents), 0), s.parents,
           CASE WHEN s.parents IS NULL THEN v_ready_at END
    FROM tasker.template_steps s
    WHERE s.revision_id = v_revision;

    IF v_due THEN
        PERFORM pg_notify('tasker_steps_ready', v_revision::text);
    ELSE
        PERFORM pg_notify('tasker_steps_scheduled', (extract(epoch FROM v_ready_at) * 1000)::bigint::text);
    END IF;
    created := true;
END;
$$;

-- An idempotency key names a task of another template: TK005.
CREATE FUNCTION tasker.check_idempotency(p_existing tasker.tasks, p_requested tasker.templates, p_key text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_existing.namespace <> p_requested.namespace OR p_existing.name <> p_requested.name THEN
        RAISE EXCEPTION 'idempotency key "%" already belongs to task % of %/% %', p_key, p_existing.task_uuid,
            p_existing.namespace, p_existing.name, p_existing.version
            USING ERRCODE = 'TK005',
                  DETAIL = p_existing.task_uuid::text || ' ' || p_existing.namespace || '/' || p_existing.name
                           || ' ' || p_existing.version;
    END IF;
END;
$$;

-- The SQL entry point for applications: creates a task in the caller's transaction and
-- returns its uuid. p_version NULL = the highest version that is not a prerelease. The
-- template's input_schema is not checked on this path (only the Rust store checks it).
CREATE FUNCTION tasker.create_task(p_namespace text, p_name text, p_version text, p_context jsonb)
RETURNS uuid LANGUAGE sql AS $$
    SELECT c.task_uuid FROM tasker.create_task_with(p_namespace, p_name, p_version, p_context, NULL, NULL, 0, NULL) c;
$$;

-- ---------------------------------------------------------------------------------------
-- Recording attempt results (one statement per completion batch)
-- ---------------------------------------------------------------------------------------

-- The status a task has from its counts: p_rule, computed by the Rust store from
-- rules::TaskProgress for every combination, indexed by 1 + all_complete + 2 * idle +
-- 4 * failed + 8 * cancel_requested + 16 * started.
CREATE FUNCTION tasker.task_status_of(p_rule text[], p_all_complete boolean, p_idle boolean, p_failed boolean,
                                      p_cancel boolean, p_started boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT p_rule[1 + p_all_complete::integer + 2 * p_idle::integer + 4 * p_failed::integer
                  + 8 * p_cancel::integer + 16 * p_started::integer];
$$;

-- Records a batch of attempt results. Per result (arrays of one length): the step
-- (task, step uuid, event id: the fence) and what the Rust rules decided for it, once for
-- the case that its task is still open when the result is applied and once for a task
-- that no longer starts steps: 'complete', 'retry' (after the delay), 'requeue' or 'fail'.
-- Also the stored result, error and history entry, and the dependents of the step
-- (p_child_ord: 1-based position of the result; p_child_index: a dependent's index).
--
-- A result is applied only when its step is still in progress under the same event id;
-- others are left out of the answer (stale). Within one batch a task closes at its first
-- failure: later results of that task take their closed decision. In the same statement
-- the dependents' counters fall and those with nothing left to wait for are enqueued, a
-- task that stops skips what it has not started, the task's counters and status move (a
-- finished task is appended to finished_tasks) and the throughput counts grow.
--
-- Returns one row per applied result: its position, whether the open decision applied,
-- and the task's final status when this batch finished it (on the task's last result of
-- the batch). Sends tasker_steps_ready when steps became claimable, tasker_steps_scheduled
-- for the earliest retry and tasker_task_finished with the finished tasks' uuids (200 per
-- notification; the limit is 8,000 bytes).
CREATE FUNCTION tasker.record_results(
    p_task         uuid[],
    p_step         uuid[],
    p_event        uuid[],
    p_open_kind    text[],
    p_open_delay   bigint[],
    p_closed_kind  text[],
    p_closed_delay bigint[],
    p_result       jsonb[],
    p_error        jsonb[],
    p_history      jsonb[],
    p_child_ord    integer[],
    p_child_index  integer[],
    p_rule         text[],
    p_source       text
) RETURNS TABLE (ord integer, opened boolean, finished text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ord      integer[];
    v_opened   boolean[];
    v_finished text[];
    v_ready    boolean;
    v_retry_at timestamptz;
    v_done     uuid[];
    v_chunk    text;
BEGIN
    -- The tasks first, in uuid order; the next statement's snapshot is taken after these
    -- locks are held, so it sees every step of these tasks as its last writer left it
    -- (every writer of a task's started steps holds the task's lock).
    PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = ANY(p_task) ORDER BY t.task_uuid FOR UPDATE;

    WITH batch AS (
        SELECT b.*
        FROM unnest(p_task, p_step, p_event, p_open_kind, p_open_delay, p_closed_kind, p_closed_delay,
                    p_result, p_error, p_history) WITH ORDINALITY
             AS b(task_uuid, step_uuid, event_id, open_kind, open_delay, closed_kind, closed_delay,
                  result, error, history, ord)
    ), fenced AS (
        -- One result per step (a repeated event counts once: the first).
        SELECT DISTINCT ON (s.task_uuid, s.step_index) b.*, s.step_index,
               NOT t.failed AND t.cancel_requested_at IS NULL AS open_before
        FROM batch b
        JOIN tasker.steps s ON s.task_uuid = b.task_uuid AND s.step_uuid = b.step_uuid
        JOIN tasker.tasks t ON t.task_uuid = b.task_uuid
        WHERE s.status = 'in_progress' AND s.event_id = b.event_id
        ORDER BY s.task_uuid, s.step_index, b.ord
    ), decided AS (
        SELECT f.*,
               f.open_before AND coalesce(count(*) FILTER (WHERE f.open_kind = 'fail') OVER earlier, 0) = 0 AS opened,
               f.open_before AND NOT bool_or(f.open_kind = 'fail') OVER whole AS open_after
        FROM fenced f
        WINDOW earlier AS (PARTITION BY f.task_uuid ORDER BY f.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
               whole AS (PARTITION BY f.task_uuid)
    ), effective AS (
        SELECT d.*,
               CASE WHEN d.opened THEN d.open_kind ELSE d.closed_kind END AS kind,
               CASE WHEN d.opened THEN d.open_delay ELSE d.closed_delay END AS delay_ms
        FROM decided d
    ), per_task AS (
        SELECT e.task_uuid, bool_and(e.open_after) AS open_after, bool_or(e.kind = 'fail') AS fails,
               max(e.ord) AS last_ord
        FROM effective e GROUP BY e.task_uuid
    ), recorded AS (
        UPDATE tasker.steps s
        SET status = CASE e.kind
                         WHEN 'complete' THEN 'complete'
                         WHEN 'retry' THEN CASE WHEN NOT e.open_after THEN 'skipped'
                                                WHEN e.delay_ms <= 0 THEN 'enqueued'
                                                ELSE 'waiting_for_retry' END
                         WHEN 'requeue' THEN CASE WHEN e.open_after THEN 'enqueued' ELSE 'skipped' END
                         ELSE 'error'
                     END,
            attempts = CASE WHEN e.kind = 'requeue' THEN greatest(s.attempts - 1, 0) ELSE s.attempts END,
            -- A retry without delay (a lost worker's step) and a requeue (a worker's
            -- graceful stop) keep the step's place in line: its earlier ready_at, less a
            -- microsecond so that it also goes ahead of steps that became ready at the
            -- same instant (a batch created in one transaction), which the claim index
            -- would otherwise order before the step's new row version.
            ready_at = CASE e.kind
                           WHEN 'retry' THEN CASE WHEN e.open_after THEN
                               CASE WHEN e.delay_ms <= 0
                                    THEN least(coalesce(s.ready_at, now()), now()) - interval '1 microsecond'
                                    ELSE now() + make_interval(secs => e.delay_ms / 1000.0) END END
                           WHEN 'requeue' THEN CASE WHEN e.open_after
                               THEN least(coalesce(s.ready_at, now()), now()) - interval '1 microsecond' END
                           ELSE s.ready_at
                       END,
            result = CASE WHEN e.kind = 'complete' THEN e.result END,
            error = CASE WHEN e.kind = 'complete' THEN NULL ELSE e.error END,
            history = coalesce(s.history, '[]'::jsonb) || jsonb_build_array(e.history),
            event_id = NULL, worker_id = NULL, claim_id = NULL
        FROM effective e
        WHERE s.task_uuid = e.task_uuid AND s.step_index = e.step_index
        RETURNING s.task_uuid, s.status, s.ready_at
    ), children AS (
        SELECT e.task_uuid, c.child_index, count(*)::integer AS done
        FROM effective e
        JOIN unnest(p_child_ord, p_child_index) AS c(ord, child_index) ON c.ord = e.ord
        WHERE e.kind = 'complete'
        GROUP BY e.task_uuid, c.child_index
    ), targets AS (
        -- Each step this batch changes besides the recorded ones, once: dependents of
        -- completed steps, and the unstarted steps of tasks that stop.
        SELECT x.task_uuid, x.step_index, sum(x.done)::integer AS done, bool_or(x.stop) AS stop
        FROM (SELECT c.task_uuid, c.child_index AS step_index, c.done, false AS stop FROM children c
              UNION ALL
              SELECT s.task_uuid, s.step_index, 0, true
              FROM per_task p JOIN tasker.steps s ON s.task_uuid = p.task_uuid
              WHERE NOT p.open_after AND s.status IN ('pending', 'enqueued', 'waiting_for_retry')) x
        GROUP BY x.task_uuid, x.step_index
    ), others AS (
        -- A step a concurrent claim took first keeps running (the status check is made
        -- again on the claimed row): its task stays unfinished until its result comes.
        UPDATE tasker.steps s
        SET remaining_deps = s.remaining_deps - x.done,
            status = CASE WHEN x.stop THEN 'skipped'
                          WHEN s.status = 'pending' AND s.remaining_deps - x.done <= 0 THEN 'enqueued'
                          ELSE s.status END,
            ready_at = CASE WHEN x.stop THEN NULL
                            WHEN s.status = 'pending' AND s.remaining_deps - x.done <= 0 THEN now()
                            ELSE s.ready_at END
        FROM targets x
        WHERE s.task_uuid = x.task_uuid AND s.step_index = x.step_index
          AND (NOT x.stop OR s.status IN ('pending', 'enqueued', 'waiting_for_retry'))
        RETURNING s.task_uuid, s.status, x.stop
    ), counted AS (
        SELECT c.task_uuid,
               count(*) FILTER (WHERE c.status = 'complete')::integer AS completed,
               count(*) FILTER (WHERE c.status IN ('complete', 'error', 'skipped'))::integer AS ended
        FROM (SELECT r.task_uuid, r.status FROM recorded r
              UNION ALL SELECT o.task_uuid, o.status FROM others o WHERE o.stop AND o.status = 'skipped') c
        GROUP BY c.task_uuid
    ), moved AS (
        UPDATE tasker.tasks t
        SET steps_complete = t.steps_complete + coalesce(c.completed, 0),
            steps_ended = t.steps_ended + coalesce(c.ended, 0),
            failed = t.failed OR p.fails,
            status = tasker.task_status_of(p_rule,
                         t.steps_complete + coalesce(c.completed, 0) >= t.steps_total,
                         t.steps_ended + coalesce(c.ended, 0) >= t.steps_total,
                         t.failed OR p.fails, t.cancel_requested_at IS NOT NULL, true),
            completed_at = CASE WHEN tasker.task_status_of(p_rule,
                                         t.steps_complete + coalesce(c.completed, 0) >= t.steps_total,
                                         t.steps_ended + coalesce(c.ended, 0) >= t.steps_total,
                                         t.failed OR p.fails, t.cancel_requested_at IS NOT NULL, true)
                                     IN ('complete', 'error', 'cancelled')
                                THEN now() END
        FROM per_task p LEFT JOIN counted c ON c.task_uuid = p.task_uuid
        WHERE t.task_uuid = p.task_uuid
        RETURNING t.task_uuid, t.status, t.created_at, t.task_seq, t.completed_at, p.last_ord
    ), appended AS (
        INSERT INTO tasker.finished_tasks (task_uuid, status, created_at, task_seq, completed_at)
        SELECT m.task_uuid, m.status, m.created_at, m.task_seq, m.completed_at
        FROM moved m WHERE m.completed_at IS NOT NULL
        RETURNING task_uuid
    ), counters AS (
        INSERT INTO tasker.throughput AS th (minute, source, succeeded, failed)
        SELECT date_trunc('minute', now()), p_source,
               count(*) FILTER (WHERE e.kind = 'complete'), count(*) FILTER (WHERE e.kind IN ('retry', 'fail'))
        FROM effective e
        HAVING count(*) FILTER (WHERE e.kind IN ('complete', 'retry', 'fail')) > 0
        ON CONFLICT (minute, source) DO UPDATE
        SET succeeded = th.succeeded + EXCLUDED.succeeded, failed = th.failed + EXCLUDED.failed
        RETURNING 1
    )
    SELECT array_agg(e.ord::integer ORDER BY e.ord),
           array_agg(e.opened ORDER BY e.ord),
           array_agg(CASE WHEN m.completed_at IS NOT NULL AND m.last_ord = e.ord THEN m.status END ORDER BY e.ord),
           (SELECT bool_or(r.status = 'enqueued') FROM recorded r)
               OR (SELECT bool_or(o.status = 'enqueued') FROM others o),
           (SELECT min(r.ready_at) FROM recorded r WHERE r.status = 'waiting_for_retry'),
           (SELECT array_agg(a.task_uuid) FROM appended a)
    INTO v_ord, v_opened, v_finished, v_ready, v_retry_at, v_done
    FROM effective e LEFT JOIN moved m ON m.task_uuid = e.task_uuid;

    IF v_ready THEN
        PERFORM pg_notify('tasker_steps_ready', '');
    END IF;
    IF v_retry_at IS NOT NULL THEN
        PERFORM pg_notify('tasker_steps_scheduled', (extract(epoch FROM v_retry_at) * 1000)::bigint::text);
    END IF;
    FOR v_chunk IN
        SELECT string_agg(f.task_uuid::text, ',')
        FROM (SELECT x.task_uuid, (x.n - 1) / 200 AS chunk
              FROM unnest(v_done) WITH ORDINALITY AS x(task_uuid, n)) f
        GROUP BY f.chunk
    LOOP
        PERFORM pg_notify('tasker_task_finished', v_chunk);
    END LOOP;

    RETURN QUERY SELECT x.ord, x.opened, x.finished
                 FROM unnest(v_ord, v_opened, v_finished) AS x(ord, opened, finished);
END;
$$;

-- ---------------------------------------------------------------------------------------
-- Controls
-- ---------------------------------------------------------------------------------------

-- Cancels a task: no new step starts (its unstarted steps are skipped now); it is
-- 'cancelled' once its running steps have finished (at once when none runs). p_rule as
-- for record_results. Returns the outcome ('cancelled', 'cancelling', 'already_finished'
-- or 'not_found'), the task's status and how many steps still run.
CREATE FUNCTION tasker.cancel_task(p_task uuid, p_reason text, p_rule text[],
                                   OUT outcome text, OUT status text, OUT in_flight integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_task    tasker.tasks;
    v_skipped integer;
BEGIN
    SELECT * INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF v_task.status IN ('complete', 'error', 'cancelled') THEN
        outcome := 'already_finished';
        status := v_task.status;
        in_flight := 0;
        RETURN;
    END IF;
    WITH skipped AS (
        UPDATE tasker.steps s SET status = 'skipped', ready_at = NULL
        WHERE s.task_uuid = p_task AND s.status IN ('pending', 'enqueued', 'waiting_for_retry')
        RETURNING 1
    )
    SELECT count(*) INTO v_skipped FROM skipped;
    UPDATE tasker.tasks t
    SET steps_ended = t.steps_ended + v_skipped,
        cancel_requested_at = coalesce(t.cancel_requested_at, now()),
        cancel_reason = CASE WHEN t.cancel_requested_at IS NULL THEN p_reason ELSE t.cancel_reason END,
        status = tasker.task_status_of(p_rule, t.steps_complete >= t.steps_total,
                                       t.steps_ended + v_skipped >= t.steps_total, t.failed, true,
                                       t.status <> 'pending' OR t.steps_ended + v_skipped < t.steps_total)
    WHERE t.task_uuid = p_task
    RETURNING t.status, t.steps_total - t.steps_ended INTO status, in_flight;
    IF status IN ('complete', 'error', 'cancelled') THEN
        UPDATE tasker.tasks t SET completed_at = now() WHERE t.task_uuid = p_task;
        INSERT INTO tasker.finished_tasks (task_uuid, status, created_at, task_seq, completed_at)
        VALUES (p_task, status, v_task.created_at, v_task.task_seq, now());
        PERFORM pg_notify('tasker_task_finished', p_task::text);
        outcome := CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'already_finished' END;
    ELSE
        outcome := 'cancelling';
    END IF;
    PERFORM pg_notify('tasker_task_cancelled', p_task::text);
END;
$$;

-- Runs a task in 'error' again from where it failed: its failed steps get a fresh attempt
-- budget, its skipped steps wait for their dependencies again; those whose dependencies
-- are all complete are enqueued now. Returns the outcome ('retrying', 'not_failed' or
-- 'not_found'), the status it had, and how many failed and skipped steps it reset.
CREATE FUNCTION tasker.retry_task(p_task uuid, OUT outcome text, OUT status text,
                                  OUT failed_steps integer, OUT skipped_steps integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_task tasker.tasks;
BEGIN
    SELECT * INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    status := v_task.status;
    IF v_task.status <> 'error' THEN
        outcome := 'not_failed';
        RETURN;
    END IF;
    WITH reset AS (
        UPDATE tasker.steps s
        SET attempts = CASE WHEN s.status = 'error' THEN 0 ELSE s.attempts END,
            error = CASE WHEN s.status = 'error' THEN NULL ELSE s.error END,
            remaining_deps = w.waiting,
            status = CASE WHEN w.waiting = 0 THEN 'enqueued' ELSE 'pending' END,
            ready_at = CASE WHEN w.waiting = 0 THEN now() END
        FROM (SELECT x.step_index, x.status AS was,
                     (SELECT count(*) FROM unnest(x.parents) AS p(step_index)
                      JOIN tasker.steps y ON y.task_uuid = x.task_uuid AND y.step_index = p.step_index
                      WHERE y.status <> 'complete')::integer AS waiting
              FROM tasker.steps x
              WHERE x.task_uuid = p_task AND x.status IN ('error', 'skipped')) w
        WHERE s.task_uuid = p_task AND s.step_index = w.step_index
        RETURNING w.was, s.status AS now
    )
    SELECT count(*) FILTER (WHERE r.was = 'error'), count(*) FILTER (WHERE r.was = 'skipped')
    INTO failed_steps, skipped_steps FROM reset r;
    UPDATE tasker.tasks t
    SET status = 'in_progress', failed = false, completed_at = NULL,
        steps_ended = t.steps_complete
    WHERE t.task_uuid = p_task;
    DELETE FROM tasker.finished_tasks f
    WHERE f.status = 'error' AND f.created_at = v_task.created_at AND f.task_seq = v_task.task_seq;
    PERFORM pg_notify('tasker_steps_ready', v_task.revision_id::text);
    outcome := 'retrying';
END;
$$;

-- ---------------------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------------------

-- Deletes up to p_batch tasks that finished more than p_retention ago (never one of
-- p_keep, the tasks this process waits for), with their steps, leaving a tombstone each;
-- removes tombstones older than p_retention (at least a day) and throughput older than
-- an hour. Returns how many tasks it deleted. Concurrent purges skip each other's rows.
CREATE FUNCTION tasker.purge_finished(p_retention interval, p_batch integer, p_keep uuid[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_doomed uuid[];
BEGIN
    WITH doomed AS (
        SELECT f.ctid, f.task_uuid
        FROM tasker.finished_tasks f
        WHERE f.completed_at < now() - p_retention AND NOT (f.task_uuid = ANY(p_keep))
        ORDER BY f.completed_at
        LIMIT p_batch
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM tasker.finished_tasks f WHERE f.ctid = ANY(ARRAY(SELECT d.ctid FROM doomed d))
        RETURNING f.task_uuid
    )
    SELECT coalesce(array_agg(g.task_uuid), '{}') INTO v_doomed FROM gone g;
    IF cardinality(v_doomed) > 0 THEN
        DELETE FROM tasker.steps s WHERE s.task_uuid = ANY(v_doomed);
        DELETE FROM tasker.tasks t WHERE t.task_uuid = ANY(v_doomed);
        INSERT INTO tasker.evicted_tasks (task_uuid, retention)
        SELECT u, p_retention FROM unnest(v_doomed) AS u ON CONFLICT (task_uuid) DO NOTHING;
    END IF;
    DELETE FROM tasker.evicted_tasks e
    WHERE e.ctid = ANY(ARRAY(SELECT x.ctid FROM tasker.evicted_tasks x
                             WHERE x.evicted_at < now() - greatest(p_retention, interval '1 day')
                             ORDER BY x.evicted_at LIMIT p_batch));
    DELETE FROM tasker.throughput th WHERE th.minute < now() - interval '1 hour';
    RETURN cardinality(v_doomed);
END;
$$;
