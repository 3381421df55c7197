//! Hostile test plugin: grows memory without bound. The host's memory limit
//! (a `ResourceLimiter`) must refuse the growth: the allocator then fails and
//! the instance traps, or raw `memory.grow` returns -1, and the host stays up.
//!
//! - `handle_hook` (any hook) and `call("grow")`: allocate 1 MiB blocks,
//!   touching every page, forever;
//! - `call("grow-raw")`: `memory.grow` one page at a time until refused,
//!   answers `{"pages": N}`;
//! - `call("alloc", "N")`: allocate and touch N MiB, free it, answer `N`
//!   (within the limit this must work, also after a bomb);
//! - `call("ping")`: `pong`.

use std::hint::black_box;
use std::io::Write;

use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin, json};

const MIB: usize = 1 << 20;

/// Holds nothing.
pub struct MemoryBomb;

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
fn grow_raw() -> usize {
    let mut pages = 0;
    while core::arch::wasm32::memory_grow(0, 1) != usize::MAX {
        pages += 1;
    }
    pages
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_raw() -> usize {
    0
}

impl Plugin for MemoryBomb {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        grow_forever()
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "grow" => grow_forever(),
            "grow-raw" => {
                // The answer's buffer is allocated first: once memory is
                // exhausted, the allocator has nothing left to give.
                let mut answer = Vec::with_capacity(64);
                let pages = grow_raw();
                write!(answer, "{{\"pages\":{pages}}}")
                    .map_err(|e| Error::internal(e.to_string()))?;
                Ok(answer)
            }
            "alloc" => {
                let mib: usize = json::decode(input)?;
                let block = touched_block(mib.saturating_mul(MIB));
                drop(block);
                json::encode(&mib)
            }
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(MemoryBomb);
