//! Audit events: one per fact, with a stable `MESSAGE_ID` per kind, typed
//! `STEPUP_*` fields, and a tamper-evident chain.
//!
//! Where journald's native socket exists, events go there as structured
//! entries; otherwise each becomes one `key=value` line to syslog
//! (`/dev/log`) and to standard error, so nothing is lost on hosts without
//! systemd. Never pass a code, PIN or secret here: fields are names,
//! verdicts and reasons only.
//!
//! Every event carries `STEPUP_SEQ` and `STEPUP_CHAIN` = HMAC-SHA256(host
//! key, previous chain ‖ this event's fields), the host key living in the
//! state directory; `stepupctl audit verify` recomputes it.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use stepup_common::events::INFO;
pub use stepup_common::events::{CATALOGUE, Kind, kind};

/// Where events go.
enum Sink {
    Journal(PathBuf),
    Lines,
}

struct Chain {
    seq: u64,
    prev: String,
}

struct Audit {
    sink: Sink,
    /// HMAC-SHA256 already keyed with the host key (the key's two padded
    /// blocks hashed once, not per event).
    mac: Hmac<Sha256>,
    chain: Mutex<Chain>,
    state_file: PathBuf,
    /// Made once: a socket per event cost two system calls more.
    sockets: Sockets,
}

/// Unbound datagram sockets for journald's native socket (blocking, as
/// before) and for syslog's `/dev/log` (never blocks).
struct Sockets {
    journal: Option<UnixDatagram>,
    syslog: Option<UnixDatagram>,
}

impl Sockets {
    fn new() -> Self {
        let syslog = UnixDatagram::unbound()
            .ok()
            .filter(|s| s.set_nonblocking(true).is_ok());
        Self {
            journal: UnixDatagram::unbound().ok(),
            syslog,
        }
    }
}

static AUDIT: OnceLock<Audit> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
#[error("audit key {path}: {source}")]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

const KEY_FILE: &str = "audit.key";
const STATE_FILE: &str = "audit.state";
/// The chain value before the first event of a chain.
pub const CHAIN_START: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Set up the sink and the chain (once, at daemon start). Returns whether
/// the chain continues from the last clean stop.
pub fn init(state_dir: &Path, journal_socket: &Path) -> Result<bool, AuditError> {
    let key = load_or_create_key(&state_dir.join(KEY_FILE))?;
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return Err(AuditError {
            path: state_dir.join(KEY_FILE),
            source: std::io::Error::other("unusable key"),
        });
    };
    let state_file = state_dir.join(STATE_FILE);
    let (seq, prev, resumed) = match fs::read_to_string(&state_file) {
        Ok(text) => match text.trim().split_once(' ') {
            Some((seq, prev)) if prev.len() == 64 => {
                (seq.parse().unwrap_or(0), prev.to_owned(), true)
            }
            _ => (0, CHAIN_START.to_owned(), false),
        },
        Err(_) => (0, CHAIN_START.to_owned(), false),
    };
    // The state is consumed: after a crash the next start cannot claim continuity.
    let _ = fs::remove_file(&state_file);
    let sink = if journal_socket.exists() {
        Sink::Journal(journal_socket.to_owned())
    } else {
        Sink::Lines
    };
    let _ = AUDIT.set(Audit {
        sink,
        mac,
        chain: Mutex::new(Chain { seq, prev }),
        state_file,
        sockets: Sockets::new(),
    });
    Ok(resumed)
}

/// On a clean stop: remember where the chain is, so the next start links to it.
pub fn finish() {
    if let Some(audit) = AUDIT.get() {
        let chain = audit
            .chain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tmp = audit.state_file.with_extension("tmp");
        if fs::write(&tmp, format!("{} {}\n", chain.seq, chain.prev)).is_ok() {
            let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600));
            let _ = fs::rename(&tmp, &audit.state_file);
        }
    }
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], AuditError> {
    let err = |source| AuditError {
        path: path.to_owned(),
        source,
    };
    match fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Ok(_) => Err(err(std::io::Error::other("not 32 bytes"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::fill(&mut key);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(err)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err)?;
            file.write_all(&key).map_err(err)?;
            file.sync_all().map_err(err)?;
            Ok(key)
        }
        Err(e) => Err(err(e)),
    }
}

/// Read the host key (for `stepupctl audit verify`).
pub fn read_key(state_dir: &Path) -> Result<[u8; 32], AuditError> {
    let path = state_dir.join(KEY_FILE);
    let bytes = fs::read(&path).map_err(|source| AuditError {
        path: path.clone(),
        source,
    })?;
    bytes.try_into().map_err(|_| AuditError {
        path,
        source: std::io::Error::other("not 32 bytes"),
    })
}

