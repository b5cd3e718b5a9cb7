//! Who is calling: the bus daemon vouches for the sender's uid.

use stepup_common::DaemonError;
use zbus::message::Header;
use zbus::names::BusName;

/// Refuse any caller whose uid is not 0. The shipped D-Bus policy already
/// refuses them; this is the second, independent check.
pub async fn require_root(
    dbus: &zbus::fdo::DBusProxy<'_>,
    header: &Header<'_>,
) -> Result<(), DaemonError> {
    let sender = header
        .sender()
        .ok_or_else(|| DaemonError::AccessDenied("message has no sender".into()))?;
    let uid = dbus
        .get_connection_unix_user(BusName::Unique(sender.to_owned()))
        .await
        .map_err(|e| DaemonError::AccessDenied(format!("cannot identify caller: {e}")))?;
    if uid != 0 {
        return Err(DaemonError::AccessDenied(format!(
            "only root may call stepupd (caller uid {uid})"
        )));
    }
    Ok(())
}

/// The caller's unique bus name, which sessions are bound to.
pub fn sender_name(header: &Header<'_>) -> Result<String, DaemonError> {
    header
        .sender()
        .map(|s| s.to_string())
        .ok_or_else(|| DaemonError::AccessDenied("message has no sender".into()))
}

/// Who began an attempt: the connection (sessions are bound to its unique
/// name), the process behind it when known, and the protocol it speaks.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub name: &'a str,
    pub process: Option<ProcessId>,
    pub protocol: u32,
}

/// A process as the kernel knows it for as long as it lives: its pid and
/// its start time (`/proc/PID/stat` field 22, clock ticks after boot), so a
/// pid reused later is another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    pub pid: u32,
    pub start: u64,
}

/// The calling process, as the bus daemon vouches for it (it read the pid
/// from the socket's credentials). `None` when it cannot be told; then
/// nothing is linked to it. Read while the caller waits for our reply, so
/// the pid still names it.
pub async fn process_of(dbus: &zbus::fdo::DBusProxy<'_>, header: &Header<'_>) -> Option<ProcessId> {
    let sender = header.sender()?;
    let pid = dbus
        .get_connection_unix_process_id(BusName::Unique(sender.to_owned()))
        .await
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcessId {
        pid,
        start: start_time(&stat)?,
    })
}

/// Field 22 of `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may hold spaces or parentheses itself, so counting
/// starts after the last `)`, where field 3 begins.
fn start_time(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_a_hostile_command_name() {
        let fields: Vec<String> = (3..=30).map(|n| n.to_string()).collect();
        let stat = format!("4242 (evil) 1 2 ) x) {}", fields.join(" "));
        assert_eq!(start_time(&stat), Some(22));
        let own = std::fs::read_to_string("/proc/self/stat").expect("stat");
        assert!(start_time(&own).is_some_and(|t| t > 0));
        assert_eq!(start_time("garbage"), None);
    }
}
