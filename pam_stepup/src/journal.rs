//! What only the module can see (the daemon could not be asked) also goes
//! to journald as a structured event, with a fixed `MESSAGE_ID` from
//! `stepup_common::events` and the attempt's fields, so an auditor finds a
//! fail-safe pass or a fail-closed attempt with the same query as the
//! daemon's events. journald's native protocol over a datagram socket; the
//! send never blocks (a stuck journald must not hang sudo) and the socket is
//! closed before returning. These events are not chained: the module holds
//! no key.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;

use stepup_common::context as keys;
use stepup_common::events;

/// journald's native socket, unless `journal_socket=` says otherwise.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// LOG_AUTHPRIV, as the syslog line.
const FACILITY_AUTHPRIV: &str = "10";

/// A value journald takes on one line (the native protocol would need a
/// length-prefixed form for newlines; a PAM item with one is flattened).
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The datagram of event `name` with the attempt's `context` and `extra`
/// fields (lowercase keys become `STEPUP_*`). `None` for an unknown kind.
pub fn datagram(
    name: &str,
    context: &HashMap<String, String>,
    extra: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let kind = events::kind(name)?;
    let item = |key: &str| context.get(key).map_or("", String::as_str);
    let mut message = kind.summary.to_owned();
    for key in keys::KEYS {
        message.push_str(&format!(" {key}={}", one_line(item(key))));
    }
    let mut fields: Vec<(String, String)> = vec![
        ("MESSAGE".into(), message),
        ("MESSAGE_ID".into(), kind.message_id.into()),
        ("PRIORITY".into(), kind.priority.to_string()),
        ("SYSLOG_FACILITY".into(), FACILITY_AUTHPRIV.into()),
        ("SYSLOG_IDENTIFIER".into(), "pam_stepup".into()),
        ("STEPUP_EVENT".into(), name.into()),
    ];
    for key in keys::KEYS {
        fields.push((
            format!("STEPUP_{}", key.to_ascii_uppercase()),
            item(key).into(),
        ));
    }
    for (key, value) in extra {
        fields.push((
            format!("STEPUP_{}", key.to_ascii_uppercase()),
            (*value).into(),
        ));
    }
    let mut out = Vec::with_capacity(512);
    for (key, value) in fields {
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(one_line(&value).as_bytes());
        out.push(b'\n');
    }
    Some(out)
}

/// Best effort, never blocking: with no journald there is the syslog line.
pub fn send(
    socket_path: &str,
    name: &str,
    context: &HashMap<String, String>,
    extra: &[(&str, &str)],
) {
    let Some(datagram) = datagram(name, context, extra) else {
        return;
    };
    if let Ok(socket) = UnixDatagram::unbound()
        && socket.set_nonblocking(true).is_ok()
    {
        let _ = socket.send_to(&datagram, socket_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_event_has_its_message_id_and_one_line_fields() {
        let context: HashMap<String, String> = [
            ("service", "sudo"),
            ("user", "mallory\nSTEPUP_OUTCOME=allowed"),
            ("rhost", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let text = String::from_utf8(
            datagram("failsafe_pass", &context, &[("error", "no socket")]).unwrap(),
        )
        .unwrap();
        let id = events::kind("failsafe_pass").unwrap().message_id;
        assert!(text.contains(&format!("\nMESSAGE_ID={id}\n")), "{text}");
        assert!(text.contains("\nSTEPUP_SERVICE=sudo\n"), "{text}");
        assert!(text.contains("\nSTEPUP_ERROR=no socket\n"), "{text}");
        // A newline in a PAM item cannot forge a field of its own.
        assert!(!text.contains("\nSTEPUP_OUTCOME=allowed"), "{text}");
        assert!(
            text.contains("\nSTEPUP_USER=mallory STEPUP_OUTCOME=allowed\n"),
            "{text}"
        );
        assert!(datagram("no_such_event", &context, &[]).is_none());
    }
}
