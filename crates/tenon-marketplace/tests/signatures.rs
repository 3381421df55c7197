//! Signatures and trust policies.

mod common;

use common::*;
use tenon_marketplace::{
    AllowUnsigned, KeyRotation, Origin, PackOptions, PackageError, PublicKey, Role, SignatureFile,
    SigningKey, Trust, TrustLevel, TrustPolicy, UnpackLimits, Verification, pack, signed_message,
    verify,
};

struct Fixture {
    bytes: Vec<u8>,
    blank: SignatureFile,
    author: SigningKey,
    market: SigningKey,
}

fn fixture() -> Fixture {
    let packed = pack(plugin_dir().path(), &PackOptions::default()).unwrap();
    Fixture {
        blank: SignatureFile::for_package(&packed.info),
        bytes: packed.bytes,
        author: SigningKey::from_seed(&[1; 32]),
        market: SigningKey::from_seed(&[2; 32]),
    }
}

impl Fixture {
    fn signed(&self, signers: &[(Role, &SigningKey)]) -> SignatureFile {
        let mut file = self.blank.clone();
        for (role, key) in signers {
            file.sign(*role, key);
        }
        file
    }
}

/// Verifies and expects the trust level (Ok) or the error code (Err).
fn check(
    name: &str,
    bytes: &[u8],
    signatures: Option<&SignatureFile>,
    policy: &TrustPolicy,
    origin: Origin,
    expected: Result<Trust, &str>,
) -> Option<Verification> {
    let got = verify(bytes, signatures, policy, origin);
    match (got, expected) {
        (Ok(v), Ok(trust)) => {
            assert_eq!(v.verification().trust, trust, "{name}");
            Some(v.verification().clone())
        }
        (Err(e), Err(code)) => {
            assert_eq!(e.code(), code, "{name}: {e}");
            None
        }
        (got, expected) => panic!(
            "{name}: got {:?}, expected {expected:?}",
            got.map(|v| v.verification().clone())
        ),
    }
}

