-- The marketplace server's own database (not the host registry's).

CREATE TABLE accounts (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);

-- API tokens, stored as the sha256 of the secret only.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts(name),
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- A namespace is the publisher part of plugin ids, claimed by its first owner.
CREATE TABLE namespaces (
    name        TEXT PRIMARY KEY,
    normalized  TEXT NOT NULL UNIQUE,
    verified    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE namespace_owners (
    namespace   TEXT NOT NULL REFERENCES namespaces(name),
    account     TEXT NOT NULL REFERENCES accounts(name),
    PRIMARY KEY (namespace, account)
);

-- Author keys allowed to sign the namespace's packages (the first publish binds one).
CREATE TABLE namespace_keys (
    namespace   TEXT NOT NULL REFERENCES namespaces(name),
    public_key  TEXT NOT NULL,
    PRIMARY KEY (namespace, public_key)
);

CREATE TABLE plugins (
    pk            INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    namespace     TEXT NOT NULL REFERENCES namespaces(name),
    normalized    TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    license       TEXT,
    categories    TEXT NOT NULL,
    keywords      TEXT NOT NULL,
    runtime       TEXT NOT NULL,
    latest        TEXT NOT NULL,
    readme        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    downloads     INTEGER NOT NULL DEFAULT 0,
    log_downloads REAL NOT NULL DEFAULT 0,
    deprecated    INTEGER NOT NULL DEFAULT 0,
    replacement   TEXT,
    featured      INTEGER,
    -- JSON: [[version, tenon requirement, host requirement or null, yanked], …]
    compat        TEXT NOT NULL
);

CREATE VIRTUAL TABLE plugin_fts USING fts5(id, name, description, keywords, tokenize = 'unicode61');

CREATE TABLE versions (
    plugin        TEXT NOT NULL REFERENCES plugins(id),
    version       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    entry         TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    yanked        INTEGER NOT NULL DEFAULT 0,
    published_at  INTEGER NOT NULL,
    downloads     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin, version)
);

CREATE TABLE packages (
    sha256      TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    signatures  TEXT NOT NULL
);

-- One row per plugin, day and client: downloads count unique clients per day.
CREATE TABLE downloads (
    plugin      TEXT NOT NULL,
    day         INTEGER NOT NULL,
    client      TEXT NOT NULL,
    PRIMARY KEY (plugin, day, client)
);

CREATE TABLE metadata (
    role        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    body        BLOB NOT NULL,
    PRIMARY KEY (role, version)
);

CREATE INDEX plugins_updated ON plugins(updated_at, id);
CREATE INDEX plugins_created ON plugins(created_at, id);
CREATE INDEX plugins_downloads ON plugins(downloads, id);
CREATE INDEX downloads_day ON downloads(day, plugin);
