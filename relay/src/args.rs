//! A relay's arguments, the same for the PAM module (the PAM line) and the
//! sudo plugin (its `Plugin` line in /etc/sudo.conf):
//! `[failmode=secure|safe] [timeout=SECONDS] [bus=ADDRESS] [journal_socket=PATH] [debug]`.
//!
//! A value that does not parse keeps the safe default (secure, 10 s) and is
//! reported, so a typo never opens the door.

use std::time::Duration;

use stepup_common::SYSTEM_BUS_ADDRESS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Daemon unreachable → PAM_AUTHINFO_UNAVAIL.
    Secure,
    /// Daemon unreachable → PAM_SUCCESS with a loud log line (the admin's choice).
    Safe,
}

/// Longest wait for the daemon in any one exchange, unless `timeout=` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub failmode: FailMode,
    pub timeout: Duration,
    pub bus: String,
    /// journald's native socket, for the module's own events.
    pub journal_socket: String,
    pub debug: bool,
    /// Arguments that were not understood, for the log.
    pub problems: Vec<String>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            failmode: FailMode::Secure,
            timeout: DEFAULT_TIMEOUT,
            bus: SYSTEM_BUS_ADDRESS.to_owned(),
            journal_socket: crate::journal::JOURNAL_SOCKET.to_owned(),
            debug: false,
            problems: Vec::new(),
        }
    }
}

impl Args {
    pub fn parse<'a>(raw: impl IntoIterator<Item = &'a str>) -> Self {
        let mut args = Self::default();
        for arg in raw {
            match arg.split_once('=') {
                Some(("failmode", "secure")) => args.failmode = FailMode::Secure,
                Some(("failmode", "safe")) => args.failmode = FailMode::Safe,
                Some(("timeout", secs)) => match secs.parse::<u64>() {
                    Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => {
                        args.timeout = Duration::from_secs(n);
                    }
                    _ => args.problems.push(format!(
                        "bad timeout={secs:?} (1..{MAX_TIMEOUT_SECS} seconds); using {}",
                        args.timeout.as_secs()
                    )),
                },
                Some(("bus", address)) if !address.is_empty() => args.bus = address.to_owned(),
                Some(("journal_socket", path)) if path.starts_with('/') => {
                    args.journal_socket = path.to_owned();
                }
                None if arg == "debug" => args.debug = true,
                _ => args
                    .problems
                    .push(format!("unknown argument {arg:?} ignored")),
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure_and_system_bus() {
        let args = Args::parse([]);
        assert_eq!(args.failmode, FailMode::Secure);
        assert_eq!(args.bus, "unix:path=/run/dbus/system_bus_socket");
        assert_eq!(args.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn all_arguments_parse() {
        let args = Args::parse([
            "failmode=safe",
            "timeout=3",
            "bus=unix:path=/tmp/b",
            "debug",
        ]);
        assert_eq!(args.failmode, FailMode::Safe);
        assert_eq!(args.timeout, Duration::from_secs(3));
        assert_eq!(args.bus, "unix:path=/tmp/b");
        assert!(args.debug);
        assert!(args.problems.is_empty());
    }

    #[test]
    fn typos_keep_secure_defaults_and_are_reported() {
        let args = Args::parse(["failmode=SAFE", "timeout=0", "timeout=ten", "bogus", "bus="]);
        assert_eq!(args.failmode, FailMode::Secure);
        assert_eq!(args.timeout, DEFAULT_TIMEOUT);
        assert_eq!(args.bus, SYSTEM_BUS_ADDRESS);
        assert_eq!(args.problems.len(), 5, "{:?}", args.problems);
    }
}
