-- Tenon registry, schema version 6: plugins' own log lines, kept per plugin
-- up to a bound (the oldest dropped first), and how many were dropped.

-- AUTOINCREMENT: ids are never reused, so `tenon logs --follow` can read
-- after the last line it printed while old lines are dropped.
CREATE TABLE plugin_logs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant   TEXT    NOT NULL,
    plugin   TEXT    NOT NULL,
    level    INTEGER NOT NULL,   -- 0 trace, 1 debug, 2 info, 3 warn, 4 error
    message  TEXT    NOT NULL,
    fields   TEXT    NOT NULL,   -- JSON: [[key, value], …]
    at       INTEGER NOT NULL
);

CREATE INDEX plugin_logs_tenant ON plugin_logs (tenant, id);
CREATE INDEX plugin_logs_plugin ON plugin_logs (tenant, plugin, id);

CREATE TABLE plugin_log_drops (
    tenant   TEXT    NOT NULL,
    plugin   TEXT    NOT NULL,
    dropped  INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin)
) WITHOUT ROWID;
