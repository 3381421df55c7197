//! Per-tenant state: each tenant has its own hooks, commands, event bus and
//! running plugins; compiled code is shared through the runtimes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::RwLock;
use tenon_hooks::{
    CommandRegistry, DispatchConfig, EventBus, HandlerId, HookDispatcher, HookRegistry, HookSpec,
};
use tenon_manifest::{PluginId, ResolvedConfig};
use tenon_registry::TenantId;
use tokio::sync::Mutex as AsyncMutex;

use crate::slot::PluginSlot;

/// One tenant's live state.
pub(crate) struct TenantState {
    pub(crate) id: TenantId,
    pub(crate) hooks: HookRegistry,
    pub(crate) dispatcher: HookDispatcher,
    pub(crate) commands: CommandRegistry,
    pub(crate) bus: EventBus,
    /// Plugins running (or waiting for first use) in this engine.
    pub(crate) running: RwLock<HashMap<PluginId, Arc<Running>>>,
    /// Each running plugin's resolved config, secrets included, for the
    /// host API's `config-get` (the sandbox's boundary decides what a plugin
    /// may read) and for a plugin started on first use.
    pub(crate) configs: RwLock<HashMap<PluginId, Arc<ResolvedConfig>>>,
    /// Serialises lifecycle operations of this tenant.
    pub(crate) ops: AsyncMutex<()>,
    /// Whether this tenant's enabled plugins were booted.
    pub(crate) booted: AtomicBool,
}

/// A plugin running in a tenant: its slot and what it registered.
pub(crate) struct Running {
    pub(crate) slot: Arc<PluginSlot>,
    /// The `[[endpoints]]` its running version declares (`tenon-http`
    /// routes them while it runs).
    pub(crate) endpoints: Arc<[tenon_manifest::EndpointDecl]>,
    pub(crate) handlers: Vec<HandlerId>,
    pub(crate) commands: Vec<String>,
    /// The tasks delivering the bus events it subscribed to.
    pub(crate) subscriptions: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.subscriptions {
            task.abort();
        }
    }
}

impl TenantState {
    pub(crate) fn new(
        id: TenantId,
        specs: &[HookSpec],
        dispatch: DispatchConfig,
        event_depth: usize,
    ) -> Result<Self, tenon_hooks::HookError> {
        let hooks = HookRegistry::new();
        hooks.declare_all(specs.iter().cloned())?;
        Ok(Self {
            id,
            dispatcher: HookDispatcher::with_config(hooks.clone(), dispatch),
            hooks,
            commands: CommandRegistry::new(),
            bus: EventBus::with_max_depth(event_depth),
            running: RwLock::new(HashMap::new()),
            configs: RwLock::new(HashMap::new()),
            ops: AsyncMutex::new(()),
            booted: AtomicBool::new(false),
        })
    }

    pub(crate) fn running(&self, id: &PluginId) -> Option<Arc<Running>> {
        self.running.read().get(id).cloned()
    }

    /// Removes a running plugin's hooks, commands and event subscriptions
    /// (its config stays, for a successor) and returns it.
    pub(crate) fn retire(&self, id: &PluginId) -> Option<Arc<Running>> {
        let running = self.running.write().remove(id)?;
        for handler in &running.handlers {
            self.hooks.unregister(*handler);
        }
        for command in &running.commands {
            self.commands.unregister(command);
        }
        for task in &running.subscriptions {
            task.abort();
        }
        Some(running)
    }

    /// [`retire`](Self::retire), and forgets its config.
    pub(crate) fn unregister(&self, id: &PluginId) -> Option<Arc<Running>> {
        let running = self.retire(id);
        self.configs.write().remove(id);
        running
    }

    /// The resolved config a plugin runs with.
    pub(crate) fn config(&self, id: &PluginId) -> Option<Arc<ResolvedConfig>> {
        self.configs.read().get(id).cloned()
    }
}

/// Every tenant this engine serves, created on first use.
#[derive(Default)]
pub(crate) struct Tenants {
    map: RwLock<HashMap<String, Arc<TenantState>>>,
}

impl Tenants {
    pub(crate) fn get(&self, tenant: &str) -> Option<Arc<TenantState>> {
        self.map.read().get(tenant).cloned()
    }

    pub(crate) fn get_or_create(
        &self,
        tenant: &TenantId,
        make: impl FnOnce() -> Result<TenantState, tenon_hooks::HookError>,
    ) -> Result<Arc<TenantState>, tenon_hooks::HookError> {
        if let Some(state) = self.get(tenant.as_str()) {
            return Ok(state);
        }
        let mut map = self.map.write();
        if let Some(state) = map.get(tenant.as_str()) {
            return Ok(state.clone());
        }
        let state = Arc::new(make()?);
        map.insert(tenant.as_str().to_owned(), state.clone());
        Ok(state)
    }

    pub(crate) fn all(&self) -> Vec<Arc<TenantState>> {
        self.map.read().values().cloned().collect()
    }
}
