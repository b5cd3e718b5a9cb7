//! The stepup wire contract, shared by `pam_stepup.so`, `stepupd` and `stepupctl`.
//!
//! Everything a client and the daemon must agree on lives here: the bus name,
//! object path and interface, the protocol version, the kinds of step the
//! daemon sends, the context keys, the error names, and the client proxy.
//! Nothing here does I/O on its own or knows about policy.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

pub mod events;

/// Well-known bus name the daemon owns on the system bus.
pub const BUS_NAME: &str = "org.stepup.Daemon1";
/// Object path of the daemon's single object.
pub const OBJECT_PATH: &str = "/org/stepup/Daemon1";
/// Interface name (same string as the bus name, by convention).
pub const INTERFACE: &str = "org.stepup.Daemon1";

/// Version of the `Begin`/`Respond` conversation. A daemon refuses a `Begin`
/// that names a version it does not speak with [`error::PROTOCOL_MISMATCH`];
/// a module refuses any step kind it does not know. Bump on any
/// incompatible change.
///
/// 2 added the [`StepKind::Agent`] step and `AttachAgent`. The daemon still
/// speaks 1 ([`OLDEST_PROTOCOL`]) and never sends a version-1 client a step
/// it does not know.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest version the daemon still speaks.
pub const OLDEST_PROTOCOL: u32 = 1;

/// The only system bus address the module uses unless the admin writes `bus=`
/// on the PAM line. Never taken from `DBUS_SYSTEM_BUS_ADDRESS`: under setuid
/// `su` that variable is chosen by the caller.
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

/// Keys of the `Begin` context dictionary. The PAM module sends the PAM
/// items (a missing item is an empty string) and `caller = pam_module`; the
/// sudo approval plugin sends the same keys from sudo's own `user_info`,
/// `caller = sudo_plugin`, and what sudo is about to run (`command` …
/// `sudo_mode`), taken from sudo's `command_info` and settings, never from
/// the environment.
pub mod context {
    pub const SERVICE: &str = "service";
    pub const USER: &str = "user";
    pub const RUSER: &str = "ruser";
    pub const TTY: &str = "tty";
    pub const RHOST: &str = "rhost";
    /// Which relay sent the attempt: [`CALLER_PAM`] or [`CALLER_SUDO`]
    /// (absent: the PAM module).
    pub const CALLER: &str = "caller";
    /// The resolved command path, [`escape`]d.
    pub const COMMAND: &str = "command";
    /// The command's arguments after `argv[0]`, each [`escape`]d, joined
    /// by single spaces (an argument's own spaces are escaped).
    pub const ARGV: &str = "argv";
    pub const RUNAS_USER: &str = "runas_user";
    pub const RUNAS_GROUP: &str = "runas_group";
    /// The directory the command runs in, [`escape`]d.
    pub const CWD: &str = "cwd";
    /// What sshd says about the login (its `SSH_AUTH_INFO_0`, [`escape`]d):
    /// sent by the PAM module only inside sshd.
    pub const SSH_AUTH_INFO: &str = "ssh_auth_info";
    /// How sudo was asked: [`MODE_COMMAND`], [`MODE_SHELL`] (`-s`),
    /// [`MODE_LOGIN_SHELL`] (`-i`) or [`MODE_EDIT`] (`sudoedit`).
    pub const SUDO_MODE: &str = "sudo_mode";
    /// Every key a client may send; the daemon refuses others.
    pub const KEYS: [&str; 12] = [
        SERVICE,
        USER,
        RUSER,
        TTY,
        RHOST,
        CALLER,
        COMMAND,
        ARGV,
        RUNAS_USER,
        RUNAS_GROUP,
        CWD,
        SUDO_MODE,
    ];

    pub const CALLER_PAM: &str = "pam_module";
    pub const CALLER_SUDO: &str = "sudo_plugin";
    pub const MODE_COMMAND: &str = "command";
    pub const MODE_SHELL: &str = "shell";
    pub const MODE_LOGIN_SHELL: &str = "login_shell";
    pub const MODE_EDIT: &str = "edit";

    /// Longest value the daemon accepts for a key, in bytes.
    pub const MAX_VALUE_LEN: usize = 1024;
    /// … for `command` and `cwd` (a path, escaped).
    pub const MAX_PATH_LEN: usize = 16 * 1024;
    /// … for `argv` (escaped). A longer command line is refused, never cut:
    /// a policy cannot judge what it does not see.
    pub const MAX_ARGV_LEN: usize = 256 * 1024;

    /// The longest value accepted for `key`.
    pub fn max_len(key: &str) -> usize {
        match key {
            COMMAND | CWD | SSH_AUTH_INFO => MAX_PATH_LEN,
            ARGV => MAX_ARGV_LEN,
            _ => MAX_VALUE_LEN,
        }
    }

