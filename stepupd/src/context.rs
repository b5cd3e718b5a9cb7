//! The attempt's context as the module reported it, validated, plus what the
//! daemon derives from it (who proves the factor, local or remote).

use std::collections::HashMap;

use stepup_common::context as keys;

pub use stepup_config::attempt::AttemptContext;
use stepup_config::attempt::{LoginKey, SudoCommand, SudoMode};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("unknown context key {0:?}")]
    UnknownKey(String),
    #[error("context value for {key} is {len} bytes (at most {max})")]
    TooLong { key: String, len: usize, max: usize },
    #[error("context value for {0} contains control characters")]
    ControlCharacters(String),
    #[error("context has no {0}")]
    Missing(&'static str),
    #[error("context value for {key} is {value:?}: {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{0} is only sent by the sudo plugin (caller = sudo_plugin)")]
    NotFromSudo(String),
}

/// The command of a `sudoedit` check (`sudo_mode = edit`).
pub const SUDOEDIT: &str = "sudoedit";

/// Reading the context of `Begin` / `Explain` from the bus.
pub trait FromWire: Sized {
    /// Validate the wire form: known keys only, bounded values, no control
    /// characters, service and user present; command keys only from the
    /// sudo plugin, and then with an absolute command path.
    fn from_wire(map: HashMap<String, String>) -> Result<Self, ContextError>;
}

/// The sudo plugin's keys, as they arrive.
#[derive(Default)]
struct SudoKeys {
    caller: Option<String>,
    command: Option<String>,
    argv: String,
    runas_user: String,
    runas_group: String,
    cwd: String,
    mode: Option<String>,
    /// sshd's `SSH_AUTH_INFO_0`, escaped (the PAM module, in sshd only).
    auth_info: String,
}

impl FromWire for AttemptContext {
    fn from_wire(map: HashMap<String, String>) -> Result<Self, ContextError> {
        let mut ctx = Self::default();
        let mut sudo = SudoKeys::default();
        for (key, value) in map {
            let max = keys::max_len(&key);
            if value.len() > max {
                return Err(ContextError::TooLong {
                    len: value.len(),
                    key,
                    max,
                });
            }
            if value.chars().any(char::is_control) {
                return Err(ContextError::ControlCharacters(key));
            }
            let slot = match key.as_str() {
                keys::SERVICE => &mut ctx.service,
                keys::USER => &mut ctx.user,
                keys::RUSER => &mut ctx.ruser,
                keys::TTY => &mut ctx.tty,
                keys::RHOST => &mut ctx.rhost,
                keys::ARGV => &mut sudo.argv,
                keys::RUNAS_USER => &mut sudo.runas_user,
                keys::RUNAS_GROUP => &mut sudo.runas_group,
                keys::CWD => &mut sudo.cwd,
                keys::SSH_AUTH_INFO => &mut sudo.auth_info,
                keys::CALLER => {
                    sudo.caller = Some(value);
                    continue;
                }
                keys::COMMAND => {
                    sudo.command = Some(value);
                    continue;
                }
                keys::SUDO_MODE => {
                    sudo.mode = Some(value);
                    continue;
                }
                _ => return Err(ContextError::UnknownKey(key)),
            };
            *slot = value;
        }
        if ctx.service.is_empty() {
            return Err(ContextError::Missing("service"));
        }
        if ctx.user.is_empty() {
            return Err(ContextError::Missing("user"));
        }
        ctx.login_key = login_key(&sudo.auth_info);
        ctx.command = sudo.into_command()?;
        Ok(ctx)
    }
}

/// The key of the login's `publickey` method, from sshd's
/// `SSH_AUTH_INFO_0`. Anything that does not read as one (no publickey
/// method, a form we do not know) is no key: login-key conditions then do
/// not hold, as for any attempt without one.
fn login_key(escaped: &str) -> Option<LoginKey> {
    let bytes = keys::unescape(escaped)?;
    let text = String::from_utf8(bytes).ok()?;
    let methods = stepup_sshkey::parse_ssh_auth_info(&text).ok()?;
    methods
        .into_iter()
        .find(|m| m.method == "publickey")
        .and_then(|m| m.key)
        .map(|k| LoginKey {
            key_type: k.key_type,
            fingerprint: k.fingerprint,
        })
}

