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

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// One kind of event: its name, its fixed MESSAGE_ID (never reused), its
/// syslog priority, and the start of its human-readable MESSAGE.
pub struct Kind {
    pub name: &'static str,
    pub message_id: &'static str,
    pub priority: u8,
    pub summary: &'static str,
}

const ERR: u8 = 3;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;
const INFO: u8 = 6;

/// Every event stepupd emits. docs/audit.md lists the same table.
pub const CATALOGUE: &[Kind] = &[
    Kind {
        name: "decision",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a1",
        priority: INFO,
        summary: "policy decision",
    },
    Kind {
        name: "challenge",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a2",
        priority: INFO,
        summary: "step-up challenge started",
    },
    Kind {
        name: "factor_succeeded",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a3",
        priority: NOTICE,
        summary: "second factor succeeded",
    },
    Kind {
        name: "factor_failed",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a4",
        priority: WARNING,
        summary: "second factor failed",
    },
    Kind {
        name: "grace_used",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a5",
        priority: INFO,
        summary: "allowed on grace from an earlier step-up",
    },
    Kind {
        name: "locked",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a6",
        priority: WARNING,
        summary: "user locked out",
    },
    Kind {
        name: "unlocked",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a7",
        priority: NOTICE,
        summary: "user unlocked by an administrator",
    },
    Kind {
        name: "key_counter_regression",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a8",
        priority: ERR,
        summary: "security key counter went backwards (possible clone)",
    },
    Kind {
        name: "recovery_code_used",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a9",
        priority: NOTICE,
        summary: "recovery code used",
    },
    Kind {
        name: "recovery_codes_issued",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0aa",
        priority: NOTICE,
        summary: "new recovery codes issued",
    },
    Kind {
        name: "enrolled",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ab",
        priority: NOTICE,
        summary: "factor enrolled",
    },
    Kind {
        name: "removed",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ac",
        priority: NOTICE,
        summary: "factor removed",
    },
    Kind {
        name: "imported",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ad",
        priority: NOTICE,
        summary: "factors imported",
    },
    Kind {
        name: "config_loaded",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ae",
        priority: NOTICE,
        summary: "policy loaded",
    },
    Kind {
        name: "config_rejected",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0af",
        priority: ERR,
        summary: "policy reload rejected; the previous policy stays",
    },
    Kind {
        name: "daemon_started",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b0",
        priority: NOTICE,
        summary: "stepupd started",
    },
    Kind {
        name: "daemon_stopped",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b1",
        priority: NOTICE,
        summary: "stepupd stopped",
    },
    Kind {
        name: "protocol_mismatch",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b2",
        priority: ERR,
        summary: "client speaks another protocol version",
    },
    Kind {
        name: "history_pruned",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b3",
        priority: INFO,
        summary: "old history pruned",
    },
    Kind {
        name: "store_error",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b4",
        priority: ERR,
        summary: "state store error",
    },
    Kind {
        name: "utmp_unusable",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b5",
        priority: WARNING,
        summary: "utmp could not be used",
    },
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    CATALOGUE.iter().find(|k| k.name == name)
}

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
    key: [u8; 32],
    chain: Mutex<Chain>,
    state_file: PathBuf,
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
        key,
        chain: Mutex::new(Chain { seq, prev }),
        state_file,
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
    format!("STEPUP_{}", key.to_ascii_uppercase())
}

