//! The publish upload: one body holding the signature file and the archive.
//!
//! ```text
//! u32 little-endian  length of the signature file (JSON)
//! bytes              the signature file
//! u32 little-endian  length of the archive
//! bytes              the .tenon archive
//! ```
//!
//! Nothing may follow the archive. Lengths are checked against the limits
//! before anything is copied.

use tenon_marketplace::{MAX_SIGNATURE_FILE_BYTES, SignatureFile};

use crate::error::MarketError;

/// A parsed upload.
#[derive(Debug)]
pub struct Upload<'a> {
    /// The signature file.
    pub signatures: SignatureFile,
    /// The archive's bytes.
    pub archive: &'a [u8],
}

/// Frames a signature file and an archive as an upload body (what a client
/// sends).
pub fn encode_upload(signatures: &[u8], archive: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + signatures.len() + archive.len());
    for part in [signatures, archive] {
        let len = u32::try_from(part.len()).expect("parts fit the frame");
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(part);
    }
    body
}

/// Parses an upload body whose archive may be at most `max_archive` bytes.
pub fn parse_upload(body: &[u8], max_archive: u64) -> Result<Upload<'_>, MarketError> {
    let (sig, rest) = frame(body, "signature file", MAX_SIGNATURE_FILE_BYTES as u64, 0)?;
    let (archive, rest) = frame(rest, "archive", max_archive, 4 + sig.len())?;
    if !rest.is_empty() {
        return Err(MarketError::BadRequest(format!(
            "the upload has {} bytes after the archive; nothing may follow it",
            rest.len()
        )));
    }
    let signatures = SignatureFile::from_json(sig)?;
    Ok(Upload {
        signatures,
        archive,
    })
}

fn frame<'a>(
    input: &'a [u8],
    what: &'static str,
    limit: u64,
    offset: usize,
) -> Result<(&'a [u8], &'a [u8]), MarketError> {
    let Some((len, rest)) = input.split_first_chunk::<4>() else {
        return Err(MarketError::BadRequest(format!(
            "the upload ends at byte {offset} where the {what}'s 4-byte length was expected"
        )));
    };
    let len = u64::from(u32::from_le_bytes(*len));
    if len > limit {
        return Err(MarketError::TooLarge {
            what,
            size: len,
            limit,
        });
    }
    let len = len as usize;
    if rest.len() < len {
        return Err(MarketError::BadRequest(format!(
            "the upload says the {what} is {len} bytes but only {} follow",
            rest.len()
        )));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary bodies never panic the parser, and an accepted one
        /// re-encodes to itself.
        #[test]
        fn arbitrary_bodies(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
            if let Ok(upload) = parse_upload(&body, 512) {
                let json = upload.signatures.to_json();
                let encoded = encode_upload(json.as_bytes(), upload.archive);
                prop_assert!(parse_upload(&encoded, 512).is_ok());
            }
        }
    }

    #[test]
    fn malformed_frames_are_refused_with_their_cause() {
        let sig = br#"{"package_sha256":"0000000000000000000000000000000000000000000000000000000000000000","plugin":"acme/a","version":"1.0.0","signatures":[]}"#;
        let good = encode_upload(sig, b"archive");
        assert_eq!(parse_upload(&good, 100).unwrap().archive, b"archive");
        let mut trailing = good.clone();
        trailing.push(0);
        let mut huge = 4u32.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}}}");
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "ends at byte 0"),
            ("short length", vec![1, 0], "ends at byte 0"),
            (
                "truncated signature",
                vec![9, 0, 0, 0, b'{'],
                "only 1 follow",
            ),
            ("trailing bytes", trailing, "after the archive"),
            (
                "archive over the limit",
                encode_upload(sig, &[0; 101]),
                "more than the limit of 100",
            ),
            (
                "declared length over the limit",
                huge,
                "the archive is 4294967295 bytes",
            ),
            (
                "signature file not json",
                encode_upload(b"nope", b""),
                "invalid signature file",
            ),
        ];
        for (name, body, mention) in cases {
            let err = parse_upload(&body, 100).unwrap_err();
            assert!(err.to_string().contains(mention), "{name}: {err}");
        }
    }
}
