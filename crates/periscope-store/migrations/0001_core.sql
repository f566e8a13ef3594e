-- Periscope store, schema version 1: meta, identities, tokens, audit chain.
--
-- One migration set for SQLite and PostgreSQL: only types and syntax both accept.
-- Times are the audit crate's fixed-width UTC text (YYYY-MM-DDTHH:MM:SS.ffffffZ), so
-- comparing the text compares the instants and plain TEXT indexes serve time ranges.
-- Integers are BIGINT (64-bit on both); hashes and signatures are lowercase hex TEXT;
-- lists and structured details are JSON TEXT.

-- Small facts claimed once per database, e.g. the bootstrap marker.
CREATE TABLE periscope_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Users and service accounts.
CREATE TABLE identities (
    name        TEXT PRIMARY KEY,
    roles       TEXT NOT NULL,          -- JSON array of role names
    created_at  TEXT NOT NULL,
    disabled_at TEXT                    -- NULL while the identity may log in
);

-- API tokens and short-lived `periscope connect` secrets. The raw secret never
-- reaches the store: `secret_hash` is the gateway's keyed hash of it.
CREATE TABLE tokens (
    token_id     TEXT PRIMARY KEY,
    identity     TEXT NOT NULL REFERENCES identities (name),
    scope        TEXT NOT NULL CHECK (scope IN ('api', 'connect')),
    connection   TEXT,                  -- set exactly when scope = 'connect'
    secret_hash  TEXT NOT NULL,         -- lowercase hex
    description  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT,
    CHECK ((scope = 'connect') = (connection IS NOT NULL))
);
CREATE INDEX tokens_by_identity ON tokens (identity, created_at);
CREATE INDEX tokens_by_expiry ON tokens (expires_at);

-- The hash chain. Rows are only ever inserted, in seq order, by a writer holding the
-- chain lock (see docs/store.md); seq has no gaps.
CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL,            -- JSON
    grant_ids TEXT NOT NULL,            -- JSON array
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (time);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (action, seq);
CREATE INDEX audit_events_by_target ON audit_events (target, seq);

-- Signed chain positions. Several keys may sign the same seq (one key per replica).
CREATE TABLE audit_checkpoints (
    seq       BIGINT NOT NULL REFERENCES audit_events (seq),
    key_id    TEXT NOT NULL,
    hash      TEXT NOT NULL,
    time      TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (seq, key_id)
);
