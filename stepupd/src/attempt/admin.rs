//! Administration through the engine: enrollment of TOTP, recovery codes,
//! imports, history pruning, and the clean-stop checkpoint.

use super::*;

impl Engine {
    /// Import another module's credential file (all or nothing); the report.
    pub fn import(
        &self,
        format: &str,
        user: &str,
        text: &str,
        origin: &str,
    ) -> Result<String, DaemonError> {
        const MAX_FILE: usize = 1 << 20;
        if text.len() > MAX_FILE {
            return Err(DaemonError::InvalidArgument(format!(
                "the file is over {MAX_FILE} bytes"
            )));
        }
        let config = self.config();
        let now = unix_now();
        let origin = if origin.is_empty() {
            // pam_u2f's own default origin.
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("pam://{}", host.trim())
        } else {
            origin.to_owned()
        };
        let plan = match format {
            "google-authenticator" => {
                validate_user_name(user)?;
                crate::import::google_authenticator(&config, user, text, now)
            }
            "pam-u2f" => crate::import::pam_u2f(text, &origin, now),
            "users-oath" => crate::import::users_oath(&config, text, now),
            "authorized-keys" => {
                validate_user_name(user)?;
                crate::import::authorized_keys(user, text, now)
            }
            other => {
                return Err(DaemonError::InvalidArgument(format!(
                    "unknown format {other:?} (expected one of {})",
                    crate::import::FORMATS.join(", ")
                )));
            }
        }
        .map_err(|e| {
            DaemonError::InvalidArgument(format!("{format}: {e}; nothing was imported"))
        })?;
        let users: std::collections::BTreeSet<&str> = plan
            .batch
            .totp
            .iter()
            .map(|c| c.user.as_str())
            .chain(plan.batch.fido2.iter().map(|c| c.user.as_str()))
            .chain(plan.batch.ssh_keys.iter().map(|c| c.user.as_str()))
            .collect();
        for user in &users {
            validate_user_name(user).map_err(|e| {
                DaemonError::InvalidArgument(format!("{format}: {e:?}; nothing was imported"))
            })?;
        }
        lock(&self.store).import(&plan.batch).map_err(failed)?;
        let users: Vec<&str> = users.into_iter().collect();
        audit::event(
            "imported",
            &[
                ("format", format),
                ("users", &users.join(",")),
                ("totp", &plan.batch.totp.len().to_string()),
                ("keys", &plan.batch.fido2.len().to_string()),
                ("ssh_keys", &plan.batch.ssh_keys.len().to_string()),
                ("recovery_codes", &plan.batch.recovery.len().to_string()),
            ],
        );
        Ok(plan.report)
    }

    /// On a clean stop: every open attempt ends (as unavailable), and the
    /// write-ahead log is folded into the database file.
    pub fn shutdown(&self) {
        self.end_open_attempts();
        if let Err(e) = lock(&self.store).checkpoint() {
            audit::event("store_error", &[("error", &e.to_string())]);
        }
    }

    /// Drop history older than `[history] retention`.
    pub fn prune_history(&self) {
        let retention = self.config().history.retention.0.as_secs();
        let before = unix_now().saturating_sub(retention);
        match lock(&self.store).prune_history(before) {
            Ok(0) => {}
            Ok(n) => audit::event("history_pruned", &[("rows", &n.to_string())]),
            Err(e) => audit::event("store_error", &[("error", &e.to_string())]),
        }
    }

    /// `stepupctl recovery-codes`: a new set, replacing the old one.
    pub fn new_recovery_codes(&self, user: &str) -> Result<Vec<Zeroizing<String>>, DaemonError> {
        validate_user_name(user)?;
        let count = self.config().recovery.count;
        let codes: Vec<Zeroizing<String>> = (0..count).map(|_| recovery::generate()).collect();
        let hashes = codes
            .iter()
            .map(|c| recovery::hash(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DaemonError::Failed(e.to_string()))?;
        lock(&self.store)
            .replace_recovery_codes(user, &hashes, unix_now())
            .map_err(failed)?;
        audit::event(
            "recovery_codes_issued",
            &[("user", user), ("count", &count.to_string())],
        );
        Ok(codes)
    }

    /// Enroll an OpenSSH security-key public key for `ssh_agent_key`.
    pub fn enroll_ssh_key(
        &self,
        user: &str,
        public_key: &str,
        label: &str,
    ) -> Result<String, DaemonError> {
        validate_user_name(user)?;
        if label.len() > 64 || label.chars().any(char::is_control) {
            return Err(DaemonError::InvalidArgument(
                "label must be at most 64 printable characters".into(),
            ));
        }
        let key = stepup_sshkey::EnrolledSkKey::from_openssh_line(public_key.trim())
            .map_err(|e| DaemonError::InvalidArgument(format!("--pubkey: {e}")))?;
        let cred = crate::store::SshKeyCredential {
            id: crate::import::new_id("sshkey"),
            user: user.to_owned(),
            public_key: key.to_openssh_line(),
            label: if label.is_empty() {
                crate::import::ssh_key_label(&key)
            } else {
                label.to_owned()
            },
            created: unix_now(),
        };
        lock(&self.store).add_ssh_key(&cred).map_err(failed)?;
        audit::event(
            "enrolled",
            &[
                ("user", user),
                ("method", Method::SshAgentKey.as_str()),
                ("credential", &cred.id),
                ("fingerprint", &key.fingerprint()),
            ],
        );
        Ok(cred.id)
    }

    /// Enroll a TOTP credential; returns (id, otpauth URI).
    pub fn enroll_totp(
        &self,
        user: &str,
        secret_base32: Zeroizing<String>,
        label: &str,
    ) -> Result<(String, Zeroizing<String>), DaemonError> {
        validate_user_name(user)?;
        let config = self.config();
        if label.len() > 64 || label.chars().any(char::is_control) {
            return Err(DaemonError::InvalidArgument(
                "label must be at most 64 printable characters".into(),
            ));
        }
        let secret = if secret_base32.is_empty() {
            totp::generate_secret()
        } else {
            totp::decode_secret(&secret_base32)
                .map_err(|e| DaemonError::InvalidArgument(format!("--secret: {e}")))?
        };
        let (algorithm, digits, period) = totp::pinned(
            &config.totp,
            "SHA1",
            totp::DEFAULT_DIGITS,
            totp::DEFAULT_PERIOD,
        );
        let mut raw = [0u8; 6];
        rand::fill(&mut raw);
        let id = format!(
            "totp-{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let cred = TotpCredential {
            id: id.clone(),
            user: user.to_owned(),
            label: if label.is_empty() {
                "authenticator".to_owned()
            } else {
                label.to_owned()
            },
            secret,
            algorithm,
            digits,
            period,
            last_step: None,
            created: unix_now(),
        };
        lock(&self.store).add_totp(&cred).map_err(failed)?;
        audit::event(
            "enrolled",
            &[("user", user), ("method", "totp"), ("credential", &id)],
        );
        let uri = totp::otpauth_uri(&config.totp.issuer, user, &cred);
        Ok((id, uri))
    }
}
