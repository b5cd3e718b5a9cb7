//! Audit events: one line per fact on stderr as `key=value` pairs, which
//! journald (under systemd) or the service manager's log collects.
//!
//! Never pass a code, PIN or secret here: the fields are names, verdicts and
//! reasons only. (Structured journald events with MESSAGE_IDs are a later step.)

use std::fmt::Write as _;
use std::io::Write as _;

/// Emit one event. `fields` are (key, value); values are quoted when needed.
pub fn event(name: &str, fields: &[(&str, &str)]) {
    let mut line = format!("stepupd: event={name}");
    for (key, value) in fields {
        let _ = write!(line, " {key}={}", quote(value));
    }
    line.push('\n');
    // One write call per line so concurrent events do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' && c != '=')
    {
        value.to_owned()
    } else {
        format!("{:?}", value)
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn values_with_spaces_or_controls_are_quoted() {
        assert_eq!(quote("alice"), "alice");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("x\ny"), "\"x\\ny\"");
        assert_eq!(quote("k=v"), "\"k=v\"");
    }
}
