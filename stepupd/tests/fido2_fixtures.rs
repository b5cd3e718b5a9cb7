//! Our FIDO2 assertion verifier against assertions made by an independent
//! implementation (soft-webauthn / python-fido2 / `cryptography`, see
//! `tests/fixtures/fido2/make_fixtures.py`). The fixtures are committed JSON;
//! Python is not needed to run this.

use std::path::{Path, PathBuf};

use data_encoding::{BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use serde_json::Value;
use stepupd::factors::fido2::authenticator::{Algorithm, Assertion};
use stepupd::factors::fido2::verify::{
    Expectation, StoredKey, Verified, VerifyError, client_data_hash, parse_authenticator_data,
    verify_assertion,
};

struct Fixture {
    name: String,
    algorithm: Algorithm,
    rp_id: String,
    user: String,
    challenge: Vec<u8>,
    credential_id: Vec<u8>,
    public_key: Vec<u8>,
    client_data_json: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
    signature_raw: Option<Vec<u8>>,
    sign_count: u32,
    flags: u8,
    user_verified: bool,
    backup_eligible: bool,
    backed_up: bool,
    require_uv: bool,
}

impl Fixture {
    fn load(path: &Path) -> Self {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let field = |key: &str| -> &Value {
            json.get(key)
                .unwrap_or_else(|| panic!("{name}: no field {key}"))
        };
        let string = |key: &str| -> String {
            field(key)
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {key} is not a string"))
                .to_owned()
        };
        let hex = |key: &str| -> Vec<u8> {
            HEXLOWER_PERMISSIVE
                .decode(string(key).as_bytes())
                .unwrap_or_else(|e| panic!("{name}: {key}: {e}"))
        };
        let boolean = |key: &str| -> bool {
            field(key)
                .as_bool()
                .unwrap_or_else(|| panic!("{name}: {key} is not a bool"))
        };
        let number = |key: &str| -> u64 {
            field(key)
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: {key} is not a number"))
        };
        let algorithm = Algorithm::parse(&string("algorithm"))
            .unwrap_or_else(|| panic!("{name}: unknown algorithm"));
        Fixture {
            algorithm,
            rp_id: string("rp_id"),
            user: string("user"),
            challenge: hex("challenge"),
            credential_id: hex("credential_id"),
            public_key: hex("public_key"),
            client_data_json: hex("client_data_json"),
            authenticator_data: hex("authenticator_data"),
            signature: hex("signature"),
            signature_raw: json.get("signature_raw").map(|_| hex("signature_raw")),
            sign_count: u32::try_from(number("sign_count")).expect("sign_count fits u32"),
            flags: u8::try_from(number("flags")).expect("flags fit u8"),
            user_verified: boolean("user_verified"),
            backup_eligible: boolean("backup_eligible"),
            backed_up: boolean("backed_up"),
            require_uv: boolean("require_uv"),
            name,
        }
    }

    fn assertion(&self) -> Assertion {
        Assertion {
            credential_id: self.credential_id.clone(),
            authenticator_data: self.authenticator_data.clone(),
            signature: self.signature.clone(),
        }
    }

    /// The stored counter: one behind the fixture's, or 0 for a key without one.
    fn stored_count(&self) -> u32 {
        self.sign_count.saturating_sub(1)
    }

    fn stored_key(&self) -> StoredKey<'_> {
        StoredKey {
            credential_id: &self.credential_id,
            user: &self.user,
            algorithm: self.algorithm,
            public_key: &self.public_key,
            rp_id: &self.rp_id,
            sign_count: self.stored_count(),
        }
    }

    fn verify_with(
        &self,
        key: &StoredKey<'_>,
        assertion: &Assertion,
    ) -> Result<Verified, VerifyError> {
        let hash = client_data_hash(&self.client_data_json);
        let expect = Expectation {
            user: &self.user,
            client_data_hash: &hash,
            require_uv: self.require_uv,
        };
        verify_assertion(key, assertion, &expect)
    }

    fn expected(&self) -> Verified {
        Verified {
            sign_count: self.sign_count,
            user_verified: self.user_verified,
            backup_eligible: self.backup_eligible,
            backed_up: self.backed_up,
        }
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fido2")
}

fn fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let all: Vec<Fixture> = paths.iter().map(|p| Fixture::load(p)).collect();
    assert!(
        all.len() >= 6,
        "expected at least 6 fixtures, found {}",
        all.len()
    );
    assert!(all.iter().any(|f| f.algorithm == Algorithm::Es256));
    assert!(all.iter().any(|f| f.algorithm == Algorithm::EdDsa));
    all
}

#[test]
fn fixtures_are_well_formed() {
    for f in fixtures() {
        let auth = parse_authenticator_data(&f.authenticator_data).expect("authenticator data");
        assert_eq!(auth.sign_count, f.sign_count, "{}", f.name);
        assert_eq!(auth.flags, f.flags, "{}", f.name);
        // clientDataJSON carries the challenge the fixture was made with.
        let client: Value = serde_json::from_slice(&f.client_data_json).expect("clientDataJSON");
        assert_eq!(client["type"], "webauthn.get", "{}", f.name);
        let challenge = client["challenge"].as_str().expect("challenge");
        assert_eq!(
            BASE64URL_NOPAD.decode(challenge.as_bytes()).ok(),
            Some(f.challenge.clone()),
            "{}",
            f.name
        );
        let expected_key_len = match f.algorithm {
            Algorithm::Es256 => 65,
            Algorithm::EdDsa => 32,
        };
        assert_eq!(f.public_key.len(), expected_key_len, "{}", f.name);
    }
}