/// The journal field name for an event field: `rule` → `STEPUP_RULE`.
pub fn field_name(key: &str) -> String {
    let mut name = String::with_capacity(7 + key.len());
    name.push_str("STEPUP_");
    name.extend(key.chars().map(|c| c.to_ascii_uppercase()));
    name
}

/// The chain value of an event: HMAC-SHA256(key, prev ‖ canonical fields),
/// where the canonical form is every field but `STEPUP_CHAIN`, sorted by
/// name, as `NAME=value\n`.
pub fn chain_link(key: &[u8; 32], prev: &str, fields: &[(String, String)]) -> String {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => chain_link_keyed(&mac, prev, fields),
        Err(_) => String::new(),
    }
}

/// [`chain_link`] with a MAC already keyed (cloned, so the key's blocks
/// are not hashed again).
fn chain_link_keyed(keyed: &Hmac<Sha256>, prev: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        fields.iter().filter(|(k, _)| k != "STEPUP_CHAIN").collect();
    sorted.sort_unstable();
    let mut mac = keyed.clone();
    mac.update(prev.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(b"=");
        mac.update(v.as_bytes());
        mac.update(b"\n");
    }
    hex(&mac.finalize().into_bytes())
}

/// Lowercase hex, without a formatter call per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Emit one event. `fields` are (key, value) with lowercase keys.
///
/// Sent before the caller goes on (for an attempt, before its answer goes
/// out): a verdict acted upon always has its events on their way, and the
/// chain is in the order things happened.
pub fn event(name: &str, fields: &[(&str, &str)]) {
    let kind = kind(name);
    // " key=value" for each field: the MESSAGE's tail and the fallback line's.
    let mut detail = String::with_capacity(32 * fields.len());
    for (key, value) in fields {
        let _ = write!(detail, " {key}={}", quote(value));
    }
    let summary = kind.map_or(name, |k| k.summary);
    let mut entry: Vec<(String, String)> = Vec::with_capacity(fields.len() + 7);
    entry.extend([
        ("MESSAGE".into(), format!("{summary}{detail}")),
        (
            "MESSAGE_ID".into(),
            kind.map_or("5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ff", |k| k.message_id)
                .into(),
        ),
        (
            "PRIORITY".into(),
            kind.map_or(INFO, |k| k.priority).to_string(),
        ),
        ("SYSLOG_IDENTIFIER".into(), "stepupd".into()),
        ("STEPUP_EVENT".into(), name.into()),
    ]);
    entry.extend(fields.iter().map(|(k, v)| (field_name(k), (*v).to_owned())));

    let Some(audit) = AUDIT.get() else {
        write_line(name, &detail, None, None);
        return;
    };
    let mut chain = audit
        .chain
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    chain.seq += 1;
    entry.push(("STEPUP_SEQ".into(), chain.seq.to_string()));
    let link = chain_link_keyed(&audit.mac, &chain.prev, &entry);
    // Sent under the lock, so the journal sees events in chain order.
    let sent = match (&audit.sink, &audit.sockets.journal) {
        (Sink::Journal(path), Some(socket)) => {
            entry.push(("STEPUP_CHAIN".into(), link.clone()));
            send_journal(socket, path, &entry).is_ok()
        }
        _ => false,
    };
    if !sent {
        let chained = (chain.seq, link.as_str());
        write_line(name, &detail, Some(chained), audit.sockets.syslog.as_ref());
    }
    chain.prev = link;
}

/// journald's native protocol: `NAME=value\n`, or for a value with a
/// newline `NAME\n` + little-endian u64 length + value + `\n`.
fn send_journal(
    socket: &UnixDatagram,
    path: &Path,
    entry: &[(String, String)],
) -> std::io::Result<()> {
    let mut datagram = Vec::with_capacity(512);
    for (k, v) in entry {
        datagram.extend_from_slice(k.as_bytes());
        if v.contains('\n') {
            datagram.push(b'\n');
            datagram.extend_from_slice(&(v.len() as u64).to_le_bytes());
        } else {
            datagram.push(b'=');
        }
        datagram.extend_from_slice(v.as_bytes());
        datagram.push(b'\n');
    }
    socket.send_to(&datagram, path).map(|_| ())
}

