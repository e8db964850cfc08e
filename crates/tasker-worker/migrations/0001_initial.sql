-- 0001_initial: the tasker schema.
--
-- Templates (with immutable revisions, so a changed definition never alters running
-- tasks), tasks, their steps, the workers that claim steps, and the SQL functions that
-- create tasks and record attempt results. The Rust store calls these same functions, so
-- task creation and result recording exist once, here.
--
-- Hot tables carry no foreign keys on purpose: a foreign key check takes a KEY SHARE lock
-- on the referenced row for every inserted step (every create, from every process, on the
-- same template row), which costs more than it protects when rows are only ever written
-- by the functions below. Rows of a task are removed together (see the retention query).

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
    -- The compiled template, as serde serialises it.
    definition    jsonb NOT NULL,
    step_count    integer NOT NULL CHECK (step_count > 0),
    registered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (template_id, digest)
);

-- The DAG of a revision, one row per step: what task creation copies into tasker.steps.
CREATE TABLE tasker.template_steps (
    revision_id bigint NOT NULL REFERENCES tasker.template_revisions,
    step_index  integer NOT NULL CHECK (step_index >= 0),
    name        text NOT NULL,
    -- Indexes of the steps this one waits for; NULL for a root step.
    parents     integer[] CHECK (parents IS NULL OR cardinality(parents) > 0),
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
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'in_progress', 'complete', 'error', 'cancelled')),
    -- Set while a task stops: no new step starts, running ones finish, then the task ends
    -- ('failing' -> error, 'cancelling' -> cancelled).
    halt                text CHECK (halt IN ('failing', 'cancelling')),
    context             jsonb NOT NULL CHECK (jsonb_typeof(context) = 'object'),
    priority            integer NOT NULL DEFAULT 0,
    -- Unique per namespace/name (see tasks_idempotency): the same key in another workflow
    -- is another task.
    idempotency_key     text,
    run_at              timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    correlation_id      uuid NOT NULL,
    -- W3C trace id (32 hex digits), shared by every step.
    trace_id            text NOT NULL,
    cancel_reason       text,
    cancel_requested_at timestamptz,
    steps_total         integer NOT NULL,
    -- Steps not complete yet; the task is complete when this reaches 0.
    steps_unfinished    integer NOT NULL
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- TaskerCore.tasks: newest first, with or without a filter, cursor on (created_at, task_seq).
CREATE INDEX tasks_newest ON tasker.tasks (created_at DESC, task_seq DESC);
CREATE INDEX tasks_by_status ON tasker.tasks (status, created_at DESC, task_seq DESC);
CREATE INDEX tasks_by_template ON tasker.tasks (namespace, name, created_at DESC, task_seq DESC);
-- Idempotency keys, per namespace/name.
CREATE UNIQUE INDEX tasks_idempotency ON tasker.tasks (namespace, name, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Retention: finished tasks, oldest first.
CREATE INDEX tasks_finished ON tasker.tasks (completed_at) WHERE completed_at IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- Steps
-- ---------------------------------------------------------------------------------------

CREATE TABLE tasker.steps (
    task_uuid          uuid NOT NULL,
    step_index         integer NOT NULL,
    step_uuid          uuid NOT NULL,
    -- Copies of the task's, so the claim reads one table.
    template_id        bigint NOT NULL,
    priority           integer NOT NULL,
    -- pending: waiting for parents, or for ready_at (run_at); enqueued: claimable now;
    -- waiting_for_retry: claimable from ready_at; skipped: will never run (task stopped).
    status             text NOT NULL
                       CHECK (status IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry',
                                         'complete', 'error', 'skipped')),
    attempts           integer NOT NULL DEFAULT 0,
    -- Parents not complete yet.
    remaining_deps     integer NOT NULL,
    parents            integer[],
    -- When the step became (or becomes) claimable; NULL while it waits for parents.
    ready_at           timestamptz,
    -- The attempt in progress: its fencing token (a result for another event is stale)...
    event_id           uuid,
    -- ...and the lease: the worker that claimed it, and when.
    worker_id          text,
    claimed_at         timestamptz,
    -- The last attempt's handler start and end (handler-reported, else claim/record time).
    attempt_started_at timestamptz,
    attempt_ended_at   timestamptz,
    result             jsonb,
    error              jsonb,
    -- Attempts that did not complete the step, oldest first; NULL when there were none.
    history            jsonb,
    PRIMARY KEY (task_uuid, step_index)
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The claim: claimable steps in claim order. Exactly the claim query's WHERE and ORDER BY
-- (template_id is checked from the index row, so other workers' templates cost no heap read).
CREATE INDEX steps_claim ON tasker.steps (priority DESC, ready_at, template_id) WHERE status = 'enqueued';
-- Steps waiting for a time (run_at, retry backoff), soonest first: promotion to enqueued.
CREATE INDEX steps_scheduled ON tasker.steps (ready_at)
    WHERE status IN ('pending', 'waiting_for_retry') AND ready_at IS NOT NULL;
-- Steps in progress: per task (is anything still running?), per worker (leases of dead
-- workers) and per template (max_in_flight). Small: bounded by the workers' concurrency.
CREATE INDEX steps_in_progress ON tasker.steps (task_uuid) INCLUDE (template_id, worker_id)
    WHERE status = 'in_progress';

-- ---------------------------------------------------------------------------------------
-- Workers
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
    concurrency  integer NOT NULL DEFAULT 0,
    -- The templates whose steps it claims (those it has loaded).
    template_ids bigint[] NOT NULL DEFAULT '{}'
);

-- ---------------------------------------------------------------------------------------
-- Registering a template
-- ---------------------------------------------------------------------------------------

-- Upserts the template and its revision; makes the revision current. Safe when several
-- processes register the same template at once. Returns the ids.
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
            INSERT INTO tasker.template_steps (revision_id, step_index, name, parents)
            SELECT register_template.revision_id, s.ord - 1, s.name,
                   (SELECT array_agg(e.parent ORDER BY e.parent)
                    FROM unnest(p_edge_child, p_edge_parent) AS e(child, parent)
                    WHERE e.child = s.ord - 1)
            FROM unnest(p_step_names) WITH ORDINALITY AS s(name, ord);
        END IF;
    END IF;

    UPDATE tasker.templates t SET current_revision_id = register_template.revision_id
    WHERE t.template_id = register_template.template_id
      AND t.current_revision_id IS DISTINCT FROM register_template.revision_id;
END;
$$;

-- ---------------------------------------------------------------------------------------
-- Creating a task (the one implementation: SQL callers and the Rust store both use it)
-- ---------------------------------------------------------------------------------------

-- Finds the template a task request names: p_version NULL means the highest version that
-- is not a prerelease; otherwise the exact (canonical) version. Raises, with what is known
-- in DETAIL, when there is none:
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
            USING ERRCODE = 'TK001', DETAIL = 'known namespaces: ' || coalesce(v_known, 'none');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tasker.templates t WHERE t.namespace = p_namespace AND t.name = p_name) THEN
        SELECT string_agg(DISTINCT t.name, ', ' ORDER BY t.name) INTO v_known
        FROM tasker.templates t WHERE t.namespace = p_namespace;
        RAISE EXCEPTION 'unknown task template "%" in namespace "%"', p_name, p_namespace
            USING ERRCODE = 'TK002', DETAIL = 'known templates: ' || coalesce(v_known, 'none');
    END IF;
    SELECT string_agg(t.version, ', '
                      ORDER BY t.version_major, t.version_minor, t.version_patch, t.version_pre = '', t.version_pre)
    INTO v_known FROM tasker.templates t WHERE t.namespace = p_namespace AND t.name = p_name;
    IF p_version IS NULL THEN
        RAISE EXCEPTION 'task template %/% has only prerelease versions, which run only when named', p_namespace, p_name
            USING ERRCODE = 'TK004', DETAIL = 'available versions: ' || v_known;
    END IF;
    RAISE EXCEPTION 'unknown version "%" of task template %/%', p_version, p_namespace, p_name
        USING ERRCODE = 'TK003', DETAIL = 'available versions: ' || v_known;
