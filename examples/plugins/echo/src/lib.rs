//! The smallest useful plugin, for benchmarks and smoke tests.
//!
//! - hook `echo.parse`: parses the data as JSON, then continues;
//! - hook `echo.patch`: parses the data, then continues with the patch
//!   `{"echoed": true}`;
//! - any other hook (`echo.noop`, or any name a benchmark uses): continues at
//!   once without reading the data;
//! - `call("echo", x)` returns `x`; `call("parse", json)` returns the JSON
//!   re-encoded.

use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// Holds nothing.
pub struct Echo;

impl Plugin for Echo {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        match hook {
            "echo.parse" => {
                data.value()?;
                Ok(HookAction::CONTINUE)
            }
            "echo.patch" => {
                data.value()?;
                Ok(HookAction::patch(json!({"echoed": true})))
            }
            _ => Ok(HookAction::CONTINUE),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "echo" => Ok(input.to_vec()),
            "parse" => {
                let value: Value = tenon_pdk::json::decode(input)?;
                tenon_pdk::json::encode(&value)
            }
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Echo);
