//! `stepupctl import …`: bring users' factors over from google-authenticator,
//! pam_u2f and pam_oath without re-enrolling anyone. Parsing is in the
//! `stepup-import` crate; here the parsed files become stepup credentials,
//! written in one transaction (all or nothing), with a report of what was
//! taken, what was skipped and why.

use std::fmt::Write as _;

use stepup_config::Config;
use stepup_import::{CoseAlgorithm, OathKind};
use zeroize::Zeroizing;

use crate::factors::{recovery, totp};
use crate::store::{Fido2Credential, ImportBatch, SshKeyCredential, TotpCredential};

/// The formats `Import` understands.
pub const FORMATS: [&str; 4] = [
    "google-authenticator",
    "pam-u2f",
    "users-oath",
    "authorized-keys",
];

#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error("{0}")]
    Parse(#[from] stepup_import::ImportError),
    #[error("{0}")]
    Refused(String),
}

/// What an import will write, and the report to show.
pub struct Plan {
    pub batch: ImportBatch,
    pub report: String,
}

pub fn new_id(prefix: &str) -> String {
    let mut raw = [0u8; 6];
    rand::fill(&mut raw);
    format!(
        "{prefix}-{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// `~/.google_authenticator` of `user`.
pub fn google_authenticator(
    config: &Config,
    user: &str,
    text: &str,
    now: u64,
) -> Result<Plan, ImportFailure> {
    let file = stepup_import::parse_google_authenticator(text)?;
    if !file.totp {
        return Err(ImportFailure::Refused(
            "this is an HOTP (counter-based) google-authenticator file; stepup imports TOTP only — enroll this user anew with `stepupctl enroll totp`".into(),
        ));
    }
    if file.secret.len() < 10 {
        return Err(ImportFailure::Refused(format!(
            "the secret is {} bytes; google-authenticator makes at least 10",
            file.secret.len()
        )));
    }
    let cred = google_authenticator_credential(config, user, &file, now);
    let last_step = cred.last_step;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "took: {} for {user} (TOTP {}, {} digits, {} s){}",
        cred.id,
        cred.algorithm,
        cred.digits,
        cred.period,
        match last_step {
            Some(step) => format!(", codes up to time step {step} already used"),
            None => String::new(),
        }
    );
    let mut batch = ImportBatch::default();
    for code in &file.scratch_codes {
        let hash = recovery::hash(code).map_err(|e| ImportFailure::Refused(e.to_string()))?;
        batch.recovery.push((user.to_owned(), hash, now));
    }
    if !file.scratch_codes.is_empty() {
        let _ = writeln!(
            report,
            "took: {} scratch code(s) as recovery codes",
            file.scratch_codes.len()
        );
    }
    note_settings_left_behind(&mut report, config, &file);
    batch.totp.push(cred);
    Ok(Plan { batch, report })
}

/// The TOTP credential a google-authenticator file becomes; with
/// `DISALLOW_REUSE`, the steps it lists as used stay used.
fn google_authenticator_credential(
    config: &Config,
    user: &str,
    file: &stepup_import::GoogleAuthenticator,
    now: u64,
) -> TotpCredential {
    let (algorithm, digits, period) =
        totp::pinned(&config.totp, "SHA1", totp::DEFAULT_DIGITS, file.step_size);
    let last_step = file
        .disallow_reuse
        .then(|| file.used_steps.iter().copied().max())
        .flatten();
    TotpCredential {
        id: new_id("totp"),
        user: user.to_owned(),
        label: "google-authenticator".to_owned(),
        secret: Zeroizing::new(file.secret.to_vec()),
        algorithm,
        digits,
        period,
        last_step,
        created: now,
    }
}

/// The report's notes on what a google-authenticator file set that stepup
/// does not carry over.
fn note_settings_left_behind(
    report: &mut String,
    config: &Config,
    file: &stepup_import::GoogleAuthenticator,
) {
    if let Some(window) = file.window_size {
        let _ = writeln!(
            report,
            "note: WINDOW_SIZE {window} not carried over: stepup accepts [totp] window = {} step(s) either side",
            config.totp.window
        );
    }
    if file.rate_limit.is_some() {
        let _ = writeln!(
            report,
            "note: RATE_LIMIT not carried over: stepup's [lockout] applies instead"
        );
    }
    for note in &file.notes {
        let _ = writeln!(report, "note: {note}");
    }
}

/// A pam_u2f authfile; `origin` becomes each key's rpId (pam_u2f's default
/// is `pam://HOSTNAME`), so existing keys verify unchanged.
pub fn pam_u2f(text: &str, origin: &str, now: u64) -> Result<Plan, ImportFailure> {
    let creds = stepup_import::parse_pam_u2f(text)?;
    let mut batch = ImportBatch::default();
    let mut report = String::new();
    for c in creds {
        let algorithm = match c.algorithm {
            CoseAlgorithm::Es256 => "es256",
            CoseAlgorithm::EdDsa => "eddsa",
        };
        let id = new_id("key");
        let _ = writeln!(
            report,
            "took: {id} for {} ({algorithm}{}{}{}{}, rpId {origin}) from line {}",
            c.user,
            if c.resident { ", resident" } else { "" },
            if c.presence { ", presence" } else { "" },
            if c.pin { ", pin" } else { "" },
            if c.verification { ", verification" } else { "" },
            c.line
        );
        batch.fido2.push(Fido2Credential {
            id,
            user: c.user,
            key_handle: c.key_handle,
            resident: c.resident,
            public_key: c.public_key,
            algorithm: algorithm.to_owned(),
            rp_id: origin.to_owned(),
            presence: c.presence,
            pin: c.pin,
            verification: c.verification,
            label: if c.legacy {
                "pam_u2f (legacy)".into()
            } else {
                "pam_u2f".into()
            },
            created: now,
        });
    }
    if batch.fido2.is_empty() {
        return Err(ImportFailure::Refused(
            "the file holds no credentials".into(),
        ));
    }
    Ok(Plan { batch, report })
}

/// A pam_oath usersfile: TOTP lines become TOTP credentials; HOTP lines and
/// lines with a PIN are skipped (stepup has no counter-based codes or OATH PINs).
pub fn users_oath(config: &Config, text: &str, now: u64) -> Result<Plan, ImportFailure> {
    let entries = stepup_import::parse_users_oath(text)?;
    let mut batch = ImportBatch::default();
    let mut report = String::new();
    for e in entries {
        let period = match e.kind {
            OathKind::Hotp { .. } => {
                let _ = writeln!(
                    report,
                    "skipped: line {} ({}): HOTP (counter-based) tokens are not supported",
                    e.line, e.user
                );
                continue;
            }
            OathKind::Totp { period } => period,
        };
        if e.has_pin {
            let _ = writeln!(
                report,
                "skipped: line {} ({}): the token has a PIN, which stepup does not use; enroll this user anew",
                e.line, e.user
            );
            continue;
        }
        let cred = TotpCredential {
            id: new_id("totp"),
            user: e.user.clone(),
            label: "pam_oath".to_owned(),
            secret: Zeroizing::new(e.secret.to_vec()),
            algorithm: config
                .totp
                .algorithm
                .map_or(e.algorithm.as_str(), |a| a.as_str())
                .to_owned(),
            digits: config.totp.digits.unwrap_or(e.digits),
            period: config.totp.period.unwrap_or(period),
            last_step: None,
            created: now,
        };
        let _ = writeln!(
            report,
            "took: {} for {} (TOTP {}, {} digits, {} s) from line {}",
            cred.id, e.user, cred.algorithm, cred.digits, cred.period, e.line
        );
        batch.totp.push(cred);
    }
    if batch.totp.is_empty() {
        return Err(ImportFailure::Refused(format!(
            "nothing to import:\n{report}"
        )));
    }
    Ok(Plan { batch, report })
}

/// A user's `authorized_keys`: the security keys (`sk-…@openssh.com`)
/// become `ssh_agent_key` credentials; other keys, keys with
/// `no-touch-required` and CA keys are skipped, each named in the report.
/// A line that cannot be read refuses the whole file.
pub fn authorized_keys(user: &str, text: &str, now: u64) -> Result<Plan, ImportFailure> {
    let found = stepup_sshkey::parse_authorized_keys(text)
        .map_err(|e| ImportFailure::Refused(e.to_string()))?;
    let mut batch = ImportBatch::default();
    let mut report = String::new();
    for (line, key) in &found.keys {
        let cred = SshKeyCredential {
            id: new_id("sshkey"),
            user: user.to_owned(),
            public_key: key.to_openssh_line(),
            label: ssh_key_label(key),
            created: now,
        };
        let _ = writeln!(
            report,
            "took: {} for {user} ({} {}) from line {line}",
            cred.id,
            key.key_type().as_str(),
            key.fingerprint()
        );
        batch.ssh_keys.push(cred);
    }
    for (line, why) in &found.skipped {
        let _ = writeln!(report, "skipped: line {line}: {why}");
    }
    if batch.ssh_keys.is_empty() {
        return Err(ImportFailure::Refused(
            "no security key (sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com) in the file".into(),
        ));
    }
    Ok(Plan { batch, report })
}

/// A label for an ssh key: its comment, else its fingerprint.
pub fn ssh_key_label(key: &stepup_sshkey::EnrolledSkKey) -> String {
    let comment: String = key
        .comment()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if comment.is_empty() {
        key.fingerprint()
    } else {
        comment
    }
}
