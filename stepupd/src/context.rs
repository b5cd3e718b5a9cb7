//! The attempt's context as the module reported it, validated, plus what the
//! daemon derives from it (who proves the factor, local or remote).

use std::collections::HashMap;

use stepup_common::context as keys;

pub use stepup_config::attempt::AttemptContext;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("unknown context key {0:?}")]
    UnknownKey(String),
    #[error("context value for {key} is {len} bytes (at most {max})", max = keys::MAX_VALUE_LEN)]
    TooLong { key: String, len: usize },
    #[error("context value for {0} contains control characters")]
    ControlCharacters(String),
    #[error("context has no {0}")]
    Missing(&'static str),
}

/// Reading the context of `Begin` / `Explain` from the bus.
pub trait FromWire: Sized {
    /// Validate the wire form: known keys only, bounded values, no control
    /// characters, service and user present.
    fn from_wire(map: HashMap<String, String>) -> Result<Self, ContextError>;
}

impl FromWire for AttemptContext {
    fn from_wire(map: HashMap<String, String>) -> Result<Self, ContextError> {
        let mut ctx = Self::default();
        for (key, value) in map {
            if value.len() > keys::MAX_VALUE_LEN {
                return Err(ContextError::TooLong {
                    len: value.len(),
                    key,
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
        Ok(ctx)
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