#[test]
fn trust_decisions() {
    let f = fixture();
    let stranger = SigningKey::from_seed(&[3; 32]);
    let author_only = f.signed(&[(Role::Author, &f.author)]);
    let both = f.signed(&[(Role::Author, &f.author), (Role::Marketplace, &f.market)]);
    let by_stranger = f.signed(&[(Role::Author, &stranger)]);
    let stranger_and_market =
        f.signed(&[(Role::Author, &stranger), (Role::Marketplace, &f.market)]);
    let market_by_stranger = f.signed(&[(Role::Author, &f.author), (Role::Marketplace, &stranger)]);
    let market_only = f.signed(&[(Role::Marketplace, &f.market)]);

    let strict = TrustPolicy {
        allow_unsigned: AllowUnsigned::Never,
        ..TrustPolicy::default()
    };
    let global = strict.clone().with_author_key(f.author.public_key());
    let for_acme = strict
        .clone()
        .with_publisher_key("acme", f.author.public_key());
    let for_other = strict
        .clone()
        .with_publisher_key("other", f.author.public_key());
    let with_market = TrustPolicy {
        require_marketplace_signature: true,
        ..global.clone().with_marketplace_key(f.market.public_key())
    };
    let market_vouches = TrustPolicy {
        require_marketplace_signature: true,
        trust_marketplace_countersigned: true,
        ..strict.clone().with_marketplace_key(f.market.public_key())
    };
    let local_dev = TrustPolicy {
        allow_unsigned: AllowUnsigned::Local,
        ..TrustPolicy::default()
    };
    let anything = TrustPolicy::development();

    use Origin::*;
    let b = f.bytes.as_slice();
    type Case<'a> = (
        &'a str,
        Option<&'a SignatureFile>,
        &'a TrustPolicy,
        Origin,
        Result<Trust, &'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "valid author, global key",
            Some(&author_only),
            &global,
            Remote,
            Ok(Trust::Trusted),
        ),
        (
            "valid author, publisher key",
            Some(&author_only),
            &for_acme,
            Remote,
            Ok(Trust::Trusted),
        ),
        (
            "key trusted for another publisher",
            Some(&author_only),
            &for_other,
            Remote,
            Err("untrusted-author"),
        ),
        (
            "wrong key",
            Some(&by_stranger),
            &global,
            Remote,
            Err("untrusted-author"),
        ),
        (
            "only a marketplace signature",
            Some(&market_only),
            &global,
            Remote,
            Err("untrusted-author"),
        ),
        (
            "marketplace required, absent",
            Some(&author_only),
            &with_market,
            Remote,
            Err("missing-marketplace-signature"),
        ),
        (
            "marketplace required, present",
            Some(&both),
            &with_market,
            Remote,
            Ok(Trust::Trusted),
        ),
        (
            "marketplace by an untrusted key",
            Some(&market_by_stranger),
            &with_market,
            Remote,
            Err("missing-marketplace-signature"),
        ),
        (
            "marketplace vouches for the author",
            Some(&stranger_and_market),
            &market_vouches,
            Remote,
            Ok(Trust::Trusted),
        ),
        (
            "vouching needs the marketplace",
            Some(&by_stranger),
            &market_vouches,
            Remote,
            Err("untrusted-author"),
        ),
        (
            "vouching still needs an author",
            Some(&market_only),
            &market_vouches,
            Remote,
            Err("untrusted-author"),
        ),
        ("unsigned, refused", None, &strict, Local, Err("unsigned")),
        (
            "unsigned, local allowed",
            None,
            &local_dev,
            Local,
            Ok(Trust::Unsigned),
        ),
        (
            "unsigned, remote refused",
            None,
            &local_dev,
            Remote,
            Err("unsigned"),
        ),
        (
            "unsigned, always allowed",
            None,
            &anything,
            Remote,
            Ok(Trust::Unsigned),
        ),
        (
            "an empty signature file is unsigned",
            Some(&f.blank),
            &local_dev,
            Remote,
            Err("unsigned"),
        ),
        (
            "untrusted signature where unsigned is allowed",
            Some(&by_stranger),
            &local_dev,
            Local,
            Ok(Trust::Untrusted),
        ),
        (
            "untrusted signature, remote",
            Some(&by_stranger),
            &local_dev,
            Remote,
            Err("untrusted-author"),
        ),
    ];
    for (name, signatures, policy, origin, expected) in cases {
        check(name, b, signatures, policy, origin, expected);
    }

    let v = check(
        "keys reported",
        b,
        Some(&both),
        &with_market,
        Remote,
        Ok(Trust::Trusted),
    )
    .unwrap();
    assert_eq!(v.author_key, Some(f.author.key_id()));
    assert_eq!(v.marketplace_key, Some(f.market.key_id()));
    assert_eq!(v.plugin.unwrap().as_str(), "acme/hello");
    assert_eq!(v.version.unwrap().to_string(), "1.0.0");
    let v = check(
        "untrusted reports no key",
        b,
        Some(&by_stranger),
        &local_dev,
        Local,
        Ok(Trust::Untrusted),
    )
    .unwrap();
    assert_eq!(v.author_key, None);
}

#[test]
fn error_messages_name_the_keys() {
    let f = fixture();
    let stranger = SigningKey::from_seed(&[3; 32]);
    let policy = TrustPolicy {
        allow_unsigned: AllowUnsigned::Never,
        ..TrustPolicy::default()
    };
    let error = verify(
        &f.bytes,
        Some(&f.signed(&[(Role::Author, &stranger)])),
        &policy,
        Origin::Remote,
    )
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "acme/hello is not signed by an author key the trust policy trusts for publisher `acme` (signed by keys {}); add the author's public key to the policy (`tenon trust add KEY`)",
            stranger.key_id()
        )
    );
    let error = verify(&f.bytes, None, &policy, Origin::Remote)
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "the package is not signed, and the trust policy refuses unsigned packages from remote sources"
    );
}

