-- Tenon registry, schema version 2: plugin configuration (secrets
-- encrypted), permission grants and plugin KV.

CREATE TABLE plugin_config_revisions (
    tenant    TEXT COLLATE "C" NOT NULL,
    plugin    TEXT COLLATE "C" NOT NULL,
    revision  BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin)
);

CREATE TABLE plugin_config (
    tenant           TEXT COLLATE "C" NOT NULL,
    plugin           TEXT COLLATE "C" NOT NULL,
    key              TEXT COLLATE "C" NOT NULL,
    value            TEXT,              -- JSON, for plain values
    secret           BYTEA,             -- format byte, nonce, XChaCha20-Poly1305 ciphertext
    key_fingerprint  TEXT,              -- which secret key sealed it
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin, key),
    CHECK ((value IS NULL) <> (secret IS NULL)),
    CHECK ((secret IS NULL) = (key_fingerprint IS NULL))
);

CREATE TABLE plugin_grants (
    tenant       TEXT COLLATE "C" NOT NULL,
    plugin       TEXT COLLATE "C" NOT NULL,
    version      TEXT COLLATE "C" NOT NULL,
    permissions  TEXT   NOT NULL,   -- JSON, the manifest's permission form
    granted_by   TEXT   NOT NULL,
    granted_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin, version)
);

CREATE TABLE plugin_kv (
    tenant  TEXT COLLATE "C" NOT NULL,
    plugin  TEXT COLLATE "C" NOT NULL,
    key     BYTEA NOT NULL,
    value   BYTEA NOT NULL,
    PRIMARY KEY (tenant, plugin, key)
);

-- Per plugin: bytes of keys plus values, and number of keys. Updated in the
-- transaction of every KV write; its row lock serializes a plugin's writers.
CREATE TABLE plugin_kv_usage (
    tenant   TEXT COLLATE "C" NOT NULL,
    plugin   TEXT COLLATE "C" NOT NULL,
    bytes    BIGINT NOT NULL,
    entries  BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin)
);
