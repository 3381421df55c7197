//! The names and labels Tenon records under. They are part of Tenon's stable
//! interface: dashboards and alerts are written against them.

/// Label: the tenant.
pub const LABEL_TENANT: &str = "tenant";
/// Label: the plugin id.
pub const LABEL_PLUGIN: &str = "plugin";
/// Label: the hook name.
pub const LABEL_HOOK: &str = "hook";
/// Label: a receipt status (`ok`, `blocked`, `error`, `timeout`, `skipped`,
/// `rejected`).
pub const LABEL_STATUS: &str = "status";
/// Label: a failure kind (`load`, `trap`, `timeout`, `handler_error`, …).
pub const LABEL_KIND: &str = "kind";
/// Label: `in` or `out`.
pub const LABEL_DIRECTION: &str = "direction";

/// Counter: handler executions, by tenant, plugin, hook and status (one per
/// receipt).
pub const HOOK_EXECUTIONS: &str = "tenon_hook_executions_total";
/// Histogram: handler duration in seconds, by tenant, plugin and hook
/// (skipped handlers are not recorded).
pub const HOOK_DURATION: &str = "tenon_hook_duration_seconds";
/// Counter: extra attempts made by retrying handlers, by tenant, plugin and
/// hook.
pub const HOOK_RETRIES: &str = "tenon_hook_retries_total";
/// Counter: dispatches, by tenant, hook and how the chain ended (`status` is
/// `ok`, `blocked` or `stopped`).
pub const DISPATCHES: &str = "tenon_dispatches_total";

/// Gauge: linear memory in use by a plugin's live instances, bytes.
pub const PLUGIN_MEMORY: &str = "tenon_plugin_memory_bytes";
/// Gauge: the most memory one instance of a plugin reached, bytes.
pub const PLUGIN_MEMORY_PEAK: &str = "tenon_plugin_memory_peak_bytes";
/// Gauge: live instances of a plugin.
pub const PLUGIN_INSTANCES: &str = "tenon_plugin_instances";
/// Gauge: of a plugin's live instances, those idle in the warm pool.
pub const PLUGIN_INSTANCES_POOLED: &str = "tenon_plugin_instances_pooled";
/// Gauge: bytes of a plugin's KV keys and values.
pub const PLUGIN_KV_BYTES: &str = "tenon_plugin_kv_bytes";
/// Gauge: a plugin's KV keys.
pub const PLUGIN_KV_KEYS: &str = "tenon_plugin_kv_keys";
/// Gauge: bytes of the files in a plugin's data directory.
pub const PLUGIN_DATA_BYTES: &str = "tenon_plugin_data_bytes";
/// Counter: fuel a plugin consumed.
pub const PLUGIN_FUEL: &str = "tenon_plugin_fuel_consumed_total";
/// Counter: time spent executing a plugin's code, in microseconds.
pub const PLUGIN_CPU: &str = "tenon_plugin_cpu_microseconds_total";
/// Counter: a plugin's outbound HTTP requests.
pub const PLUGIN_HTTP_REQUESTS: &str = "tenon_plugin_http_requests_total";
/// Counter: a plugin's HTTP bytes, by direction.
pub const PLUGIN_HTTP_BYTES: &str = "tenon_plugin_http_bytes_total";
/// Counter: a plugin's failures as the crash guard counts them, by kind.
pub const PLUGIN_FAILURES: &str = "tenon_plugin_failures_total";
/// Counter: calls and handlers of a plugin that could not run through no
/// fault of its own (every instance busy, not running, an export missing);
/// the crash guard does not count them.
pub const PLUGIN_UNAVAILABLE: &str = "tenon_plugin_unavailable_total";
/// Counter: times the crash guard decided to disable a plugin.
pub const PLUGIN_AUTO_DISABLED: &str = "tenon_plugin_auto_disabled_total";
/// Counter: events deleted from a tenant's event log by its retention,
/// labelled with the rule that deleted them (`kind`: `age` or `count`).
pub const EVENTS_PRUNED: &str = "tenon_events_pruned_total";
/// Counter: events a plugin published while handling an event that the
/// tenant's bus refused because their causation chain ran deeper than its
/// limit (a loop between plugins, cut), by tenant and plugin.
pub const EVENT_CHAINS_CUT: &str = "tenon_event_chains_cut_total";
/// Counter: events the engine's event writer dropped because its queue was
/// full (they never reached the event log).
pub const EVENTS_DROPPED: &str = "tenon_events_dropped_total";
/// Counter: events the event writer gave up on after the registry kept
/// failing.
pub const EVENTS_WRITE_FAILED: &str = "tenon_events_write_failed_total";
/// Counter: compiled artifacts found in a runtime's cache and refused
/// (forged, foreign or corrupt): never loaded, each recompiled.
pub const CACHE_REJECTIONS: &str = "tenon_cache_rejections_total";
/// Gauge: live WebAssembly instances (idle or running), in all and per
/// tenant (label `tenant`).
pub const INSTANCES_LIVE: &str = "tenon_instances_live";
/// Gauge: the memory live instances may reach together (each counts its
/// `limits.memory`), in bytes, in all and per tenant (label `tenant`).
pub const INSTANCE_MEMORY: &str = "tenon_instance_memory_bytes";
/// Counter: idle instances dropped to make room for another plugin's under
/// a fairness cap.
pub const INSTANCES_RECLAIMED: &str = "tenon_instances_reclaimed_total";
/// Counter: instances refused at a fairness cap (each failed a call or a
/// start).
pub const INSTANCE_CAP_REFUSALS: &str = "tenon_instance_cap_refusals_total";
/// Counter: permission denials that were counted rather than logged and
/// audited one by one (a plugin hammering a permission it lacks), by tenant
/// and plugin.
pub const PERMISSION_DENIALS_SUPPRESSED: &str = "tenon_permission_denials_suppressed_total";
/// Gauge: a plugin's health: 0 healthy, 1 warning, 2 critical.
pub const PLUGIN_HEALTH: &str = "tenon_plugin_health";