#[test]
fn tampering_is_always_refused() {
    let f = fixture();
    let good = f.signed(&[(Role::Author, &f.author), (Role::Marketplace, &f.market)]);
    let anything = TrustPolicy::development();

    // A tampered archive: its sha256 is no longer the signed one.
    let mut tampered = f.bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let error = verify(&tampered, Some(&good), &anything, Origin::Local)
        .err()
        .unwrap();
    assert_eq!(error.code(), "checksum-mismatch");
    assert!(
        error.to_string().contains("the signature file expects"),
        "{error}"
    );

    // A signature file edited after signing: every signed field matters.
    let mut edits: Vec<(&str, SignatureFile)> = Vec::new();
    let mut other_version = good.clone();
    other_version.version = "9.9.9".parse().unwrap();
    edits.push(("version", other_version));
    let mut other_plugin = good.clone();
    other_plugin.plugin = "evil/hello".parse().unwrap();
    edits.push(("plugin", other_plugin));
    let mut role_swapped = good.clone();
    role_swapped.signatures[0].role = Role::Marketplace;
    edits.push(("role", role_swapped));
    let mut key_swapped = good.clone();
    key_swapped.signatures[0].public_key = f.market.public_key();
    key_swapped.signatures[0].key_id = f.market.key_id();
    edits.push(("key", key_swapped));
    let mut sig_swapped = good.clone();
    sig_swapped.signatures[0].signature = good.signatures[1].signature.clone();
    edits.push(("signature", sig_swapped));
    let mut garbled = good.clone();
    garbled.signatures[0].signature = "not base64!".into();
    edits.push(("garbled", garbled));
    let mut short = good.clone();
    short.signatures[0].signature = "AAAA".into();
    edits.push(("short", short));
    for (name, edited) in edits {
        let error = verify(&f.bytes, Some(&edited), &anything, Origin::Local)
            .err()
            .unwrap();
        assert_eq!(error.code(), "bad-signature", "{name}: {error}");
    }
    // A signature over another package.
    let mut other_package = good.clone();
    other_package.package_sha256 = tenon_marketplace::Sha256Digest::of(b"another");
    let error = verify(&f.bytes, Some(&other_package), &anything, Origin::Local)
        .err()
        .unwrap();
    assert_eq!(error.code(), "checksum-mismatch");
}

#[test]
fn verification_reads_nothing_but_the_hash() {
    // Garbage signed properly verifies (trust is about who vouches for these
    // bytes); it is unpacking that refuses it. Nothing is decompressed
    // before trust is decided.
    let garbage = b"not an archive at all".to_vec();
    let key = SigningKey::from_seed(&[7; 32]);
    let mut file = SignatureFile::new(
        tenon_marketplace::Sha256Digest::of(&garbage),
        "acme/x".parse().unwrap(),
        "1.0.0".parse().unwrap(),
    );
    file.sign(Role::Author, &key);
    let policy = TrustPolicy::default().with_author_key(key.public_key());
    let verified = verify(&garbage, Some(&file), &policy, Origin::Remote).unwrap();
    let error = verified.inspect(&UnpackLimits::default()).unwrap_err();
    assert_eq!(error.code(), "not-gzip");
}

#[test]
fn the_signed_identity_must_match_the_manifest() {
    // A key trusted for `acme` signs an archive whose manifest claims to be
    // another publisher's plugin: refused before anything is put in place.
    let dir = plugin_dir();
    write(
        dir.path(),
        "tenon.toml",
        manifest_for(
            "other/hello",
            "1.0.0",
            "target/wasm32-wasip2/release/hello.wasm",
            None,
        ),
    );
    let packed = pack(dir.path(), &PackOptions::default()).unwrap();
    let key = SigningKey::from_seed(&[9; 32]);
    let mut file = SignatureFile::new(
        packed.sha256(),
        "acme/hello".parse().unwrap(),
        "1.0.0".parse().unwrap(),
    );
    file.sign(Role::Author, &key);
    let policy = TrustPolicy::default().with_publisher_key("acme", key.public_key());
    let verified = verify(&packed.bytes, Some(&file), &policy, Origin::Remote).unwrap();
    let limits = UnpackLimits::default();
    let expect =
        "the signatures are for acme/hello 1.0.0, but the archive's manifest is other/hello 1.0.0";
    let dest = tempfile::tempdir().unwrap();
    let errors: Vec<PackageError> = vec![
        verified.inspect(&limits).unwrap_err(),
        verified.unpack_to_memory(&limits).unwrap_err(),
        verified.unpack(dest.path(), &limits).unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.code(), "identity-mismatch");
        assert_eq!(error.to_string(), expect);
    }
    assert_eq!(listing(dest.path()), Vec::<String>::new());
}

