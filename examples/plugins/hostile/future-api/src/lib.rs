//! Hostile test plugin: a component for `tenon:plugin@3.0.0` (its `wit/` is
//! the 1.0.0 world with the version changed). A host that serves only 1.x
//! must refuse it at load with a message naming 3.0.0 and the versions it
//! serves. Were it loaded, every call would answer `future-api`.

// The generated bindings export `unsafe extern "C"` functions.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    wit_bindgen::generate!({
        path: "wit",
        world: "tenon:plugin/stateful-plugin@3.0.0",
    });

    use exports::tenon::plugin::{guest, state};
    use tenon::plugin::types::{HookAction, HookContext, PluginError};

    struct FutureApi;

    fn refuse<T>() -> Result<T, PluginError> {
        Err(PluginError {
            code: "future-api".to_owned(),
            message: "built for tenon:plugin@3.0.0".to_owned(),
        })
    }

    impl guest::Guest for FutureApi {
        fn activate(_config: String) -> Result<(), PluginError> {
            refuse()
        }
        fn configure(_config: String) -> Result<(), PluginError> {
            refuse()
        }
        fn deactivate() -> Result<(), PluginError> {
            refuse()
        }
        fn handle_hook(
            _hook: String,
            _context: HookContext,
            _data: String,
        ) -> Result<HookAction, PluginError> {
            refuse()
        }
        fn call(_function: String, _input: Vec<u8>) -> Result<Vec<u8>, PluginError> {
            refuse()
        }
    }

    impl state::Guest for FutureApi {
        fn snapshot() -> Result<Option<Vec<u8>>, PluginError> {
            refuse()
        }
        fn restore(_state: Vec<u8>) -> Result<(), PluginError> {
            refuse()
        }
    }

    export!(FutureApi);
}
