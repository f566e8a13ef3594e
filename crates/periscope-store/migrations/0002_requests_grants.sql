-- Periscope store, schema version 2: access requests, approvals and grants.
--
-- The full policy objects are kept as JSON in `body` (the periscope-policy types,
-- authoritative for every field); the other columns copy what queries filter on and
-- what conditional updates check, and are written in the same statement as `body`.

CREATE TABLE requests (
    id              TEXT PRIMARY KEY,
    requester       TEXT NOT NULL,
    connection      TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
    approvals_count BIGINT NOT NULL,   -- compared on update: concurrent approvals conflict
    created_at      TEXT NOT NULL,
    pending_until   TEXT NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX requests_by_status ON requests (status, pending_until);
CREATE INDEX requests_by_requester ON requests (requester, created_at);

-- One row per approval: the primary key makes "one approval per approver" a fact
-- of the database, whatever the number of replicas.
CREATE TABLE request_approvals (
    request_id TEXT NOT NULL REFERENCES requests (id),
    approver   TEXT NOT NULL,
    role       TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    identity    TEXT NOT NULL,
    connection  TEXT NOT NULL,
    -- Lifecycle marker, moved once by revocation or by the expiry sweep, so each end
    -- is audited exactly once. Whether a grant is in force at an instant is also
    -- checked against starts_at/expires_at.
    state       TEXT NOT NULL CHECK (state IN ('active', 'expired', 'revoked')),
    starts_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX grants_by_state ON grants (state, expires_at);
CREATE INDEX grants_by_identity ON grants (identity, starts_at);
CREATE INDEX grants_by_request ON grants (request_id);
