//! The host API the engine gives its plugins: KV in the registry, config from
//! the running plugin's resolved config, events on the tenant's bus, logs to
//! `tracing` and, kept per plugin, to the registry. The sandbox checks
//! permissions before any of this runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};
use tenon_hooks::BusError;
use tenon_metrics::Telemetry;
use tenon_registry::{
    EventKind, EventStatus, EventWriter, KvList, KvQuota, NewEvent, NewLog, RegistryError,
    RegistryStore, TenantId,
};
use tenon_sandbox::{
    Caller, Causation, HostApi, HostError, HostServices, LogLevel, PermissionDenial,
    SandboxObserver,
};

use crate::config::KvLimits;
use crate::denials::{DenialLog, Suppressed};
use crate::tenant::Tenants;

/// Quota for a plugin that may use KV but declares no quota: 1 MiB.
pub const DEFAULT_KV_QUOTA: u64 = 1 << 20;

/// Keys a `kv-list` returns at most.
const KV_LIST_LIMIT: usize = 10_000;

pub(crate) struct EngineHost {
    pub(crate) store: Arc<dyn RegistryStore>,
    pub(crate) writer: EventWriter,
    /// Weak: running plugins hold the host, and the tenants hold the running
    /// plugins; a strong reference would keep an engine alive forever.
    pub(crate) tenants: Weak<Tenants>,
    pub(crate) kv_writes: KvWriteLimiter,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) denials: DenialLog,
    /// The services the host offers its plugins.
    pub(crate) services: HostServices,
}

/// The per-plugin, per-tenant KV key quota and write rate.
pub(crate) struct KvWriteLimiter {
    pub(crate) limits: KvLimits,
    /// Tokens left and when they were counted, by tenant and plugin.
    buckets: Mutex<HashMap<(String, String), (f64, Instant)>>,
}

