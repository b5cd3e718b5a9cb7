//! What a rule is evaluated against: the attempt as the module reported it,
//! where it came from, the clock, and the questions that need I/O.
//!
//! The daemon builds these (it validates the wire form and reads utmp);
//! conditions only read them, so evaluation has no I/O of its own.

use jiff::Timestamp;
use serde::Serialize;

use crate::Scope;

/// The attempt as its relay reported it: the PAM items (a missing item is
/// the empty string; the sudo plugin sends sudo's own user and tty), and
/// for the sudo plugin what sudo is about to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptContext {
    pub service: String,
    pub user: String,
    pub ruser: String,
    pub tty: String,
    pub rhost: String,
    /// What sudo is about to run: only when the sudo plugin asks. A
    /// PAM-time attempt (sudo's authentication, su, sshd) has none, and
    /// command conditions never hold for it.
    pub command: Option<SudoCommand>,
    /// The key the login used, as sshd reported it (`SSH_AUTH_INFO_0`):
    /// only for sshd's own attempts.
    pub login_key: Option<LoginKey>,
}

/// A login's public key, as sshd reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginKey {
    /// `ssh-ed25519`, `sk-ssh-ed25519@openssh.com`, …
    pub key_type: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// How sudo was asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SudoMode {
    #[default]
    Command,
    /// `sudo -s`.
    Shell,
    /// `sudo -i`.
    LoginShell,
    /// `sudoedit` / `sudo -e`.
    Edit,
}

impl SudoMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Shell => "shell",
            Self::LoginShell => "login_shell",
            Self::Edit => "edit",
        }
    }
}

/// The command sudo is about to run, from sudo's `command_info` (escaped
/// as on the wire: printable ASCII as is, every other byte as `\xNN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SudoCommand {
    /// The resolved absolute path.
    pub path: String,
    /// The path, then each argument after `argv[0]`, separated by one space:
    /// what `command` globs match.
    pub line: String,
    pub runas_user: String,
    pub runas_group: String,
    pub cwd: String,
    pub mode: SudoMode,
    /// A shell was asked for: `-s`, `-i`, or a command listed in
    /// /etc/shells (the daemon looks it up).
    pub shell: bool,
}

impl AttemptContext {
    /// Remote when sshd set PAM_RHOST or named the tty `ssh`.
    pub fn is_remote(&self) -> bool {
        !self.rhost.is_empty() || self.tty == "ssh"
    }
}

/// Where the attempt came from, and where each fact was learned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Origin {
    /// PAM_RHOST, or the remote host of the tty's login session from utmp.
    pub rhost: String,
    pub rhost_source: String,
    /// Remote when `rhost` is set or the tty is `ssh`.
    pub remote: bool,
    /// Unix time the tty's login session began (utmp).
    pub session_started: Option<i64>,
    pub session_source: String,
}

/// Everything known about one attempt.
pub struct Attempt<'a> {
    pub context: &'a AttemptContext,
    /// Whose factor (PAM_USER, or PAM_RUSER for `su`).
    pub subject: &'a str,
    pub origin: &'a Origin,
    pub now: Timestamp,
}

impl Attempt<'_> {
    /// Now in unix seconds (0 before 1970).
    pub fn now_secs(&self) -> u64 {
        u64::try_from(self.now.as_second()).unwrap_or(0)
    }

    /// Unix time `span` before now (0 if that is before 1970).
    pub fn since(&self, span: crate::Span) -> u64 {
        self.now_secs().saturating_sub(span.0.as_secs())
    }
}

/// Answers that need NSS or the history. Errors are messages; an attempt
/// whose policy cannot be evaluated fails.
pub trait Lookups {
    /// Names of the user's groups (primary and supplementary); `None` if the
    /// user is unknown to NSS.
    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String>;
    fn source_last_seen(&mut self, subject: &str, rhost: &str) -> Result<Option<u64>, String>;
    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String>;
    /// The latest successful step-up of `subject` at or after `since` in `scope`.
    fn last_success(
        &mut self,
        subject: &str,
        since: u64,
        scope: Scope,
        attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String>;
    /// When `subject` last logged in (allowed) with the key `fingerprint`.
    /// Without a history: never (so `new_login_key` holds, the cautious
    /// answer).
    fn login_key_last_seen(
        &mut self,
        _subject: &str,
        _fingerprint: &str,
    ) -> Result<Option<u64>, String> {
        Ok(None)
    }
}
