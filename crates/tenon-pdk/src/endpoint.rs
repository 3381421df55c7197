//! A request to one of a plugin's HTTP endpoints, and its answer.

/// A request to one of the plugin's `[[endpoints]]`, as the host passes it
/// on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointRequest {
    /// The `function` of the endpoint the request matched.
    pub function: String,
    /// The HTTP method, upper case.
    pub method: String,
    /// The path after the plugin's prefix, starting with `/`.
    pub path: String,
    /// The query string without `?` (empty when there is none).
    pub query: String,
    /// The request headers, names lower case; the host removed credentials.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl EndpointRequest {
    /// A request for `function`: `method` on `path`, no query, headers or
    /// body (for tests; the host fills every field).
    pub fn new(
        function: impl Into<String>,
        method: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            function: function.into(),
            method: method.into(),
            path: path.into(),
            ..Self::default()
        }
    }

    /// The first value of the header `name` (compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The plugin's answer to an [`EndpointRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointResponse {
    /// The HTTP status (100 to 599; the host checks it).
    pub status: u16,
    /// The response headers (the host checks them).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl EndpointResponse {
    /// An answer with `status` and `body`, no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The answer with the header `name: value` added.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}
