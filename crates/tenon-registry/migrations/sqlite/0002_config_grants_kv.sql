-- Tenon registry, schema version 2: plugin configuration (secrets
-- encrypted), permission grants and plugin KV.

CREATE TABLE plugin_config_revisions (
    tenant    TEXT    NOT NULL,
    plugin    TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin)
) WITHOUT ROWID;

CREATE TABLE plugin_config (
    tenant           TEXT    NOT NULL,
    plugin           TEXT    NOT NULL,
    key              TEXT    NOT NULL,
    value            TEXT,              -- JSON, for plain values
    secret           BLOB,              -- format byte, nonce, XChaCha20-Poly1305 ciphertext
    key_fingerprint  TEXT,              -- which secret key sealed it
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin, key),
    CHECK ((value IS NULL) <> (secret IS NULL)),
    CHECK ((secret IS NULL) = (key_fingerprint IS NULL))
) WITHOUT ROWID;

CREATE TABLE plugin_grants (
    tenant       TEXT    NOT NULL,
    plugin       TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    permissions  TEXT    NOT NULL,   -- JSON, the manifest's permission form
    granted_by   TEXT    NOT NULL,
    granted_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin, version)
) WITHOUT ROWID;

-- Keys are UTF-8 bytes so that prefix ranges compare bytewise.
CREATE TABLE plugin_kv (
    tenant  TEXT NOT NULL,
    plugin  TEXT NOT NULL,
    key     BLOB NOT NULL,
    value   BLOB NOT NULL,
    PRIMARY KEY (tenant, plugin, key)
);

-- Per plugin: bytes of keys plus values, and number of keys. Updated in the
-- transaction of every KV write; its row serializes a plugin's writers.
CREATE TABLE plugin_kv_usage (
    tenant   TEXT    NOT NULL,
    plugin   TEXT    NOT NULL,
    bytes    INTEGER NOT NULL,
    entries  INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin)
) WITHOUT ROWID;
