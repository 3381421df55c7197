//! Host service calls at the boundary: the method looked up, its permission
//! checked (a refusal is a denial like any other), the input's size and
//! schema checked before the host's handler runs, the handler bounded by the
//! call's deadline, and its answer checked against the output schema.

use serde_json::Value;
use tenon_manifest::SchemaViolation;

use super::{Boundary, CallScope, bounded};
use crate::host::HostError;
use crate::limits::cut;
use crate::services::{Lookup, ServiceMethod};

/// The most schema violations one error lists.
const MAX_LISTED: usize = 5;

impl Boundary {
    /// Calls `method` of the host service `service` with `input`, JSON text
    /// as plugins send it; answers the output as JSON text.
    pub async fn call_service_json(
        &self,
        call: &CallScope,
        service: &str,
        method: &str,
        input: &str,
    ) -> Result<String, HostError> {
        self.check_payload(service, method, "input", input.len())?;
        let found = self.service_method(call, service, method)?;
        let input: Value = serde_json::from_str(input).map_err(|e| {
            HostError::InvalidInput(format!(
                "the input to `{}` is not JSON: {e}",
                name(service, method)
            ))
        })?;
        let output = self
            .run_service(call, found, service, method, input)
            .await?;
        let text = serde_json::to_string(&output).map_err(|e| {
            HostError::Unavailable(format!(
                "the answer of `{}` cannot be encoded: {e}",
                name(service, method)
            ))
        })?;
        self.check_payload(service, method, "answer", text.len())?;
        Ok(text)
    }

    /// Calls `method` of the host service `service` with `input` (for
    /// runtimes that hold values, the native one).
    pub async fn call_service(
        &self,
        call: &CallScope,
        service: &str,
        method: &str,
        input: Value,
    ) -> Result<Value, HostError> {
        let len = serde_json::to_vec(&input).map(|v| v.len()).unwrap_or(0);
        self.check_payload(service, method, "input", len)?;
        let found = self.service_method(call, service, method)?;
        let output = self
            .run_service(call, found, service, method, input)
            .await?;
        let len = serde_json::to_vec(&output).map(|v| v.len()).unwrap_or(0);
        self.check_payload(service, method, "answer", len)?;
        Ok(output)
    }

    fn check_payload(
        &self,
        service: &str,
        method: &str,
        what: &str,
        len: usize,
    ) -> Result<(), HostError> {
        let limit = self.config.max_service_payload;
        if len > limit {
            return Err(HostError::QuotaExceeded(format!(
                "the {what} of `{}` is {len} bytes; the limit is {limit}",
                name(service, method)
            )));
        }
        Ok(())
    }

    /// The method the caller may call, or why not (an unknown name is bad
    /// input; a missing grant is a denial, reported).
    fn service_method(
        &self,
        call: &CallScope,
        service: &str,
        method: &str,
    ) -> Result<&ServiceMethod, HostError> {
        let shown_service = cut(service, 128);
        let shown = name(service, method);
        let found = match self.host.services().lookup(service, method) {
            Lookup::Found(found) => found,
            Lookup::NoService(known) => {
                return Err(HostError::InvalidInput(format!(
                    "the host offers no service `{shown_service}`{}",
                    offered(service, &known, "it offers no service")
                )));
            }
            Lookup::NoMethod(known) => {
                return Err(HostError::InvalidInput(format!(
                    "the service `{shown_service}` has no method `{}`{}",
                    cut(method, 128),
                    offered(method, &known, "")
                )));
            }
        };
        let permission = found.permission();
        if !permission.held_by(&self.caller.permissions) {
            let missing = match permission.action() {
                Some(action) => format!(
                    "permissions.{} does not grant `{action}`",
                    permission.kind()
                ),
                None => format!("permissions.{} is not granted whole", permission.kind()),
            };
            return Err(self.deny(
                call,
                permission.kind(),
                format!("call service `{shown}`"),
                format!(
                    "`{shown}` needs `{permission}` and {missing} (declare `{}` and have it granted)",
                    permission.manifest_form()
                ),
            ));
        }
        Ok(found)
    }

    /// Checks the input, runs the handler under the call's deadline, checks
    /// the answer.
    async fn run_service(
        &self,
        call: &CallScope,
        found: &ServiceMethod,
        service: &str,
        method: &str,
        input: Value,
    ) -> Result<Value, HostError> {
        let shown = name(service, method);
        let problems = found.input_schema().check(&input, "input");
        if !problems.is_empty() {
            return Err(HostError::InvalidInput(format!(
                "the input to `{shown}` does not fit its schema: {}",
                listed(&problems)
            )));
        }
        let what = format!("service `{shown}`");
        let answer = bounded(call, &what, async {
            found
                .handler()
                .call(&self.caller, input)
                .await
                .map_err(|e| HostError::Unavailable(format!("`{shown}` failed: {e}")))
        })
        .await?;
        let problems = found.output_schema().check(&answer, "output");
        if !problems.is_empty() {
            tracing::error!(
                service = %shown,
                plugin = %self.caller.plugin,
                problems = %listed(&problems),
                "a host service answered outside its output schema"
            );
            return Err(HostError::Unavailable(format!(
                "the host's answer to `{shown}` does not fit its output schema (a fault of the host, not the plugin): {}",
                listed(&problems)
            )));
        }
        Ok(answer)
    }
}

/// `service.method`, each part cut for display.
fn name(service: &str, method: &str) -> String {
    format!("{}.{}", cut(service, 128), cut(method, 128))
}

/// `; did you mean …; it offers: …` for an unknown `asked` among `known`.
fn offered(asked: &str, known: &[&str], none: &str) -> String {
    if known.is_empty() {
        return if none.is_empty() {
            String::new()
        } else {
            format!(": {none}")
        };
    }
    let close = tenon_types::similar(asked, known.iter().copied());
    let hint = match close.first() {
        Some(close) => format!("; did you mean `{close}`?"),
        None => String::new(),
    };
    format!("{hint} (it offers: {})", known.join(", "))
}

/// The first violations (each names its path), `; `-separated, with how many more there are.
fn listed(problems: &[SchemaViolation]) -> String {
    let mut text = problems
        .iter()
        .take(MAX_LISTED)
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > MAX_LISTED {
        text.push_str(&format!("; and {} more", problems.len() - MAX_LISTED));
    }
    text
}
