-- Tenon registry, schema version 5: who left what an uninstalled plugin
-- left behind (config and secrets, grants, KV), so that it passes only to a
-- reinstall of the same kind and binding (the host's own plugins to the
-- host, a publisher key's to that key).

CREATE TABLE plugin_leftovers (
    tenant   TEXT COLLATE "C" NOT NULL,
    plugin   TEXT COLLATE "C" NOT NULL,
    owner    TEXT   NOT NULL,   -- JSON: the engine's record of who left them
    left_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin)
);
