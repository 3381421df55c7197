//! Serves the plugin over gRPC on the Unix socket its Tenon host names. Run
//! by the host (`runtime.command`), never by hand: started without the host's
//! handshake variables it says so and exits.

fn main() {
    std::process::exit(tenon_pdk::process::serve::<{{crate}}::Signer>());
}
