//! Posts a JSON summary to a webhook on `response.post_deliver` and
//! `work_item.post_create`, through the host's HTTP API (only to allowlisted
//! hosts), with the secret `token` as a bearer token, and publishes a
//! `notifier.sent` event for each summary delivered.
//!
//! Config: `webhook_url` (required), `max_excerpt` (default 200); secret:
//! `token`.

use serde::Serialize;
use tenon_pdk::hooks::{self, ResponsePostDeliver, WorkItemPostCreate};
use tenon_pdk::host::{config, events, http, log};
use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// The notifier's settings.
pub struct Notifier {
    webhook_url: String,
    max_excerpt: usize,
}

/// What is posted.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    /// The hook that fired.
    pub hook: String,
    /// The tenant.
    pub tenant: String,
    /// The dispatch's execution id.
    pub execution_id: String,
    /// The work item concerned.
    pub work_item_id: String,
    /// What happened, in one line.
    pub text: String,
}

/// The first `max` characters of `text`, with `…` when cut.
fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl Notifier {
    /// The summary of one hook call.
    pub fn summarize(
        &self,
        hook: &str,
        context: &HookContext,
        data: &HookData,
    ) -> Result<Summary, Error> {
        let (work_item_id, text) = match hook {
            hooks::RESPONSE_POST_DELIVER => {
                let delivered: ResponsePostDeliver = data.parse()?;
                let text = format!(
                    "response delivered via {}: {}",
                    if delivered.plugin_type.is_empty() {
                        "the host"
                    } else {
                        &delivered.plugin_type
                    },
                    excerpt(&delivered.content, self.max_excerpt)
                );
                (delivered.work_item_id, text)
            }
            hooks::WORK_ITEM_POST_CREATE => {
                let created: WorkItemPostCreate = data.parse()?;
                let id = string_at(&created.work_item, "id");
                let title = string_at(&created.work_item, "title");
                (
                    id,
                    format!("work item created: {}", excerpt(&title, self.max_excerpt)),
                )
            }
            other => return Err(Error::unsupported_hook(other)),
        };
        Ok(Summary {
            hook: hook.to_owned(),
            tenant: context.tenant.clone(),
            execution_id: context.execution_id.clone(),
            work_item_id,
            text,
        })
    }
}

fn string_at(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Plugin for Notifier {
    fn activate(config: Config) -> Result<Self, Error> {
        let webhook_url: String = config.require("webhook_url")?;
        if !(webhook_url.starts_with("https://") || webhook_url.starts_with("http://")) {
            return Err(Error::invalid_config(format!(
                "webhook_url `{webhook_url}` must be an http or https URL"
            )));
        }
        let max_excerpt = config.get_or("max_excerpt", 200usize)?;
        Ok(Self {
            webhook_url,
            max_excerpt,
        })
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        let summary = self.summarize(hook, context, &data)?;
        let mut request = http::Request::new("POST", &self.webhook_url)
            .json(&summary)?
            .header("user-agent", "tenon-examples-notifier/0.1");
        // The token is a secret: it is not in the config, only behind the
        // host API (and only when granted).
        if let Some(token) = config::secret("token")? {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send()?;
        if !response.is_success() {
            return Err(Error::new(
                "delivery-failed",
                format!(
                    "the webhook answered {} to the {hook} summary: {}",
                    response.status,
                    excerpt(&response.text(), 200)
                ),
            ));
        }
        log::debug!("posted the {hook} summary ({})", response.status);
        // Observability only: a refused event does not undo the delivery.
        if let Err(error) = events::emit(
            "notifier.sent",
            &json!({"hook": hook, "work_item_id": summary.work_item_id, "status": response.status}),
        ) {
            log::warn!("could not publish notifier.sent: {error}");
        }
        Ok(HookAction::CONTINUE)
    }
}

tenon_pdk::export!(Notifier);

#[cfg(test)]
mod tests {
    use tenon_pdk::serde_json::json;

    use super::*;

    fn notifier() -> Notifier {
        Notifier::activate(
            Config::from_json(
                r#"{"webhook_url": "https://hooks.example.com/x", "max_excerpt": 5}"#,
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn summaries() {
        let context = HookContext {
            tenant: "acme".into(),
            execution_id: "ex-1".into(),
            ..HookContext::default()
        };
        let data = HookData::new(
            json!({"content": "hello world", "workItemId": "wi-9", "pluginType": "slack"})
                .to_string(),
        );
        let summary = notifier()
            .summarize(hooks::RESPONSE_POST_DELIVER, &context, &data)
            .unwrap();
        assert_eq!(summary.text, "response delivered via slack: hello…");
        assert_eq!(summary.work_item_id, "wi-9");
        assert_eq!(summary.tenant, "acme");

        let data = HookData::new(json!({"workItem": {"id": 7, "title": "Fix"}}).to_string());
        let summary = notifier()
            .summarize(hooks::WORK_ITEM_POST_CREATE, &context, &data)
            .unwrap();
        assert_eq!(
            (summary.work_item_id.as_str(), summary.text.as_str()),
            ("7", "work item created: Fix")
        );

        let error = notifier().summarize("x.y", &context, &data).unwrap_err();
        assert_eq!(error.code(), "unsupported-hook");
    }

    #[test]
    fn config_is_checked() {
        let check = |config: &str, code: &str| {
            let result = Notifier::activate(Config::from_json(config).unwrap());
            assert_eq!(
                result.err().map(|e| e.code().to_owned()).as_deref(),
                Some(code),
                "{config}"
            );
        };
        check("{}", "invalid-config");
        check(r#"{"webhook_url": "ftp://x"}"#, "invalid-config");
        check(r#"{"webhook_url": 5}"#, "invalid-config");
    }
}
