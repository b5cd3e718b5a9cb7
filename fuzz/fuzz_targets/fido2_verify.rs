//! The FIDO2 assertion verifier (`stepupd::factors::fido2::verify`).
//!
//! Three modes, chosen by the input:
//! - `Raw`: every field arbitrary; must not panic.
//! - `Mutate`: start from one of the committed fixtures (assertions made by
//!   python-fido2 / soft-webauthn / cryptography, stepupd/tests/fixtures/fido2),
//!   which verifies; apply arbitrary edits (xor a byte, truncate, append,
//!   overwrite) to the authenticator data, signature, client data hash,
//!   credential id or public key. If any of them changed, the verifier must
//!   not return Ok.
//! - `Sign`: sign fuzzer-chosen authenticator data with a fuzzer-chosen key
//!   (ES256 DER or raw, Ed25519); the verdict must be exactly what an
//!   independent model of the checks (rpId hash, UP, UV, counter) says.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use data_encoding::HEXLOWER_PERMISSIVE;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use stepupd::factors::fido2::authenticator::{Algorithm, Assertion};
use stepupd::factors::fido2::verify::{
    Expectation, FLAG_BE, FLAG_BS, FLAG_UP, FLAG_UV, StoredKey, Verified, VerifyError,
    client_data_hash, parse_authenticator_data, verify_assertion,
};

const FIXTURES: [&str; 6] = [
    include_str!("../../stepupd/tests/fixtures/fido2/eddsa-no-counter.json"),
    include_str!("../../stepupd/tests/fixtures/fido2/eddsa-uv.json"),
    include_str!("../../stepupd/tests/fixtures/fido2/es256-high-s.json"),
    include_str!("../../stepupd/tests/fixtures/fido2/es256-soft-webauthn-example-org.json"),
    include_str!("../../stepupd/tests/fixtures/fido2/es256-soft-webauthn-pam.json"),
    include_str!("../../stepupd/tests/fixtures/fido2/es256-uv-backup-extensions.json"),
];

struct Fixture {
    algorithm: Algorithm,
    rp_id: String,
    user: String,
    credential_id: Vec<u8>,
    public_key: Vec<u8>,
    cdh: [u8; 32],
    authenticator_data: Vec<u8>,
    signatures: Vec<Vec<u8>>,
    sign_count: u32,
    require_uv: bool,
}

fn fixtures() -> &'static [Fixture] {
    static CELL: OnceLock<Vec<Fixture>> = OnceLock::new();
    CELL.get_or_init(|| {
        FIXTURES
            .iter()
            .map(|text| {
                let j: serde_json::Value = serde_json::from_str(text).expect("fixture JSON");
                let s = |k: &str| j[k].as_str().expect(k).to_owned();
                let hex = |k: &str| HEXLOWER_PERMISSIVE.decode(s(k).as_bytes()).expect(k);
                let mut signatures = vec![hex("signature")];
                if j.get("signature_raw").is_some() {
                    signatures.push(hex("signature_raw"));
                }
                Fixture {
                    algorithm: Algorithm::parse(&s("algorithm")).expect("algorithm"),
                    rp_id: s("rp_id"),
                    user: s("user"),
                    credential_id: hex("credential_id"),
                    public_key: hex("public_key"),
                    cdh: client_data_hash(&hex("client_data_json")),
                    authenticator_data: hex("authenticator_data"),
                    signatures,
                    sign_count: u32::try_from(j["sign_count"].as_u64().expect("count"))
                        .expect("u32"),
                    require_uv: j["require_uv"].as_bool().expect("require_uv"),
                }
            })
            .collect()
    })
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Field {
    AuthenticatorData,
    Signature,
    ClientDataHash,
    CredentialId,
    PublicKey,
}

