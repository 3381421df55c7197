//! The seam to `tenon-manifest`: a package's manifest bytes in, a validated
//! [`Manifest`] or an [`InvalidManifest`](PackageError::InvalidManifest) out.

use std::path::Path;

use tenon_manifest::{Code, Diagnostic, Format, Manifest, ValidationContext};

use crate::error::PackageError;

/// Parses and validates the manifest stored at `path` in a package, and
/// returns it with its warnings.
///
/// Validation is host-neutral: the format, the types and every semantic rule,
/// but not a particular host's plugin API versions, hooks or capabilities
/// (a package is made once and installed on many hosts; the engine checks
/// compatibility with its own host when installing).
pub(crate) fn parse(path: &str, bytes: &[u8]) -> Result<(Manifest, Vec<Diagnostic>), PackageError> {
    let invalid = |diagnostics: Vec<Diagnostic>| PackageError::InvalidManifest {
        path: path.to_owned(),
        diagnostics,
    };
    let format = Format::from_path(Path::new(path)).unwrap_or(Format::Toml);
    let source = std::str::from_utf8(bytes).map_err(|e| {
        invalid(vec![Diagnostic::error(
            Code::Syntax,
            "",
            format!(
                "the manifest is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )])
    })?;
    let context = ValidationContext {
        api_versions: Vec::new(),
        ..ValidationContext::default()
    };
    let parsed = tenon_manifest::parse(source, format, &context);
    match parsed.manifest {
        Some(manifest) => Ok((manifest, parsed.diagnostics)),
        None => Err(invalid(parsed.diagnostics)),
    }
}
