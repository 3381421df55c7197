//! The trait a plugin implements.

use crate::{Config, Error, HookAction, HookContext, HookData};

/// A Tenon plugin. Implement it, then export the type with
/// [`export!`](crate::export).
///
/// The SDK keeps one value of the type per WebAssembly instance: the host
/// calls [`activate`](Plugin::activate) to create it, and every later call of
/// that instance (hooks, functions, reconfiguration) gets `&mut self`, so
/// fields keep state between calls. The host may run several instances of a
/// plugin at once (`limits.max_instances`) or a fresh one per call
/// (`limits.isolation = "fresh"`): state that must be shared or must last
/// belongs in [`host::kv`](crate::host::kv).
///
/// Every method but `activate` has a default, so a plugin implements only
/// what it uses.
pub trait Plugin: Sized + 'static {
    /// Creates the plugin from its config (the manifest's defaults applied,
    /// secrets left out). An error keeps the plugin inactive and is shown to
    /// the operator: check the config here.
    fn activate(config: Config) -> Result<Self, Error>;

    /// Takes a changed config without a restart. The default builds the
    /// plugin anew with [`activate`](Plugin::activate), which drops in-memory
    /// state; override it to keep some.
    fn configure(&mut self, config: Config) -> Result<(), Error> {
        *self = Self::activate(config)?;
        Ok(())
    }

    /// Stops the plugin; the value is dropped afterwards.
    fn deactivate(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Handles one hook: `hook` is its name (see [`hooks`](crate::hooks)),
    /// `data` its JSON data as it stands. Return [`HookAction::CONTINUE`],
    /// a patch, or a block.
    ///
    /// The default refuses every hook: a plugin that declares `[[hooks]]` in
    /// its manifest implements this.
    fn handle_hook(
        &mut self,
        hook: &str,
        context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        let _ = (context, data);
        Err(Error::unsupported_hook(hook))
    }

    /// Answers a named function call (commands, endpoints, direct calls),
    /// bytes in and out; [`json::decode`](crate::json::decode) and
    /// [`json::encode`](crate::json::encode) help with JSON.
    ///
    /// The default knows no function.
    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = input;
        Err(Error::unknown_function(function))
    }

    /// Exports in-memory state to carry across an upgrade or hot reload, or
    /// `None` (the default) when there is nothing to carry.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    /// Imports state from [`snapshot`](Plugin::snapshot), possibly exported
    /// by an older version of the plugin: accept what you can read. Called
    /// after `activate`. The default ignores it.
    fn restore(&mut self, state: &[u8]) -> Result<(), Error> {
        let _ = state;
        Ok(())
    }
}
