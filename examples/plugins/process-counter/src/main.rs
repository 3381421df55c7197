//! The counter example (`examples/plugins/counter`) as a process plugin: the
//! very same `tenon_pdk::Plugin`, served over gRPC on a Unix socket instead
//! of exported as a WebAssembly component. Only this `main` differs.

fn main() {
    std::process::exit(tenon_pdk::process::serve::<counter::Counter>());
}
