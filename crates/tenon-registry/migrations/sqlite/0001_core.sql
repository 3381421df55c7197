-- Tenon registry, schema version 1: plugins, their versions, artifacts and
-- the event log. Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE plugin_artifacts (
    tenant      TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,   -- 64 lowercase hex digits: the content's name
    size        INTEGER NOT NULL,
    content     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, sha256)
);

CREATE TABLE plugin_versions (
    tenant           TEXT    NOT NULL,
    plugin           TEXT    NOT NULL,
    version          TEXT    NOT NULL,
    manifest         TEXT    NOT NULL,   -- canonical JSON
    artifact_sha256  TEXT,
    installed_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin, version),
    FOREIGN KEY (tenant, artifact_sha256) REFERENCES plugin_artifacts (tenant, sha256)
);

CREATE INDEX plugin_versions_artifact ON plugin_versions (tenant, artifact_sha256);

CREATE TABLE plugins (
    tenant           TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    current_version  TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    source_kind      TEXT    NOT NULL,
    source_ref       TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    last_error       TEXT,              -- JSON {code, message}
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    row_version      INTEGER NOT NULL,
    PRIMARY KEY (tenant, id),
    -- The current version is always an installed one.
    FOREIGN KEY (tenant, id, current_version) REFERENCES plugin_versions (tenant, plugin, version)
);

CREATE INDEX plugins_state ON plugins (tenant, state, id);

-- AUTOINCREMENT: ids are never reused, so cursors stay valid after pruning.
CREATE TABLE plugin_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant   TEXT    NOT NULL,
    plugin   TEXT,
    version  TEXT,
    kind     TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    detail   TEXT    NOT NULL,   -- JSON
    at       INTEGER NOT NULL
);

CREATE INDEX plugin_events_tenant ON plugin_events (tenant, id);
CREATE INDEX plugin_events_plugin ON plugin_events (tenant, plugin, id);
CREATE INDEX plugin_events_at ON plugin_events (tenant, at);

-- The changes each committed write announced, for the change feeds of other
-- processes on this file (SQLite has no NOTIFY): they poll it while someone
-- subscribes. Rows older than a few minutes are pruned.
CREATE TABLE registry_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    origin   TEXT    NOT NULL,   -- the store instance that wrote it
    payload  TEXT    NOT NULL,   -- the change, as JSON
    at       INTEGER NOT NULL
);
