//! Who a request comes from, and how often they may come: the client
//! address (through trusted proxies only) and per-minute windows kept in a
//! bounded table.

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
pub(crate) use tenon_serve::RateWindows;

/// A proxy (an address or a network) whose `X-Forwarded-For` is believed.
///
/// Written `203.0.113.7`, `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    /// Whether `ip` is this proxy (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)), self.prefix, 32) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix, 128) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `value` with all but its first `prefix` bits (of `width`) cleared.
fn masked(value: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let cleared = u32::from(width - prefix);
    (value >> cleared) << cleared
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{text}` is not a proxy address or network: {why}");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| bad("expected an IPv4 or IPv6 address"))?;
        let network = network.to_canonical();
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| bad(&format!("the prefix length must be 0 to {width}")))?,
        };
        let bits = match network {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        if masked(bits, prefix, width) != bits {
            return Err(bad("bits are set after the prefix"));
        }
        if prefix == 0 {
            // Every address a proxy: any client could name any address in
            // `X-Forwarded-For` and so pick its own rate-limit key.
            return Err(bad(
                "a /0 network trusts every address, so any client could choose the address it is limited as",
            ));
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The address a request comes from: the peer, unless the peer is a
/// trusted proxy; then `X-Forwarded-For` is read from the right (the entry
/// the nearest proxy added) past every trusted proxy, and the first address
/// that is not one is the client. Entries are split on the raw bytes, so
/// that bytes a client wrote (not UTF-8, say) never hide the entry its
/// proxy appended after them; an entry may carry a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or a zone (`fe80::1%eth0`), as some proxies write
/// them. An entry that is still not an address stops the walk at the proxy
/// that passed it on. Entries a client wrote itself sit left of the ones
/// its proxies added and are never reached unless every proxy on the way is
/// trusted.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &[TrustedProxy]) -> IpAddr {
    let trusted = |ip: IpAddr| proxies.iter().any(|p| p.contains(ip));
    let mut client = peer.to_canonical();
    if !trusted(client) {
        return client;
    }
    let values: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    for value in values.iter().rev() {
        for entry in value.rsplit(|&b| b == b',') {
            let Some(ip) = forwarded_entry(entry) else {
                return client;
            };
            client = ip.to_canonical();
            if !trusted(client) {
                return client;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry as an address: surrounding spaces, a port
/// and an IPv6 zone are dropped.
fn forwarded_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    let host = if let Some(bracketed) = entry.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (inside, rest) = bracketed.split_once(']')?;
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside
    } else if let Some((v4, port)) = entry.split_once(':')
        && !port.contains(':')
    {
        // `v4:port` (a bare IPv6 address has more than one colon).
        if !is_port(port) {
            return None;
        }
        v4
    } else {
        entry
    };
    let host = host
        .split_once('%')
        .map_or(host, |(address, _zone)| address);
    host.parse().ok()
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// A client as its limits and downloads count it: an IPv4 address, or an
/// IPv6 /64 network (one subscriber's usual allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key `ip` is counted under.
    pub fn of(ip: IpAddr) -> Self {
        Self(tenon_serve::client_key(ip))
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// How many accounts' publish windows are kept at most (the oldest are
/// evicted beyond it).
pub(crate) const MAX_TRACKED_ACCOUNTS: usize = 10_000;

/// A table of per-minute request counts (window numbers are minutes) of at
/// most `capacity` keys, its evictions counted.
pub(crate) fn rate_windows<K: Eq + Hash + Clone>(capacity: usize) -> RateWindows<K> {
    RateWindows::new(capacity).on_evict(|| {
        metrics::counter!("tenon_market_rate_windows_evicted_total").increment(1);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_parse_and_match_by_prefix() {
        let net: TrustedProxy = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let v6: TrustedProxy = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fdaa::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let one: TrustedProxy = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "10.0.0.1/33",
            "10.0.0.1/8",
            "proxy",
            "10.0.0.0/x",
            "::1/129",
        ] {
            let error = bad.parse::<TrustedProxy>().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn forwarded_addresses_are_read_from_the_right_past_trusted_proxies() {
        let proxies: Vec<TrustedProxy> = vec!["127.0.0.1".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_address(local, &headers, &proxies),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(other, &headers, &proxies), other);
        assert_eq!(client_address(local, &headers, &[]), local);
        headers.insert("x-forwarded-for", "203.0.113.9, junk".parse().unwrap());
        assert_eq!(client_address(local, &headers, &proxies), local);
        headers.insert("x-forwarded-for", "127.0.0.1".parse().unwrap());
        assert_eq!(client_address(local, &headers, &proxies), local);
    }

    /// Hostile: what a client writes in front of the entry its proxy
    /// appends never moves it onto the proxy's own key; entries written
    /// with a port, in brackets or with a zone are read as addresses.
    #[test]
    fn forwarded_entries_are_read_one_by_one_with_ports_and_zones() {
        let proxies: Vec<TrustedProxy> = vec!["127.0.0.1".parse().unwrap()];
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let cases: &[(&[u8], &str)] = &[
            // Not UTF-8, then the address the proxy appended.
            (b"\xff\xfe, 203.0.113.9", "203.0.113.9"),
            (b"\xff,203.0.113.9", "203.0.113.9"),
            (b"203.0.113.9:5678", "203.0.113.9"),
            (b"[2001:db8::1]:443", "2001:db8::1"),
            (b"[2001:db8::1]", "2001:db8::1"),
            (b"fe80::1%eth0", "fe80::1"),
            (b"[fe80::1%25eth0]:80", "fe80::1"),
            (b"2001:db8::7", "2001:db8::7"),
            (b"::ffff:198.51.100.4", "198.51.100.4"),
            (b"6.6.6.6, 203.0.113.9:1, 127.0.0.1:9", "203.0.113.9"),
            // Still not addresses: the walk stops at the proxy.
            (b"203.0.113.9:http", "127.0.0.1"),
            (b"203.0.113.9:123456", "127.0.0.1"),
            (b"[2001:db8::1]x", "127.0.0.1"),
            (b"", "127.0.0.1"),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-forwarded-for",
                axum::http::HeaderValue::from_bytes(value).unwrap(),
            );
            assert_eq!(
                client_address(local, &headers, &proxies),
                expected.parse::<IpAddr>().unwrap(),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