#[test]
fn signature_file_format() {
    let f = fixture();
    let file = f.signed(&[(Role::Author, &f.author), (Role::Marketplace, &f.market)]);
    let json = file.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["package_sha256"], f.blank.package_sha256.to_hex());
    assert_eq!(value["plugin"], "acme/hello");
    assert_eq!(value["version"], "1.0.0");
    let entry = &value["signatures"][0];
    assert_eq!(entry["role"], "author");
    assert_eq!(entry["key_id"], f.author.key_id().as_str());
    assert_eq!(entry["public_key"], f.author.public_key().to_base64());
    assert_eq!(value["signatures"][1]["role"], "marketplace");
    assert_eq!(SignatureFile::from_json(json.as_bytes()).unwrap(), file);

    // Signing again with the same key and role replaces, never duplicates.
    let mut again = file.clone();
    again.sign(Role::Author, &f.author);
    assert_eq!(again.signatures.len(), 2);

    let bad = |text: &str, mention: &str| {
        let error = SignatureFile::from_json(text.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "invalid-signature-file", "{error}");
        assert!(
            error.to_string().contains(mention),
            "{error} lacks {mention}"
        );
    };
    bad("{", "EOF");
    bad(
        &json.replace("\"plugin\"", "\"extra\": 1, \"plugin\""),
        "unknown field `extra`",
    );
    bad(
        &json.replace(f.author.key_id().as_str(), "0000000000000000"),
        "says key_id 0000000000000000",
    );
    bad(
        &json.replace("\"author\"", "\"publisher\""),
        "unknown variant `publisher`",
    );
    bad(
        &json.replace(&f.blank.package_sha256.to_hex(), "abc"),
        "not a sha256 digest",
    );
    let mut huge = String::from(" ").repeat(70_000);
    huge.push_str(&json);
    bad(&huge, "more than the limit of 65536");
    let mut many = file.clone();
    for i in 0..17u8 {
        many.sign(Role::Author, &SigningKey::from_seed(&[100 + i; 32]));
    }
    bad(&many.to_json(), "19 signatures, more than the limit of 16");
}

#[test]
fn keys_and_the_signed_message() {
    let key = SigningKey::from_seed(&[1; 32]);
    let text = key.to_base64();
    assert_eq!(
        SigningKey::from_base64(&text).unwrap().public_key(),
        key.public_key()
    );
    assert_eq!(format!("{key:?}"), format!("SigningKey({})", key.key_id()));
    assert!(!format!("{key:?}").contains(&text));
    let public = key.public_key();
    assert_eq!(public.to_base64().parse::<PublicKey>().unwrap(), public);
    assert_eq!(key.key_id().as_str().len(), 16);
    assert_ne!(
        SigningKey::generate().public_key(),
        SigningKey::generate().public_key()
    );
    for bad in ["", "!!!", "AAAA", &"A".repeat(44)] {
        assert_eq!(
            bad.parse::<PublicKey>().unwrap_err().code(),
            "invalid-key",
            "{bad}"
        );
    }
    assert_eq!(
        SigningKey::from_base64("AAAA").unwrap_err().code(),
        "invalid-key"
    );

    let sha = tenon_marketplace::Sha256Digest::of(b"x");
    let message = signed_message(
        Role::Marketplace,
        &"acme/x".parse().unwrap(),
        &"1.2.0".parse().unwrap(),
        &sha,
    );
    assert_eq!(
        String::from_utf8(message).unwrap(),
        format!("tenon package signature v1\nmarketplace\nacme/x\n1.2.0\n{sha}")
    );
}

