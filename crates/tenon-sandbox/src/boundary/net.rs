//! Which addresses a plugin may connect to, and how names become addresses.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;

/// What kind of address an IP is, for the outbound network policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// A globally routable unicast address.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and IPv6 site-local.
    Private,
    /// `169.254/16` (cloud metadata lives here), `fe80::/10`.
    LinkLocal,
    /// IPv6 unique-local `fc00::/7`.
    UniqueLocal,
    /// Carrier-grade NAT `100.64/10`.
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::` (connecting to them reaches the local host).
    Unspecified,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// Anything else not meant to be a destination: `240/4`, `192.0.0/24`,
    /// IPv4-compatible and Teredo IPv6, discard-only `100::/64`…
    Reserved,
}

impl AddressClass {
    /// Classifies `ip`. IPv6 addresses that embed an IPv4 address
    /// (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
    /// `2002::/16`) are classified by the IPv4 address they lead to.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => classify_v6(v6),
        }
    }

    /// Whether the class is a private network that a plugin reaches only
    /// when both the host and its manifest allow private networks.
    pub const fn is_private_network(self) -> bool {
        matches!(
            self,
            Self::Loopback
                | Self::Private
                | Self::LinkLocal
                | Self::UniqueLocal
                | Self::SharedAddressSpace
        )
    }

    /// Whether a plugin may connect to an address of this class.
    pub const fn is_allowed(self, allow_private: bool) -> bool {
        match self {
            Self::Public => true,
            _ if self.is_private_network() => allow_private,
            _ => false,
        }
    }

    /// A short description for denial messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Public => "a public address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private-network address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique-local address",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::Unspecified => "the unspecified address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved address",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 168, _) => AddressClass::Private,
        (169, 254, _) => AddressClass::LinkLocal,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (198, 18..=19, _) => AddressClass::Benchmarking,
        (192, 0, 0) | (192, 88, 99) => AddressClass::Reserved,
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (224..=239, _, _) => AddressClass::Multicast,
        (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // NAT64 well-known prefix: the IPv4 address in the low 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded(hi, lo)),
        // Local-use NAT64 prefix (RFC 8215).
        [0x64, 0xff9b, 1, ..] => AddressClass::Private,
        // IPv4-compatible (deprecated) and other addresses under ::/96.
        [0, 0, 0, 0, 0, 0, _, _] => AddressClass::Reserved,
        // 6to4: the IPv4 address follows the prefix.
        [0x2002, hi, lo, ..] => classify_v4(embedded(hi, lo)),
        // Discard-only.
        [0x100, 0, 0, 0, ..] => AddressClass::Reserved,
        // Teredo (tunnels to arbitrary IPv4), ORCHID.
        [0x2001, 0, ..] => AddressClass::Reserved,
        [0x2001, 0x10..=0x2f, ..] => AddressClass::Reserved,
        [0x2001, 2, 0, ..] => AddressClass::Benchmarking,
        [0x2001, 0xdb8, ..] => AddressClass::Documentation,
        [0x3fff, b, ..] if b <= 0x0fff => AddressClass::Documentation,
        [a, ..] if a & 0xfe00 == 0xfc00 => AddressClass::UniqueLocal,
        [a, ..] if a & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [a, ..] if a & 0xffc0 == 0xfec0 => AddressClass::Private,
        [a, ..] if a & 0xff00 == 0xff00 => AddressClass::Multicast,
        // Only 2000::/3 is allocated for global unicast.
        [a, ..] if a & 0xe000 == 0x2000 => AddressClass::Public,
        _ => AddressClass::Reserved,
    }
}

/// Turns host names into addresses for plugin HTTP requests. Every address
/// it returns is vetted against the network policy before use, so a resolver
/// cannot widen what a plugin reaches; it only decides what a name means
/// (tests use [`StaticResolver`] to point names at a local server).
#[async_trait]
pub trait NameResolver: Send + Sync + 'static {
    /// The addresses of `host` (a DNS name, never an IP literal).
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl NameResolver for SystemResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// A fixed table of names, for tests and for hosts that pin names; unknown
/// names fail to resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `host` → `addrs` (host compared case-insensitively).
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> Self {
        self.table.insert(host.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

#[async_trait]
impl NameResolver for StaticResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self.table
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("`{host}` is not in the resolver's table"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let check = |ip: &str, expected: AddressClass| {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(AddressClass::of(parsed), expected, "{ip}");
        };
        use AddressClass::*;
        for (ip, class) in [
            ("93.184.216.34", Public),
            ("8.8.8.8", Public),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("100.64.0.1", SharedAddressSpace),
            ("100.128.0.1", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.2.10", Documentation),
            ("198.51.100.1", Documentation),
            ("203.0.113.7", Documentation),
            ("198.18.0.1", Benchmarking),
            ("192.0.0.8", Reserved),
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Reserved),
            ("64:ff9b::a00:1", Private),
            ("64:ff9b::808:808", Public),
            ("2002:7f00:1::", Loopback),
            ("2002:808:808::1", Public),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001::1", Reserved),
            ("2001:2::1", Benchmarking),
            ("100::1", Reserved),
            ("2606:4700:4700::1111", Public),
            ("4000::1", Reserved),
        ] {
            check(ip, class);
        }
    }

    #[test]
    fn policy() {
        use AddressClass::*;
        assert!(Public.is_allowed(false));
        for class in [
            Loopback,
            Private,
            LinkLocal,
            UniqueLocal,
            SharedAddressSpace,
        ] {
            assert!(!class.is_allowed(false), "{class:?}");
            assert!(class.is_allowed(true), "{class:?}");
        }
        for class in [
            Unspecified,
            Multicast,
            Broadcast,
            Documentation,
            Benchmarking,
            Reserved,
        ] {
            assert!(!class.is_allowed(true), "{class:?}");
        }
    }
}
