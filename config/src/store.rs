//! `[store]`: where the daemon keeps its state. Without the section (or
//! without `url`) it is the embedded SQLite database in the state directory;
//! with `url` it is a PostgreSQL database shared by a fleet (docs/state.md).
//!
//! Only what can be checked from the text is checked here; the URL's
//! options and the key and password files are checked by the daemon's
//! store (`stepupctl check` runs both, offline).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Span;

/// The longest `connect_timeout + query_timeout` accepted: one attempt's
/// store wait must end well within pam_stepup's `timeout=` (10 s by default),
/// leaving the module time to hear "unavailable" and apply its failmode.
pub const MAX_STORE_WAIT: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `postgresql://USER@HOST[:PORT]/DB?sslmode=verify-full&sslrootcert=…`;
    /// unset: the embedded SQLite store.
    pub url: Option<String>,
    /// The fleet key (64 hex digits, root-only) that encrypts secrets in
    /// the shared store. Required with `url`.
    pub key_file: Option<PathBuf>,
    /// A second key accepted for decryption only, during a key roll.
    pub previous_key_file: Option<PathBuf>,
    /// The database password, in a root-only file (never in this file,
    /// which everyone can read).
    pub password_file: Option<PathBuf>,
    /// Longest wait for a connection (TCP, TLS, authentication).
    pub connect_timeout: Span,
    /// Longest wait for one store operation (a transaction).
    pub query_timeout: Span,
    /// The name this host writes into shared history (default: the
    /// kernel's host name).
    pub host_name: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_file: None,
            previous_key_file: None,
            password_file: None,
            connect_timeout: Span(Duration::from_secs(3)),
            query_timeout: Span(Duration::from_secs(3)),
            host_name: None,
        }
    }
}

impl StoreSettings {
    /// Is the shared (PostgreSQL) store configured?
    pub fn is_shared(&self) -> bool {
        self.url.is_some()
    }

    /// What is wrong with the section as written, if anything.
    pub fn validate(&self) -> Result<(), String> {
        let shared_only = [
            ("key_file", self.key_file.is_some()),
            ("previous_key_file", self.previous_key_file.is_some()),
            ("password_file", self.password_file.is_some()),
        ];
        let Some(url) = &self.url else {
            if let Some((key, _)) = shared_only.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "[store] {key} only applies with url (the shared PostgreSQL store)"
                ));
            }
            return self.validate_host_name();
        };
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(
                "[store] url must start with postgresql:// (see stepup.toml(5))".to_owned(),
            );
        }
        if self.key_file.is_none() {
            return Err(
                "[store] url needs key_file (the fleet key that encrypts secrets in the shared store)"
                    .to_owned(),
            );
        }
        for (key, path) in [
            ("key_file", &self.key_file),
            ("previous_key_file", &self.previous_key_file),
            ("password_file", &self.password_file),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(format!("[store] {key} must be an absolute path"));
            }
        }
        let (connect, query) = (self.connect_timeout.0, self.query_timeout.0);
        if connect < Duration::from_secs(1) || query < Duration::from_secs(1) {
            return Err("[store] connect_timeout and query_timeout must be at least 1s".to_owned());
        }
        if connect + query > MAX_STORE_WAIT {
            return Err(format!(
                "[store] connect_timeout + query_timeout must be at most {}s, so that an unreachable database is reported within pam_stepup's timeout (10s by default)",
                MAX_STORE_WAIT.as_secs()
            ));
        }
        self.validate_host_name()
    }

    fn validate_host_name(&self) -> Result<(), String> {
        match &self.host_name {
            Some(name)
                if name.is_empty()
                    || name.len() > 255
                    || name.chars().any(|c| c.is_control() || c.is_whitespace()) =>
            {
                Err("[store] host_name must be 1..255 characters without spaces".to_owned())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<StoreSettings, String> {
        let s: StoreSettings = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map(|()| s)
    }

    #[test]
    fn no_section_is_the_embedded_store() {
        let s = settings("").expect("empty");
        assert!(!s.is_shared());
        assert_eq!(s.connect_timeout.as_secs(), 3);
        assert_eq!(s.query_timeout.as_secs(), 3);
    }

    #[test]
    fn a_url_needs_a_key_and_bounded_timeouts() {
        let ok = "url = \"postgresql://stepup@db/stepup?sslmode=verify-full\"\nkey_file = \"/etc/stepup/fleet.key\"\n";
        assert!(settings(ok).expect("valid").is_shared());
        let err = settings("url = \"postgresql://stepup@db/stepup\"\n").unwrap_err();
        assert!(err.contains("key_file"), "{err}");
        let err = settings(&format!(
            "{ok}connect_timeout = \"5s\"\nquery_timeout = \"5s\"\n"
        ))
        .unwrap_err();
        assert!(err.contains("at most 8s"), "{err}");
        let err = settings(&format!("{ok}query_timeout = \"0s\"\n")).unwrap_err();
        assert!(err.contains("at least 1s"), "{err}");
        let err = settings("url = \"mysql://db\"\nkey_file = \"/k\"\n").unwrap_err();
        assert!(err.contains("postgresql://"), "{err}");
        let err = settings("url = \"postgresql://db\"\nkey_file = \"fleet.key\"\n").unwrap_err();
        assert!(err.contains("absolute"), "{err}");
    }

    #[test]
    fn shared_store_keys_without_a_url_are_refused() {
        let err = settings("key_file = \"/etc/stepup/fleet.key\"\n").unwrap_err();
        assert!(err.contains("only applies with url"), "{err}");
        assert!(settings("host_name = \"web 1\"\n").is_err());
        assert!(settings("host_name = \"web1\"\n").is_ok());
    }
}