#[test]
fn trust_policies_deserialize_from_configuration() {
    let key = SigningKey::from_seed(&[1; 32]).public_key();
    let json = format!(
        r#"{{"publisher_keys": {{"acme": ["{key}"]}}, "marketplace_keys": ["{key}"], "require_marketplace_signature": true, "allow_unsigned": "never"}}"#
    );
    let policy: TrustPolicy = serde_json::from_str(&json).unwrap();
    assert!(policy.trusts_author(&"acme/x".parse().unwrap(), &key));
    assert!(!policy.trusts_author(&"other/x".parse().unwrap(), &key));
    assert_eq!(policy.allow_unsigned, AllowUnsigned::Never);
    let defaults: TrustPolicy = serde_json::from_str("{}").unwrap();
    assert_eq!(defaults, TrustPolicy::default());
    assert_eq!(defaults.allow_unsigned, AllowUnsigned::Never);
    assert!(!defaults.allow_unsigned_directories);
    assert_eq!(defaults.unsigned_level, TrustLevel::Untrusted);
    assert!(serde_json::from_str::<TrustPolicy>(r#"{"author_keys": ["nope"]}"#).is_err());
}

#[test]
fn revocation_rotation_and_levels() {
    let f = fixture();
    let old = &f.author;
    let new = SigningKey::from_seed(&[4; 32]);
    let forger = SigningKey::from_seed(&[5; 32]);
    let by_new = f.signed(&[(Role::Author, &new)]);
    let by_old = f.signed(&[(Role::Author, old)]);
    let by_old_and_market = f.signed(&[(Role::Author, old), (Role::Marketplace, &f.market)]);
    let rotation = KeyRotation::sign(old, &new.public_key());
    rotation.check().unwrap();
    let mut forged = KeyRotation::sign(&forger, &new.public_key());
    forged.from = old.public_key();

    let base = TrustPolicy::default().with_publisher_key("acme", old.public_key());
    let rotated = TrustPolicy {
        rotations: vec![rotation.clone()],
        ..base.clone()
    };
    let forged_policy = TrustPolicy {
        rotations: vec![forged.clone()],
        ..base.clone()
    };
    let revoked_author = TrustPolicy {
        revoked_keys: vec![old.public_key()],
        ..base.clone()
    };
    let revoked_market = TrustPolicy {
        revoked_keys: vec![f.market.public_key()],
        ..base.clone().with_marketplace_key(f.market.public_key())
    };
    let old_revoked_after_rotation = TrustPolicy {
        revoked_keys: vec![old.public_key()],
        ..rotated.clone()
    };
    let internal = TrustPolicy {
        key_levels: [(old.public_key(), TrustLevel::Internal)].into(),
        ..rotated.clone()
    };
    let untrusted_allowed = TrustPolicy {
        allow_unsigned: AllowUnsigned::Always,
        ..TrustPolicy::default()
    };

    let revoked_anyway = TrustPolicy {
        revoked_keys: vec![old.public_key()],
        ..untrusted_allowed.clone()
    };
    type Case<'a> = (
        &'a str,
        &'a SignatureFile,
        &'a TrustPolicy,
        Result<(Trust, TrustLevel), &'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "the bound key",
            &by_old,
            &base,
            Ok((Trust::Trusted, TrustLevel::Partner)),
        ),
        (
            "a rotated key without the statement",
            &by_new,
            &base,
            Err("untrusted-author"),
        ),
        (
            "a rotated key with the statement",
            &by_new,
            &rotated,
            Ok((Trust::Trusted, TrustLevel::Partner)),
        ),
        (
            "a forged rotation statement",
            &by_new,
            &forged_policy,
            Err("untrusted-author"),
        ),
        (
            "a revoked author key",
            &by_old,
            &revoked_author,
            Err("revoked-key"),
        ),
        (
            "a revoked marketplace key",
            &by_old_and_market,
            &revoked_market,
            Err("revoked-key"),
        ),
        (
            "a rotation from a revoked key",
            &by_new,
            &old_revoked_after_rotation,
            Err("untrusted-author"),
        ),
        (
            "a level named for the old key",
            &by_new,
            &internal,
            Ok((Trust::Trusted, TrustLevel::Internal)),
        ),
        (
            "an unknown key where unsigned is allowed",
            &by_new,
            &untrusted_allowed,
            Ok((Trust::Untrusted, TrustLevel::Untrusted)),
        ),
        (
            "a revoked key where unsigned is allowed",
            &by_old,
            &revoked_anyway,
            Err("revoked-key"),
        ),
    ];
    for (name, signatures, policy, expected) in cases {
        match (
            verify(&f.bytes, Some(signatures), policy, Origin::Remote),
            expected,
        ) {
            (Ok(v), Ok((trust, level))) => {
                let v = v.verification();
                assert_eq!((v.trust, v.level), (trust, level), "{name}");
                assert_eq!(v.signers.len(), signatures.signatures.len(), "{name}");
            }
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "{name}: {e}"),
            (got, expected) => panic!(
                "{name}: got {:?}, expected {expected:?}",
                got.map(|v| v.verification().clone())
            ),
        }
    }

    assert_eq!(forged.check().unwrap_err().code(), "bad-rotation");
    let err = TrustPolicy::from_toml(&forged_policy.to_toml()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the rotation from key {} to key {} is not signed by key {}: the statement was altered or forged",
            old.key_id(),
            new.key_id(),
            old.key_id()
        )
    );
    assert_eq!(
        KeyRotation::from_json(rotation.to_json().as_bytes()).unwrap(),
        rotation
    );
    let mut to_itself = KeyRotation::sign(old, &old.public_key());
    assert!(to_itself.check().is_err(), "a key cannot rotate to itself");
    to_itself.signature = "not base64".into();
    assert!(to_itself.check().is_err());
}

