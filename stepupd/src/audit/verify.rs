//! `stepupctl audit verify`: is a run of events an unbroken chain?

use super::{CHAIN_START, chain_link};

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
