//! The glue between the generated WIT bindings and a [`Plugin`]; reached only
//! through [`export!`](crate::export). Not public API.
//!
//! The instance's plugin value lives in a thread-local slot (a WebAssembly
//! instance is single-threaded). The entry points below are
//! target-independent so that the lifecycle rules are tested natively; the
//! `Adapter` turns the generated types into the SDK's and back.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::{Config, Error, HookAction, HookContext, HookData, Plugin};

#[cfg(target_arch = "wasm32")]
#[allow(missing_docs, unreachable_pub, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/tenon-plugin-1.0.0",
        world: "tenon:plugin/stateful-plugin@1.0.0",
        pub_export_macro: true,
        export_macro_name: "__export_tenon_plugin",
        default_bindings_module: "tenon_pdk::__private::bindings",
    });
}

/// The state of this instance's plugin value.
enum Slot {
    /// Not activated (or deactivated).
    Empty,
    /// Not activated, but state was restored: it is handed to the plugin as
    /// soon as it is activated.
    Restored(Vec<u8>),
    /// Activated.
    Active(Box<dyn Any>),
}

thread_local! {
    static SLOT: RefCell<Slot> = const { RefCell::new(Slot::Empty) };
}

fn with_active<P: Plugin, R>(f: impl FnOnce(&mut P) -> Result<R, Error>) -> Result<R, Error> {
    SLOT.with_borrow_mut(|slot| match slot {
        Slot::Active(plugin) => match plugin.downcast_mut::<P>() {
            Some(plugin) => f(plugin),
            None => Err(Error::internal(
                "the instance holds a plugin of another type: `export!` was used twice",
            )),
        },
        Slot::Empty | Slot::Restored(_) => Err(Error::not_activated()),
    })
}

/// Creates the plugin (replacing a previous one) and hands it any state
/// restored before activation. State the plugin cannot read fails the
/// activation and is dropped, so that the next activation starts clean.
pub fn activate<P: Plugin>(config: &str) -> Result<(), Error> {
    let config = Config::from_json(config)?;
    let mut plugin = P::activate(config)?;
    if let Slot::Restored(state) = SLOT.replace(Slot::Empty) {
        plugin.restore(&state)?;
    }
    SLOT.set(Slot::Active(Box::new(plugin)));
    Ok(())
}

/// Delivers a changed config.
pub fn configure<P: Plugin>(config: &str) -> Result<(), Error> {
    let config = Config::from_json(config)?;
    with_active(|plugin: &mut P| plugin.configure(config))
}

/// Stops the plugin and drops it, even when its `deactivate` fails.
pub fn deactivate<P: Plugin>() -> Result<(), Error> {
    let result = with_active(|plugin: &mut P| plugin.deactivate());
    SLOT.set(Slot::Empty);
    result
}

/// Handles one hook.
pub fn handle_hook<P: Plugin>(
    hook: &str,
    context: &HookContext,
    data: String,
) -> Result<HookAction, Error> {
    with_active(|plugin: &mut P| plugin.handle_hook(hook, context, HookData::new(data)))
}

/// Calls a function.
pub fn call<P: Plugin>(function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
    with_active(|plugin: &mut P| plugin.call(function, input))
}

/// Exports state.
pub fn snapshot<P: Plugin>() -> Result<Option<Vec<u8>>, Error> {
    with_active(|plugin: &mut P| plugin.snapshot())
}

/// Imports state, now or at activation.
pub fn restore<P: Plugin>(state: Vec<u8>) -> Result<(), Error> {
    if SLOT.with_borrow(|slot| matches!(slot, Slot::Active(_))) {
        with_active(|plugin: &mut P| plugin.restore(&state))
    } else {
        SLOT.set(Slot::Restored(state));
        Ok(())
    }
}

/// The type `export!` hands to the generated bindings: it implements the WIT
/// exports for any [`Plugin`].
pub struct Adapter<P>(PhantomData<P>);

