//! Who is calling: the bus daemon vouches for the sender's uid (and pid).
//!
//! What the bus says about a connection never changes while it lives, and
//! a unique name is never reused on a bus, so the answers are kept per
//! unique name ([`Callers`]): a connection is asked about once, not on
//! every call (a step-up's `Respond` needs no round trip to the bus). The
//! table is bounded and a name is dropped when it leaves the bus.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use stepup_common::DaemonError;
use zbus::message::Header;
use zbus::names::BusName;

/// Connections remembered at most (the oldest go first). Far above the
/// connections that call while others are in flight (`max_sessions` 256).
pub const MAX_KNOWN_CALLERS: usize = 4096;

/// What the bus said about a connection: its uid, and its pid when the bus
/// knew it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    uid: u32,
    pid: Option<u32>,
}

impl Known {
    /// The calling process, as the bus daemon vouches for it (it read the
    /// pid from the socket's credentials). `None` when it cannot be told;
    /// then nothing is linked to it. Its start time is read while the
    /// caller waits for our reply, so the pid still names it.
    pub fn process(&self) -> Option<ProcessId> {
        let pid = self.pid?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcessId {
            pid,
            start: start_time(&stat)?,
        })
    }
}

#[derive(Default)]
struct Table {
    known: HashMap<String, Known>,
    /// Names in the order they were added, for the bound.
    order: VecDeque<String>,
}

impl Table {
    fn get(&self, name: &str) -> Option<Known> {
        self.known.get(name).copied()
    }

    fn insert(&mut self, name: &str, known: Known) {
        if let Some(old) = self.known.get_mut(name) {
            *old = known;
            return;
        }
        while self.order.len() >= MAX_KNOWN_CALLERS {
            if let Some(oldest) = self.order.pop_front() {
                self.known.remove(&oldest);
            }
        }
        self.known.insert(name.to_owned(), known);
        self.order.push_back(name.to_owned());
    }

    fn forget(&mut self, name: &str) {
        if self.known.remove(name).is_some() {
            self.order.retain(|n| n != name);
        }
    }
}

/// The bus's word on callers, asked once per connection.
pub struct Callers {
    /// Set once the connection exists (the interface is served before it
    /// is built: see `daemon::serve`); a call before that is refused.
    dbus: OnceLock<zbus::fdo::DBusProxy<'static>>,
    table: Mutex<Table>,
}

impl Default for Callers {
    fn default() -> Self {
        Self::new()
    }
}

impl Callers {
    pub fn new() -> Self {
        Self {
            dbus: OnceLock::new(),
            table: Mutex::new(Table::default()),
        }
    }

    /// The proxy to ask the bus with, from now on.
    pub fn set_bus(&self, dbus: zbus::fdo::DBusProxy<'static>) {
        let _ = self.dbus.set(dbus);
    }

    fn bus(&self) -> Result<&zbus::fdo::DBusProxy<'static>, DaemonError> {
        self.dbus
            .get()
            .ok_or_else(|| DaemonError::AccessDenied("cannot identify caller yet".into()))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection left the bus: forget it.
    pub fn forget(&self, name: &str) {
        self.table().forget(name);
    }

    /// Refuse any caller whose uid is not 0. The shipped D-Bus policy
    /// already refuses them; this is the second, independent check. What
    /// the bus said about the caller (its pid, for `same_sudo`) comes back.
    pub async fn require_root(&self, header: &Header<'_>) -> Result<Known, DaemonError> {
        let sender = header
            .sender()
            .ok_or_else(|| DaemonError::AccessDenied("message has no sender".into()))?;
        let cached = self.table().get(sender);
        let known = match cached {
            Some(known) => known,
            None => {
                // Uid and pid in one round trip.
                let told = self
                    .bus()?
                    .get_connection_credentials(BusName::Unique(sender.to_owned()))
                    .await
                    .map_err(|e| {
                        DaemonError::AccessDenied(format!("cannot identify caller: {e}"))
                    })?;
                let uid = told.unix_user_id().ok_or_else(|| {
                    DaemonError::AccessDenied("the bus did not say the caller's uid".into())
                })?;
                let known = Known {
                    uid,
                    pid: told.process_id(),
                };
                self.table().insert(sender, known);
                known
            }
        };
        if known.uid != 0 {
            return Err(DaemonError::AccessDenied(format!(
                "only root may call stepupd (caller uid {})",
                known.uid
            )));
        }
        Ok(known)
    }
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
    fn callers_are_remembered_within_a_bound_and_forgotten_when_they_leave() {
        let mut table = Table::default();
        let root = |pid| Known { uid: 0, pid };
        table.insert(":1.1", root(None));
        table.insert(":1.1", root(Some(42)));
        assert_eq!(table.get(":1.1"), Some(root(Some(42))));
        assert_eq!(table.order.len(), 1, "a name is listed once");
        table.forget(":1.1");
        assert_eq!(table.get(":1.1"), None);
        for n in 0..MAX_KNOWN_CALLERS + 10 {
            table.insert(&format!(":1.{n}"), root(Some(n as u32)));
        }
        assert_eq!(table.known.len(), MAX_KNOWN_CALLERS);
        assert_eq!(table.order.len(), MAX_KNOWN_CALLERS);
        // The oldest went first.
        assert_eq!(table.get(":1.0"), None);
        let newest = MAX_KNOWN_CALLERS + 9;
        assert_eq!(
            table.get(&format!(":1.{newest}")),
            Some(root(Some(newest as u32)))
        );
    }

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
