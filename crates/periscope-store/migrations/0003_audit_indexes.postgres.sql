-- Periscope store, schema version 3 (PostgreSQL): fewer index pages written per
-- audit commit.
--
-- The proxy writes two events per SQL statement, and every index of audit_events
-- is one more page each commit changes and logs. Kept: the primary key, time
-- (since/until searches, exports from a time) and actor (what one identity did).
-- Searches by action or target alone walk the log from the newest event; see
-- docs/store.md. The SQLite version of this migration also makes seq the rowid.

DROP INDEX audit_events_by_action;
DROP INDEX audit_events_by_target;
