-- 0002_status_counts: tasks and steps counted by status, without scanning either table.
--
-- `stats` (the dashboard's overview, `tasker-worker status`) counted unfinished tasks and
-- ready steps through the partial step indexes. Right after a burst (a million tasks
-- created in one transaction) those indexes hold a million entries whose heap pages are
-- not yet all-visible, and each count read the heap: ~700 ms. Finished tasks had their
-- own counter (finished_counts, 0001), kept by triggers that upserted one row per shard.
--
-- This migration counts every status of both tables the same way, and cheaply for every
-- writer, including one transaction that creates a million tasks:
--   * statement-level triggers on tasks and steps append what a statement updated or
--     deleted, summed by status, to tasker.status_count_changes: one small row per status
--     a statement touched, never an update (updating one counter row many times in one
--     transaction makes a chain of row versions that each later update walks:
--     quadratic); inserts are summed over the whole transaction and appended at its
--     commit (see count_inserted);
--   * tasker.fold_status_counts, called by every process's maintenance about once a
--     second, moves those rows into tasker.status_counts (one row per table and status) in
--     bounded batches, under an advisory lock so folders never wait for each other;
--   * a count is status_counts plus the changes not folded yet.
-- The triggers fire in the writer's own transaction, so counts are exactly as committed.

DROP TRIGGER finished_tasks_counted_in ON tasker.finished_tasks;
DROP TRIGGER finished_tasks_counted_out ON tasker.finished_tasks;
DROP FUNCTION tasker.count_finished_inserted();
DROP FUNCTION tasker.count_finished_deleted();
DROP TABLE tasker.finished_counts;

-- Folded counts: relation is 'tasks' or 'steps'.
CREATE TABLE tasker.status_counts (
    relation text NOT NULL,
    status   text NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (relation, status)
);

-- Changes not folded yet, appended by the triggers below. No index: it is only ever read
-- whole (summed) and emptied in insertion order by the fold.
CREATE TABLE tasker.status_count_changes (
    relation text NOT NULL,
    status   text NOT NULL,
    n        bigint NOT NULL
);

-- Inserts are counted per transaction, not per statement: tasks are created one
-- `create_task` call (two inserts) at a time, and a transaction that creates a million
-- tasks would otherwise append two million changes for every later count to sum until
-- they are folded. A row trigger adds each inserted row to a running sum kept in a
-- transaction-local setting (undone with the transaction or savepoint that made it);
-- the first insert of a transaction also queues, through a marker row, a deferred
-- trigger that appends the sum as changes when the transaction commits.
CREATE TABLE tasker.count_flushes (
    xid xid8 NOT NULL DEFAULT pg_current_xact_id()
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

-- One setting per table and status: tasker_inserted.<table>_<status>. A row trigger: it
-- runs no query (the settings are read and written by plain function calls), which
-- costs less per created task than a statement trigger that groups its transition table.
CREATE FUNCTION tasker.count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_name text := 'tasker_inserted.' || TG_TABLE_NAME || '_' || NEW.status;
BEGIN
    IF coalesce(current_setting('tasker_inserted.queued', true), '') = '' THEN
        INSERT INTO tasker.count_flushes DEFAULT VALUES;
        PERFORM set_config('tasker_inserted.queued', 'yes', true);
    END IF;
    PERFORM set_config(v_name, (coalesce(nullif(current_setting(v_name, true), ''), '0')::bigint + 1)::text, true);
    RETURN NULL;
END;
$$;

-- At commit (deferred): the transaction's inserts, summed, become changes; the settings
-- are cleared, so an insert after `SET CONSTRAINTS ALL IMMEDIATE` starts a new sum.
CREATE FUNCTION tasker.flush_inserted_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_key  record;
    v_name text;
    v_n    bigint;
BEGIN
    FOR v_key IN
        SELECT 'tasks' AS relation, s AS status
        FROM unnest(ARRAY['pending', 'in_progress', 'complete', 'error', 'cancelled']) AS s
        UNION ALL
        SELECT 'steps', s
        FROM unnest(ARRAY['pending', 'enqueued', 'in_progress', 'waiting_for_retry', 'complete', 'error',
                          'skipped']) AS s
    LOOP
        v_name := 'tasker_inserted.' || v_key.relation || '_' || v_key.status;
        v_n := nullif(current_setting(v_name, true), '')::bigint;
        IF v_n IS NOT NULL THEN
            INSERT INTO tasker.status_count_changes (relation, status, n) VALUES (v_key.relation, v_key.status, v_n);
            PERFORM set_config(v_name, '', true);
        END IF;
    END LOOP;
    PERFORM set_config('tasker_inserted.queued', '', true);
    DELETE FROM tasker.count_flushes f WHERE f.xid = NEW.xid;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER count_flushed AFTER INSERT ON tasker.count_flushes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tasker.flush_inserted_counts();

CREATE FUNCTION tasker.count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.status_count_changes (relation, status, n)
    SELECT TG_TABLE_NAME, r.status, -count(*) FROM removed r GROUP BY r.status;
    RETURN NULL;
END;
$$;

-- An update moves a row from its old status to its new one: -1 for each old version, +1
-- for each new one, summed by status (rows whose status did not change add nothing).
CREATE FUNCTION tasker.count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.status_count_changes (relation, status, n)
    SELECT TG_TABLE_NAME, c.status, sum(c.n)
    FROM (SELECT r.status, -1 AS n FROM removed r UNION ALL SELECT a.status, 1 FROM added a) c
    GROUP BY c.status
    HAVING sum(c.n) <> 0;
    RETURN NULL;
END;
$$;

-- CREATE TRIGGER takes a lock that waits for every writer of the table and keeps new
-- ones out until this migration commits, so the counts seeded below (after the triggers
-- exist) miss no write and count none twice.
CREATE TRIGGER tasks_counted_in AFTER INSERT ON tasker.tasks
    FOR EACH ROW EXECUTE FUNCTION tasker.count_inserted();
CREATE TRIGGER tasks_counted_out AFTER DELETE ON tasker.tasks
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_deleted();
CREATE TRIGGER tasks_counted_moved AFTER UPDATE ON tasker.tasks
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_updated();
CREATE TRIGGER steps_counted_in AFTER INSERT ON tasker.steps
    FOR EACH ROW EXECUTE FUNCTION tasker.count_inserted();
CREATE TRIGGER steps_counted_out AFTER DELETE ON tasker.steps
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_deleted();
CREATE TRIGGER steps_counted_moved AFTER UPDATE ON tasker.steps
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_updated();

INSERT INTO tasker.status_counts (relation, status, n)
SELECT 'tasks', status, count(*) FROM tasker.tasks GROUP BY status
UNION ALL
SELECT 'steps', status, count(*) FROM tasker.steps GROUP BY status;

-- Moves up to p_limit appended changes into status_counts, oldest first; returns how many
-- it moved (0 when another process is folding right now: it does not wait for it).
CREATE FUNCTION tasker.fold_status_counts(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_moved integer;
BEGIN
    -- The bytes of "taskrcnt".
    IF NOT pg_try_advisory_xact_lock(8386110886458388084) THEN
        RETURN 0;
    END IF;
    WITH taken AS (
        DELETE FROM tasker.status_count_changes c
        WHERE c.ctid = ANY(ARRAY(SELECT x.ctid FROM tasker.status_count_changes x LIMIT p_limit))
        RETURNING c.relation, c.status, c.n
    ), summed AS (
        SELECT t.relation, t.status, sum(t.n)::bigint AS n, count(*)::integer AS rows
        FROM taken t GROUP BY t.relation, t.status
    ), applied AS (
        INSERT INTO tasker.status_counts AS s (relation, status, n)
        SELECT m.relation, m.status, m.n FROM summed m
        ON CONFLICT (relation, status) DO UPDATE SET n = s.n + EXCLUDED.n
        RETURNING 1
    )
    SELECT coalesce(sum(m.rows), 0)::integer INTO v_moved FROM summed m;
    RETURN v_moved;
END;
$$;
