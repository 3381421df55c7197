//! An in-memory [`HostApi`] (and [`SandboxObserver`]) for tests and small
//! hosts.

use std::collections::{BTreeMap, HashMap, VecDeque};

use async_trait::async_trait;
use parking_lot::Mutex;
use tenon_manifest::PluginId;
use tenon_types::Causation;

use crate::host::{Caller, HostApi, HostError, LogLevel, PermissionDenial, SandboxObserver};
use crate::services::HostServices;

/// How many log lines, events and denials a [`MemoryHost`] keeps (the
/// oldest go first).
const DEFAULT_RECORD_LIMIT: usize = 10_000;

/// A log line a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The plugin.
    pub plugin: PluginId,
    /// The tenant it ran for.
    pub tenant: String,
    /// The level.
    pub level: LogLevel,
    /// The line.
    pub message: String,
    /// Its fields.
    pub fields: Vec<(String, String)>,
}

/// An event a plugin published.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The plugin.
    pub plugin: PluginId,
    /// The tenant it ran for.
    pub tenant: String,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: serde_json::Value,
    /// The events that led to it.
    pub cause: Causation,
}

/// A refused host call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialRecord {
    /// The plugin.
    pub plugin: PluginId,
    /// The tenant it ran for.
    pub tenant: String,
    /// What was refused.
    pub denial: PermissionDenial,
}

#[derive(Debug, Default)]
struct Inner {
    config: HashMap<PluginId, serde_json::Map<String, serde_json::Value>>,
    kv: HashMap<(PluginId, String), BTreeMap<String, Vec<u8>>>,
    logs: VecDeque<LogRecord>,
    events: VecDeque<EventRecord>,
    denials: VecDeque<DenialRecord>,
}

/// Keeps config per plugin, KV per plugin and tenant (enforcing
/// `permissions.kv.quota` on the bytes of keys plus values), and records
/// every log line, event and permission denial for inspection.
///
/// Recorded lines, events and denials are capped (10,000 of each by default,
/// the oldest dropped first), so a chatty plugin cannot exhaust the host.
#[derive(Debug)]
pub struct MemoryHost {
    inner: Mutex<Inner>,
    record_limit: usize,
    services: HostServices,
}

impl Default for MemoryHost {
    fn default() -> Self {
        Self::new()
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, limit: usize) {
    if queue.len() == limit {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::with_record_limit(DEFAULT_RECORD_LIMIT)
    }

    /// An empty host that keeps at most `limit` log lines, events and
    /// denials each.
    pub fn with_record_limit(limit: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            record_limit: limit.max(1),
            services: HostServices::new(),
        }
    }

    /// This host, offering `services` to its plugins.
    #[must_use]
    pub fn with_services(mut self, services: HostServices) -> Self {
        self.services = services;
        self
    }

    /// Sets a config value of `plugin` (what `config-get` returns).
    pub fn set_config(&self, plugin: &PluginId, key: &str, value: serde_json::Value) {
        self.inner
            .lock()
            .config
            .entry(plugin.clone())
            .or_default()
            .insert(key.to_owned(), value);
    }

