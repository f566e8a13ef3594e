-- Periscope store, schema version 3 (SQLite): fewer pages written per audit commit.
--
-- The proxy writes two events per SQL statement, and every b-tree of audit_events
-- is one more page that each commit writes to the WAL: before this version six
-- (the table, the implicit index of a BIGINT primary key, and four indexes).
-- Now three:
-- - seq is the table's rowid (INTEGER PRIMARY KEY is SQLite's 64-bit rowid
--   alias), so the primary key needs no index of its own;
-- - audit_events_by_time serves since/until searches and exports from a time;
-- - audit_events_by_actor serves the auditor's main question, what one
--   identity did.
-- Searches by action or target alone walk the log from the newest event; see
-- docs/store.md.
--
-- SQLite cannot change a primary key in place, so the table is rebuilt. The
-- checkpoints table references it and is rebuilt alongside, so that no step
-- drops a table that rows still reference (foreign keys stay on).

CREATE TABLE audit_events_v3 (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL,            -- JSON
    grant_ids TEXT NOT NULL,            -- JSON array
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_events_v3 (seq, time, actor, action, target, details, grant_ids, prev_hash, hash)
    SELECT seq, time, actor, action, target, details, grant_ids, prev_hash, hash
    FROM audit_events ORDER BY seq;

CREATE TABLE audit_checkpoints_v3 (
    seq       BIGINT NOT NULL REFERENCES audit_events_v3 (seq),
    key_id    TEXT NOT NULL,
    hash      TEXT NOT NULL,
    time      TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (seq, key_id)
);
INSERT INTO audit_checkpoints_v3 (seq, key_id, hash, time, signature)
    SELECT seq, key_id, hash, time, signature FROM audit_checkpoints;

DROP TABLE audit_checkpoints;
DROP TABLE audit_events;
-- Renaming also renames the reference in audit_checkpoints_v3.
ALTER TABLE audit_events_v3 RENAME TO audit_events;
ALTER TABLE audit_checkpoints_v3 RENAME TO audit_checkpoints;

CREATE INDEX audit_events_by_time ON audit_events (time);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
