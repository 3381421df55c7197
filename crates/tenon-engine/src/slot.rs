//! A running plugin: the slot its hook handlers and commands call through.
//!
//! Handlers never hold a plugin directly: they hold its [`PluginSlot`], whose
//! loaded instance can be swapped atomically (upgrade, rollback, hot reload)
//! or filled on first use (lazy activation) without touching the hook
//! registry.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde_json::Value;
use tenon_hooks::{
    BoxFuture, CommandHandler, ErrorKind, HandlerError, HandlerFuture, HookAction, HookCall,
    HookHandler,
};
use tenon_manifest::{Manifest, Permissions, PluginId, Version};
use tenon_sandbox::{CallOptions, HookContextData, HookResponse, Plugin, SandboxError};
use tokio::sync::Mutex as AsyncMutex;

/// Loads a plugin on demand (lazy activation).
pub(crate) trait Loader: Send + Sync + 'static {
    /// Loads and starts the plugin.
    fn load(&self) -> BoxFuture<'_, Result<Loaded, SandboxError>>;
}

/// The code behind one plugin in one tenant.
pub(crate) struct PluginSlot {
    pub(crate) id: PluginId,
    current: ArcSwapOption<Loaded>,
    lazy: AsyncMutex<Option<Box<dyn Loader>>>,
}

/// A loaded, started version.
pub(crate) struct Loaded {
    pub(crate) manifest: Arc<Manifest>,
    /// The permissions in force for it.
    pub(crate) permissions: Permissions,
    pub(crate) plugin: Arc<dyn Plugin>,
}

impl Loaded {
    /// Its version.
    pub(crate) fn version(&self) -> &Version {
        &self.manifest.plugin.version
    }

    /// Waits (up to `limit`) until no call is still using this version,
    /// then stops it: calls that started before a swap or a stop finish on
    /// the code they started with.
    pub(crate) async fn drain_and_stop(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while Arc::strong_count(&self.plugin) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if let Err(error) = self.plugin.stop().await {
            tracing::warn!(plugin = %self.manifest.plugin.id, "stopping failed: {error}");
        }
    }
}

impl PluginSlot {
    /// A slot holding a started plugin.
    pub(crate) fn loaded(id: PluginId, loaded: Loaded) -> Self {
        Self {
            id,
            current: ArcSwapOption::from_pointee(loaded),
            lazy: AsyncMutex::new(None),
        }
    }

    /// A slot that loads its plugin on first use.
    pub(crate) fn lazy(id: PluginId, loader: Box<dyn Loader>) -> Self {
        Self {
            id,
            current: ArcSwapOption::empty(),
            lazy: AsyncMutex::new(Some(loader)),
        }
    }

    /// The loaded version, if any.
    pub(crate) fn current(&self) -> Option<Arc<Loaded>> {
        self.current.load_full()
    }

    /// Puts `loaded` in place and returns what was there.
    pub(crate) fn swap(&self, loaded: Loaded) -> Option<Arc<Loaded>> {
        self.current.swap(Some(Arc::new(loaded)))
    }

    /// Empties the slot, returning what was loaded.
    pub(crate) fn take(&self) -> Option<Arc<Loaded>> {
        self.current.swap(None)
    }

    /// The plugin, loading it first if the slot is lazy.
    pub(crate) async fn plugin(&self) -> Result<Arc<dyn Plugin>, SandboxError> {
        if let Some(loaded) = self.current.load_full() {
            return Ok(loaded.plugin.clone());
        }
        let mut lazy = self.lazy.lock().await;
        if let Some(loaded) = self.current.load_full() {
            return Ok(loaded.plugin.clone());
        }
        let Some(loader) = lazy.as_ref() else {
            return Err(SandboxError::NotRunning {
                plugin: self.id.to_string(),
            });
        };
        let loaded = loader.load().await?;
        let plugin = loaded.plugin.clone();
        self.current.store(Some(Arc::new(loaded)));
        *lazy = None;
        Ok(plugin)
    }
}

/// The dispatch context as a plugin sees it.
pub(crate) fn context_data(call: &HookCall<'_>) -> HookContextData {
    let context = call.context;
    HookContextData {
        execution_id: context.execution_id().to_string(),
        tenant: context.tenant().to_owned(),
        user_id: context.user_id().map(str::to_owned),
        session_id: context.session_id().map(str::to_owned),
        timestamp_ms: context
            .timestamp()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        state: Value::Object(context.state().snapshot()).to_string(),
    }
}

/// Hook handler of a sandboxed (or native) plugin.
pub(crate) struct SlotHandler {
    pub(crate) slot: Arc<PluginSlot>,
    /// The handler's timeout. The sandbox gets it cut to the call's
    /// [`HookCall::time_limit`] (what the chain budget leaves), so that it
    /// stops the plugin at the deadline the dispatcher enforces.
    pub(crate) timeout: Duration,
}

impl HookHandler for SlotHandler {
    fn call<'a>(&'a self, call: HookCall<'a>) -> HandlerFuture<'a> {
        HandlerFuture::new(async move {
            let plugin = self.slot.plugin().await.map_err(handler_error)?;
            let data = call.data.to_string();
            let context = context_data(&call);
            let response = plugin
                .handle_hook(tenon_sandbox::HookCall {
                    hook: call.hook,
                    context: &context,
                    data: &data,
                    options: CallOptions {
                        timeout: Some(
                            call.time_limit
                                .map_or(self.timeout, |limit| limit.min(self.timeout)),
                        ),
                        ..CallOptions::default()
                    },
                })
                .await
                .map_err(handler_error)?;
            match response {
                HookResponse::Continue { patch: None } => Ok(HookAction::CONTINUE),
                HookResponse::Continue { patch: Some(patch) } => serde_json::from_str(&patch)
                    .map(HookAction::patch)
                    .map_err(|e| {
                        HandlerError::new(format!(
                            "plugin {} returned a patch that is not JSON: {e}",
                            self.slot.id
                        ))
                        .with_kind(ErrorKind::InvalidOutput)
                    }),
                HookResponse::Block { reason } => Ok(HookAction::Block { reason }),
            }
        })
    }
}

fn handler_error(error: SandboxError) -> HandlerError {
    crate::activate::handler_error(&error)
}

/// A `plugin-id:command` served by a plugin's exported function (JSON in,
/// JSON out).
pub(crate) struct SlotCommand {
    pub(crate) slot: Arc<PluginSlot>,
    pub(crate) function: String,
}

impl CommandHandler for SlotCommand {
    fn call(&self, input: Value) -> BoxFuture<'_, Result<Value, HandlerError>> {
        Box::pin(async move {
            let plugin = self.slot.plugin().await.map_err(handler_error)?;
            let bytes = serde_json::to_vec(&input).map_err(|e| HandlerError::new(e.to_string()))?;
            let output = plugin
                .call(&self.function, &bytes, CallOptions::default())
                .await
                .map_err(handler_error)?;
            if output.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&output).map_err(|e| {
                HandlerError::new(format!(
                    "{}:{} answered with something that is not JSON: {e}",
                    self.slot.id, self.function
                ))
                .with_kind(ErrorKind::InvalidOutput)
            })
        })
    }
}
