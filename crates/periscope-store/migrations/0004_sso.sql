-- Periscope store, schema version 4: single sign-on.
--
-- Identities created by a sign-in are bound to their provider's subject
-- (`iss` + `sub`, never the email or user name, which can change hands); browser
-- sessions live here so every replica sees them and an administrator can end
-- them; sign-ins in progress are single-use rows keyed by the hash of a secret
-- handle (the OIDC `state`, a device code, a one-time hand-off code), so no
-- secret of a flow is ever stored.

ALTER TABLE identities ADD COLUMN sso_provider TEXT;      -- NULL for local identities
ALTER TABLE identities ADD COLUMN sso_issuer TEXT;
ALTER TABLE identities ADD COLUMN sso_subject TEXT;
ALTER TABLE identities ADD COLUMN sso_groups TEXT;        -- JSON array, as last seen
ALTER TABLE identities ADD COLUMN last_sign_in_at TEXT;
CREATE UNIQUE INDEX identities_by_sso_subject ON identities (sso_issuer, sso_subject);

-- Browser sessions behind the console's cookie. The cookie holds
-- `<session_id>.<secret>`; only the gateway's keyed hash of the secret is kept.
CREATE TABLE web_sessions (
    session_id   TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,         -- lowercase hex
    identity     TEXT NOT NULL REFERENCES identities (name),
    method       TEXT NOT NULL,         -- how it signed in: `sso:<provider>`, `token`
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,         -- refreshed at most once a minute
    expires_at   TEXT NOT NULL,         -- absolute end
    idle_secs    BIGINT NOT NULL,       -- unused this long, it ends
    ended_at     TEXT,
    end_reason   TEXT                   -- sign_out, idle, expired, identity_disabled
);
CREATE INDEX web_sessions_by_identity ON web_sessions (identity, ended_at);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- Sign-ins in progress: each row is what one secret handle unlocks, taken once.
CREATE TABLE sso_flows (
    flow_id       TEXT PRIMARY KEY,     -- keyed hash (hex) of the handle
    kind          TEXT NOT NULL CHECK (kind IN ('web', 'cli', 'device', 'handoff')),
    provider      TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,        -- the gateway's callback the provider was given
    return_to     TEXT,                 -- web: page to land on; cli: the CLI's loopback URL
    cli_challenge TEXT,                 -- cli, handoff: S256 challenge of the CLI's verifier
    poll_secs     BIGINT,               -- device: the provider's polling interval
    identity      TEXT,                 -- handoff: who signed in
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX sso_flows_by_expiry ON sso_flows (expires_at);
