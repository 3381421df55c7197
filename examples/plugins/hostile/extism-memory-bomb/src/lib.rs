//! Hostile Extism test plugin: grows memory without bound. The instance's
//! memory cap must stop it (Extism's limiter fails the growth, which ends the
//! call as out of memory) and the host stays up.
//!
//! - `handle_hook` (any hook) and `grow`: allocate 1 MiB blocks, touching
//!   every page, forever;
//! - `grow-raw`: `memory.grow` one page at a time until refused, answers
//!   `{"pages": N}` (under Extism the refusal ends the call instead);
//! - `alloc` (input: N as JSON): allocate and touch N MiB, free it, answer N
//!   (within the limit this must work, also after a bomb);
//! - `ping`: `pong`.

use std::hint::black_box;

use extism_pdk::Error;

const MIB: usize = 1 << 20;

fn touched_block(size: usize) -> Vec<u8> {
    let mut block = vec![0u8; size];
    for page in block.chunks_mut(4096) {
        page[0] = 0xAA;
    }
    black_box(block)
}

fn grow_forever() -> ! {
    let mut blocks = Vec::new();
    loop {
        blocks.push(touched_block(MIB));
        black_box(&blocks);
    }
}

#[cfg(target_arch = "wasm32")]
fn grow_raw_pages() -> usize {
    let mut pages = 0;
    while core::arch::wasm32::memory_grow(0, 1) != usize::MAX {
        pages += 1;
    }
    pages
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_raw_pages() -> usize {
    0
}

fn handle_hook(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    grow_forever()
}

fn grow(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    grow_forever()
}

fn grow_raw(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(serde_json::to_vec(
        &serde_json::json!({"pages": grow_raw_pages()}),
    )?)
}

fn alloc(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mib: usize = serde_json::from_slice(&input)?;
    drop(touched_block(mib.saturating_mul(MIB)));
    Ok(serde_json::to_vec(&mib)?)
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("grow" => grow);
extism_tenon::export!("grow-raw" => grow_raw);
extism_tenon::export!("alloc" => alloc);
extism_tenon::export!("ping" => ping);
