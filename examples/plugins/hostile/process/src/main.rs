//! Hostile test plugin for the process runtime (`runtime.kind = "process"`).
//!
//! Its first argument (`runtime.args`) picks how it misbehaves at start-up:
//!
//! - `silent`: writes a line on stderr and never prints the handshake;
//! - `garbage`: prints a line that is not a handshake, then waits;
//! - `orphan`: what its own children run (sleeps for ten minutes);
//! - anything else: serves the plugin below.
//!
//! Served, its hook (`response.pre_deliver`) exits with status 7 when the
//! data's `/exit` is `true` (a process that keeps dying), and otherwise does
//! what `hostile-forbidden-host`'s does. It answers these functions, and
//! everything else as
//! `hostile-forbidden-host` does (`probe`, `get`, `flood`, `ping`: the same
//! boundary probes as the component plugin, so denials can be compared):
//!
//! - `greeting`: `{"activated": …, "host": …}`: the `greeting` config value it
//!   was activated (or last configured) with, and the one the host API's
//!   `GetConfig` answers now; logs one line through the host API;
//! - `exit`: exits with status 7 in the middle of the call;
//! - `fork`: starts a child in its own process group, answers its pid;
//! - `escape`: starts a child in a process group of its own (as `setsid` or
//!   a daemon would), answers its pid;
//! - `eat`: allocates and touches 1 MiB blocks, up to the input's number of
//!   MiB; answers how many it got, if it lives;
//! - `socket`: opens a TCP connection to the input address (`host:port`);
//!   answers `connected` or the OS's error;
//! - `read`: reads the file at the input path; answers its length or the
//!   OS's error.

use std::time::Duration;

use hostile_forbidden_host::ForbiddenHost;
use tenon_pdk::host::{config, log};
use tenon_pdk::serde_json::json;
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// The served plugin: the forbidden-host probes and the hostile functions.
struct Hostile {
    greeting: String,
    probes: ForbiddenHost,
}

fn text(input: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(input)
        .map(str::trim)
        .map_err(|_| Error::invalid_input("the input is not UTF-8 text"))
}

fn child(own_group: bool) -> Result<Vec<u8>, Error> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::internal(e.to_string()))?;
    let mut command = std::process::Command::new(exe);
    command.arg("orphan");
    if own_group {
        command.process_group(0);
    }
    let child = command
        .spawn()
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(child.id().to_string().into_bytes())
}

impl Plugin for Hostile {
    fn activate(config: Config) -> Result<Self, Error> {
        Ok(Self {
            greeting: config.get_or("greeting", "hello".to_owned())?,
            probes: ForbiddenHost,
        })
    }

    fn configure(&mut self, config: Config) -> Result<(), Error> {
        self.greeting = config.get_or("greeting", "hello".to_owned())?;
        Ok(())
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        if data.get::<bool>("/exit")? == Some(true) {
            std::process::exit(7);
        }
        self.probes.handle_hook(hook, context, data)
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "greeting" => {
                let host = config::get_value("greeting")?;
                log::info(&format!("greeting asked: {}", self.greeting));
                tenon_pdk::json::encode(&json!({"activated": self.greeting, "host": host}))
            }
            "exit" => std::process::exit(7),
            "fork" => child(false),
            "escape" => child(true),
            "eat" => {
                let mib: usize = text(input)?
                    .parse()
                    .map_err(|_| Error::invalid_input("`eat` takes a number of MiB"))?;
                let mut held = Vec::new();
                for _ in 0..mib {
                    held.push(vec![1u8; 1 << 20]);
                }
                Ok(held.len().to_string().into_bytes())
            }
            "socket" => Ok(match std::net::TcpStream::connect(text(input)?) {
                Ok(_) => b"connected".to_vec(),
                Err(error) => error.to_string().into_bytes(),
            }),
            "read" => Ok(match std::fs::read(text(input)?) {
                Ok(bytes) => bytes.len().to_string().into_bytes(),
                Err(error) => error.to_string().into_bytes(),
            }),
            other => self.probes.call(other, input),
        }
    }
}

#[allow(clippy::print_stderr)]
fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("silent") => {
            eprintln!("hostile-process: waiting for nothing");
            std::thread::sleep(Duration::from_secs(600));
        }
        Some("garbage") => {
            println!("Welcome to hostile-process, version 3!");
            std::thread::sleep(Duration::from_secs(600));
        }
        Some("orphan") => std::thread::sleep(Duration::from_secs(600)),
        _ => std::process::exit(tenon_pdk::process::serve::<Hostile>()),
    }
}
