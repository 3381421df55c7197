//! Outbound HTTP for plugins: allowlist, methods, vetted addresses, manual
//! redirects, capped responses, all within the call's deadline.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;

use super::net::{AddressClass, NameResolver};
use super::{Boundary, CallScope};
use crate::host::{HostError, HttpRequest, HttpResponse};

/// Headers a plugin may not set: they belong to the connection, or would
/// let it lie about the destination.
const FORBIDDEN_HEADERS: [&str; 10] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// The only headers a redirect to another origin (scheme, host or port)
/// carries on: content negotiation and caching, nothing that can hold a
/// credential (`authorization`, `cookie`, `x-api-key` and any other header a
/// plugin invents stay behind).
const CROSS_ORIGIN_HEADERS: [&str; 7] = [
    "accept",
    "accept-language",
    "cache-control",
    "content-language",
    "content-type",
    "pragma",
    "user-agent",
];

/// Keeps only the [`CROSS_ORIGIN_HEADERS`] of `headers`.
fn keep_cross_origin_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| !CROSS_ORIGIN_HEADERS.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Why a redirect from `from` to `to` is refused whatever the allowlist
/// says: `https` never leads to `http`.
fn redirect_refusal(from: &Url, to: &Url) -> Option<String> {
    (from.scheme() == "https" && to.scheme() == "http").then(|| {
        format!(
            "{} redirected to {}: a redirect from https to http is a downgrade and is never followed",
            shown(from),
            shown(to)
        )
    })
}

