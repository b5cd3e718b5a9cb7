#![forbid(unsafe_code)]
//! Parsers for the credential files admins migrate to stepup from.
//!
//! | peer | file | parser |
//! | --- | --- | --- |
//! | google-authenticator-libpam | `~/.google_authenticator` | [`parse_google_authenticator`] |
//! | Yubico pam-u2f | `~/.config/Yubico/u2f_keys`, `/etc/u2f_mappings` | [`parse_pam_u2f`] |
//! | OATH Toolkit pam_oath | `/etc/users.oath` | [`parse_users_oath`] |
//!
//! Every parser is pure (text in, typed data out) and all-or-nothing: the
//! first malformed line makes it return an [`ImportError`] naming that line
//! and what was expected there, never a partial result. Where the peer module
//! would silently skip or misread a line (so the credential does not work
//! today), the parser refuses rather than guesses, so an import never grants
//! more than the peer did.
//!
//! Secrets (OTP keys, scratch codes) are held in [`zeroize::Zeroizing`] and
//! never appear in error messages or in `Debug` output; errors quote line
//! numbers, field names and columns, never field contents.

mod google_authenticator;
mod pam_u2f;
mod text;
mod users_oath;

pub use google_authenticator::{GoogleAuthenticator, parse_google_authenticator};
pub use pam_u2f::{CoseAlgorithm, U2fCredential, parse_pam_u2f};
pub use users_oath::{OathEntry, OathKind, parse_users_oath};

/// Why a credential file could not be imported. Never contains secret
/// material: messages name lines, fields and columns, not their contents.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A specific line (1-based) is malformed.
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    /// The file as a whole is unusable (empty, wrong kind of file, no usable
    /// mode, ...).
    #[error("{0}")]
    Format(String),
}

impl ImportError {
    /// The 1-based line number the error is about, if it is about one line.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Line { line, .. } => Some(*line),
            Self::Format(_) => None,
        }
    }

    pub(crate) fn at(line: usize, reason: impl Into<String>) -> Self {
        Self::Line {
            line,
            reason: reason.into(),
        }
    }
}
