//! Set-up shared by the sandbox benchmarks.

use std::sync::Arc;

use tenon_manifest::Manifest;
use tenon_sandbox::{Caller, HookContextData, LoadRequest, MemoryHost};

/// A load request for `manifest`'s plugin in the tenant `bench`, on a fresh
/// [`MemoryHost`].
pub(crate) fn request(manifest: &Manifest, module: &Arc<[u8]>) -> LoadRequest {
    let host = Arc::new(MemoryHost::new());
    LoadRequest {
        caller: Arc::new(Caller {
            plugin: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            tenant: "bench".to_owned(),
            permissions: Arc::new(manifest.permissions.clone()),
        }),
        manifest: Arc::new(manifest.clone()),
        module: module.clone(),
        host: host.clone(),
        observer: host,
        data_dir: None,
    }
}

/// The context every benchmarked hook call carries.
pub(crate) fn context() -> HookContextData {
    HookContextData {
        execution_id: "exec-1".to_owned(),
        tenant: "bench".to_owned(),
        user_id: Some("u-7".to_owned()),
        session_id: None,
        timestamp_ms: 1,
        state: "{}".to_owned(),
    }
}
