-- Periscope store, schema version 6 (SQLite): find one session's events
-- without walking the log.
--
-- Every event of a session carries its id in `details.session`. The console's
-- session view needs them all, and the audit log has no index on details.
-- Indexing every such event would add an index page to each statement's
-- commit (the cost version 3 removed), so this index is partial: it holds the
-- events of a session that are NOT statements (its start, end, recording
-- seal, an administrator ending it...), a handful per session. Those give the
-- session's identity and its first and last seq; its statements are then read
-- through `audit_events_by_actor` over that seq range only (docs/store.md).
--
-- The query must repeat the predicate's action list word for word (SQLite
-- uses a partial index only when the query's WHERE implies its own).

CREATE INDEX audit_events_by_session ON audit_events (json_extract(details, '$.session'), seq)
    WHERE action NOT IN ('query', 'query.result', 'query.refused')
      AND json_extract(details, '$.session') IS NOT NULL;
