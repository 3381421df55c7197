//! {{title}}: a Tenon plugin.
//!
//! On `response.pre_deliver` it appends the configured signature to the
//! response, or blocks the response when it is empty; `greet` answers
//! `Hello, <input>!`. See the tenon-pdk documentation for every hook, the
//! host API (log, config, kv, http, events) and the mock host of its tests.

use tenon_pdk::hooks::{self, ResponsePreDeliver};
use tenon_pdk::host::log;
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// The plugin's state: its config, read at activation.
pub struct Signer {
    signature: String,
}

impl Plugin for Signer {
    fn activate(config: Config) -> Result<Self, Error> {
        let signature = config.get_or("signature", "-- sent by {{name}}".to_owned())?;
        log::info!("activated with signature {signature:?}");
        Ok(Self { signature })
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        match hook {
            hooks::RESPONSE_PRE_DELIVER => {
                let response: ResponsePreDeliver = data.parse()?;
                if response.content.trim().is_empty() {
                    return Ok(HookAction::block("the response is empty"));
                }
                let signed = format!("{}\n\n{}", response.content, self.signature);
                HookAction::set("/content", signed)
            }
            other => Err(Error::unsupported_hook(other)),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "greet" => {
                let name = std::str::from_utf8(input)
                    .map_err(|_| Error::invalid_input("`greet` takes a name as UTF-8 text"))?;
                Ok(format!("Hello, {name}!").into_bytes())
            }
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Signer);