impl KvWriteLimiter {
    pub(crate) fn new(limits: KvLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Takes one write from the caller's bucket, or refuses it naming the
    /// limit.
    fn take(&self, caller: &Caller) -> Result<(), HostError> {
        let KvLimits { writes, per, .. } = self.limits;
        if per.is_zero() {
            return Ok(());
        }
        let capacity = f64::from(writes);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = buckets
            .entry((caller.tenant.clone(), caller.plugin.to_string()))
            .or_insert((capacity, now));
        let refill = now.duration_since(*at).as_secs_f64() / per.as_secs_f64() * capacity;
        *tokens = (*tokens + refill).min(capacity);
        *at = now;
        if *tokens < 1.0 {
            return Err(HostError::QuotaExceeded(format!(
                "the KV write rate limit of {writes} writes per {per:?} is used up; retry later"
            )));
        }
        *tokens -= 1.0;
        Ok(())
    }
}

impl EngineHost {
    fn tenant_state(&self, caller: &Caller) -> Result<Arc<crate::tenant::TenantState>, HostError> {
        self.tenants
            .upgrade()
            .and_then(|tenants| tenants.get(&caller.tenant))
            .ok_or_else(|| {
                HostError::Unavailable(format!("tenant {} is not served", caller.tenant))
            })
    }
}

/// The longest plugin-chosen text (an error or panic message) the engine
/// writes into one log line.
const MAX_LOGGED_TEXT: usize = 4 * 1024;

/// Text a plugin chose (its error or panic message, through an error's
/// `Display`), escaped and cut by the sandbox's one log escaper so it
/// cannot forge a log line.
pub(crate) fn loggable(text: &impl std::fmt::Display) -> String {
    tenon_sandbox::log_text(&text.to_string(), MAX_LOGGED_TEXT).into_owned()
}

/// A plugin's log fields as one `key="value"` list: every value quoted
/// (`"` and `\` escaped), and a key quoted unless it is a plain name other
/// than `plugin` and `tenant`, so no value or key can pose as another pair
/// or as the host's own `plugin=`/`tenant=`.
fn log_fields(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let plain = !k.is_empty()
                && !matches!(k.as_str(), "plugin" | "tenant")
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if plain {
                format!("{k}={v:?}")
            } else {
                format!("{k:?}={v:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plugin's log level as the registry keeps it.
fn stored_level(level: LogLevel) -> tenon_registry::LogLevel {
    use tenon_registry::LogLevel as Stored;
    match level {
        LogLevel::Trace => Stored::Trace,
        LogLevel::Debug => Stored::Debug,
        LogLevel::Info => Stored::Info,
        LogLevel::Warn => Stored::Warn,
        LogLevel::Error => Stored::Error,
    }
}

fn tenant(caller: &Caller) -> Result<TenantId, HostError> {
    TenantId::new(&caller.tenant).map_err(|e| HostError::InvalidInput(e.to_string()))
}

fn storage(error: RegistryError) -> HostError {
    match error {
        RegistryError::QuotaExceeded { quota, used, .. } => HostError::QuotaExceeded(format!(
            "the write does not fit in the KV quota of {quota} bytes ({used} in use)"
        )),
        RegistryError::KeyQuotaExceeded { max_keys, keys, .. } => {
            HostError::QuotaExceeded(format!(
                "the write adds a key beyond the KV key quota of {max_keys} keys ({keys} in use)"
            ))
        }
        other => HostError::Unavailable(format!("storage: {other}")),
    }
}

#[async_trait]
impl HostApi for EngineHost {
    fn log(&self, caller: &Caller, level: LogLevel, message: &str, fields: &[(String, String)]) {
        if let Ok(tenant) = TenantId::new(&caller.tenant) {
            self.writer.record_log(NewLog {
                tenant,
                plugin: caller.plugin.clone(),
                level: stored_level(level),
                message: message.to_owned(),
                fields: fields.to_vec(),
                at: time::OffsetDateTime::now_utc(),
            });
        }
        let fields = log_fields(fields);
        let (plugin, tenant) = (caller.plugin.as_str(), caller.tenant.as_str());
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "tenon::plugin", plugin, tenant, %fields, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "tenon::plugin", plugin, tenant, %fields, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "tenon::plugin", plugin, tenant, %fields, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "tenon::plugin", plugin, tenant, %fields, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "tenon::plugin", plugin, tenant, %fields, "{message}")
            }
        }
    }

    async fn config_get(&self, caller: &Caller, key: &str) -> Result<Option<Value>, HostError> {
        let config = self.tenant_state(caller)?.config(&caller.plugin);
        Ok(config.and_then(|c| c.values.get(key).cloned()))
    }

    async fn kv_get(&self, caller: &Caller, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.store
            .kv_get(&tenant(caller)?, &caller.plugin, key)
            .await
            .map_err(storage)
    }

    async fn kv_set(&self, caller: &Caller, key: &str, value: &[u8]) -> Result<(), HostError> {
        let quota = caller
            .permissions
            .kv
            .as_ref()
            .and_then(|kv| kv.quota)
            .map_or(DEFAULT_KV_QUOTA, |q| q.bytes());
        self.kv_writes.take(caller)?;
        self.store
            .kv_set(
                &tenant(caller)?,
                &caller.plugin,
                key,
                value,
                KvQuota::bytes(quota).with_max_keys(self.kv_writes.limits.max_keys),
            )
            .await
            .map(drop)
            .map_err(storage)
    }

    async fn kv_delete(&self, caller: &Caller, key: &str) -> Result<(), HostError> {
        self.kv_writes.take(caller)?;
        self.store
            .kv_delete(&tenant(caller)?, &caller.plugin, key)
            .await
            .map(drop)
            .map_err(storage)
    }

    async fn kv_list(&self, caller: &Caller, prefix: &str) -> Result<Vec<String>, HostError> {
        self.store
            .kv_list(
                &tenant(caller)?,
                &caller.plugin,
                &KvList::prefix(prefix).with_limit(KV_LIST_LIMIT),
            )
            .await
            .map_err(storage)
    }

    async fn emit_event(
        &self,
        caller: &Caller,
        topic: &str,
        payload: &Value,
        cause: &Causation,
    ) -> Result<(), HostError> {
        let state = self.tenant_state(caller)?;
        match state.bus.publish_caused(
            Some(caller.plugin.as_str()),
            topic,
            payload.clone(),
            cause.clone(),
        ) {
            Ok(_) => Ok(()),
            Err(error @ BusError::CausationTooDeep { .. }) => {
                self.chain_cut(caller, &state.id, &error);
                Err(HostError::QuotaExceeded(error.to_string()))
            }
            Err(error) => Err(HostError::InvalidInput(error.to_string())),
        }
    }

    fn services(&self) -> &HostServices {
        &self.services
    }
}

impl EngineHost {
    /// Records and counts an event the bus refused for a causation chain
    /// deeper than its limit: a loop between plugins, cut.
    fn chain_cut(&self, caller: &Caller, tenant: &TenantId, error: &BusError) {
        let BusError::CausationTooDeep {
            topic,
            cause,
            limit,
        } = error
        else {
            return;
        };
        let chain = loggable(cause);
        tracing::warn!(
            target: "tenon::plugin",
            plugin = caller.plugin.as_str(),
            tenant = caller.tenant.as_str(),
            "event chain cut: `{topic}` would be caused by {} events, more than the limit of {limit}: {chain}",
            cause.depth()
        );
        self.telemetry
            .record_chain_cut(tenant.as_str(), caller.plugin.as_str());
        self.writer.record(
            NewEvent::new(tenant.clone(), EventKind::Error, EventStatus::Blocked)
                .with_plugin(caller.plugin.clone())
                .with_version(caller.version.clone())
                .with_detail(json!({
                    "operation": "emit",
                    "topic": topic,
                    "error": "event_chain_too_deep",
                    "depth": cause.depth(),
                    "limit": limit,
                    "chain": chain,
                })),
        );
    }
}

impl EngineHost {
    /// Reports the denials of a window that were counted rather than
    /// logged: one line, one `permission_denied` event with their count and
    /// the last of them, and the suppressed-denials metric.
    pub(crate) fn report_suppressed(&self, suppressed: Suppressed) {
        let Suppressed {
            tenant,
            plugin,
            version,
            last,
            count,
            window,
        } = suppressed;
        tracing::warn!(
            target: "tenon::plugin",
            plugin = plugin.as_str(),
            tenant = tenant.as_str(),
            permission = last.permission.as_str(),
            suppressed = count,
            "permission denied {count} more times in {window:?} (not logged one by one); the last: {} ({})",
            last.attempted,
            last.reason
        );
        self.telemetry
            .record_denials_suppressed(&tenant, plugin.as_str(), count);
        let Ok(tenant) = TenantId::new(&tenant) else {
            return;
        };
        self.writer.record(
            NewEvent::new(tenant, EventKind::PermissionDenied, EventStatus::Blocked)
                .with_plugin(plugin)
                .with_version(version)
                .with_detail(json!({
                    "permission": last.permission,
                    "attempted": last.attempted,
                    "reason": last.reason,
                    "enforcement": "host_boundary",
                    "suppressed": count,
                    "window_ms": u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                })),
        );
    }
}

impl SandboxObserver for EngineHost {
    fn permission_denied(&self, caller: &Caller, denial: &PermissionDenial) {
        let admission = self.denials.admit(caller, denial, Instant::now());
        if let Some(ended) = admission.ended {
            self.report_suppressed(ended);
        }
        if !admission.log {
            return;
        }
        tracing::warn!(
            target: "tenon::plugin",
            plugin = caller.plugin.as_str(),
            tenant = caller.tenant.as_str(),
            permission = denial.permission.as_str(),
            "permission denied: {} ({})",
            denial.attempted,
            denial.reason
        );
        let Ok(tenant) = TenantId::new(&caller.tenant) else {
            return;
        };
        self.writer.record(
            NewEvent::new(tenant, EventKind::PermissionDenied, EventStatus::Blocked)
                .with_plugin(caller.plugin.clone())
                .with_version(caller.version.clone())
                .with_detail(json!({
                    "permission": denial.permission,
                    "attempted": denial.attempted,
                    "reason": denial.reason,
                    "enforcement": "host_boundary",
                })),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::log_fields;

    #[test]
    fn log_field_values_cannot_pose_as_other_pairs() {
        let pairs = |list: &[(&str, &str)]| {
            log_fields(
                &list
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<Vec<_>>(),
            )
        };
        for (fields, written) in [
            (vec![("n", "1")], r#"n="1""#),
            (
                vec![("n", "1 plugin=acme/admin tenant=other")],
                r#"n="1 plugin=acme/admin tenant=other""#,
            ),
            (
                vec![("n", r#"1" plugin="acme/admin"#)],
                r#"n="1\" plugin=\"acme/admin""#,
            ),
            (vec![("plugin", "acme/admin")], r#""plugin"="acme/admin""#),
            (vec![("tenant", "other")], r#""tenant"="other""#),
            (vec![("a b=c", "1")], r#""a b=c"="1""#),
            (vec![("a", "1"), ("b", "2")], r#"a="1" b="2""#),
        ] {
            let got = pairs(&fields);
            assert_eq!(got, written, "{fields:?}");
        }
    }
}
