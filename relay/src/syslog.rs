//! What only a relay can see (daemon unreachable, fail-safe pass, protocol
//! mismatch) goes to syslog, facility LOG_AUTHPRIV, through /dev/log, under
//! the relay's own identifier (`pam_stepup`, `stepup_sudo`). One datagram
//! per message; the socket is closed before returning.
//!
//! Not the `syslog` crate (7.0): its `unix()` logger sends on a blocking
//! socket, and when /dev/log is a stream socket it falls back inside the
//! crate to a blocking `UnixStream::connect` and write, either of which can
//! hang sudo on a stuck syslog daemon (`tests/tests/skeleton.rs` fills the
//! queue to check that ours does not). Its RFC 3164 formatter also stamps
//! UTC as if it were local time, unwraps while formatting, and would bring
//! `time`, `hostname` and `log` into every process that loads a relay.

use std::os::unix::net::UnixDatagram;

const LOG_AUTHPRIV: u8 = 10 << 3;

#[derive(Debug, Clone, Copy)]
pub enum Severity {
    Alert = 1,
    Err = 3,
    Warning = 4,
    Debug = 7,
}

pub const DEV_LOG: &str = "/dev/log";

/// Format one RFC 3164 message without a timestamp (syslogd adds it).
pub fn format(ident: &str, severity: Severity, message: &str) -> String {
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "<{}>{ident}[{}]: {clean}",
        LOG_AUTHPRIV | severity as u8,
        std::process::id()
    )
}

/// Best effort: with no syslog daemon there is nobody to tell. The send
/// never blocks: a stuck or slow syslog daemon (a full /dev/log queue) must
/// not hang sudo or sshd, so the line is dropped instead.
pub fn log(ident: &str, severity: Severity, message: &str) {
    if let Ok(socket) = UnixDatagram::unbound()
        && socket.set_nonblocking(true).is_ok()
    {
        let _ = socket.send_to(format(ident, severity, message).as_bytes(), DEV_LOG);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authpriv_priority_and_no_control_characters() {
        let line = format("pam_stepup", Severity::Alert, "a\nb");
        assert!(line.starts_with("<81>pam_stepup["), "{line}");
        assert!(line.ends_with("]: a b"), "{line}");
        assert!(format("stepup_sudo", Severity::Err, "x").starts_with("<83>stepup_sudo["));
    }
}
