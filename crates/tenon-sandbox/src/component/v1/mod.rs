//! `tenon:plugin@1.x`: the bindings of the WIT world, the host side of its
//! `host` interface (everything goes through the [`crate::Boundary`]), and
//! the calls into its `guest` and `state` exports.
//!
//! A later `tenon:plugin@2.0.0` gets a sibling module `v2` with the same
//! shape; [`super::version`] picks the module a component needs.

mod host;

use wasmtime::component::{
    ComponentExportIndex, ComponentType, Func, HasSelf, InstancePre, Linker, Lower, TypedFunc,
};
use wasmtime::{AsContextMut, Store};

use super::store::StoreData;
use crate::runtime::{HookContextData, HookResponse};

wasmtime::component::bindgen!({
    world: "plugin",
    path: "wit/tenon-plugin-1.0.0",
    imports: { default: async },
    exports: { default: async },
});

use exports::tenon::plugin::guest::Guest;
pub(crate) use tenon::plugin::types::{HookAction, PluginError};

/// The version of the world this module serves.
pub(crate) const VERSION: tenon_manifest::Version = tenon_manifest::Version::new(1, 0, 0);

/// The name of the `guest` export.
const GUEST_EXPORT: &str = "tenon:plugin/guest@1.0.0";

/// The name of the optional `state` export.
pub(crate) const STATE_EXPORT: &str = "tenon:plugin/state@1.0.0";

/// Adds the `types` and `host` interfaces of `tenon:plugin@1.0.0` to
/// `linker` (`host` by hand: see [`host`]).
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    tenon::plugin::types::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
    host::add_to_linker(linker)
}

/// A component instantiated against `tenon:plugin@1.x`.
pub(crate) struct Bindings {
    plugin: Plugin,
    handle_hook: Func,
    state: Option<StateFuncs>,
}

/// `hook-context` lowered straight from borrowed strings, so that a hook
/// call copies its context into the guest without allocating on the host.
#[derive(ComponentType, Lower)]
#[component(record)]
struct HookContextRef<'a> {
    #[component(name = "execution-id")]
    execution_id: &'a str,
    tenant: &'a str,
    #[component(name = "user-id")]
    user_id: Option<&'a str>,
    #[component(name = "session-id")]
    session_id: Option<&'a str>,
    #[component(name = "timestamp-ms")]
    timestamp_ms: u64,
    state: &'a str,
}

type HookParams<'a> = (&'a str, HookContextRef<'a>, &'a str);
type HookResults = (Result<HookAction, PluginError>,);

/// Where the exports this module calls by hand are.
#[derive(Clone, Copy)]
pub(crate) struct ExportIndices {
    handle_hook: ComponentExportIndex,
    state: Option<StateIndices>,
}

/// Where the optional `state` export's functions are.
#[derive(Clone, Copy)]
struct StateIndices {
    snapshot: ComponentExportIndex,
    restore: ComponentExportIndex,
}

impl ExportIndices {
    fn find(component: &wasmtime::component::Component) -> wasmtime::Result<Self> {
        let guest = component
            .get_export_index(None, GUEST_EXPORT)
            .ok_or_else(|| wasmtime::format_err!("no `{GUEST_EXPORT}` export"))?;
        let handle_hook = component
            .get_export_index(Some(&guest), "handle-hook")
            .ok_or_else(|| wasmtime::format_err!("no `handle-hook` in `{GUEST_EXPORT}`"))?;
        let state = component
            .get_export_index(None, STATE_EXPORT)
            .and_then(|state| {
                Some(StateIndices {
                    snapshot: component.get_export_index(Some(&state), "snapshot")?,
                    restore: component.get_export_index(Some(&state), "restore")?,
                })
            });
        Ok(Self { handle_hook, state })
    }
}

type SnapshotFunc = TypedFunc<(), (Result<Option<Vec<u8>>, PluginError>,)>;

struct StateFuncs {
    snapshot: SnapshotFunc,
    restore: Func,
}

/// The pre-instantiated form of a `tenon:plugin@1.x` component.
#[derive(Clone)]
pub(crate) struct Pre {
    pre: InstancePre<StoreData>,
    indices: PluginIndices,
    exports: ExportIndices,
}

impl Pre {
    pub(crate) fn new(pre: InstancePre<StoreData>) -> wasmtime::Result<Self> {
        let indices = PluginIndices::new(&pre)?;
        let exports = ExportIndices::find(pre.component())?;
        Ok(Self {
            pre,
            indices,
            exports,
        })
    }

