//! The security-key steps of an attempt: PIN, touch, verification, clone
//! detection, fallback to the next method; and key enrollment.

use super::*;

impl Engine {
    /// Ask the key: a PIN prompt first when the rule wants user verification
    /// and the key has a PIN, otherwise start the request and say "touch".
    pub(super) fn start_key_step(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        pin: Option<Zeroizing<String>>,
    ) -> Result<Step, DaemonError> {
        let authenticator = authenticator_for(config)
            .ok_or_else(|| DaemonError::Failed("no security key support configured".into()))?;
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        if session.require_uv && pin.is_none() && authenticator.has_pin().unwrap_or(false) {
            session.stage = Stage::AwaitingPin;
            return Ok(Step {
                session: id.to_owned(),
                kind: StepKind::PromptSecret,
                text: "Security key PIN: ".to_owned(),
            });
        }
        let subject = session.who.subject.clone();
        let keys = lock(&self.store)
            .fido2_credentials(&subject)
            .map_err(failed)?;
        let label = keys
            .first()
            .map(|(k, _)| k.label.clone())
            .unwrap_or_default();
        let wait = TouchWait::start(
            authenticator,
            keys,
            session.require_uv,
            pin,
            config.fido2.touch_timeout.0,
        );
        session.touch = Some(wait);
        session.stage = Stage::AwaitingTouch;
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Info,
            text: format!("Touch your security key ({label})…"),
        })
    }

    /// Wait a little for the key; "still waiting" is an empty info step, so
    /// no single call outlasts the module's timeout.
    pub(super) fn await_touch(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        touch: Option<Arc<TouchWait>>,
    ) -> Result<Step, DaemonError> {
        let Some(touch) = touch else {
            return Err(DaemonError::NoSuchSession(
                "no key request in flight".into(),
            ));
        };
        let Some(outcome) = touch.wait(Duration::from_secs(2)) else {
            return Ok(Step {
                session: id.to_owned(),
                kind: StepKind::Info,
                text: String::new(),
            });
        };
        let (who, methods) = {
            let sessions = lock(&self.sessions);
            let session = sessions
                .peek(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            (session.who.clone(), session.methods.clone())
        };
        let (result, message) = match outcome {
            Ok((assertion, key, stored_count)) => {
                self.check_assertion(&who, &assertion, &key, stored_count, &touch)?
            }
            Err(e) => ("key_error", e.to_string()),
        };
        if result == "success" {
            return self.key_answered(owner, id, &who);
        }
        self.key_failed(config, owner, id, &who, methods, (result, message))
    }

    /// The key's signature verified (counter and success already stored).
    fn key_answered(&self, owner: &str, id: &str, who: &Who) -> Result<Step, DaemonError> {
        let mut session = lock(&self.sessions)
            .remove(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.tried = Some(Method::Fido2);
        let let_in = self.let_in(who);
        who.event(
            "factor_succeeded",
            &[
                ("method", "fido2"),
                ("rule", &session.rule),
                ("session", id),
            ],
        );
        let outcome = if let_in.is_ok() {
            Outcome::Allowed
        } else {
            Outcome::Unavailable
        };
        self.end_session(&session, outcome);
        let_in.map(|()| Step::done(StepKind::Allow, ""))
    }

    /// The key did not give a good answer: a bad signature counts toward
    /// the lockout, a clone alarm ends the attempt, otherwise the next
    /// method on offer is asked within the same attempt.
    fn key_failed(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        who: &Who,
        methods: Vec<Method>,
        (result, message): (&'static str, String),
    ) -> Result<Step, DaemonError> {
        self.record(who, "fido2", result)?;
        who.event("factor_failed", &[("method", "fido2"), ("reason", result)]);
        if result == "bad_signature"
            && let Some(lock_message) = self.count_failure(config, who)?
        {
            self.end_key_attempt(owner, id, Outcome::Locked);
            return Ok(Step::done(
                StepKind::Deny,
                format!("{message} {lock_message}"),
            ));
        }
        let rest: Vec<Method> = methods
            .into_iter()
            .filter(|m| *m != Method::Fido2)
            .collect();
        if rest.is_empty() || result == "counter_regression" {
            self.end_key_attempt(owner, id, Outcome::Denied);
            return Ok(Step::done(StepKind::Deny, message));
        }
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.methods = rest;
        session.touch = None;
        session.tried = Some(Method::Fido2);
        session.stage = Stage::ShowedError;
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Error,
            text: message,
        })
    }

    /// Take a key attempt's session out and end it.
    fn end_key_attempt(&self, owner: &str, id: &str, outcome: Outcome) {
        if let Ok(mut session) = lock(&self.sessions).remove(id, owner) {
            session.tried = Some(Method::Fido2);
            self.end_session(&session, outcome);
        }
    }

    /// Verify a key's assertion and, on success, store the new counter and
    /// the success together. A counter that went backwards marks the key suspect.
    pub(super) fn check_assertion(
        &self,
        who: &Who,
        assertion: &crate::factors::fido2::authenticator::Assertion,
        key: &crate::store::Fido2Credential,
        stored_count: u32,
        touch: &TouchWait,
    ) -> Result<(&'static str, String), DaemonError> {
        use crate::factors::fido2::verify::{
            Expectation, StoredKey, VerifyError, verify_assertion,
        };
        let Some(algorithm) =
            crate::factors::fido2::authenticator::Algorithm::parse(&key.algorithm)
        else {
            return Ok(("bad_signature", "Unsupported key type.".to_owned()));
        };
        let stored = StoredKey {
            credential_id: &key.key_handle,
            user: &key.user,
            algorithm,
            public_key: &key.public_key,
            rp_id: &key.rp_id,
            sign_count: stored_count,
        };
        let expect = Expectation {
            user: &who.subject,
            client_data_hash: &touch.client_data_hash,
            require_uv: touch.require_uv,
        };
        match verify_assertion(&stored, assertion, &expect) {
            Ok(verified) => {
                let success = who.history_entry("fido2", "success");
                if lock(&self.store)
                    .accept_fido2(&key.id, verified.sign_count, &success)
                    .map_err(failed)?
                {
                    Ok(("success", String::new()))
                } else {
                    self.key_cloned(who, key, stored_count, verified.sign_count)
                }
            }
            Err(VerifyError::CounterRegression { stored, received }) => {
                self.key_cloned(who, key, stored, received)
            }
            Err(VerifyError::UserNotVerified) => Ok((
                "uv_missing",
                "The security key did not verify you (PIN or biometrics).".to_owned(),
            )),
            Err(VerifyError::UserNotPresent) => {
                Ok(("up_missing", "The security key was not touched.".to_owned()))
            }
            Err(e) => Ok((
                "bad_signature",
                format!("The security key's answer did not verify ({e:?})."),
            )),
        }
    }

    pub(super) fn key_cloned(
        &self,
        who: &Who,
        key: &crate::store::Fido2Credential,
        stored: u32,
        received: u32,
    ) -> Result<(&'static str, String), DaemonError> {
        lock(&self.store).mark_suspect(&key.id).map_err(failed)?;
        who.event(
            "key_counter_regression",
            &[
                ("credential", &key.id),
                ("stored", &stored.to_string()),
                ("received", &received.to_string()),
            ],
        );
        Ok((
            "counter_regression",
            format!(
                "This security key's signature counter went backwards (it may have been cloned); it is disabled until an administrator re-enrolls it (credential {}).",
                key.id
            ),
        ))
    }

    /// Enroll a security key for `user` at the configured rpId (blocks
    /// until the key is touched or `touch_timeout` passes).
    pub fn enroll_key(&self, user: &str, label: &str) -> Result<String, DaemonError> {
        use crate::factors::fido2::authenticator::MakeCredentialRequest;
        validate_user_name(user)?;
        if label.len() > 64 || label.chars().any(char::is_control) {
            return Err(DaemonError::InvalidArgument(
                "label must be at most 64 printable characters".into(),
            ));
        }
        let config = self.config();
        let authenticator = authenticator_for(&config)
            .filter(|a| a.present())
            .ok_or_else(|| DaemonError::Failed("no security key is connected".into()))?;
        let mut user_id = vec![0u8; 16];
        rand::fill(user_id.as_mut_slice());
        let mut challenge = [0u8; 32];
        rand::fill(&mut challenge);
        let request = MakeCredentialRequest {
            rp_id: config.fido2.rp_id.clone(),
            user_name: user.to_owned(),
            user_id,
            client_data: challenge.to_vec(),
            client_data_hash: crate::factors::fido2::verify::client_data_hash(&challenge),
            require_uv: false,
            pin: None,
        };
        let made = authenticator
            .make_credential(&request, config.fido2.touch_timeout.0)
            .map_err(|e| DaemonError::Failed(format!("enrolling the key: {e}")))?;
        let mut raw = [0u8; 6];
        rand::fill(&mut raw);
        let id = format!(
            "key-{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let key = crate::store::Fido2Credential {
            id: id.clone(),
            user: user.to_owned(),
            key_handle: made.credential_id,
            resident: false,
            public_key: made.public_key,
            algorithm: made.algorithm.as_str().to_owned(),
            rp_id: config.fido2.rp_id.clone(),
            presence: true,
            pin: false,
            verification: made.supports_uv,
            label: if label.is_empty() {
                "security key".to_owned()
            } else {
                label.to_owned()
            },
            created: unix_now(),
        };
        lock(&self.store).add_fido2(&key).map_err(failed)?;
        audit::event(
            "enrolled",
            &[("user", user), ("method", "fido2"), ("credential", &id)],
        );
        Ok(id)
    }
}
