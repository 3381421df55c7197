//! Outbound HTTP through the host, to hosts allowlisted in
//! `permissions.network.outbound`.
//!
//! The host resolves the name and refuses loopback, private and link-local
//! addresses unless the plugin is allowed them; it caps the response size and
//! bounds the request by the calling hook's deadline.
//!
//! ```no_run
//! use tenon_pdk::host::http::{self, Request};
//! use tenon_pdk::serde_json::json;
//!
//! # fn main() -> Result<(), tenon_pdk::HostError> {
//! let response = http::post_json("https://hooks.example.com/notify", &json!({"text": "hi"}))?;
//! assert!(response.is_success());
//! let response = Request::new("PUT", "https://api.example.com/items/1")
//!     .header("authorization", "Bearer t0ken")
//!     .json(&json!({"done": true}))?
//!     .send()?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{HostError, sys};

/// An outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self, HostError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            HostError::InvalidInput(format!("the request body does not serialize: {e}"))
        })?;
        Ok(self.header("content-type", "application/json").body(bytes))
    }

    /// Sends it.
    pub fn send(self) -> Result<Response, HostError> {
        request(self)
    }
}

/// The response to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (at most the plugin's response size limit).
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HostError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HostError::Decode(format!(
                "the response body (status {}) is not JSON of the expected shape: {e}",
                self.status
            ))
        })
    }
}

/// Sends a request.
pub fn request(request: Request) -> Result<Response, HostError> {
    sys::http_request(request)
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HostError> {
    request(Request::new("GET", url))
}

/// `POST url` with a body.
pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Result<Response, HostError> {
    request(Request::new("POST", url).body(body))
}

/// `POST url` with a JSON body.
pub fn post_json<T: Serialize + ?Sized>(url: &str, body: &T) -> Result<Response, HostError> {
    Request::new("POST", url).json(body)?.send()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builds_requests_and_reads_responses() {
        let request = Request::new("POST", "https://x.example/")
            .header("x-token", "t")
            .json(&json!({"a": 1}))
            .unwrap();
        assert_eq!(request.body, br#"{"a":1}"#);
        assert_eq!(
            request.headers,
            [
                ("x-token".to_owned(), "t".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned())
            ]
        );
        let response = Response {
            status: 201,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"ok":true}"#.to_vec(),
        };
        assert!(response.is_success());
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            response.json::<serde_json::Value>().unwrap(),
            json!({"ok": true})
        );
        assert_eq!(response.text(), r#"{"ok":true}"#);
        let error = response.json::<Vec<u8>>().unwrap_err();
        assert!(matches!(error, HostError::Decode(_)), "{error}");
    }

    #[test]
    fn outside_a_host_requests_are_unavailable() {
        let error = get("https://x.example/").unwrap_err();
        assert!(matches!(error, HostError::Unavailable(_)), "{error}");
    }
}