    /// Bytes as they travel and as policy globs and the audit trail see
    /// them: printable ASCII other than `\` and space as is, `\` as `\\`,
    /// every other byte (space, control characters, non-ASCII, invalid
    /// UTF-8) as `\xNN`. Reversible, one line, no terminal escapes, and an
    /// argument's own spaces cannot pass for an argument boundary.
    pub fn escape(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len());
        for &b in bytes {
            match b {
                b'\\' => out.push_str("\\\\"),
                0x21..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        out
    }

    /// The bytes [`escape`] made `text` from; `None` if `text` is not
    /// something [`escape`] makes.
    pub fn unescape(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len());
        let mut bytes = text.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'\\' => match bytes.next()? {
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let hex = [bytes.next()?, bytes.next()?];
                        out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                    }
                    _ => return None,
                },
                0x21..=0x7e => out.push(b),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// D-Bus error names the daemon replies with.
pub mod error {
    pub const ACCESS_DENIED: &str = "org.stepup.Error.AccessDenied";
    pub const PROTOCOL_MISMATCH: &str = "org.stepup.Error.ProtocolMismatch";
    pub const NO_SUCH_SESSION: &str = "org.stepup.Error.NoSuchSession";
    pub const INVALID_ARGUMENT: &str = "org.stepup.Error.InvalidArgument";
    pub const NOT_FOUND: &str = "org.stepup.Error.NotFound";
    pub const FAILED: &str = "org.stepup.Error.Failed";
    pub const UNAVAILABLE: &str = "org.stepup.Error.Unavailable";
}

/// The typed form of the daemon's errors, used on both sides of the bus.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.stepup.Error")]
pub enum DaemonError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller is not root (checked by the daemon on every call).
    AccessDenied(String),
    /// Client and daemon speak different protocol versions.
    ProtocolMismatch(String),
    /// Unknown, expired, or not this connection's session.
    NoSuchSession(String),
    /// Malformed input (unknown context key, oversized value, bad user name…).
    InvalidArgument(String),
    /// The thing asked for (credential, user) does not exist.
    NotFound(String),
    /// Anything else; the text says what.
    Failed(String),
    /// The daemon is up but cannot decide now: the shared store it needs
    /// does not answer. The module treats it as the daemon being
    /// unavailable (failmode decides, and only before a prompt was shown).
    Unavailable(String),
}

/// What the daemon asks the module to do next.
///
/// `Allow`, `Deny` and `MaxTries` end the attempt. The others ask the module
/// to show `text` and call `Respond` again: with the user's answer after a
/// prompt, with an empty answer after `Info` or `Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Allow,
    Deny,
    /// Denied because the attempt used up its tries (maps to `PAM_MAXTRIES`).
    MaxTries,
    PromptSecret,
    PromptText,
    Info,
    Error,
    /// Protocol 2: "hand me the ssh-agent of this session". The module
    /// shows `text` (the touch request), connects to its `SSH_AUTH_SOCK`
    /// with the calling user's rights and passes the socket with
    /// `AttachAgent`, or answers `Respond` with an empty answer when there is
    /// no agent it may use.
    Agent,
}

impl StepKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::MaxTries => "maxtries",
            Self::PromptSecret => "prompt_secret",
            Self::PromptText => "prompt_text",
            Self::Info => "info",
            Self::Error => "error",
            Self::Agent => "agent",
        }
    }

    /// True for the kinds that end a session.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Allow | Self::Deny | Self::MaxTries)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step kind the module does not know: a protocol error, never guessed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStepKind(pub String);

impl fmt::Display for UnknownStepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown step kind {:?}", self.0)
    }
}

impl std::error::Error for UnknownStepKind {}

impl FromStr for StepKind {
    type Err = UnknownStepKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "allow" => Self::Allow,
            "deny" => Self::Deny,
            "maxtries" => Self::MaxTries,
            "prompt_secret" => Self::PromptSecret,
            "prompt_text" => Self::PromptText,
            "info" => Self::Info,
            "agent" => Self::Agent,
            "error" => Self::Error,
            other => return Err(UnknownStepKind(other.to_owned())),
        })
    }
}

/// One credential as `List` reports it: (id, method, label, created unix seconds).
pub type CredentialRow = (String, String, String, u64);

/// Client side of the interface.
#[zbus::proxy(
    interface = "org.stepup.Daemon1",
    default_service = "org.stepup.Daemon1",
    default_path = "/org/stepup/Daemon1"
)]
pub trait Daemon1 {
    /// Start an attempt: returns (session, kind, text). `session` is empty
    /// when `kind` is final.
    fn begin(
        &self,
        protocol: u32,
        context: HashMap<String, String>,
    ) -> Result<(String, String, String), DaemonError>;

