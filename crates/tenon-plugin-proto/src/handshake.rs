//! The start-up handshake of a process plugin, after HashiCorp go-plugin.
//!
//! The host starts the plugin's executable with an empty environment except
//! [`MAGIC_COOKIE_KEY`]`=`[`MAGIC_COOKIE_VALUE`], the application protocol
//! versions it offers ([`PROTOCOL_VERSIONS_ENV`], comma-separated), a private
//! socket directory ([`SOCKET_DIR_ENV`]) and the socket its host API listens
//! on ([`HOST_SOCKET_ENV`]). The plugin listens on a Unix domain socket inside
//! the socket directory, serves `grpc.health.v1` (service [`HEALTH_SERVICE`])
//! and `tenon.plugin.v1.Runner` there, and prints one line on stdout:
//!
//! ```text
//! CORE|APP|unix|/path/to/plugin.sock|grpc
//! ```
//!
//! `CORE` is [`CORE_PROTOCOL_VERSION`], `APP` the version it chose from the
//! offered ones. [`Handshake::parse`] reads that line; [`Handshake`]'s
//! `Display` writes it.

use std::fmt;

/// The environment variable that tells a plugin it was started by a Tenon
/// host (a plugin started by hand refuses to run).
pub const MAGIC_COOKIE_KEY: &str = "TENON_PLUGIN_MAGIC_COOKIE";
/// Its value.
pub const MAGIC_COOKIE_VALUE: &str = "5a1d0d3e8c6b4f27a9e1tenon-process-plugin";
/// The application protocol versions the host offers, comma-separated.
pub const PROTOCOL_VERSIONS_ENV: &str = "TENON_PLUGIN_PROTOCOL_VERSIONS";
/// The private directory the plugin creates its socket in.
pub const SOCKET_DIR_ENV: &str = "TENON_PLUGIN_SOCKET_DIR";
/// The Unix socket the host serves `tenon.plugin.v1.HostApi` on.
pub const HOST_SOCKET_ENV: &str = "TENON_HOST_SOCKET";
/// The handshake's own version (the first field of the line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The application protocol versions this build speaks (`tenon.plugin.v1`).
pub const APP_PROTOCOL_VERSIONS: &[u32] = &[1];
/// The service name the plugin's health service reports as `SERVING`.
pub const HEALTH_SERVICE: &str = "plugin";
/// The longest handshake line a host reads, in bytes, newline included.
pub const MAX_LINE: usize = 512;
/// The longest Unix socket path (`sun_path` holds 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A plugin's handshake line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The handshake's version ([`CORE_PROTOCOL_VERSION`]).
    pub core: u32,
    /// The application protocol version the plugin chose.
    pub app: u32,
    /// The absolute path of the Unix socket the plugin listens on.
    pub socket: String,
}

/// Why a handshake line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Longer than [`MAX_LINE`].
    #[error("the line is longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("the line is not UTF-8 text")]
    NotText,
    /// Holds a control character (other than the final newline).
    #[error("the line holds a control character at byte {0}")]
    ControlCharacter(usize),
    /// Not five `|`-separated fields (or six, with go-plugin's certificate).
    #[error("the line has {0} `|`-separated fields; expected 5: CORE|APP|unix|/path.sock|grpc")]
    Fields(usize),
    /// A version field is not a decimal number.
    #[error("the {field} version `{value}` is not a number")]
    NotNumber {
        /// `core` or `app`.
        field: &'static str,
        /// What was there (cut to 32 bytes).
        value: String,
    },
    /// The handshake version is not the host's.
    #[error("core protocol version {found}; this host speaks {CORE_PROTOCOL_VERSION}")]
    CoreVersion {
        /// What the plugin said.
        found: u32,
    },
    /// The plugin chose an application version the host did not offer.
    #[error("application protocol version {found} was not offered (offered: {offered})")]
    AppVersion {
        /// What the plugin chose.
        found: u32,
        /// What the host offered, comma-separated.
        offered: String,
    },
    /// Not a Unix socket.
    #[error("network `{0}`: only `unix` is supported")]
    Network(String),
    /// Not gRPC.
    #[error("protocol `{0}`: only `grpc` is supported")]
    Protocol(String),
    /// A TLS certificate was given (mTLS is not used over a private Unix socket).
    #[error("a certificate field was given; Tenon uses no TLS over its private Unix socket")]
    Certificate,
    /// The socket path is unusable.
    #[error("socket address: {0}")]
    Address(&'static str),
}

impl Handshake {
    /// Parses one handshake line (a trailing `\n` or `\r\n` is allowed),
    /// accepting only an application version in `offered`.
    pub fn parse(line: &[u8], offered: &[u32]) -> Result<Self, HandshakeError> {
        if line.len() > MAX_LINE {
            return Err(HandshakeError::TooLong);
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| HandshakeError::NotText)?;
        if let Some(at) = text.bytes().position(|b| b.is_ascii_control()) {
            return Err(HandshakeError::ControlCharacter(at));
        }
        let fields: Vec<&str> = text.split('|').collect();
        let (core, app, network, address, protocol) = match fields.as_slice() {
            [core, app, network, address, protocol] => (core, app, network, address, protocol),
            [core, app, network, address, protocol, cert] => {
                if !cert.is_empty() {
                    return Err(HandshakeError::Certificate);
                }
                (core, app, network, address, protocol)
            }
            other => return Err(HandshakeError::Fields(other.len())),
        };
        let core = number("core", core)?;
        if core != CORE_PROTOCOL_VERSION {
            return Err(HandshakeError::CoreVersion { found: core });
        }
        let app = number("app", app)?;
        if !offered.contains(&app) {
            return Err(HandshakeError::AppVersion {
                found: app,
                offered: offer(offered),
            });
        }
        if *network != "unix" {
            return Err(HandshakeError::Network(cut(network)));
        }
        if *protocol != "grpc" {
            return Err(HandshakeError::Protocol(cut(protocol)));
        }
        if address.is_empty() {
            return Err(HandshakeError::Address("empty"));
        }
        if !address.starts_with('/') {
            return Err(HandshakeError::Address("not an absolute path"));
        }
        if address.len() > MAX_SOCKET_PATH {
            return Err(HandshakeError::Address(
                "longer than a Unix socket path can be (107 bytes)",
            ));
        }
        if address.split('/').any(|c| c == "..") {
            return Err(HandshakeError::Address("holds a `..` component"));
        }
        Ok(Self {
            core,
            app,
            socket: (*address).to_owned(),
        })
    }
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}|unix|{}|grpc", self.core, self.app, self.socket)
    }
}

