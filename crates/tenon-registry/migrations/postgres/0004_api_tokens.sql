-- Tenon registry, schema version 4: bearer tokens of the HTTP admin API
-- (`tenon token create`). Only the sha256 of a token is stored; the token
-- itself is shown once, when it is made.

CREATE TABLE api_tokens (
    tenant        TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,   -- who holds it: recorded with every change it makes
    role          TEXT   NOT NULL,             -- viewer, operator or admin
    token_sha256  TEXT   NOT NULL,             -- 64 hex digits
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, name),
    UNIQUE (token_sha256)
);
