//! The hook protocol of Extism plugins: JSON in, JSON out.
//!
//! `handle_hook` receives
//! `{"hook": …, "context": {"execution_id", "tenant", "user_id", "session_id",
//! "timestamp_ms", "state"}, "data": …}` and answers
//! `{"action": "continue", "patch"?: …}` or `{"action": "block", "reason"?: …}`
//! (an empty answer means `continue`). A failure is an Extism error; when its
//! text is `{"code": …, "message": …}` the code is kept.
//!
//! `handle_request` receives `{"function": …, "method": …, "path": …,
//! "query": …, "headers": [[name, value], …], "body": …}` (`body_base64`
//! instead of `body` when the body is not UTF-8) and answers
//! `{"status": …, "headers"?: [[name, value], …], "body"?: …}` or
//! `body_base64` instead of `body` (docs/extism.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::runtime::{EndpointRequest, EndpointResponse, HookCall, HookResponse};

/// The input of `handle_hook`. `data` and `context.state` are JSON already
/// and are embedded as they are.
pub(super) fn hook_input(call: &HookCall<'_>) -> Vec<u8> {
    let context = call.context;
    let json_or = |text: &str, empty: &'static str| -> String {
        if text.trim().is_empty() {
            empty.to_owned()
        } else {
            text.to_owned()
        }
    };
    let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    let optional = |s: &Option<String>| s.as_deref().map_or_else(|| "null".to_owned(), string);
    let mut out = String::with_capacity(160 + call.data.len() + context.state.len());
    out.push_str("{\"hook\":");
    out.push_str(&string(call.hook));
    out.push_str(",\"context\":{\"execution_id\":");
    out.push_str(&string(&context.execution_id));
    out.push_str(",\"tenant\":");
    out.push_str(&string(&context.tenant));
    out.push_str(",\"user_id\":");
    out.push_str(&optional(&context.user_id));
    out.push_str(",\"session_id\":");
    out.push_str(&optional(&context.session_id));
    out.push_str(",\"timestamp_ms\":");
    out.push_str(&context.timestamp_ms.to_string());
    out.push_str(",\"state\":");
    out.push_str(&json_or(&context.state, "{}"));
    out.push_str("},\"data\":");
    out.push_str(&json_or(call.data, "null"));
    out.push('}');
    out.into_bytes()
}

/// `handle_hook`'s answer as written. The patch is checked to be JSON but
/// kept as text: the dispatcher parses it once, where it applies it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HookAnswer {
    action: Action,
    #[serde(default)]
    patch: Option<Box<RawValue>>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Action {
    Continue,
    Block,
}

/// Reads `handle_hook`'s answer; the error says what is wrong with it.
pub(super) fn hook_output(output: &[u8]) -> Result<HookResponse, String> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return Ok(HookResponse::Continue { patch: None });
    }
    let expected = |problem: &dyn std::fmt::Display| {
        format!(
            "handle_hook must answer {{\"action\": \"continue\", \"patch\"?: …}} or \
             {{\"action\": \"block\", \"reason\"?: \"…\"}}: {problem}"
        )
    };
    let answer: HookAnswer = serde_json::from_slice(output).map_err(|e| expected(&e))?;
    match answer {
        HookAnswer {
            action: Action::Continue,
            patch,
            reason: None,
        } => Ok(HookResponse::Continue {
            patch: patch
                .filter(|p| p.get() != "null")
                .map(|p| p.get().to_owned()),
        }),
        HookAnswer {
            action: Action::Block,
            patch: None,
            reason,
        } => Ok(HookResponse::Block { reason }),
        HookAnswer {
            action: Action::Continue,
            ..
        } => Err(expected(&"unknown field `reason` with `continue`")),
        HookAnswer { .. } => Err(expected(&"unknown field `patch` with `block`")),
    }
}

/// The input of `handle_request`.
pub(super) fn request_input(request: &EndpointRequest) -> Vec<u8> {
    #[derive(Serialize)]
    struct Input<'a> {
        function: &'a str,
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a [(String, String)],
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_base64: Option<String>,
    }
    let text = std::str::from_utf8(&request.body).ok();
    let input = Input {
        function: &request.function,
        method: &request.method,
        path: &request.path,
        query: &request.query,
        headers: &request.headers,
        body: text,
        body_base64: text.is_none().then(|| STANDARD.encode(&request.body)),
    };
    // Strings and pairs of strings always serialize.
    serde_json::to_vec(&input).unwrap_or_default()
}

/// `handle_request`'s answer as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestAnswer {
    status: u16,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

/// Reads `handle_request`'s answer; the error says what is wrong with it.
pub(super) fn request_output(output: &[u8]) -> Result<EndpointResponse, String> {
    let expected = |problem: &dyn std::fmt::Display| {
        format!(
            "handle_request must answer {{\"status\": 200, \"headers\"?: [[\"name\", \"value\"]], \
             \"body\"?: \"…\" or \"body_base64\"?: \"…\"}}: {problem}"
        )
    };
    let answer: RequestAnswer = serde_json::from_slice(output).map_err(|e| expected(&e))?;
    let body = match (answer.body, answer.body_base64) {
        (Some(_), Some(_)) => return Err(expected(&"both `body` and `body_base64`")),
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| expected(&format_args!("`body_base64` is not base64: {e}")))?,
        (None, None) => Vec::new(),
    };
    if !(100..=599).contains(&answer.status) {
        return Err(expected(&format_args!(
            "status {} is not between 100 and 599",
            answer.status
        )));
    }
    Ok(EndpointResponse {
        status: answer.status,
        headers: answer.headers,
        body,
    })
}

