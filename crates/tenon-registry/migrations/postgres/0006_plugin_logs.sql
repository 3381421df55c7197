-- Tenon registry, schema version 6: plugins' own log lines, kept per plugin
-- up to a bound (the oldest dropped first), and how many were dropped.

-- Appends of one tenant are serialized (the event log's advisory lock), so
-- ids commit in order and `tenon logs --follow` never skips a line.
CREATE TABLE plugin_logs (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant   TEXT COLLATE "C" NOT NULL,
    plugin   TEXT COLLATE "C" NOT NULL,
    level    BIGINT NOT NULL,   -- 0 trace, 1 debug, 2 info, 3 warn, 4 error
    message  TEXT   NOT NULL,
    fields   TEXT   NOT NULL,   -- JSON: [[key, value], …]
    at       BIGINT NOT NULL
);

CREATE INDEX plugin_logs_tenant ON plugin_logs (tenant, id);
CREATE INDEX plugin_logs_plugin ON plugin_logs (tenant, plugin, id);

CREATE TABLE plugin_log_drops (
    tenant   TEXT COLLATE "C" NOT NULL,
    plugin   TEXT COLLATE "C" NOT NULL,
    dropped  BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin)
);
