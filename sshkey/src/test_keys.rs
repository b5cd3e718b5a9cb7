//! Unit-test keys: software sk keys that sign exactly as a FIDO key does for
//! OpenSSH (the integration tests check the same paths against real
//! `ssh-keygen`, `ssh-agent` and the sk-soft provider).
#![allow(clippy::unwrap_used)]

use ed25519_dalek::Signer as _;
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, SkEcdsaSha2NistP256, SkEd25519};
use ssh_key::sha2::{Digest, Sha256};
use ssh_key::{Algorithm, HashAlg, Mpint, PublicKey, Signature, SshSig};

use crate::EnrolledSkKey;

pub enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Ecdsa(p256::ecdsa::SigningKey),
}

/// A software security key.
pub struct SoftSk {
    pub secret: Secret,
    pub application: String,
    pub public: PublicKey,
}

fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes
}

/// A fresh `sk-ssh-ed25519@openssh.com` key line and its signer.
pub fn ed25519_line(application: &str, comment: &str) -> (String, SoftSk) {
    let secret = ed25519_dalek::SigningKey::from_bytes(&random32());
    let data: KeyData = SkEd25519::new(
        Ed25519PublicKey(secret.verifying_key().to_bytes()),
        application,
    )
    .into();
    soft(Secret::Ed25519(secret), application, data, comment)
}

/// A fresh `sk-ecdsa-sha2-nistp256@openssh.com` key line and its signer.
pub fn ecdsa_line(application: &str, comment: &str) -> (String, SoftSk) {
    let secret = p256::ecdsa::SigningKey::from_slice(&random32()).unwrap();
    let point = secret.verifying_key().to_sec1_point(false);
    let EcdsaPublicKey::NistP256(point) =
        EcdsaPublicKey::from_sec1_bytes(point.as_bytes()).unwrap()
    else {
        panic!("not P-256")
    };
    let data: KeyData = SkEcdsaSha2NistP256::new(point, application).into();
    soft(Secret::Ecdsa(secret), application, data, comment)
}

fn soft(secret: Secret, application: &str, data: KeyData, comment: &str) -> (String, SoftSk) {
    let public = PublicKey::new(data, comment);
    let line = public.to_openssh().unwrap();
    let sk = SoftSk {
        secret,
        application: application.to_owned(),
        public,
    };
    (line, sk)
}

impl SoftSk {
    pub fn enrolled(&self) -> EnrolledSkKey {
        EnrolledSkKey::from_openssh_line(&self.public.to_openssh().unwrap()).unwrap()
    }

    /// The sk signature over `data` (`application` may differ from the
    /// key's, to forge "signed for another application").
    pub fn sign_as(&self, application: &str, data: &[u8], flags: u8, counter: u32) -> Signature {
        let mut signed = Sha256::digest(application.as_bytes()).to_vec();
        signed.push(flags);
        signed.extend_from_slice(&counter.to_be_bytes());
        signed.extend_from_slice(&Sha256::digest(data));
        let (algorithm, mut blob) = match &self.secret {
            Secret::Ed25519(key) => (Algorithm::SkEd25519, key.sign(&signed).to_bytes().to_vec()),
            Secret::Ecdsa(key) => {
                let sig: p256::ecdsa::Signature = key.sign(&signed);
                let (r, s) = sig.split_bytes();
                let mut blob = Vec::new();
                for part in [r, s] {
                    let mpint = Mpint::from_positive_bytes(&part);
                    ssh_key::encoding::Encode::encode(&mpint, &mut blob).unwrap();
                }
                (Algorithm::SkEcdsaSha2NistP256, blob)
            }
        };
        blob.push(flags);
        blob.extend_from_slice(&counter.to_be_bytes());
        Signature::new(algorithm, blob).unwrap()
    }

    /// An SSHSIG over `message` as `ssh-keygen -Y sign` would make it.
    pub fn sshsig(
        &self,
        namespace: &str,
        hash: HashAlg,
        message: &[u8],
        flags: u8,
        counter: u32,
    ) -> SshSig {
        let data = SshSig::signed_data(namespace, hash, message).unwrap();
        let signature = self.sign_as(&self.application, &data, flags, counter);
        SshSig::new(self.public.key_data().clone(), namespace, hash, signature).unwrap()
    }
}
