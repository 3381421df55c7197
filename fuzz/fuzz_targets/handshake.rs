//! Fuzzes the process plugins' handshake-line parser.
//!
//! Properties: parsing never panics on any bytes; an accepted line names an
//! absolute socket path within the Unix path limit, and writing it back and
//! parsing again gives the same handshake.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tenon_plugin_proto::handshake::{APP_PROTOCOL_VERSIONS, Handshake, MAX_SOCKET_PATH};

fuzz_target!(|data: &[u8]| {
    if let Ok(handshake) = Handshake::parse(data, APP_PROTOCOL_VERSIONS) {
        assert!(handshake.socket.starts_with('/'));
        assert!(handshake.socket.len() <= MAX_SOCKET_PATH);
        let again = Handshake::parse(handshake.to_string().as_bytes(), APP_PROTOCOL_VERSIONS);
        assert_eq!(again.as_ref(), Ok(&handshake));
    }
});