/// The chain value of an event: HMAC-SHA256(key, prev ‖ canonical fields),
/// where the canonical form is every field but `STEPUP_CHAIN`, sorted by
/// name, as `NAME=value\n`.
pub fn chain_link(key: &[u8; 32], prev: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        fields.iter().filter(|(k, _)| k != "STEPUP_CHAIN").collect();
    sorted.sort();
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(prev.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(b"=");
        mac.update(v.as_bytes());
        mac.update(b"\n");
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Emit one event. `fields` are (key, value) with lowercase keys.
pub fn event(name: &str, fields: &[(&str, &str)]) {
    let kind = kind(name);
    let mut message = kind.map_or(name, |k| k.summary).to_owned();
    for (key, value) in fields {
        let _ = write!(message, " {key}={}", quote(value));
    }
    let mut entry: Vec<(String, String)> = vec![
        ("MESSAGE".into(), message),
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
    ];
    entry.extend(fields.iter().map(|(k, v)| (field_name(k), (*v).to_owned())));

    let Some(audit) = AUDIT.get() else {
        write_line(name, fields, None);
        return;
    };
    let seq = {
        let mut chain = audit
            .chain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        chain.seq += 1;
        entry.push(("STEPUP_SEQ".into(), chain.seq.to_string()));
        let link = chain_link(&audit.key, &chain.prev, &entry);
        entry.push(("STEPUP_CHAIN".into(), link.clone()));
        chain.prev = link;
        // Sent under the lock, so the journal sees events in chain order.
        match &audit.sink {
            Sink::Journal(path) => {
                if send_journal(path, &entry).is_err() {
                    write_line(name, fields, Some(&entry));
                }
            }
            Sink::Lines => write_line(name, fields, Some(&entry)),
        }
        chain.seq
    };
    let _ = seq;
}

/// journald's native protocol: `NAME=value\n`, or for a value with a
/// newline `NAME\n` + little-endian u64 length + value + `\n`.
fn send_journal(path: &Path, entry: &[(String, String)]) -> std::io::Result<()> {
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
    UnixDatagram::unbound()?
        .send_to(&datagram, path)
        .map(|_| ())
}

/// The fallback: one `key=value` line to standard error and to syslog.
fn write_line(name: &str, fields: &[(&str, &str)], entry: Option<&[(String, String)]>) {
    let mut line = format!("stepupd: event={name}");
    for (key, value) in fields {
        let _ = write!(line, " {key}={}", quote(value));
    }
    if let Some(entry) = entry {
        for (k, v) in entry
            .iter()
            .filter(|(k, _)| k == "STEPUP_SEQ" || k == "STEPUP_CHAIN")
        {
            let _ = write!(
                line,
                " {}={v}",
                k.trim_start_matches("STEPUP_").to_ascii_lowercase()
            );
        }
    }
    // One write call per line so concurrent events do not interleave.
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
    let priority = kind(name).map_or(INFO, |k| k.priority);
    // Never blocks: a stuck syslog daemon must not stall the daemon (the
    // line is on standard error regardless).
    if let Ok(socket) = UnixDatagram::unbound()
        && socket.set_nonblocking(true).is_ok()
    {
        // LOG_AUTHPRIV = 10 << 3.
        let _ = socket.send_to(format!("<{}>{line}", 80 + priority).as_bytes(), "/dev/log");
    }
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

/// What `stepupctl audit verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub events: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Problems that mean events were removed, reordered or edited.
    pub problems: Vec<String>,
    /// Things to know that are not tampering (a restart after a crash).
    pub notes: Vec<String>,
}

/// Check a run of events (journald JSON objects, one per line, in journal
/// order): sequence numbers must follow each other and every chain value
/// must be the HMAC of its predecessor and its own fields. The first event
/// is the anchor (its predecessor is not in the input). A `daemon_started`
/// with `STEPUP_CHAIN_RESUMED=false` starts a new chain (after a crash the
/// daemon cannot link to the old one): noted, not an error.
pub fn verify(key: &[u8; 32], lines: impl Iterator<Item = String>) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut prev: Option<(u64, String)> = None;
    for (index, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match read_event(&line) {
            Ok(Some(event)) => {
                report.add(key, prev.as_ref(), &event);
                prev = Some((event.seq, event.chain));
            }
            Ok(None) => {}
            Err(problem) => report
                .problems
                .push(format!("line {}: {problem}", index + 1)),
        }
    }
    report
}

/// One of stepupd's events, as the chain covers it.
struct ChainedEvent {
    seq: u64,
    chain: String,
    /// A `daemon_started` that starts a new chain.
    restart: bool,
    /// The fields the chain value covers.
    fields: Vec<(String, String)>,
}

/// The event on one line of a `journalctl -o json` export: `None` for
/// another program's entry, `Err` for a line that is not an event at all.
fn read_event(line: &str) -> Result<Option<ChainedEvent>, &'static str> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        return Err("not a JSON object");
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let ours = object.get("SYSLOG_IDENTIFIER").and_then(text).as_deref() == Some("stepupd")
        && object.contains_key("STEPUP_SEQ");
    if !ours {
        return Ok(None);
    }
    let fields: Vec<(String, String)> = object
        .iter()
        .filter(|(k, _)| {
            k.starts_with("STEPUP_")
                || matches!(
                    k.as_str(),
                    "MESSAGE" | "MESSAGE_ID" | "PRIORITY" | "SYSLOG_IDENTIFIER"
                )
        })
        .filter_map(|(k, v)| text(v).map(|v| (k.clone(), v)))
        .collect();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(seq) = get("STEPUP_SEQ").and_then(|s| s.parse::<u64>().ok()) else {
        return Err("no valid STEPUP_SEQ");
    };
    let chain = get("STEPUP_CHAIN").unwrap_or_default();
    let restart = get("STEPUP_EVENT").as_deref() == Some("daemon_started")
        && get("STEPUP_CHAIN_RESUMED").as_deref() == Some("false");
    Ok(Some(ChainedEvent {
        seq,
        chain,
        restart,
        fields,
    }))
}

