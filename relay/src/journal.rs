//! What only a relay can see (the daemon could not be asked) also goes
//! to journald as a structured event, with a fixed `MESSAGE_ID` from
//! `stepup_common::events` and the attempt's fields, so an auditor finds a
//! fail-safe pass or a fail-closed attempt with the same query as the
//! daemon's events. journald's native protocol over a datagram socket; the
//! send never blocks (a stuck journald must not hang sudo) and the socket is
//! closed before returning. These events are not chained: a relay holds
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

/// Longest value put in an event field, in bytes (a datagram is bounded).
pub const MAX_FIELD_LEN: usize = 1024;

fn capped(value: &str) -> String {
    if value.len() <= MAX_FIELD_LEN {
        return value.to_owned();
    }
    let mut end = MAX_FIELD_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// The datagram of event `name` with the attempt's `context` and `extra`
/// fields (lowercase keys become `STEPUP_*`). `None` for an unknown kind.
pub fn datagram(
    ident: &str,
    name: &str,
    context: &HashMap<String, String>,
    extra: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let kind = events::kind(name)?;
    let item = |key: &str| context.get(key).map_or("", String::as_str);
    let mut message = kind.summary.to_owned();
    for key in [
        keys::SERVICE,
        keys::USER,
        keys::RUSER,
        keys::TTY,
        keys::RHOST,
    ] {
        message.push_str(&format!(" {key}={}", one_line(item(key))));
    }
    let mut fields: Vec<(String, String)> = vec![
        ("MESSAGE".into(), message),
        ("MESSAGE_ID".into(), kind.message_id.into()),
        ("PRIORITY".into(), kind.priority.to_string()),
        ("SYSLOG_FACILITY".into(), FACILITY_AUTHPRIV.into()),
        ("SYSLOG_IDENTIFIER".into(), ident.into()),
        ("STEPUP_EVENT".into(), name.into()),
    ];
    // Every context item the relay knows, each capped (a command line can
    // be long; a datagram has a size limit).
    let mut items: Vec<(&str, &str)> = context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    items.sort_unstable();
    items.extend_from_slice(extra);
    for (key, value) in items {
        fields.push((
            format!("STEPUP_{}", key.to_ascii_uppercase()),
            capped(value),
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
    ident: &str,
    name: &str,
    context: &HashMap<String, String>,
    extra: &[(&str, &str)],
) {
    let Some(datagram) = datagram(ident, name, context, extra) else {
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
            datagram(
                "pam_stepup",
                "failsafe_pass",
                &context,
                &[("error", "no socket")],
            )
            .unwrap(),
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
        assert!(datagram("pam_stepup", "no_such_event", &context, &[]).is_none());
    }
}