#[test]
fn every_fixture_verifies() {
    for f in fixtures() {
        assert_eq!(
            f.verify_with(&f.stored_key(), &f.assertion()),
            Ok(f.expected()),
            "{}",
            f.name
        );
    }
}

#[test]
fn es256_raw_forms_verify() {
    for f in fixtures()
        .iter()
        .filter(|f| f.algorithm == Algorithm::Es256)
    {
        // 64-byte raw X ‖ Y public key.
        let mut key = f.stored_key();
        key.public_key = &f.public_key[1..];
        assert_eq!(
            f.verify_with(&key, &f.assertion()),
            Ok(f.expected()),
            "{}: raw key",
            f.name
        );
        // 64-byte raw r ‖ s signature.
        let raw = f
            .signature_raw
            .clone()
            .expect("es256 fixtures carry signature_raw");
        assert_eq!(raw.len(), 64);
        let assertion = Assertion {
            signature: raw,
            ..f.assertion()
        };
        assert_eq!(
            f.verify_with(&f.stored_key(), &assertion),
            Ok(f.expected()),
            "{}: raw signature",
            f.name
        );
    }
}

#[test]
fn any_changed_signature_byte_fails() {
    for f in fixtures() {
        for i in 0..f.signature.len() {
            let mut assertion = f.assertion();
            assertion.signature[i] ^= 0x01;
            assert_eq!(
                f.verify_with(&f.stored_key(), &assertion),
                Err(VerifyError::BadSignature),
                "{}: byte {i}",
                f.name
            );
        }
    }
}

#[test]
fn changed_authenticator_data_or_client_data_fails() {
    for f in fixtures() {
        // Flip a counter bit: parses, passes the flag checks, fails the signature.
        let mut assertion = f.assertion();
        assertion.authenticator_data[36] ^= 0x80;
        let key = StoredKey {
            sign_count: 0,
            ..f.stored_key()
        };
        assert_eq!(
            f.verify_with(&key, &assertion),
            Err(VerifyError::BadSignature),
            "{}",
            f.name
        );

        // A different clientDataJSON (another challenge).
        let mut other = f.client_data_json.clone();
        let last = other.len() - 2;
        other[last] ^= 0x01;
        let hash = client_data_hash(&other);
        let expect = Expectation {
            user: &f.user,
            client_data_hash: &hash,
            require_uv: f.require_uv,
        };
        assert_eq!(
            verify_assertion(&f.stored_key(), &f.assertion(), &expect),
            Err(VerifyError::BadSignature),
            "{}",
            f.name
        );
    }
}

#[test]
fn different_rp_id_fails() {
    for f in fixtures() {
        let other = if f.rp_id == "example.org" {
            "pam://stepup"
        } else {
            "example.org"
        };
        let key = StoredKey {
            rp_id: other,
            ..f.stored_key()
        };
        assert_eq!(
            f.verify_with(&key, &f.assertion()),
            Err(VerifyError::RpIdMismatch),
            "{}",
            f.name
        );
    }
}

#[test]
fn other_credential_or_user_fails() {
    for f in fixtures() {
        let mut assertion = f.assertion();
        assertion.credential_id[0] ^= 0x01;
        assert_eq!(
            f.verify_with(&f.stored_key(), &assertion),
            Err(VerifyError::WrongCredential),
            "{}",
            f.name
        );
        let key = StoredKey {
            user: "mallory",
            ..f.stored_key()
        };
        assert_eq!(
            f.verify_with(&key, &f.assertion()),
            Err(VerifyError::WrongUser),
            "{}",
            f.name
        );
    }
}

#[test]
fn replayed_counter_fails() {
    for f in fixtures().iter().filter(|f| f.sign_count > 0) {
        let key = StoredKey {
            sign_count: f.sign_count,
            ..f.stored_key()
        };
        assert_eq!(
            f.verify_with(&key, &f.assertion()),
            Err(VerifyError::CounterRegression {
                stored: f.sign_count,
                received: f.sign_count
            }),
            "{}",
            f.name
        );
    }
}

#[test]
fn wrong_algorithm_fails() {
    for f in fixtures() {
        let other = match f.algorithm {
            Algorithm::Es256 => Algorithm::EdDsa,
            Algorithm::EdDsa => Algorithm::Es256,
        };
        let key = StoredKey {
            algorithm: other,
            ..f.stored_key()
        };
        assert_eq!(
            f.verify_with(&key, &f.assertion()),
            Err(VerifyError::BadPublicKey),
            "{}",
            f.name
        );
    }
}

#[test]
fn require_uv_is_enforced_on_fixtures() {
    for f in fixtures().iter().filter(|f| !f.user_verified) {
        let hash = client_data_hash(&f.client_data_json);
        let expect = Expectation {
            user: &f.user,
            client_data_hash: &hash,
            require_uv: true,
        };
        assert_eq!(
            verify_assertion(&f.stored_key(), &f.assertion(), &expect),
            Err(VerifyError::UserNotVerified),
            "{}",
            f.name
        );
    }
}