    /// Answer the last step: returns (kind, text).
    fn respond(&self, session: &str, answer: &str) -> Result<(String, String), DaemonError>;

    /// Abandon an attempt (counts as a cancelled failure).
    fn cancel(&self, session: &str) -> Result<(), DaemonError>;

    /// Admin: enroll a TOTP secret for `user`. An empty `secret_base32` asks the
    /// daemon to generate one. Returns (credential id, otpauth URI).
    fn enroll_totp(
        &self,
        user: &str,
        secret_base32: &str,
        label: &str,
    ) -> Result<(String, String), DaemonError>;

    /// Protocol 2: the ssh-agent socket for an `agent` step, connected by
    /// the module with the calling user's rights; returns (kind, text) as
    /// `Respond` does.
    fn attach_agent(
        &self,
        session: &str,
        agent: zbus::Fd<'_>,
    ) -> Result<(String, String), DaemonError>;

    /// Admin: enroll a security key for `user` (someone must touch it);
    /// returns the credential id.
    fn enroll_key(&self, user: &str, label: &str) -> Result<String, DaemonError>;

    /// Admin: enroll an OpenSSH security-key public key line
    /// (`sk-ssh-ed25519@openssh.com …` or `sk-ecdsa-sha2-nistp256@openssh.com …`)
    /// for the `ssh_agent_key` method; returns the credential id.
    fn enroll_ssh_key(
        &self,
        user: &str,
        public_key: &str,
        label: &str,
    ) -> Result<String, DaemonError>;

    /// Admin: the user's credentials.
    fn list(&self, user: &str) -> Result<Vec<CredentialRow>, DaemonError>;

    /// Admin: remove one credential.
    fn remove(&self, user: &str, id: &str) -> Result<(), DaemonError>;

    /// Admin: a dry run of the policy for a context (keys as for `Begin`,
    /// plus `at`); JSON. Changes nothing.
    fn explain(&self, context: HashMap<String, String>) -> Result<String, DaemonError>;

    /// Admin: re-read the configuration; an invalid one is refused and the
    /// old policy stays in force.
    fn reload(&self) -> Result<String, DaemonError>;

    /// Admin: lift a lockout; true if the user was locked.
    fn unlock(&self, user: &str) -> Result<bool, DaemonError>;

    /// Admin: a new set of one-time recovery codes (shown once; the old set stops working).
    fn recovery_codes(&self, user: &str) -> Result<Vec<String>, DaemonError>;

    /// Admin: import another module's credential file; returns a report.
    fn import(
        &self,
        format: &str,
        user: &str,
        text: &str,
        origin: &str,
    ) -> Result<String, DaemonError>;

    /// Admin: daemon facts as key/value pairs.
    fn status(&self) -> Result<HashMap<String, String>, DaemonError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_kinds_round_trip_and_unknown_is_refused() {
        for kind in [
            StepKind::Allow,
            StepKind::Deny,
            StepKind::MaxTries,
            StepKind::PromptSecret,
            StepKind::PromptText,
            StepKind::Info,
            StepKind::Error,
            StepKind::Agent,
        ] {
            assert_eq!(kind.as_str().parse::<StepKind>(), Ok(kind));
        }
        assert_eq!(
            "ALLOW".parse::<StepKind>(),
            Err(UnknownStepKind("ALLOW".into()))
        );
        assert!("".parse::<StepKind>().is_err());
    }

    #[test]
    fn escaping_keeps_commands_on_one_line_and_arguments_apart() {
        use context::escape;
        assert_eq!(escape(b"/usr/bin/id"), "/usr/bin/id");
        assert_eq!(escape(b"a b"), "a\\x20b");
        assert_eq!(escape(b"x\ny"), "x\\x0ay");
        assert_eq!(escape(b"back\\slash"), "back\\\\slash");
        assert_eq!(escape(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(escape("é".as_bytes()), "\\xc3\\xa9");
        assert_eq!(escape(b"rule=x verdict=allow"), "rule=x\\x20verdict=allow");
        // Reversible: a backslash followed by x is not an escape of its own.
        assert_ne!(escape(b"\\x41"), escape(b"A"));
        for bytes in [
            &b"a b\n\\x41\xff"[..],
            b"",
            b"publickey sk-ssh-ed25519@openssh.com AAAA\n",
        ] {
            assert_eq!(context::unescape(&escape(bytes)).as_deref(), Some(bytes));
        }
        for bad in ["a b", "\\q", "\\x4", "\\xzz", "tab\there"] {
            assert_eq!(context::unescape(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_terminal_kinds_are_final() {
        assert!(StepKind::Allow.is_final());
        assert!(StepKind::MaxTries.is_final());
        assert!(!StepKind::Info.is_final());
        assert!(!StepKind::PromptSecret.is_final());
    }
}