impl VerifyReport {
    /// Counts `event` and checks it follows `prev` (sequence and chain).
    fn add(&mut self, key: &[u8; 32], prev: Option<&(u64, String)>, event: &ChainedEvent) {
        let seq = event.seq;
        self.events += 1;
        self.first_seq.get_or_insert(seq);
        self.last_seq = Some(seq);
        match prev {
            None => {}
            Some(_) if event.restart => {
                self.notes.push(format!(
                    "seq {seq}: a new chain starts (stepupd restarted without a clean stop, so continuity before it cannot be proved)"
                ));
                if chain_link(key, CHAIN_START, &event.fields) != event.chain {
                    self.problems
                        .push(format!("seq {seq}: edited (chain value does not match)"));
                }
            }
            Some((prev_seq, prev_chain)) => {
                if seq <= *prev_seq {
                    self.problems.push(format!(
                        "seq {seq} after seq {prev_seq}: reordered or replayed"
                    ));
                } else if seq != prev_seq + 1 {
                    self.problems.push(format!(
                        "seq {}..{}: {} event(s) missing",
                        prev_seq + 1,
                        seq - 1,
                        seq - prev_seq - 1
                    ));
                } else if chain_link(key, prev_chain, &event.fields) != event.chain {
                    self.problems
                        .push(format!("seq {seq}: edited (chain value does not match)"));
                }
            }
        }
    }
}

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
    fn message_ids_are_unique_32_hex_digits() {
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|k| k.message_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn every_event_the_daemon_emits_is_in_the_catalogue() {
        let src = concat!(
            include_str!("attempt/mod.rs"),
            include_str!("attempt/admin.rs"),
            include_str!("attempt/keys.rs"),
            include_str!("attempt/lockout.rs"),
            include_str!("daemon.rs"),
            include_str!("service.rs"),
        );
        let mut rest = src;
        let mut found = 0;
        while let Some(i) = rest.find("audit::event(") {
            rest = &rest[i + "audit::event(".len()..];
            let name = rest.trim_start().trim_start_matches('"');
            let name = &name[..name.find('"').unwrap_or(0)];
            assert!(kind(name).is_some(), "event {name:?} has no MESSAGE_ID");
            found += 1;
        }
        assert!(found > 20, "{found}");
    }

    #[test]
    fn docs_list_every_event_and_message_id() {
        let doc = include_str!("../../docs/audit.md");
        for kind in CATALOGUE {
            assert!(
                doc.contains(&format!("| `{}` | `{}` |", kind.name, kind.message_id)),
                "docs/audit.md lacks {}",
                kind.name
            );
        }
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
