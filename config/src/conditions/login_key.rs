//! The key an ssh login used, as sshd reports it to PAM when
//! keyboard-interactive follows publickey (`SSH_AUTH_INFO_0`; read by the
//! module only inside sshd): `login_key_type` (globs over the key type),
//! `login_key` (key fingerprints), `new_login_key` (a key this person has
//! not logged in with within the span: a new device). An attempt with no
//! login key (sudo, su, a password login) satisfies none of them.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, ago, covers_if_equal, list};
use crate::attempt::{Attempt, Lookups};
use crate::{Glob, Span};

const NO_LOGIN_KEY: &str = "no login key known (only sshd reports one, after publickey)";

/// `login_key_type = ["sk-*"]`: the login already needed a touch on a
/// hardware key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeyType {
    pub globs: Vec<Glob>,
}

impl ConditionSpec for LoginKeyType {
    const KEYS: &'static [&'static str] = &["login_key_type"];
    const EXAMPLES: &'static [&'static str] =
        &[r#"["sk-*"]"#, r#"["ssh-ed25519", "ecdsa-sha2-nistp256"]"#];
    type Value = Vec<Glob>;

    fn build(_: &'static str, globs: Vec<Glob>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self { globs })
    }
}

impl Condition for LoginKeyType {
    fn key(&self) -> &'static str {
        "login_key_type"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let Some(key) = &attempt.context.login_key else {
            return Ok(Eval::new(false, want, || NO_LOGIN_KEY.to_owned(), || None));
        };
        let hit = self.globs.iter().any(|g| g.matches(&key.key_type));
        let detail = || {
            format!(
                "login key type {:?} {} {}",
                key.key_type,
                if hit { "matches" } else { "matches none of" },
                list(&self.globs)
            )
        };
        let phrase = || Some(format!("after a login with a {} key", key.key_type));
        Ok(Eval::new(hit, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        self.globs
            .iter()
            .try_for_each(|g| super::round_trips(g, "key type glob"))
    }
}

/// `login_key = ["SHA256:…"]`: these keys' fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeyIn {
    pub fingerprints: Vec<String>,
}

impl ConditionSpec for LoginKeyIn {
    const KEYS: &'static [&'static str] = &["login_key"];
    const EXAMPLES: &'static [&'static str] =
        &[r#"["SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"]"#];
    type Value = Vec<String>;

    fn build(_: &'static str, fingerprints: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        if let Some(bad) = fingerprints
            .iter()
            .find(|f| !f.starts_with("SHA256:") || f.len() < 20)
        {
            return Err(format!(
                "login_key {bad:?} is not a fingerprint (expected \"SHA256:…\" as `ssh-keygen -l` prints it)"
            ));
        }
        Ok(Self { fingerprints })
    }
}

impl Condition for LoginKeyIn {
    fn key(&self) -> &'static str {
        "login_key"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let Some(key) = &attempt.context.login_key else {
            return Ok(Eval::new(false, want, || NO_LOGIN_KEY.to_owned(), || None));
        };
        let hit = self.fingerprints.contains(&key.fingerprint);
        let detail = || {
            format!(
                "login key {} {} {}",
                key.fingerprint,
                super::is_in(hit),
                list(&self.fingerprints)
            )
        };
        Ok(Eval::new(hit, want, detail, || None))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }
}

/// `new_login_key = "30d"`: no allowed login with this key by this person
/// within the span. A key becomes known when a login with it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLoginKey {
    pub within: Span,
}

impl ConditionSpec for NewLoginKey {
    const KEYS: &'static [&'static str] = &["new_login_key"];
    const EXAMPLES: &'static [&'static str] = &[r#""30d""#, r#""12h""#];
    type Value = Span;

    fn build(_: &'static str, within: Span, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self { within })
    }
}

impl Condition for NewLoginKey {
    fn key(&self) -> &'static str {
        "new_login_key"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let Some(key) = &attempt.context.login_key else {
            return Ok(Eval::new(false, want, || NO_LOGIN_KEY.to_owned(), || None));
        };
        let seen = lookups.login_key_last_seen(attempt.subject, &key.fingerprint)?;
        let holds = seen.is_none_or(|t| t < attempt.since(self.within));
        let detail = || match seen {
            None => format!(
                "{} never logged in with {}",
                attempt.subject, key.fingerprint
            ),
            Some(t) => format!(
                "{} last logged in with {} {}; rule window {}",
                attempt.subject,
                key.fingerprint,
                ago(attempt.now_secs(), t),
                self.within
            ),
        };
        let phrase = || Some(format!("a login key not seen before ({})", key.fingerprint));
        Ok(Eval::new(holds, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        super::round_trips(&self.within, "span")
    }
}