/// A lazily built client per plugin. Its resolver vets every address it
/// hands to the connector, so a name that resolved to a public address when
/// checked and to a private one when connecting (DNS rebinding) is refused.
pub(super) struct HttpClient {
    resolver: Arc<dyn NameResolver>,
    allow_private: bool,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl HttpClient {
    pub(super) fn new(resolver: Arc<dyn NameResolver>, allow_private: bool) -> Self {
        Self {
            resolver,
            allow_private,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, HostError> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .dns_resolver(Arc::new(VettingResolver {
                        resolver: self.resolver.clone(),
                        allow_private: self.allow_private,
                    }))
                    .user_agent(concat!("tenon-plugin/", env!("CARGO_PKG_VERSION")))
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| HostError::Unavailable(e.clone()))
    }
}

/// The resolver handed to reqwest: resolves through the host's
/// [`NameResolver`] and refuses the name when any answer is forbidden.
struct VettingResolver {
    resolver: Arc<dyn NameResolver>,
    allow_private: bool,
}

/// A name resolved to an address the plugin may not reach.
#[derive(Debug)]
struct BlockedAddress {
    host: String,
    ip: IpAddr,
    class: AddressClass,
}

impl fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` resolves to {}, {}", self.host, self.ip, self.class)
    }
}

impl std::error::Error for BlockedAddress {}

async fn resolve_vetted(
    resolver: &dyn NameResolver,
    host: &str,
    allow_private: bool,
) -> Result<Vec<IpAddr>, ResolveError> {
    let ips = resolver
        .lookup(host)
        .await
        .map_err(|e| ResolveError::Failed(format!("cannot resolve `{host}`: {e}")))?;
    if ips.is_empty() {
        return Err(ResolveError::Failed(format!("`{host}` has no addresses")));
    }
    for &ip in &ips {
        let class = AddressClass::of(ip);
        if !class.is_allowed(allow_private) {
            return Err(ResolveError::Blocked(BlockedAddress {
                host: host.to_owned(),
                ip,
                class,
            }));
        }
    }
    Ok(ips)
}

enum ResolveError {
    Failed(String),
    Blocked(BlockedAddress),
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            match resolve_vetted(&*resolver, name.as_str(), allow_private).await {
                Ok(ips) => {
                    let addrs: reqwest::dns::Addrs =
                        Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                Err(ResolveError::Blocked(blocked)) => Err(blocked.into()),
                Err(ResolveError::Failed(message)) => Err(message.into()),
            }
        })
    }
}

/// A request hop that passed every check.
struct Vetted {
    url: Url,
    method: Method,
}

/// A URL without its query and fragment (they may carry secrets), for
/// messages and denial reports.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

impl Boundary {
    /// Sends a plugin's HTTP request, if its permissions allow it: only
    /// `http`/`https`, only allowlisted hosts and ports
    /// (`permissions.network.outbound`), only allowed methods, never to
    /// private or special addresses unless both the host and the manifest
    /// allow private networks (checked on every resolved address and again
    /// when connecting), redirects followed by hand with every hop checked
    /// again (never from https to http, and to another origin with only the
    /// headers in [`CROSS_ORIGIN_HEADERS`]), the response body capped, and the whole exchange bounded by the
    /// call's deadline.
    pub async fn http_request(
        &self,
        call: &CallScope,
        request: HttpRequest,
    ) -> Result<HttpResponse, HostError> {
        let limit = Instant::now() + self.config.max_http_time;
        let deadline = call.deadline().min(limit);
        match tokio::time::timeout_at(deadline, self.http_exchange(call, request)).await {
            Ok(result) => result,
            Err(_) => Err(HostError::Timeout(
                "the HTTP request did not finish before the call's deadline".to_owned(),
            )),
        }
    }

    fn network_cap(&self) -> u64 {
        let requested = self
            .caller
            .permissions
            .network
            .as_ref()
            .and_then(|n| n.max_response)
            .map(|b| b.bytes())
            .unwrap_or(self.config.default_http_response);
        requested.min(self.config.max_http_response)
    }

    async fn http_exchange(
        &self,
        call: &CallScope,
        request: HttpRequest,
    ) -> Result<HttpResponse, HostError> {
        let url = Url::parse(&request.url)
            .map_err(|e| HostError::InvalidInput(format!("`{}` is not a URL: {e}", request.url)))?;
        let method =
            Method::from_bytes(request.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                HostError::InvalidInput(format!("`{}` is not an HTTP method", request.method))
            })?;
        if request.body.len() > self.config.max_http_request_body {
            return Err(HostError::QuotaExceeded(format!(
                "the request body is {} bytes; the limit is {}",
                request.body.len(),
                self.config.max_http_request_body
            )));
        }
        let mut headers = HeaderMap::with_capacity(request.headers.len());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HostError::InvalidInput(format!("`{name}` is not a header name")))?;
            if FORBIDDEN_HEADERS.contains(&name.as_str()) {
                return Err(HostError::InvalidInput(format!(
                    "plugins may not set the `{name}` header"
                )));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                HostError::InvalidInput(format!(
                    "the value of `{name}` is not a valid header value"
                ))
            })?;
            headers.append(name, value);
        }

        let client = self.http.client()?;
        let cap = self.network_cap();
        let mut hop = self.vet_hop(call, url, method, false).await?;
        let mut body = request.body;
        let mut redirects = 0;
        loop {
            let mut builder = client
                .request(hop.method.clone(), hop.url.clone())
                .headers(headers.clone());
            if !body.is_empty() {
                builder = builder.body(body.clone());
            }
            self.stats.add_http_request(body.len() as u64);
            let response = builder
                .send()
                .await
                .map_err(|e| self.send_error(call, &hop, &e))?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            match location {
                Some(location) if status.is_redirection() && self.config.max_redirects > 0 => {
                    if redirects == self.config.max_redirects {
                        return Err(HostError::Unavailable(format!(
                            "more than {} redirects, the last to {location}",
                            self.config.max_redirects
                        )));
                    }
                    redirects += 1;
                    let next = hop.url.join(&location).map_err(|e| {
                        HostError::Unavailable(format!(
                            "{} redirected to `{location}`, which is not a URL: {e}",
                            shown(&hop.url)
                        ))
                    })?;
                    let method = match status {
                        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {
                            hop.method.clone()
                        }
                        StatusCode::SEE_OTHER => Method::GET,
                        _ if hop.method == Method::POST => Method::GET,
                        _ => hop.method.clone(),
                    };
                    if method != hop.method {
                        body.clear();
                        headers.remove(reqwest::header::CONTENT_TYPE);
                    }
                    if let Some(reason) = redirect_refusal(&hop.url, &next) {
                        return Err(self.deny(
                            call,
                            "network",
                            format!("{method} {} (redirected)", shown(&next)),
                            reason,
                        ));
                    }
                    if next.origin() != hop.url.origin() {
                        keep_cross_origin_headers(&mut headers);
                    }
                    hop = self.vet_hop(call, next, method, true).await?;
                }
                _ => return self.read_response(&hop, response, cap).await,
            }
        }
    }

    /// Checks one hop: scheme, method, allowlist, addresses.
    async fn vet_hop(
        &self,
        call: &CallScope,
        url: Url,
        method: Method,
        redirected: bool,
    ) -> Result<Vetted, HostError> {
        let attempted = if redirected {
            format!("{method} {} (redirected)", shown(&url))
        } else {
            format!("{method} {}", shown(&url))
        };
        let deny = |reason: String| Err(self.deny(call, "network", attempted.clone(), reason));
        let Some(network) = self.caller.permissions.network.as_ref() else {
            return deny("the plugin has no permissions.network".to_owned());
        };
        if !matches!(url.scheme(), "http" | "https") {
            return deny(format!(
                "the scheme `{}` is not allowed; only http and https are",
                url.scheme()
            ));
        }
        if !network.methods.is_empty()
            && !network
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method.as_str()))
        {
            return deny(format!(
                "the method {method} is not in permissions.network.methods"
            ));
        }
        let Some(host) = url.host() else {
            return Err(HostError::InvalidInput(format!(
                "`{}` has no host",
                shown(&url)
            )));
        };
        let port = url.port_or_known_default().unwrap_or(0);
        let (name, literal) = match host {
            url::Host::Domain(d) => (d.trim_end_matches('.').to_ascii_lowercase(), None),
            url::Host::Ipv4(ip) => (ip.to_string(), Some(IpAddr::V4(ip))),
            url::Host::Ipv6(ip) => (format!("[{ip}]"), Some(IpAddr::V6(ip))),
        };
        if !network
            .outbound
            .iter()
            .any(|p| p.matches(url.scheme(), &name, port))
        {
            return deny(format!(
                "{name}:{port} is not in permissions.network.outbound"
            ));
        }
        let allow_private = self.http.allow_private;
        let private_hint = || {
            if network.allow_private {
                "; the host does not allow private networks"
            } else {
                "; the manifest does not set network.allow_private"
            }
        };
        match literal {
            Some(ip) => {
                let class = AddressClass::of(ip);
                if !class.is_allowed(allow_private) {
                    let hint = if class.is_private_network() {
                        private_hint()
                    } else {
                        ""
                    };
                    return deny(format!("{ip} is {class}{hint}"));
                }
            }
            None => match resolve_vetted(&*self.http.resolver, &name, allow_private).await {
                Ok(_) => {}
                Err(ResolveError::Blocked(blocked)) => {
                    let hint = if blocked.class.is_private_network() {
                        private_hint()
                    } else {
                        ""
                    };
                    return deny(format!("{blocked}{hint}"));
                }
                Err(ResolveError::Failed(message)) => {
                    return Err(HostError::Unavailable(message));
                }
            },
        }
        Ok(Vetted { url, method })
    }

    /// Maps a send failure; an address refused while connecting (the name
    /// now resolves elsewhere) is a denial like any other.
    fn send_error(&self, call: &CallScope, hop: &Vetted, error: &reqwest::Error) -> HostError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(blocked) = e.downcast_ref::<BlockedAddress>() {
                return self.deny(
                    call,
                    "network",
                    format!("{} {}", hop.method, shown(&hop.url)),
                    format!("{blocked} when connecting"),
                );
            }
            source = e.source();
        }
        let mut message = format!("{} {} failed: {error}", hop.method, shown(&hop.url));
        let mut source = std::error::Error::source(error);
        while let Some(e) = source {
            message.push_str(": ");
            message.push_str(&e.to_string());
            source = e.source();
        }
        if error.is_timeout() {
            HostError::Timeout(message)
        } else {
            HostError::Unavailable(message)
        }
    }

    async fn read_response(
        &self,
        hop: &Vetted,
        mut response: reqwest::Response,
        cap: u64,
    ) -> Result<HttpResponse, HostError> {
        let too_big = |size: String| {
            HostError::QuotaExceeded(format!(
                "the response of {} {} is {size}; the limit is {cap} bytes",
                hop.method,
                shown(&hop.url)
            ))
        };
        if let Some(len) = response.content_length().filter(|&len| len > cap) {
            return Err(too_big(format!("{len} bytes")));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                HostError::Unavailable(format!(
                    "reading the response of {} {} failed: {e}",
                    hop.method,
                    shown(&hop.url)
                ))
            })?;
            let Some(chunk) = chunk else { break };
            self.stats.add_http_bytes_in(chunk.len() as u64);
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(too_big("larger".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_origin_redirects_keep_only_safe_headers() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer s3cret"),
            ("cookie", "session=s3cret"),
            ("x-api-key", "s3cret"),
            ("x-auth-token", "s3cret"),
            ("api-key", "s3cret"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("user-agent", "probe"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        keep_cross_origin_headers(&mut headers);
        let mut kept: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["accept", "content-type", "user-agent"]);
    }

    #[test]
    fn https_never_redirects_to_http() {
        for (from, to, refused) in [
            ("https://a.test/x", "http://a.test/x", true),
            ("https://a.test/x", "http://b.test:443/x", true),
            ("https://a.test/x", "https://b.test/x", false),
            ("http://a.test/x", "https://a.test/x", false),
            ("http://a.test/x", "http://b.test/x", false),
        ] {
            let refusal = redirect_refusal(&from.parse().unwrap(), &to.parse().unwrap());
            assert_eq!(refusal.is_some(), refused, "{from} -> {to}: {refusal:?}");
            if let Some(reason) = refusal {
                assert!(reason.contains("downgrade"), "{reason}");
            }
        }
    }
}