#[test]
fn trust_policies_read_from_toml() {
    let key = SigningKey::from_seed(&[1; 32]);
    let next = SigningKey::from_seed(&[2; 32]);
    let text = format!(
        r#"
allow_unsigned_directories = true
marketplace = "https://market.example/"
unsigned_level = "partner"
revoked_keys = ["{revoked}"]
[publisher_keys]
acme = ["{key}"]
[key_levels]
"{key}" = "internal"
[[rotations]]
from = "{key}"
to = "{next}"
signature = "{signature}"
"#,
        key = key.public_key(),
        next = next.public_key(),
        revoked = SigningKey::from_seed(&[9; 32]).public_key(),
        signature = KeyRotation::sign(&key, &next.public_key()).signature,
    );
    let policy = TrustPolicy::from_toml(&text).unwrap();
    assert!(policy.allow_unsigned_directories);
    assert_eq!(
        policy.marketplace.as_deref(),
        Some("https://market.example/")
    );
    assert_eq!(policy.unsigned_level, TrustLevel::Partner);
    assert_eq!(policy.allow_unsigned, AllowUnsigned::Never);
    assert!(policy.trusts_author(&"acme/x".parse().unwrap(), &next.public_key()));
    assert_eq!(
        policy.level_for(&"acme/x".parse().unwrap(), &next.public_key()),
        TrustLevel::Internal
    );
    assert!(policy.succeeds(&key.public_key(), &next.public_key()));
    assert!(!policy.succeeds(&next.public_key(), &key.public_key()));
    assert_eq!(TrustPolicy::from_toml(&policy.to_toml()).unwrap(), policy);
    for bad in [
        "unsigned_level = \"root\"",
        "surprise = 1",
        "revoked_keys = [\"nope\"]",
        "marketplace = \"file:///etc/passwd\"",
        "marketplace = \"https://\"",
        "marketplace = 1",
    ] {
        let err = TrustPolicy::from_toml(bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the trust policy does not parse"),
            "{bad}: {err}"
        );
    }
}

/// Only the author key that satisfied the policy may bind a publisher: a
/// signature anyone can add beside the real one (or put first) never does.
#[test]
fn only_the_trusted_author_key_may_bind_a_publisher() {
    let f = fixture();
    let stranger = SigningKey::from_seed(&[9; 32]);
    let trusting = TrustPolicy::default().with_author_key(f.author.public_key());
    let vouching = TrustPolicy {
        trust_marketplace_countersigned: true,
        ..TrustPolicy::default().with_marketplace_key(f.market.public_key())
    };
    let dev = TrustPolicy {
        allow_unsigned: AllowUnsigned::Local,
        ..TrustPolicy::default()
    };
    let cases: [(&str, &TrustPolicy, Option<SignatureFile>, Option<PublicKey>); 6] = [
        (
            "the trusted author alone",
            &trusting,
            Some(f.signed(&[(Role::Author, &f.author)])),
            Some(f.author.public_key()),
        ),
        (
            "a stranger's signature put first",
            &trusting,
            Some(f.signed(&[(Role::Author, &stranger), (Role::Author, &f.author)])),
            Some(f.author.public_key()),
        ),
        (
            "vouched, one author",
            &vouching,
            Some(f.signed(&[(Role::Author, &f.author), (Role::Marketplace, &f.market)])),
            Some(f.author.public_key()),
        ),
        (
            "vouched, a second author added",
            &vouching,
            Some(f.signed(&[
                (Role::Author, &stranger),
                (Role::Author, &f.author),
                (Role::Marketplace, &f.market),
            ])),
            None,
        ),
        (
            "untrusted but allowed",
            &dev,
            Some(f.signed(&[(Role::Author, &stranger)])),
            None,
        ),
        ("unsigned but allowed", &dev, None, None),
    ];
    for (name, policy, signatures, expected) in cases {
        let verified = verify(&f.bytes, signatures.as_ref(), policy, Origin::Local)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            verified.verification().author_public_key,
            expected,
            "{name}"
        );
    }
}
