-- Periscope store, schema version 5: tags found by discovery.
--
-- `periscope discover CONNECTION --apply` stores the columns discovery found
-- sensitive as tags of the connection. Each apply writes a new version of the
-- connection's whole tag set (the previous one merged with the new tags), so
-- the history stays readable and the current set is the highest version. The
-- gateway merges the current set into the connection's configured
-- `data_policy.tags` (configured tags win) without a restart.
--
-- Only catalog names and entity names are stored, never a sampled value.

CREATE TABLE discovered_tags (
    connection  TEXT NOT NULL,
    version     BIGINT NOT NULL,        -- 1, 2, ... per connection
    tags        TEXT NOT NULL,          -- JSON object: "schema.table.column" -> entity or tag
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,          -- the administrator who applied them
    PRIMARY KEY (connection, version)
);