/// A plugin's error text, split into a code and a message when it is
/// `{"code": …, "message": …}`.
pub(super) fn plugin_error(text: &str) -> (String, String) {
    #[derive(Deserialize)]
    struct Coded {
        code: String,
        message: String,
    }
    match serde_json::from_str::<Coded>(text) {
        Ok(coded) => (coded.code, coded.message),
        Err(_) => ("error".to_owned(), text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{CallOptions, HookContextData};

    #[test]
    fn hook_input_is_json_with_the_data_embedded() {
        let context = HookContextData {
            execution_id: "ex-1".to_owned(),
            tenant: "acme \"corp\"".to_owned(),
            user_id: Some("u1".to_owned()),
            session_id: None,
            timestamp_ms: 42,
            state: String::new(),
        };
        let call = HookCall {
            hook: "message.pre_send",
            context: &context,
            data: r#"{"text":"hi"}"#,
            options: CallOptions::default(),
        };
        let value: serde_json::Value = serde_json::from_slice(&hook_input(&call)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "hook": "message.pre_send",
                "context": {
                    "execution_id": "ex-1",
                    "tenant": "acme \"corp\"",
                    "user_id": "u1",
                    "session_id": null,
                    "timestamp_ms": 42,
                    "state": {}
                },
                "data": {"text": "hi"}
            })
        );
    }

    #[test]
    fn hook_answers() {
        let check = |output: &str, expected: Result<HookResponse, &str>| {
            let got = hook_output(output.as_bytes());
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{output}"),
                (Err(got), Err(expected)) => assert!(got.contains(expected), "{output}: {got}"),
                (got, expected) => panic!("{output}: got {got:?}, expected {expected:?}"),
            }
        };
        let cont = |patch: Option<&str>| HookResponse::Continue {
            patch: patch.map(str::to_owned),
        };
        check("", Ok(cont(None)));
        check(" \n", Ok(cont(None)));
        check(r#"{"action":"continue"}"#, Ok(cont(None)));
        check(r#"{"action":"continue","patch":null}"#, Ok(cont(None)));
        check(
            r#"{"action":"continue","patch":{"text":"[redacted]"}}"#,
            Ok(cont(Some(r#"{"text":"[redacted]"}"#))),
        );
        check(
            r#"{"action":"block","reason":"spam"}"#,
            Ok(HookResponse::Block {
                reason: Some("spam".to_owned()),
            }),
        );
        check(
            r#"{"action":"block"}"#,
            Ok(HookResponse::Block { reason: None }),
        );
        check(r#"{"action":"explode"}"#, Err("handle_hook must answer"));
        check(
            r#"{"action":"continue","patches":{}}"#,
            Err("unknown field"),
        );
        check("not json", Err("handle_hook must answer"));
    }

    #[test]
    fn request_input_carries_text_or_base64_bodies() {
        let mut request = EndpointRequest {
            function: "greet".to_owned(),
            method: "POST".to_owned(),
            path: "/hello".to_owned(),
            query: "a=1".to_owned(),
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: b"hi \"you\"".to_vec(),
        };
        let value: serde_json::Value = serde_json::from_slice(&request_input(&request)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "function": "greet", "method": "POST", "path": "/hello", "query": "a=1",
                "headers": [["content-type", "text/plain"]], "body": "hi \"you\""
            })
        );
        request.body = vec![0xff, 0x00];
        let value: serde_json::Value = serde_json::from_slice(&request_input(&request)).unwrap();
        assert_eq!(value["body_base64"], "/wA=");
        assert!(value.get("body").is_none());
    }

    #[test]
    fn request_answers() {
        let answer = request_output(br#"{"status":201,"headers":[["x-a","b"]],"body":"ok"}"#);
        assert_eq!(
            answer,
            Ok(EndpointResponse {
                status: 201,
                headers: vec![("x-a".to_owned(), "b".to_owned())],
                body: b"ok".to_vec(),
            })
        );
        assert_eq!(
            request_output(br#"{"status":200,"body_base64":"/wA="}"#).map(|r| r.body),
            Ok(vec![0xff, 0x00])
        );
        for (bad, says) in [
            (&br#"{"status":99}"#[..], "between 100 and 599"),
            (br#"{"status":200,"body":"a","body_base64":"YQ=="}"#, "both"),
            (br#"{"status":200,"body_base64":"%%"}"#, "not base64"),
            (br#"{"status":200,"cookies":1}"#, "unknown field"),
            (b"", "handle_request must answer"),
        ] {
            let error = request_output(bad).unwrap_err();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn plugin_errors_keep_their_code() {
        assert_eq!(
            plugin_error(r#"{"code":"invalid-config","message":"no url"}"#),
            ("invalid-config".to_owned(), "no url".to_owned())
        );
        assert_eq!(
            plugin_error("something broke"),
            ("error".to_owned(), "something broke".to_owned())
        );
    }
}