impl SudoKeys {
    /// The command, when the sudo plugin sent the attempt; none from the
    /// PAM module, which must not send command keys.
    fn into_command(self) -> Result<Option<SudoCommand>, ContextError> {
        let from_sudo = match self.caller.as_deref() {
            None | Some(keys::CALLER_PAM) => false,
            Some(keys::CALLER_SUDO) => true,
            Some(other) => {
                return Err(ContextError::Invalid {
                    key: keys::CALLER,
                    value: other.to_owned(),
                    expected: "pam_module or sudo_plugin",
                });
            }
        };
        if !from_sudo {
            let sent = [
                (keys::COMMAND, self.command.is_some()),
                (keys::ARGV, !self.argv.is_empty()),
                (keys::RUNAS_USER, !self.runas_user.is_empty()),
                (keys::RUNAS_GROUP, !self.runas_group.is_empty()),
                (keys::CWD, !self.cwd.is_empty()),
                (keys::SUDO_MODE, self.mode.is_some()),
            ];
            return match sent.iter().find(|(_, sent)| *sent) {
                Some((key, _)) => Err(ContextError::NotFromSudo((*key).to_owned())),
                None => Ok(None),
            };
        }
        let path = self.command.ok_or(ContextError::Missing("command"))?;
        let mode = match self.mode.as_deref() {
            None | Some(keys::MODE_COMMAND) => SudoMode::Command,
            Some(keys::MODE_SHELL) => SudoMode::Shell,
            Some(keys::MODE_LOGIN_SHELL) => SudoMode::LoginShell,
            Some(keys::MODE_EDIT) => SudoMode::Edit,
            Some(other) => {
                return Err(ContextError::Invalid {
                    key: keys::SUDO_MODE,
                    value: other.to_owned(),
                    expected: "command, shell, login_shell or edit",
                });
            }
        };
        // sudoedit runs the person's own editor as them: the command is
        // `sudoedit` and the files are its arguments.
        let sudoedit = mode == SudoMode::Edit && path == SUDOEDIT;
        if !(path.starts_with('/') || sudoedit) {
            return Err(ContextError::Invalid {
                key: keys::COMMAND,
                value: path,
                expected: "an absolute path (or sudoedit with sudo_mode = edit)",
            });
        }
        let line = if self.argv.is_empty() {
            path.clone()
        } else {
            format!("{path} {}", self.argv)
        };
        Ok(Some(SudoCommand {
            shell: matches!(mode, SudoMode::Shell | SudoMode::LoginShell),
            path,
            line,
            runas_user: self.runas_user,
            runas_group: self.runas_group,
            cwd: self.cwd,
            mode,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn hostile_context_is_refused() {
        assert_eq!(
            AttemptContext::from_wire(wire(&[("service", "sudo"), ("user", "a"), ("env", "x")])),
            Err(ContextError::UnknownKey("env".into()))
        );
        assert!(matches!(
            AttemptContext::from_wire(wire(&[("service", "sudo"), ("user", "a\nb")])),
            Err(ContextError::ControlCharacters(_))
        ));
        let long = "x".repeat(keys::MAX_VALUE_LEN + 1);
        assert!(matches!(
            AttemptContext::from_wire(wire(&[
                ("service", "sudo"),
                ("user", "a"),
                ("rhost", &long)
            ])),
            Err(ContextError::TooLong { .. })
        ));
        assert_eq!(
            AttemptContext::from_wire(wire(&[("service", "sudo")])),
            Err(ContextError::Missing("user"))
        );
        // Command keys only from the sudo plugin, with an absolute path.
        assert_eq!(
            AttemptContext::from_wire(wire(&[
                ("service", "sudo"),
                ("user", "a"),
                ("command", "/usr/bin/id")
            ])),
            Err(ContextError::NotFromSudo("command".into()))
        );
        for (key, value) in [("command", "id"), ("caller", "cron"), ("sudo_mode", "root")] {
            let mut pairs = vec![
                ("service", "sudo"),
                ("user", "a"),
                ("caller", "sudo_plugin"),
                ("command", "/usr/bin/id"),
            ];
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            assert!(
                matches!(
                    AttemptContext::from_wire(wire(&pairs)),
                    Err(ContextError::Invalid { .. })
                ),
                "{key}={value}"
            );
        }
        let long_argv = "x".repeat(keys::MAX_ARGV_LEN + 1);
        assert!(matches!(
            AttemptContext::from_wire(wire(&[
                ("service", "sudo"),
                ("user", "a"),
                ("caller", "sudo_plugin"),
                ("command", "/bin/echo"),
                ("argv", &long_argv)
            ])),
            Err(ContextError::TooLong {
                max: keys::MAX_ARGV_LEN,
                ..
            })
        ));
    }

    #[test]
    fn the_sudo_plugins_command_becomes_one_line() {
        let ctx = AttemptContext::from_wire(wire(&[
            ("service", "sudo"),
            ("user", "alice"),
            ("caller", "sudo_plugin"),
            ("command", "/usr/bin/systemctl"),
            ("argv", "restart nginx"),
            ("runas_user", "root"),
            ("sudo_mode", "login_shell"),
        ]))
        .unwrap();
        let command = ctx.command.unwrap();
        assert_eq!(command.line, "/usr/bin/systemctl restart nginx");
        assert_eq!(command.runas_user, "root");
        assert!(command.shell);
        let plain = AttemptContext::from_wire(wire(&[("service", "sudo"), ("user", "a")])).unwrap();
        assert_eq!(plain.command, None);
    }

    #[test]
    fn remote_from_rhost_or_ssh_tty() {
        let mut ctx = AttemptContext {
            service: "sshd".into(),
            user: "a".into(),
            ..Default::default()
        };
        assert!(!ctx.is_remote());
        ctx.tty = "ssh".into();
        assert!(ctx.is_remote());
        ctx.tty = "/dev/pts/0".into();
        ctx.rhost = "192.0.2.1".into();
        assert!(ctx.is_remote());
    }
}