#[derive(Arbitrary, Debug)]
enum EditKind {
    Xor { at: u16, mask: u8 },
    Set { at: u16, value: u8 },
    Truncate { len: u16 },
    Append(Vec<u8>),
    Replace(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Edit {
    field: Field,
    kind: EditKind,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Mutate {
        fixture: u8,
        raw_signature: bool,
        edits: Vec<Edit>,
    },
    Sign {
        eddsa: bool,
        seed: [u8; 32],
        raw_signature: bool,
        rp_id: String,
        right_rp: bool,
        flags: u8,
        count: u32,
        stored: u32,
        extensions: Vec<u8>,
        cdh: [u8; 32],
        require_uv: bool,
    },
    Raw {
        eddsa: bool,
        key_credential_id: Vec<u8>,
        key_user: String,
        public_key: Vec<u8>,
        rp_id: String,
        stored: u32,
        credential_id: Vec<u8>,
        authenticator_data: Vec<u8>,
        signature: Vec<u8>,
        user: String,
        cdh: [u8; 32],
        require_uv: bool,
    },
}

fn apply(bytes: &mut Vec<u8>, kind: &EditKind) {
    match kind {
        EditKind::Xor { at, mask } => {
            if !bytes.is_empty() {
                let i = usize::from(*at) % bytes.len();
                bytes[i] ^= mask;
            }
        }
        EditKind::Set { at, value } => {
            if !bytes.is_empty() {
                let i = usize::from(*at) % bytes.len();
                bytes[i] = *value;
            }
        }
        EditKind::Truncate { len } => bytes.truncate(usize::from(*len)),
        EditKind::Append(more) => bytes.extend_from_slice(more),
        EditKind::Replace(new) => bytes.clone_from(new),
    }
}

fn mutate(fixture: u8, raw_signature: bool, edits: &[Edit]) {
    let all = fixtures();
    let f = &all[usize::from(fixture) % all.len()];
    let signature = if raw_signature {
        f.signatures.last()
    } else {
        f.signatures.first()
    };
    let signature = signature.expect("a signature").clone();
    let mut auth = f.authenticator_data.clone();
    let mut sig = signature.clone();
    let mut cdh = f.cdh.to_vec();
    let mut cred = f.credential_id.clone();
    let mut public_key = f.public_key.clone();
    for edit in edits.iter().take(16) {
        let target = match edit.field {
            Field::AuthenticatorData => &mut auth,
            Field::Signature => &mut sig,
            Field::ClientDataHash => &mut cdh,
            Field::CredentialId => &mut cred,
            Field::PublicKey => &mut public_key,
        };
        apply(target, &edit.kind);
    }
    // A client data hash is 32 bytes by type; other lengths cannot be expressed.
    let Ok(cdh_arr) = <[u8; 32]>::try_from(cdh.as_slice()) else {
        return;
    };
    // The credential id is edited on the assertion side only: it is not
    // signed, so the stored key keeps the fixture's.
    let key = StoredKey {
        credential_id: &f.credential_id,
        user: &f.user,
        algorithm: f.algorithm,
        public_key: &public_key,
        rp_id: &f.rp_id,
        sign_count: f.sign_count.saturating_sub(1),
    };
    let assertion = Assertion {
        credential_id: cred.clone(),
        authenticator_data: auth.clone(),
        signature: sig.clone(),
    };
    let expect = Expectation {
        user: &f.user,
        client_data_hash: &cdh_arr,
        require_uv: f.require_uv,
    };
    let result = verify_assertion(&key, &assertion, &expect);
    let changed = auth != f.authenticator_data
        || sig != signature
        || cdh_arr != f.cdh
        || cred != f.credential_id
        || public_key != f.public_key;
    if changed {
        assert!(
            result.is_err(),
            "a mutated assertion verified: {result:?}\nauth {auth:02x?}\nsig {sig:02x?}\ncdh {cdh_arr:02x?}\ncred {cred:02x?}\nkey {public_key:02x?}"
        );
        if let Err(VerifyError::CounterRegression { .. }) = result {
            // Only a genuine signature may condemn a key; the fixture's count
            // is above the stored one, so a regression means auth data
            // changed yet the signature still held.
            panic!("a mutated assertion produced CounterRegression");
        }
    } else {
        assert!(result.is_ok(), "an untouched fixture failed: {result:?}");
    }
}

#[allow(clippy::too_many_arguments)]
fn sign(
    eddsa: bool,
    seed: &[u8; 32],
    raw_signature: bool,
    rp_id: &str,
    right_rp: bool,
    flags: u8,
    count: u32,
    stored: u32,
    extensions: &[u8],
    cdh: &[u8; 32],
    require_uv: bool,
) {
    let signed_rp = if right_rp {
        rp_id.to_owned()
    } else {
        format!("{rp_id}.")
    };
    let mut auth = Sha256::digest(signed_rp.as_bytes()).to_vec();
    auth.push(flags);
    auth.extend_from_slice(&count.to_be_bytes());
    auth.extend_from_slice(&extensions[..extensions.len().min(256)]);
    let message = [auth.as_slice(), cdh.as_slice()].concat();
    let (algorithm, public_key, signature) = if eddsa {
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(seed);
        let vk = sk.verifying_key();
        if vk.is_weak() {
            return;
        }
        (
            Algorithm::EdDsa,
            vk.to_bytes().to_vec(),
            sk.sign(&message).to_bytes().to_vec(),
        )
    } else {
        use p256::ecdsa::signature::Signer;
        let Ok(sk) = p256::ecdsa::SigningKey::from_slice(seed) else {
            return;
        };
        let public = sk.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let sig = if raw_signature {
            let s: p256::ecdsa::Signature = sk.sign(&message);
            s.to_bytes().to_vec()
        } else {
            let s: p256::ecdsa::DerSignature = sk.sign(&message);
            s.as_bytes().to_vec()
        };
        (Algorithm::Es256, public, sig)
    };
    let credential_id = b"fuzz-credential".to_vec();
    let key = StoredKey {
        credential_id: &credential_id,
        user: "alice",
        algorithm,
        public_key: &public_key,
        rp_id,
        sign_count: stored,
    };
    let assertion = Assertion {
        credential_id: credential_id.clone(),
        authenticator_data: auth.clone(),
        signature,
    };
    let expect = Expectation {
        user: "alice",
        client_data_hash: cdh,
        require_uv,
    };
    let got = verify_assertion(&key, &assertion, &expect);
    // The model.
    let has = |f: u8| flags & f == f;
    let rp_matches = Sha256::digest(signed_rp.as_bytes()) == Sha256::digest(rp_id.as_bytes());
    let want = if !rp_matches {
        Err(VerifyError::RpIdMismatch)
    } else if !has(FLAG_UP) {
        Err(VerifyError::UserNotPresent)
    } else if require_uv && !has(FLAG_UV) {
        Err(VerifyError::UserNotVerified)
    } else if !(stored == 0 && count == 0) && count <= stored {
        Err(VerifyError::CounterRegression {
            stored,
            received: count,
        })
    } else {
        Ok(Verified {
            sign_count: count,
            user_verified: has(FLAG_UV),
            backup_eligible: has(FLAG_BE),
            backed_up: has(FLAG_BS),
        })
    };
    assert_eq!(got, want, "verifier disagrees with the model");
    // The parse agrees with what was signed.
    let parsed = parse_authenticator_data(&auth).expect("37+ bytes");
    assert_eq!((parsed.flags, parsed.sign_count), (flags, count));
}

fuzz_target!(|input: Input| {
    match input {
        Input::Mutate {
            fixture,
            raw_signature,
            edits,
        } => mutate(fixture, raw_signature, &edits),
        Input::Sign {
            eddsa,
            seed,
            raw_signature,
            rp_id,
            right_rp,
            flags,
            count,
            stored,
            extensions,
            cdh,
            require_uv,
        } => sign(
            eddsa,
            &seed,
            raw_signature,
            &rp_id,
            right_rp,
            flags,
            count,
            stored,
            &extensions,
            &cdh,
            require_uv,
        ),
        Input::Raw {
            eddsa,
            key_credential_id,
            key_user,
            public_key,
            rp_id,
            stored,
            credential_id,
            authenticator_data,
            signature,
            user,
            cdh,
            require_uv,
        } => {
            let key = StoredKey {
                credential_id: &key_credential_id,
                user: &key_user,
                algorithm: if eddsa {
                    Algorithm::EdDsa
                } else {
                    Algorithm::Es256
                },
                public_key: &public_key,
                rp_id: &rp_id,
                sign_count: stored,
            };
            let assertion = Assertion {
                credential_id,
                authenticator_data,
                signature,
            };
            let expect = Expectation {
                user: &user,
                client_data_hash: &cdh,
                require_uv,
            };
            let _ = parse_authenticator_data(&assertion.authenticator_data);
            if let Ok(v) = verify_assertion(&key, &assertion, &expect) {
                // Anything accepted must at least carry UP (and UV if required).
                let a = parse_authenticator_data(&assertion.authenticator_data).expect("parsed");
                assert!(a.has(FLAG_UP));
                assert!(!require_uv || v.user_verified);
            }
        }
    }
});
