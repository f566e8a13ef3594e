-- Periscope store, schema version 6 (PostgreSQL): find one session's events
-- without walking the log. See the SQLite version for why the index is
-- partial. `json`, not `jsonb`: `jsonb` refuses `\u0000` in a string, and an
-- index expression that fails would refuse the event itself.

CREATE INDEX audit_events_by_session ON audit_events (((details::json) ->> 'session'), seq)
    WHERE action NOT IN ('query', 'query.result', 'query.refused')
      AND ((details::json) ->> 'session') IS NOT NULL;