/// Formats versions as the host offers them (`1,2`).
pub fn offer(versions: &[u32]) -> String {
    versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The highest version in both the host's offer (`1,2`, as in
/// [`PROTOCOL_VERSIONS_ENV`]) and `supported`; `None` when there is none.
pub fn negotiate(offered: &str, supported: &[u32]) -> Option<u32> {
    offered
        .split(',')
        .filter_map(|v| v.trim().parse::<u32>().ok())
        .filter(|v| supported.contains(v))
        .max()
}

fn number(field: &'static str, value: &str) -> Result<u32, HandshakeError> {
    let ok = !value.is_empty() && value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit());
    match ok.then(|| value.parse::<u32>().ok()).flatten() {
        Some(n) => Ok(n),
        None => Err(HandshakeError::NotNumber {
            field,
            value: cut(value),
        }),
    }
}

fn cut(value: &str) -> String {
    let mut end = value.len().min(32);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lines() {
        let ok = |socket: &str| {
            Ok(Handshake {
                core: 1,
                app: 1,
                socket: socket.to_owned(),
            })
        };
        let long = format!("1|1|unix|/{}|grpc", "s".repeat(200));
        let huge = "x".repeat(MAX_LINE + 1);
        let cases: Vec<(&[u8], Result<Handshake, HandshakeError>)> = vec![
            (b"1|1|unix|/tmp/p.sock|grpc", ok("/tmp/p.sock")),
            (b"1|1|unix|/tmp/p.sock|grpc\n", ok("/tmp/p.sock")),
            (b"1|1|unix|/tmp/p.sock|grpc\r\n", ok("/tmp/p.sock")),
            (b"1|1|unix|/tmp/p.sock|grpc|", ok("/tmp/p.sock")),
            (b"", Err(HandshakeError::Fields(1))),
            (b"hello world\n", Err(HandshakeError::Fields(1))),
            (b"1|1|unix|/tmp/p.sock", Err(HandshakeError::Fields(4))),
            (b"1|1|unix|/a|grpc|cert|x", Err(HandshakeError::Fields(7))),
            (b"1|1|unix|/a|grpc|MIIB", Err(HandshakeError::Certificate)),
            (b"\xff\xfe|1|unix|/a|grpc", Err(HandshakeError::NotText)),
            (
                b"1|1|unix|/a\tb|grpc",
                Err(HandshakeError::ControlCharacter(11)),
            ),
            (
                b"1|1|unix|/a|grpc\n\n",
                Err(HandshakeError::ControlCharacter(16)),
            ),
            (
                b"one|1|unix|/a|grpc",
                Err(HandshakeError::NotNumber {
                    field: "core",
                    value: "one".into(),
                }),
            ),
            (
                b"1|-1|unix|/a|grpc",
                Err(HandshakeError::NotNumber {
                    field: "app",
                    value: "-1".into(),
                }),
            ),
            (
                b"1|99999999999|unix|/a|grpc",
                Err(HandshakeError::NotNumber {
                    field: "app",
                    value: "99999999999".into(),
                }),
            ),
            (
                b"2|1|unix|/a|grpc",
                Err(HandshakeError::CoreVersion { found: 2 }),
            ),
            (
                b"1|7|unix|/a|grpc",
                Err(HandshakeError::AppVersion {
                    found: 7,
                    offered: "1".into(),
                }),
            ),
            (
                b"1|1|tcp|127.0.0.1:1234|grpc",
                Err(HandshakeError::Network("tcp".into())),
            ),
            (
                b"1|1|unix|/a|netrpc",
                Err(HandshakeError::Protocol("netrpc".into())),
            ),
            (b"1|1|unix||grpc", Err(HandshakeError::Address("empty"))),
            (
                b"1|1|unix|p.sock|grpc",
                Err(HandshakeError::Address("not an absolute path")),
            ),
            (
                b"1|1|unix|/tmp/../etc/x|grpc",
                Err(HandshakeError::Address("holds a `..` component")),
            ),
            (
                long.as_bytes(),
                Err(HandshakeError::Address(
                    "longer than a Unix socket path can be (107 bytes)",
                )),
            ),
            (huge.as_bytes(), Err(HandshakeError::TooLong)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                Handshake::parse(line, APP_PROTOCOL_VERSIONS),
                expected,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn lines_round_trip_and_versions_negotiate() {
        let h = Handshake {
            core: CORE_PROTOCOL_VERSION,
            app: 1,
            socket: "/run/x/plugin.sock".into(),
        };
        assert_eq!(Handshake::parse(h.to_string().as_bytes(), &[1]), Ok(h));
        let cases = [
            ("1", Some(1)),
            ("1,2", Some(1)),
            ("2,3", None),
            ("", None),
            (" 1 ,x", Some(1)),
        ];
        for (offered, expected) in cases {
            assert_eq!(
                negotiate(offered, APP_PROTOCOL_VERSIONS),
                expected,
                "{offered}"
            );
        }
    }
}