END;
$$;

-- Creates a task and its steps inside the caller's transaction: nothing exists, and no
-- worker wakes, unless that transaction commits (NOTIFY is delivered at commit).
--   p_context          a JSON object (NULL: {})
--   p_idempotency_key  when a task of this namespace/name already has the key, its uuid
--                      comes back with created = false and nothing is created
--   p_run_at           no step is claimable before then (NULL: now)
--   p_priority         higher is claimed first
-- Root steps are enqueued (or scheduled for p_run_at); the others wait for their parents.
CREATE FUNCTION tasker.create_task_with(
    p_namespace       text,
    p_name            text,
    p_version         text,
    p_context         jsonb,
    p_idempotency_key text,
    p_run_at          timestamptz,
    p_priority        integer,
    OUT task_uuid     uuid,
    OUT created       boolean
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_template tasker.templates;
    v_context  jsonb := coalesce(p_context, '{}'::jsonb);
    v_due      boolean := p_run_at IS NULL OR p_run_at <= now();
    v_ready_at timestamptz := CASE WHEN p_run_at IS NULL OR p_run_at <= now() THEN now() ELSE p_run_at END;
    v_steps    integer;
BEGIN
    IF jsonb_typeof(v_context) <> 'object' THEN
        RAISE EXCEPTION 'task context must be a JSON object, got %', jsonb_typeof(v_context)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_template := tasker.resolve_template(p_namespace, p_name, p_version);

    IF p_idempotency_key IS NOT NULL THEN
        SELECT t.task_uuid INTO create_task_with.task_uuid FROM tasker.tasks t
        WHERE t.namespace = v_template.namespace AND t.name = v_template.name
          AND t.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            created := false;
            RETURN;
        END IF;
    END IF;

    SELECT r.step_count INTO v_steps FROM tasker.template_revisions r
    WHERE r.revision_id = v_template.current_revision_id;

    task_uuid := gen_random_uuid();
    INSERT INTO tasker.tasks AS t
        (task_uuid, template_id, revision_id, namespace, name, version, context, priority, idempotency_key,
         run_at, correlation_id, trace_id, steps_total, steps_unfinished)
    VALUES (create_task_with.task_uuid, v_template.template_id, v_template.current_revision_id,
            v_template.namespace, v_template.name, v_template.version, v_context, coalesce(p_priority, 0),
            p_idempotency_key, p_run_at, gen_random_uuid(),
            replace(gen_random_uuid()::text, '-', ''), v_steps, v_steps)
    ON CONFLICT (namespace, name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        -- A concurrent transaction committed a task with this key while we waited for it.
        SELECT t.task_uuid INTO create_task_with.task_uuid FROM tasker.tasks t
        WHERE t.namespace = v_template.namespace AND t.name = v_template.name
          AND t.idempotency_key = p_idempotency_key;
        IF NOT FOUND THEN
            -- Only under REPEATABLE READ or SERIALIZABLE: the winner is not visible to us.
            RAISE EXCEPTION 'a concurrent transaction created a task with idempotency key "%"; retry', p_idempotency_key
                USING ERRCODE = 'serialization_failure';
        END IF;
        created := false;
        RETURN;
    END IF;

    INSERT INTO tasker.steps
        (task_uuid, step_index, step_uuid, template_id, priority, status, remaining_deps, parents, ready_at)
    SELECT create_task_with.task_uuid, s.step_index, gen_random_uuid(), v_template.template_id,
           coalesce(p_priority, 0),
           CASE WHEN s.parents IS NULL AND v_due THEN 'enqueued' ELSE 'pending' END,
           coalesce(cardinality(s.parents), 0), s.parents,
           CASE WHEN s.parents IS NULL THEN v_ready_at END
    FROM tasker.template_steps s
    WHERE s.revision_id = v_template.current_revision_id;

    IF v_due THEN
        PERFORM pg_notify('tasker_steps_ready', v_template.template_id::text);
    ELSE
        PERFORM pg_notify('tasker_steps_scheduled',
                          (extract(epoch FROM v_ready_at) * 1000)::bigint::text);
    END IF;
    created := true;
END;
$$;

-- The SQL entry point for applications: creates a task in the caller's transaction and
-- returns its uuid. p_version NULL = the highest version that is not a prerelease.
CREATE FUNCTION tasker.create_task(p_namespace text, p_name text, p_version text, p_context jsonb)
RETURNS uuid LANGUAGE sql AS $$
    SELECT c.task_uuid FROM tasker.create_task_with(p_namespace, p_name, p_version, p_context, NULL, NULL, 0) c;
$$;

-- ---------------------------------------------------------------------------------------
-- Recording attempt results (the write half of a completion batch)
-- ---------------------------------------------------------------------------------------

-- Applies what the Rust rules decided for a batch of results whose steps and tasks the
-- caller has locked (fenced on event_id) in this transaction. Arrays of one length per group:
--   steps:    the new state of each recorded step
--   children: steps whose parents completed, and how many of them did (they are enqueued
--             when none is left)
--   tasks:    every task of the batch: its template, steps completed, the new halt, and
--             the status it ends in (NULL: not ending). An ending 'error' or 'cancelled'
--             is applied only once none of the task's steps is in progress (checked here,
--             after the skip, so a step claimed at the same moment is waited for); until
--             then the task keeps running with its halt set. p_task_skip: unstarted steps
--             become skipped (the task stops).
-- Sends one NOTIFY per template of the batch when steps became claimable, one for the
-- earliest retry, and the finished tasks' uuids (200 per notification; the limit is 8,000
-- bytes). Returns how many steps became claimable and which tasks finished.
CREATE FUNCTION tasker.apply_results(
    p_task           uuid[],
    p_index          integer[],
    p_status         text[],
    p_result         jsonb[],
    p_error          jsonb[],
    p_attempts_delta integer[],
    p_retry_delay_ms bigint[],
    p_history        jsonb[],
    p_started_at     timestamptz[],
    p_ended_at       timestamptz[],
    p_child_task     uuid[],
    p_child_index    integer[],
    p_child_done     integer[],
    p_task_uuid      uuid[],
    p_task_template  bigint[],
    p_task_completed integer[],
    p_task_status    text[],
    p_task_halt      text[],
    p_task_skip      boolean[],
    OUT ready        integer,
    OUT finished     uuid[]
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_children   integer := 0;
    v_template   bigint;
    v_retry_at   timestamptz;
    v_chunk      text;
BEGIN
    UPDATE tasker.steps s
    SET status = u.status,
        result = u.result,
        error = u.error,
        attempts = s.attempts + u.attempts_delta,
        ready_at = CASE
                       WHEN u.status = 'waiting_for_retry' THEN now() + make_interval(secs => u.delay_ms / 1000.0)
                       WHEN u.status = 'enqueued' THEN now()
                       ELSE s.ready_at
                   END,
        event_id = NULL,
        worker_id = NULL,
        attempt_started_at = coalesce(u.started_at, s.claimed_at),
        attempt_ended_at = coalesce(u.ended_at, now()),
        history = CASE WHEN u.history IS NULL THEN s.history
                       ELSE coalesce(s.history, '[]'::jsonb) || jsonb_build_array(u.history) END
    FROM unnest(p_task, p_index, p_status, p_result, p_error, p_attempts_delta, p_retry_delay_ms, p_history,
                p_started_at, p_ended_at)
         AS u(task_uuid, step_index, status, result, error, attempts_delta, delay_ms, history, started_at, ended_at)
    WHERE s.task_uuid = u.task_uuid AND s.step_index = u.step_index;

    SELECT count(*) FILTER (WHERE u.status = 'enqueued'),
           min(now() + make_interval(secs => u.delay_ms / 1000.0)) FILTER (WHERE u.status = 'waiting_for_retry')
    INTO ready, v_retry_at
    FROM unnest(p_status, p_retry_delay_ms) AS u(status, delay_ms);

    IF cardinality(p_child_task) > 0 THEN
        WITH lowered AS (
            UPDATE tasker.steps s
            SET remaining_deps = s.remaining_deps - c.done,
                status = CASE WHEN s.remaining_deps - c.done = 0 AND s.status = 'pending' THEN 'enqueued' ELSE s.status END,
                ready_at = CASE WHEN s.remaining_deps - c.done = 0 AND s.status = 'pending' THEN now() ELSE s.ready_at END
            FROM unnest(p_child_task, p_child_index, p_child_done) AS c(task_uuid, step_index, done)
            WHERE s.task_uuid = c.task_uuid AND s.step_index = c.step_index
            RETURNING s.status
        )
        SELECT count(*) INTO v_children FROM lowered WHERE lowered.status = 'enqueued';
        ready := ready + v_children;
    END IF;

    -- Tasks that stop: their steps that have not started never will.
    UPDATE tasker.steps s SET status = 'skipped', ready_at = NULL
    FROM unnest(p_task_uuid, p_task_skip) AS k(task_uuid, skip)
    WHERE k.skip AND s.task_uuid = k.task_uuid AND s.status IN ('pending', 'enqueued', 'waiting_for_retry');

    -- A new statement, so it sees any claim the skip above had to wait for.
    WITH decided AS (
        SELECT d.task_uuid, d.completed, d.halt,
               CASE WHEN d.status IN ('error', 'cancelled')
                         AND EXISTS (SELECT 1 FROM tasker.steps i
                                     WHERE i.task_uuid = d.task_uuid AND i.status = 'in_progress')
                    THEN NULL ELSE d.status END AS status
        FROM unnest(p_task_uuid, p_task_completed, p_task_status, p_task_halt) AS d(task_uuid, completed, status, halt)
    ), changed AS (
        UPDATE tasker.tasks t
        SET steps_unfinished = t.steps_unfinished - d.completed,
            status = coalesce(d.status, CASE WHEN t.status = 'pending' THEN 'in_progress' ELSE t.status END),
            halt = CASE WHEN d.status IS NOT NULL THEN NULL ELSE coalesce(d.halt, t.halt) END,
            completed_at = CASE WHEN d.status IS NOT NULL THEN now() ELSE t.completed_at END
        FROM decided d
        WHERE t.task_uuid = d.task_uuid
          AND (d.completed <> 0 OR d.status IS NOT NULL OR d.halt IS NOT NULL OR t.status = 'pending')
        RETURNING t.task_uuid, d.status IS NOT NULL AS ended
    )
    SELECT coalesce(array_agg(c.task_uuid) FILTER (WHERE c.ended), '{}') INTO finished FROM changed c;

    IF ready > 0 THEN
        -- At most a spurious wake-up for a template of the batch that got nothing new.
        FOR v_template IN SELECT DISTINCT x.template_id FROM unnest(p_task_template) AS x(template_id) LOOP
            PERFORM pg_notify('tasker_steps_ready', v_template::text);
        END LOOP;
    END IF;
    IF v_retry_at IS NOT NULL THEN
        PERFORM pg_notify('tasker_steps_scheduled', (extract(epoch FROM v_retry_at) * 1000)::bigint::text);
    END IF;
    FOR v_chunk IN
        SELECT string_agg(f.task_uuid::text, ',')
        FROM (SELECT x.task_uuid, (x.ord - 1) / 200 AS chunk
              FROM unnest(finished) WITH ORDINALITY AS x(task_uuid, ord)) f
        GROUP BY f.chunk
    LOOP
        PERFORM pg_notify('tasker_task_finished', v_chunk);
    END LOOP;
END;
$$;
