//! Hostile Extism test plugin: produces megabytes. The host must bound what
//! it accepts (log lines, error messages, KV values, event payloads) and stay
//! responsive.
//!
//! Every function takes N (MiB, as text; default 16):
//! - `handle_hook` (any hook): continues with a patch whose `content` is
//!   `/mib` MiB (default 16) of `x`, or with `/shape = "zeros"` a JSON array
//!   `[0,0,…]` of that size (a parse bomb);
//! - `big`: answers N MiB;
//! - `zeros`: answers N MiB of `[0,0,…]`;
//! - `log`: logs N MiB in 1 KiB lines (Extism's `log_info`);
//! - `log-line`: logs one line of N MiB, through Extism's `log_info` and
//!   through Tenon's `log`;
//! - `post`: POSTs an N MiB body to `allowed.example.com`;
//! - `print`: writes N MiB to stdout and N MiB to stderr (WASI; Tenon's
//!   Extism runtime discards them);
//! - `error`: fails with an N MiB message;
//! - `kv`: stores N MiB under one key (its quota is 1 MiB);
//! - `event`: emits an N MiB payload;
//! - `ping`: `pong`.

use extism_pdk::Error;
use extism_tenon::host;
use serde_json::json;

const MIB: usize = 1 << 20;

fn mib(input: &[u8]) -> Result<usize, Error> {
    let text = std::str::from_utf8(input).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(16);
    }
    text.parse().map_err(|_| {
        extism_tenon::error("invalid-input", format!("`{text}` is not a number of MiB"))
    })
}

fn text(mib: usize) -> String {
    "x".repeat(mib * MIB)
}

/// `[0,0,…,0]`, `mib` MiB long, built as text.
fn zeros(mib: usize) -> String {
    let mut out = String::with_capacity(mib * MIB);
    out.push('[');
    while out.len() + 2 < mib * MIB {
        out.push_str("0,");
    }
    out.push_str("0]");
    out
}

/// Writes `data` to a WASI descriptor (1: stdout, 2: stderr), ignoring
/// errors: a host may discard or close them.
#[allow(unsafe_code)]
fn write_fd(fd: wasi::Fd, data: &[u8]) {
    let iov = wasi::Ciovec {
        buf: data.as_ptr(),
        buf_len: data.len(),
    };
    // SAFETY: the iovec points into `data`, which outlives the call.
    let _ = unsafe { wasi::fd_write(fd, &[iov]) };
}

fn handle_hook(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let input: serde_json::Value = serde_json::from_slice(&input)?;
    let mib = input["data"]["mib"].as_u64().map_or(16, |n| n as usize);
    // Written as text: the answer's size is the point, not its building.
    let content = if input["data"]["shape"] == "zeros" {
        zeros(mib)
    } else {
        format!("\"{}\"", text(mib))
    };
    let answer = format!("{{\"action\":\"continue\",\"patch\":{{\"content\":{content}}}}}");
    Ok(answer.into_bytes())
}

fn big(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(text(mib(&input)?).into_bytes())
}

fn zeros_call(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(zeros(mib(&input)?).into_bytes())
}

fn log_line(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let line = text(mib(&input)?);
    extism_pdk::info!("{line}");
    host::log_line("info", &line, &Default::default());
    Ok(Vec::new())
}

fn post(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let request = host::HttpRequest {
        method: "POST".to_owned(),
        url: "https://allowed.example.com/upload".to_owned(),
        body: text(mib(&input)?).into_bytes(),
        ..host::HttpRequest::default()
    };
    host::http(&request).map_err(|e| extism_tenon::error(&e.kind, e.message))?;
    Ok(Vec::new())
}

fn log(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let line = "y".repeat(1024);
    for _ in 0..mib(&input)? * 1024 {
        extism_pdk::info!("{line}");
    }
    Ok(Vec::new())
}

fn print(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let block = text(1);
    for _ in 0..mib(&input)? {
        write_fd(1, block.as_bytes());
        write_fd(2, block.as_bytes());
    }
    Ok(Vec::new())
}

fn error(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Err(extism_tenon::error("huge", text(mib(&input)?)))
}

fn kv(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    host::kv_write("huge", text(mib(&input)?).as_bytes())
        .map_err(|e| extism_tenon::error(&e.kind, e.message))?;
    Ok(Vec::new())
}

fn event(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    host::emit("huge-output.event", &json!({ "blob": text(mib(&input)?) }))
        .map_err(|e| extism_tenon::error(&e.kind, e.message))?;
    Ok(Vec::new())
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("big" => big);
extism_tenon::export!("zeros" => zeros_call);
extism_tenon::export!("log-line" => log_line);
extism_tenon::export!("post" => post);
extism_tenon::export!("log" => log);
extism_tenon::export!("print" => print);
extism_tenon::export!("error" => error);
extism_tenon::export!("kv" => kv);
extism_tenon::export!("event" => event);
extism_tenon::export!("ping" => ping);
