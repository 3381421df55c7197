//! Fuzzes manifest parsing in all three formats. The first byte picks the
//! format; the rest is the document.
//!
//! Properties: parsing never panics (nor overflows the stack, nor runs away
//! in time or memory); an invalid document always says why; a valid one
//! converts to every format and parses back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tenon_manifest::{Format, ValidationContext, parse, parse_bytes};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, document)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[usize::from(selector) % Format::ALL.len()];
    let context = ValidationContext::default();
    let parsed = parse_bytes(document, format, &context);
    match &parsed.manifest {
        None => assert!(parsed.errors().next().is_some(), "refused without an error"),
        Some(manifest) => {
            for to in Format::ALL {
                let text = manifest.to_string_in(to);
                let again = parse(&text, to, &context);
                assert_eq!(
                    again.manifest.as_ref(),
                    Some(manifest),
                    "does not round-trip through {to}:\n{text}\n{:?}",
                    again.diagnostics
                );
            }
        }
    }
});