/// The fallback: one `key=value` line to standard error and to syslog.
/// `detail` is the fields' ` key=value` text; `chained` the event's
/// sequence number and chain value.
fn write_line(
    name: &str,
    detail: &str,
    chained: Option<(u64, &str)>,
    syslog: Option<&UnixDatagram>,
) {
    let priority = kind(name).map_or(INFO, |k| k.priority);
    // LOG_AUTHPRIV = 10 << 3; the syslog prefix, then the line itself.
    let mut line = format!("<{}>stepupd: event={name}{detail}", 80 + priority);
    if let Some((seq, chain)) = chained {
        let _ = write!(line, " seq={seq} chain={chain}");
    }
    line.push('\n');
    let start = line.find('>').map_or(0, |i| i + 1);
    // One write call per line so concurrent events do not interleave.
    let _ = std::io::stderr()
        .lock()
        .write_all(&line.as_bytes()[start..]);
    // Never blocks: a stuck syslog daemon must not stall the daemon (the
    // line is on standard error regardless).
    let own;
    let socket = match syslog {
        Some(socket) => socket,
        None => match UnixDatagram::unbound() {
            Ok(socket) if socket.set_nonblocking(true).is_ok() => {
                own = socket;
                &own
            }
            _ => return,
        },
    };
    let _ = socket.send_to(&line.as_bytes()[..line.len() - 1], "/dev/log");
}

fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' && c != '=')
    {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

mod report;
pub mod source;
mod verify;

pub use report::{Report, report};
pub use verify::{VerifyReport, verify};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_spaces_or_controls_are_quoted() {
        assert_eq!(quote("alice"), "alice");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("x\ny"), "\"x\\ny\"");
        assert_eq!(quote("k=v"), "\"k=v\"");
    }

    #[test]
    fn every_event_the_daemon_emits_is_in_the_catalogue() {
        let src = concat!(
            include_str!("../attempt/mod.rs"),
            include_str!("../attempt/admin.rs"),
            include_str!("../attempt/begin.rs"),
            include_str!("../attempt/ending.rs"),
            include_str!("../attempt/keys.rs"),
            include_str!("../attempt/lockout.rs"),
            include_str!("../attempt/respond.rs"),
            include_str!("../daemon.rs"),
            include_str!("../service.rs"),
            include_str!("../geo.rs"),
        );
        let mut found = 0;
        // `audit::event("name"` and `who.event("name"` (an attempt's events).
        for call in ["audit::event(", "who.event(", "challenge.event("] {
            let mut rest = src;
            while let Some(i) = rest.find(call) {
                rest = &rest[i + call.len()..];
                let name = rest.trim_start().trim_start_matches('"');
                let name = &name[..name.find('"').unwrap_or(0)];
                let kind = kind(name).unwrap_or_else(|| panic!("event {name:?} has no MESSAGE_ID"));
                assert_eq!(kind.source, stepup_common::events::Source::Daemon, "{name}");
                found += 1;
            }
        }
        assert!(found > 25, "{found}");
    }

    #[test]
    fn docs_list_every_event_and_message_id() {
        let doc = include_str!("../../../docs/audit.md");
        for kind in CATALOGUE {
            assert!(
                doc.contains(&format!("| `{}` | `{}` |", kind.name, kind.message_id)),
                "docs/audit.md lacks {}",
                kind.name
            );
        }
    }

    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(field_name("rule"), "STEPUP_RULE");
    }

    #[test]
    fn the_keyed_mac_gives_the_same_chain_as_the_key() {
        let key = [9u8; 32];
        let fields = vec![("STEPUP_EVENT".to_owned(), "decision".to_owned())];
        let keyed = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        assert_eq!(
            chain_link_keyed(&keyed, CHAIN_START, &fields),
            chain_link(&key, CHAIN_START, &fields)
        );
        // Cloning leaves the keyed MAC fresh for the next event.
        assert_eq!(
            chain_link_keyed(&keyed, CHAIN_START, &fields),
            chain_link(&key, CHAIN_START, &fields)
        );
    }

    #[test]
    fn chain_depends_on_order_content_and_key() {
        let key = [7u8; 32];
        let a = vec![
            ("STEPUP_EVENT".to_owned(), "decision".to_owned()),
            ("STEPUP_SEQ".into(), "1".into()),
        ];
        let link = chain_link(&key, CHAIN_START, &a);
        assert_eq!(link.len(), 64);
        // Field order does not matter; STEPUP_CHAIN itself is not covered.
        let mut b = a.clone();
        b.reverse();
        b.push(("STEPUP_CHAIN".into(), "x".into()));
        assert_eq!(chain_link(&key, CHAIN_START, &b), link);
        // Content, predecessor and key do.
        let mut c = a.clone();
        c[0].1 = "challenge".into();
        assert_ne!(chain_link(&key, CHAIN_START, &c), link);
        assert_ne!(chain_link(&key, &link, &a), link);
        assert_ne!(chain_link(&[8u8; 32], CHAIN_START, &a), link);
    }
}
