-- Tenon registry, schema version 1: plugins, their versions, artifacts and
-- the event log. Timestamps are microseconds since the Unix epoch (UTC).
-- Text keys use the "C" collation so that they order bytewise, as on SQLite.

CREATE TABLE plugin_artifacts (
    tenant      TEXT COLLATE "C" NOT NULL,
    sha256      TEXT COLLATE "C" NOT NULL,   -- 64 lowercase hex digits: the content's name
    size        BIGINT NOT NULL,
    content     BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, sha256)
);

CREATE TABLE plugin_versions (
    tenant           TEXT COLLATE "C" NOT NULL,
    plugin           TEXT COLLATE "C" NOT NULL,
    version          TEXT COLLATE "C" NOT NULL,
    manifest         TEXT   NOT NULL,   -- canonical JSON
    artifact_sha256  TEXT COLLATE "C",
    installed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin, version),
    FOREIGN KEY (tenant, artifact_sha256) REFERENCES plugin_artifacts (tenant, sha256)
);

CREATE INDEX plugin_versions_artifact ON plugin_versions (tenant, artifact_sha256);

CREATE TABLE plugins (
    tenant           TEXT COLLATE "C" NOT NULL,
    id               TEXT COLLATE "C" NOT NULL,
    current_version  TEXT COLLATE "C" NOT NULL,
    state            TEXT    NOT NULL,
    source_kind      TEXT    NOT NULL,
    source_ref       TEXT    NOT NULL,
    enabled          BOOLEAN NOT NULL,
    last_error       TEXT,              -- JSON {code, message}
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    row_version      BIGINT  NOT NULL,
    PRIMARY KEY (tenant, id),
    -- The current version is always an installed one.
    FOREIGN KEY (tenant, id, current_version) REFERENCES plugin_versions (tenant, plugin, version)
);

CREATE INDEX plugins_state ON plugins (tenant, state, id);

-- Appends of one tenant are serialized (an advisory lock), so ids commit in
-- order and a reader following the log after a cursor never skips one.
CREATE TABLE plugin_events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant   TEXT COLLATE "C" NOT NULL,
    plugin   TEXT COLLATE "C",
    version  TEXT,
    kind     TEXT   NOT NULL,
    status   TEXT   NOT NULL,
    detail   TEXT   NOT NULL,   -- JSON
    at       BIGINT NOT NULL
);

CREATE INDEX plugin_events_tenant ON plugin_events (tenant, id);
CREATE INDEX plugin_events_plugin ON plugin_events (tenant, plugin, id);
CREATE INDEX plugin_events_at ON plugin_events (tenant, at);