    /// The KV entries of `plugin` for `tenant`.
    pub fn kv_entries(&self, plugin: &PluginId, tenant: &str) -> BTreeMap<String, Vec<u8>> {
        self.inner
            .lock()
            .kv
            .get(&(plugin.clone(), tenant.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Bytes (keys plus values) `plugin` keeps for `tenant`.
    pub fn kv_usage(&self, plugin: &PluginId, tenant: &str) -> u64 {
        self.inner
            .lock()
            .kv
            .get(&(plugin.clone(), tenant.to_owned()))
            .map(usage)
            .unwrap_or(0)
    }

    /// Every recorded log line, oldest first.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.inner.lock().logs.iter().cloned().collect()
    }

    /// Every recorded event, oldest first.
    pub fn events(&self) -> Vec<EventRecord> {
        self.inner.lock().events.iter().cloned().collect()
    }

    /// Every recorded denial, oldest first.
    pub fn denials(&self) -> Vec<DenialRecord> {
        self.inner.lock().denials.iter().cloned().collect()
    }

    /// Forgets recorded log lines, events and denials (config and KV stay).
    pub fn clear_records(&self) {
        let mut inner = self.inner.lock();
        inner.logs.clear();
        inner.events.clear();
        inner.denials.clear();
    }
}

fn usage(map: &BTreeMap<String, Vec<u8>>) -> u64 {
    map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

#[async_trait]
impl HostApi for MemoryHost {
    fn log(&self, caller: &Caller, level: LogLevel, message: &str, fields: &[(String, String)]) {
        let record = LogRecord {
            plugin: caller.plugin.clone(),
            tenant: caller.tenant.clone(),
            level,
            message: message.to_owned(),
            fields: fields.to_vec(),
        };
        let limit = self.record_limit;
        push_bounded(&mut self.inner.lock().logs, record, limit);
    }

    async fn config_get(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<Option<serde_json::Value>, HostError> {
        Ok(self
            .inner
            .lock()
            .config
            .get(&caller.plugin)
            .and_then(|c| c.get(key))
            .cloned())
    }

    async fn kv_get(&self, caller: &Caller, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self
            .inner
            .lock()
            .kv
            .get(&(caller.plugin.clone(), caller.tenant.clone()))
            .and_then(|m| m.get(key))
            .cloned())
    }

    async fn kv_set(&self, caller: &Caller, key: &str, value: &[u8]) -> Result<(), HostError> {
        let quota = caller
            .permissions
            .kv
            .as_ref()
            .and_then(|kv| kv.quota)
            .map(|q| q.bytes());
        let mut inner = self.inner.lock();
        let map = inner
            .kv
            .entry((caller.plugin.clone(), caller.tenant.clone()))
            .or_default();
        if let Some(quota) = quota {
            let old = map
                .get(key)
                .map(|v| (key.len() + v.len()) as u64)
                .unwrap_or(0);
            let after = usage(map) - old + (key.len() + value.len()) as u64;
            if after > quota {
                return Err(HostError::QuotaExceeded(format!(
                    "the KV store would hold {after} bytes; the quota is {quota}"
                )));
            }
        }
        map.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn kv_delete(&self, caller: &Caller, key: &str) -> Result<(), HostError> {
        if let Some(map) = self
            .inner
            .lock()
            .kv
            .get_mut(&(caller.plugin.clone(), caller.tenant.clone()))
        {
            map.remove(key);
        }
        Ok(())
    }

    async fn kv_list(&self, caller: &Caller, prefix: &str) -> Result<Vec<String>, HostError> {
        Ok(self
            .inner
            .lock()
            .kv
            .get(&(caller.plugin.clone(), caller.tenant.clone()))
            .map(|m| {
                m.range(prefix.to_owned()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn emit_event(
        &self,
        caller: &Caller,
        topic: &str,
        payload: &serde_json::Value,
        cause: &Causation,
    ) -> Result<(), HostError> {
        let record = EventRecord {
            plugin: caller.plugin.clone(),
            tenant: caller.tenant.clone(),
            topic: topic.to_owned(),
            payload: payload.clone(),
            cause: cause.clone(),
        };
        let limit = self.record_limit;
        push_bounded(&mut self.inner.lock().events, record, limit);
        Ok(())
    }

    fn services(&self) -> &HostServices {
        &self.services
    }
}

impl SandboxObserver for MemoryHost {
    fn permission_denied(&self, caller: &Caller, denial: &PermissionDenial) {
        let record = DenialRecord {
            plugin: caller.plugin.clone(),
            tenant: caller.tenant.clone(),
            denial: denial.clone(),
        };
        let limit = self.record_limit;
        push_bounded(&mut self.inner.lock().denials, record, limit);
    }
}