/// Checks, in native builds, that `export!` names a [`Plugin`].
pub fn assert_plugin<P: Plugin>() {}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::sync::Once;

    use super::bindings::exports::tenon::plugin::{guest, state};
    use super::bindings::tenon::plugin::types;
    use super::*;

    /// Sends panic messages to the plugin's log before the instance traps,
    /// so that the operator sees why.
    fn install_panic_hook() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::host::log::with_fields(
                    crate::host::log::Level::Error,
                    &format!("plugin {info}"),
                    &[("panic", "true")],
                );
            }));
        });
    }

    fn plugin_error(error: Error) -> types::PluginError {
        types::PluginError {
            code: error.code().to_owned(),
            message: error.message().to_owned(),
        }
    }

    fn action(action: HookAction) -> types::HookAction {
        match action {
            HookAction::Continue { patch } => {
                types::HookAction::Continue(patch.map(|p| p.to_string()))
            }
            HookAction::Block { reason } => types::HookAction::Block(reason),
        }
    }

    impl<P: Plugin> guest::Guest for Adapter<P> {
        fn activate(config: String) -> Result<(), types::PluginError> {
            install_panic_hook();
            activate::<P>(&config).map_err(plugin_error)
        }

        fn configure(config: String) -> Result<(), types::PluginError> {
            install_panic_hook();
            configure::<P>(&config).map_err(plugin_error)
        }

        fn deactivate() -> Result<(), types::PluginError> {
            install_panic_hook();
            deactivate::<P>().map_err(plugin_error)
        }

        fn handle_hook(
            hook: String,
            context: types::HookContext,
            data: String,
        ) -> Result<types::HookAction, types::PluginError> {
            install_panic_hook();
            let context = HookContext {
                execution_id: context.execution_id,
                tenant: context.tenant,
                user_id: context.user_id,
                session_id: context.session_id,
                timestamp_ms: context.timestamp_ms,
                state: context.state,
            };
            handle_hook::<P>(&hook, &context, data)
                .map(action)
                .map_err(plugin_error)
        }

        fn call(function: String, input: Vec<u8>) -> Result<Vec<u8>, types::PluginError> {
            install_panic_hook();
            call::<P>(&function, &input).map_err(plugin_error)
        }
    }

    impl<P: Plugin> state::Guest for Adapter<P> {
        fn snapshot() -> Result<Option<Vec<u8>>, types::PluginError> {
            install_panic_hook();
            snapshot::<P>().map_err(plugin_error)
        }

        fn restore(state: Vec<u8>) -> Result<(), types::PluginError> {
            install_panic_hook();
            restore::<P>(state).map_err(plugin_error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts calls and keeps a tally that survives snapshot/restore.
    struct Tally {
        prefix: String,
        seen: u32,
    }

    impl Plugin for Tally {
        fn activate(config: Config) -> Result<Self, Error> {
            Ok(Self {
                prefix: config.require("prefix")?,
                seen: 0,
            })
        }

        fn handle_hook(
            &mut self,
            hook: &str,
            _: &HookContext,
            _: HookData,
        ) -> Result<HookAction, Error> {
            self.seen += 1;
            HookAction::set("/seen", format!("{}{hook}:{}", self.prefix, self.seen))
        }

        fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
            match function {
                "seen" => Ok(self.seen.to_string().into_bytes()),
                "echo" => Ok(input.to_vec()),
                other => Err(Error::unknown_function(other)),
            }
        }

        fn snapshot(&self) -> Result<Option<Vec<u8>>, Error> {
            Ok(Some(self.seen.to_string().into_bytes()))
        }

        fn restore(&mut self, state: &[u8]) -> Result<(), Error> {
            self.seen = std::str::from_utf8(state)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::invalid_input("not a tally"))?;
            Ok(())
        }
    }

    fn seen() -> String {
        String::from_utf8(call::<Tally>("seen", b"").unwrap()).unwrap()
    }

    // The slot is thread-local and the test harness runs each test on its
    // own thread, so tests do not see each other's plugins.

    #[test]
    fn calls_before_activation_are_refused() {
        let context = HookContext::default();
        let error = handle_hook::<Tally>("a", &context, "{}".into()).unwrap_err();
        assert_eq!(error.code(), "not-activated");
        assert_eq!(
            call::<Tally>("seen", b"").unwrap_err().code(),
            "not-activated"
        );
        assert_eq!(
            configure::<Tally>("{}").unwrap_err().code(),
            "not-activated"
        );
        assert_eq!(
            activate::<Tally>("{}").unwrap_err().code(),
            "invalid-config"
        );
        assert_eq!(
            activate::<Tally>("[]").unwrap_err().code(),
            "invalid-config"
        );
    }

    #[test]
    fn state_lives_across_calls_until_deactivation() {
        activate::<Tally>(r#"{"prefix": "p-"}"#).unwrap();
        let context = HookContext::default();
        handle_hook::<Tally>("a", &context, "{}".into()).unwrap();
        let action = handle_hook::<Tally>("b", &context, "{}".into()).unwrap();
        assert_eq!(
            action,
            HookAction::patch(serde_json::json!({"seen": "p-b:2"}))
        );
        assert_eq!(call::<Tally>("echo", b"xyz").unwrap(), b"xyz");
        assert_eq!(
            call::<Tally>("nope", b"").unwrap_err().code(),
            "unknown-function"
        );
        // The default `configure` re-activates, which resets the tally.
        configure::<Tally>(r#"{"prefix": "q-"}"#).unwrap();
        assert_eq!(seen(), "0");
        deactivate::<Tally>().unwrap();
        assert_eq!(seen_error(), "not-activated");
    }

    fn seen_error() -> String {
        call::<Tally>("seen", b"").unwrap_err().code().to_owned()
    }

    #[test]
    fn snapshots_restore_before_or_after_activation() {
        activate::<Tally>(r#"{"prefix": ""}"#).unwrap();
        restore::<Tally>(b"41".to_vec()).unwrap();
        assert_eq!(seen(), "41");
        let state = snapshot::<Tally>().unwrap().unwrap();
        deactivate::<Tally>().unwrap();

        // A reload: the new instance gets the state first, then activation.
        restore::<Tally>(state).unwrap();
        assert_eq!(seen_error(), "not-activated");
        activate::<Tally>(r#"{"prefix": ""}"#).unwrap();
        assert_eq!(seen(), "41");

        // State the plugin cannot read fails activation and is dropped.
        deactivate::<Tally>().unwrap();
        restore::<Tally>(b"garbage".to_vec()).unwrap();
        let error = activate::<Tally>(r#"{"prefix": ""}"#).unwrap_err();
        assert_eq!(error.code(), "invalid-input");
        assert_eq!(seen_error(), "not-activated");
        activate::<Tally>(r#"{"prefix": ""}"#).unwrap();
        assert_eq!(seen(), "0");
    }
}
