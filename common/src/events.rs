//! Every audit event kind stepup emits: its name, its fixed `MESSAGE_ID`
//! (never reused: admins, SIEM rules and the journald catalog
//! `packaging/journald/stepup.catalog` rely on it), its syslog priority, who
//! emits it, and the start of its human-readable `MESSAGE`. Shared so the
//! daemon, the PAM module and the catalog test agree on one table.

/// Who writes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// stepupd: chained (`STEPUP_SEQ`, `STEPUP_CHAIN`), `SYSLOG_IDENTIFIER=stepupd`.
    Daemon,
    /// pam_stepup.so, for what the daemon cannot see (it was not reached):
    /// `SYSLOG_IDENTIFIER=pam_stepup`, not chained (the module holds no key).
    Module,
}

/// One kind of event.
#[derive(Debug)]
pub struct Kind {
    pub name: &'static str,
    pub message_id: &'static str,
    pub priority: u8,
    pub source: Source,
    pub summary: &'static str,
}

pub const ALERT: u8 = 1;
pub const ERR: u8 = 3;
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;
pub const INFO: u8 = 6;

const fn daemon(
    name: &'static str,
    message_id: &'static str,
    priority: u8,
    summary: &'static str,
) -> Kind {
    Kind {
        name,
        message_id,
        priority,
        source: Source::Daemon,
        summary,
    }
}

/// Every event kind. docs/audit.md and the journald catalog list the same.
pub const CATALOGUE: &[Kind] = &[
    daemon(
        "decision",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a1",
        INFO,
        "policy decision",
    ),
    daemon(
        "challenge",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a2",
        INFO,
        "step-up challenge started",
    ),
    daemon(
        "factor_succeeded",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a3",
        NOTICE,
        "second factor succeeded",
    ),
    daemon(
        "factor_failed",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a4",
        WARNING,
        "second factor failed",
    ),
    daemon(
        "grace_used",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a5",
        INFO,
        "allowed on grace from an earlier step-up",
    ),
    daemon(
        "locked",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a6",
        WARNING,
        "user locked out",
    ),
    daemon(
        "unlocked",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a7",
        NOTICE,
        "user unlocked by an administrator",
    ),
    daemon(
        "key_counter_regression",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a8",
        ERR,
        "security key counter went backwards (possible clone)",
    ),
    daemon(
        "recovery_code_used",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a9",
        NOTICE,
        "recovery code used",
    ),
    daemon(
        "recovery_codes_issued",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0aa",
        NOTICE,
        "new recovery codes issued",
    ),
    daemon(
        "enrolled",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ab",
        NOTICE,
        "factor enrolled",
    ),
    daemon(
        "removed",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ac",
        NOTICE,
        "factor removed",
    ),
    daemon(
        "imported",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ad",
        NOTICE,
        "factors imported",
    ),
    daemon(
        "config_loaded",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0ae",
        NOTICE,
        "policy loaded",
    ),
    daemon(
        "config_rejected",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0af",
        ERR,
        "policy reload rejected; the previous policy stays",
    ),
    daemon(
        "daemon_started",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b0",
        NOTICE,
        "stepupd started",
    ),
    daemon(
        "daemon_stopped",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b1",
        NOTICE,
        "stepupd stopped",
    ),
    daemon(
        "protocol_mismatch",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b2",
        ERR,
        "client speaks another protocol version",
    ),
    daemon(
        "history_pruned",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b3",
        INFO,
        "old history pruned",
    ),
    daemon(
        "store_error",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b4",
        ERR,
        "state store error",
    ),
    daemon(
        "utmp_unusable",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b5",
        WARNING,
        "utmp could not be used",
    ),
    daemon(
        "attempt_ended",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b6",
        NOTICE,
        "attempt ended",
    ),
    daemon(
        "geoip_unusable",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b7",
        WARNING,
        "a location database could not be used",
    ),
    daemon(
        "geoip_loaded",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b8",
        INFO,
        "location database in use",
    ),
    daemon(
        "store_unreachable",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0d1",
        ERR,
        "shared state store unreachable; step-ups that need it are unavailable",
    ),
    daemon(
        "store_recovered",
        "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0d2",
        NOTICE,
        "shared state store answers again",
    ),
    Kind {
        name: "daemon_unreachable",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0c1",
        priority: ERR,
        source: Source::Module,
        summary: "stepupd could not be asked; the attempt failed closed",
    },
    Kind {
        name: "failsafe_pass",
        message_id: "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0c2",
        priority: ALERT,
        source: Source::Module,
        summary: "FAIL-SAFE PASS: stepupd could not be asked; let through without a second factor",
    },
];

/// The kind called `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    CATALOGUE.iter().find(|k| k.name == name)
}

/// The outcomes `attempt_ended` reports in `STEPUP_OUTCOME`.
pub const OUTCOMES: [&str; 9] = [
    "allowed",
    "denied",
    "max_tries",
    "timed_out",
    "cancelled",
    "locked",
    "not_enrolled",
    "unavailable",
    "report_only",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique_32_hex_digits() {
        for (i, k) in CATALOGUE.iter().enumerate() {
            assert_eq!(k.message_id.len(), 32, "{}", k.name);
            assert!(
                k.message_id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            for other in &CATALOGUE[..i] {
                assert_ne!(
                    other.message_id, k.message_id,
                    "{} and {}",
                    other.name, k.name
                );
                assert_ne!(other.name, k.name);
            }
        }
    }
}
