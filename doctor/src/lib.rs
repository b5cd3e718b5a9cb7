//! The library behind `stepupctl doctor`: it reads the sudoers files and the
//! `/etc/pam.d` stacks and reports what would silently bypass or skip
//! `pam_stepup.so`.
//!
//! Everything is a pure function over text, with a thin file-reading layer on
//! top ([`check_pam_service`], [`read_sudoers`]), so the logic is tested on
//! fixtures without root.
//!
//! * [`pam`]: the `auth` stack of a PAM service, evaluated the way libpam
//!   walks it (see that module for the model and its simplifications).
//! * [`sudoers`]: the `Defaults` that make sudo skip PAM (`timestamp_timeout`,
//!   `!authenticate`) and `NOPASSWD` rules.
//! * [`sudo_conf`]: whether `/etc/sudo.conf` loads the stepup approval
//!   plugin (which checks every command, timestamp or not), and whether
//!   this sudo has the approval API at all.
//!
//! A [`Finding`] is an [`Severity::Error`] when step-up is bypassed or skipped,
//! a [`Severity::Warning`] when the configuration is likely a mistake, and a
//! [`Severity::Note`] when it is worth knowing but not wrong.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

pub mod pam;
pub mod sshd;
pub mod sudo_conf;
pub mod sudoers;

pub use pam::{check_pam_service, check_pam_text};
pub use sshd::check_sshd_config;
pub use sudo_conf::{SudoConf, check_sudo_conf, parse_sudo_version, read_sudo_conf};
pub use sudoers::{
    SudoFacts, SudoLocations, check_sudo, check_sudo_timestamp, check_sudo_with,
    parse_sudoers_text, read_sudoers,
};

/// How bad a [`Finding`] is.
///
/// Ordered: `Warning < Error`, so `findings.iter().map(|f| f.severity).max()`
/// gives the worst one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Note,
    /// Likely a mistake, but step-up still runs where it should.
    Warning,
    /// Step-up is bypassed or skipped on some path.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    /// `"path:line"`, or `"path"` when no single line is to blame.
    pub location: String,
    pub message: String,
}

impl Finding {
    pub fn error(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            location: location.into(),
            message: message.into(),
        }
    }

    pub fn warning(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            location: location.into(),
            message: message.into(),
        }
    }

    pub fn note(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Note,
            location: location.into(),
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    /// `error: /etc/pam.d/sudo:3: pam_stepup.so is after ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.location, self.message)
    }
}

/// True if any finding is an [`Severity::Error`] (the CLI's exit status).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::is_error)
}

/// Why a file could not be examined at all.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_severity_location_message() {
        let f = Finding::error(
            "/etc/pam.d/sudo:3",
            "pam_stepup.so is after `auth sufficient pam_unix.so` (line 2): a successful password skips step-up",
        );
        assert_eq!(
            f.to_string(),
            "error: /etc/pam.d/sudo:3: pam_stepup.so is after `auth sufficient pam_unix.so` (line 2): a successful password skips step-up"
        );
        let w = Finding::warning("/etc/sudoers:9", "x");
        assert_eq!(w.to_string(), "warning: /etc/sudoers:9: x");
    }

    #[test]
    fn severity_orders_warning_below_error() {
        assert!(Severity::Warning < Severity::Error);
        assert!(has_errors(&[
            Finding::warning("a", "b"),
            Finding::error("c", "d")
        ]));
        assert!(!has_errors(&[Finding::warning("a", "b")]));
    }
}
