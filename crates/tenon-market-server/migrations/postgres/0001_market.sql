-- The marketplace server's own database (not the host registry's), on
-- PostgreSQL: the SQLite schema with native booleans and bytes, ids compared
-- byte-wise (COLLATE "C", as SQLite does), and a tsvector per plugin for
-- full-text search where SQLite has FTS5.

CREATE TABLE accounts (
    name        TEXT COLLATE "C" PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

-- API tokens, stored as the sha256 of the secret only.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    account     TEXT COLLATE "C" NOT NULL REFERENCES accounts(name),
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- A namespace is the publisher part of plugin ids, claimed by its first owner.
CREATE TABLE namespaces (
    name        TEXT COLLATE "C" PRIMARY KEY,
    normalized  TEXT COLLATE "C" NOT NULL UNIQUE,
    verified    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE namespace_owners (
    namespace   TEXT COLLATE "C" NOT NULL REFERENCES namespaces(name),
    account     TEXT COLLATE "C" NOT NULL REFERENCES accounts(name),
    PRIMARY KEY (namespace, account)
);

-- Author keys allowed to sign the namespace's packages (the first publish binds one).
CREATE TABLE namespace_keys (
    namespace   TEXT COLLATE "C" NOT NULL REFERENCES namespaces(name),
    public_key  TEXT NOT NULL,
    PRIMARY KEY (namespace, public_key)
);

CREATE TABLE plugins (
    pk            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT COLLATE "C" NOT NULL UNIQUE,
    namespace     TEXT COLLATE "C" NOT NULL REFERENCES namespaces(name),
    normalized    TEXT COLLATE "C" NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    license       TEXT,
    categories    TEXT NOT NULL,
    keywords      TEXT NOT NULL,
    runtime       TEXT NOT NULL,
    latest        TEXT NOT NULL,
    readme        TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    downloads     BIGINT NOT NULL DEFAULT 0,
    log_downloads DOUBLE PRECISION NOT NULL DEFAULT 0,
    deprecated    BOOLEAN NOT NULL DEFAULT FALSE,
    replacement   TEXT,
    featured      BIGINT,
    -- JSON: [{version, tenon, host, yanked}, …]
    compat        TEXT NOT NULL
);

-- The text of each plugin's newest listing: id words and name (weight A),
-- keywords (B), description (C), in the `simple` configuration (no stemming,
-- no stop words: plugin names are not prose).
CREATE TABLE plugin_fts (
    rowid       BIGINT PRIMARY KEY,
    document    TSVECTOR NOT NULL
);
CREATE INDEX plugin_fts_document ON plugin_fts USING GIN (document);

CREATE TABLE versions (
    plugin        TEXT COLLATE "C" NOT NULL REFERENCES plugins(id),
    version       TEXT COLLATE "C" NOT NULL,
    seq           BIGINT NOT NULL,
    entry         TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    yanked        BOOLEAN NOT NULL DEFAULT FALSE,
    published_at  BIGINT NOT NULL,
    downloads     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin, version)
);

CREATE TABLE packages (
    sha256      TEXT PRIMARY KEY,
    bytes       BYTEA NOT NULL,
    signatures  TEXT NOT NULL
);

-- One row per plugin, day and client: downloads count unique clients per day.
CREATE TABLE downloads (
    plugin      TEXT COLLATE "C" NOT NULL,
    day         BIGINT NOT NULL,
    client      TEXT NOT NULL,
    PRIMARY KEY (plugin, day, client)
);

CREATE TABLE metadata (
    role        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    PRIMARY KEY (role, version)
);

CREATE INDEX plugins_updated ON plugins(updated_at, id);
CREATE INDEX plugins_created ON plugins(created_at, id);
CREATE INDEX plugins_downloads ON plugins(downloads, id);
CREATE INDEX downloads_day ON downloads(day, plugin);
