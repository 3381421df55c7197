//! A running plugin's endpoints and the version that declares them, taken
//! together, so that a request is routed and served by the same version.

use std::sync::Arc;

use tenon_manifest::{EndpointDecl, PluginId};
use tenon_sandbox::{Plugin, SandboxError};

use crate::slot::Loaded;
use crate::tenant::Running;

/// A running plugin's `[[endpoints]]` as one version declares them, with
/// that version (from [`PluginEngine::endpoint_routes`]). A request routed
/// by these endpoints is served by
/// [`PluginEngine::handle_request`](crate::PluginEngine::handle_request)
/// through the same version only: if an upgrade, rollback or reload
/// swapped the plugin in between, the call is refused as
/// [`SandboxError::NotRunning`] (the caller may retry), never handed to a
/// version whose routes (and their `auth`) may differ.
///
/// [`PluginEngine::endpoint_routes`]: crate::PluginEngine::endpoint_routes
pub struct EndpointRoutes {
    pub(crate) id: PluginId,
    running: Arc<Running>,
    /// The version loaded when the routes were read; `None` for a plugin
    /// waiting for its first use, whose routes are its enabled version's.
    loaded: Option<Arc<Loaded>>,
}

impl std::fmt::Debug for EndpointRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointRoutes")
            .field("id", &self.id)
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

impl EndpointRoutes {
    pub(crate) fn new(id: PluginId, running: Arc<Running>) -> Self {
        let loaded = running.slot.current();
        Self {
            id,
            running,
            loaded,
        }
    }

    /// The plugin.
    pub fn id(&self) -> &PluginId {
        &self.id
    }

    /// The endpoints, in declaration order.
    pub fn endpoints(&self) -> &[EndpointDecl] {
        match &self.loaded {
            Some(loaded) => &loaded.manifest.endpoints,
            None => &self.running.endpoints,
        }
    }

    /// The plugin to hand a request to: the version these routes came
    /// from, loading it first when it waited for its first use.
    pub(crate) async fn plugin(&self) -> Result<Arc<dyn Plugin>, SandboxError> {
        let swapped = || SandboxError::NotRunning {
            plugin: self.id.to_string(),
        };
        let plugin = match &self.loaded {
            Some(_) => None,
            None => Some(self.running.slot.plugin().await?),
        };
        let current = self.running.slot.current().ok_or_else(swapped)?;
        let same = match (&self.loaded, plugin) {
            (Some(loaded), _) => Arc::ptr_eq(loaded, &current),
            (None, Some(plugin)) => {
                Arc::ptr_eq(&plugin, &current.plugin)
                    && current.manifest.endpoints[..] == self.running.endpoints[..]
            }
            (None, None) => false,
        };
        if same {
            Ok(current.plugin.clone())
        } else {
            Err(swapped())
        }
    }
}