    /// Whether the component exports the optional `state` interface.
    pub(crate) fn has_state(&self) -> bool {
        self.exports.state.is_some()
    }

    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<StoreData>,
    ) -> wasmtime::Result<Bindings> {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        let plugin = self.indices.load(&mut *store, &instance)?;
        let handle_hook = instance
            .get_func(&mut *store, self.exports.handle_hook)
            .ok_or_else(|| wasmtime::format_err!("`handle-hook` is not a function"))?;
        // Checked once here; each call then uses the same signature
        // unchecked.
        handle_hook.typed::<HookParams<'static>, HookResults>(&*store)?;
        let state = match self.exports.state {
            Some(ix) => {
                let restore = instance
                    .get_func(&mut *store, ix.restore)
                    .ok_or_else(|| wasmtime::format_err!("`restore` is not a function"))?;
                restore.typed::<(&[u8],), (Result<(), PluginError>,)>(&*store)?;
                Some(StateFuncs {
                    snapshot: instance.get_typed_func(&mut *store, ix.snapshot)?,
                    restore,
                })
            }
            None => None,
        };
        Ok(Bindings {
            plugin,
            handle_hook,
            state,
        })
    }
}

/// What the guest returned, in host terms.
pub(crate) type GuestResult<T> = Result<T, PluginError>;

impl Bindings {
    fn guest(&self) -> &Guest {
        self.plugin.tenon_plugin_guest()
    }

    pub(crate) async fn activate(
        &self,
        store: &mut Store<StoreData>,
        config: &String,
    ) -> wasmtime::Result<GuestResult<()>> {
        self.guest()
            .call_activate(store.as_context_mut(), config)
            .await
    }

    pub(crate) async fn configure(
        &self,
        store: &mut Store<StoreData>,
        config: &String,
    ) -> wasmtime::Result<GuestResult<()>> {
        self.guest()
            .call_configure(store.as_context_mut(), config)
            .await
    }

    pub(crate) async fn deactivate(
        &self,
        store: &mut Store<StoreData>,
    ) -> wasmtime::Result<GuestResult<()>> {
        self.guest().call_deactivate(store.as_context_mut()).await
    }

    #[allow(unsafe_code)]
    pub(crate) async fn handle_hook(
        &self,
        store: &mut Store<StoreData>,
        hook: &str,
        context: &HookContextData,
        data: &str,
    ) -> wasmtime::Result<GuestResult<HookResponse>> {
        let context = HookContextRef {
            execution_id: &context.execution_id,
            tenant: &context.tenant,
            user_id: context.user_id.as_deref(),
            session_id: context.session_id.as_deref(),
            timestamp_ms: context.timestamp_ms,
            state: &context.state,
        };
        // SAFETY: `instantiate` checked this function against exactly these
        // parameter and result types (`typed::<HookParams, HookResults>`);
        // only the lifetime of the borrowed parameters differs, and it does
        // not change the component-model type.
        let func =
            unsafe { TypedFunc::<HookParams<'_>, HookResults>::new_unchecked(self.handle_hook) };
        let (action,) = func
            .call_async(store.as_context_mut(), (hook, context, data))
            .await?;
        Ok(action.map(|action| match action {
            HookAction::Continue(patch) => HookResponse::Continue { patch },
            HookAction::Block(reason) => HookResponse::Block { reason },
        }))
    }

    pub(crate) async fn call(
        &self,
        store: &mut Store<StoreData>,
        function: &str,
        input: &[u8],
    ) -> wasmtime::Result<GuestResult<Vec<u8>>> {
        self.guest()
            .call_call(store.as_context_mut(), function, input)
            .await
    }

    /// `Ok(None)` when the component has no `state` export.
    pub(crate) async fn snapshot(
        &self,
        store: &mut Store<StoreData>,
    ) -> wasmtime::Result<GuestResult<Option<Vec<u8>>>> {
        let Some(state) = &self.state else {
            return Ok(Ok(None));
        };
        let (result,) = state
            .snapshot
            .call_async(store.as_context_mut(), ())
            .await?;
        Ok(result)
    }

    /// `None` when the component has no `state` export.
    pub(crate) async fn restore(
        &self,
        store: &mut Store<StoreData>,
        blob: &[u8],
    ) -> wasmtime::Result<Option<GuestResult<()>>> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        let func = state
            .restore
            .typed::<(&[u8],), (Result<(), PluginError>,)>(&*store)?;
        let (result,) = func.call_async(store.as_context_mut(), (blob,)).await?;
        Ok(Some(result))
    }
}

impl tenon::plugin::types::Host for StoreData {}
