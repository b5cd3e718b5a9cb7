//! Who an attempt is about, as history records it: shared by the attempt
//! engine and the session table (which keeps it for each open attempt).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::HistoryEntry;

/// The person and the place of an attempt (rhost is the effective one:
/// PAM_RHOST or the tty's login session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub subject: String,
    pub service: String,
    pub tty: String,
    pub rhost: String,
}

impl Who {
    /// A history row for this person's attempt, stamped now.
    pub fn history_entry(&self, method: &str, outcome: &str) -> HistoryEntry {
        HistoryEntry {
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            user: self.subject.clone(),
            service: self.service.clone(),
            tty: self.tty.clone(),
            rhost: self.rhost.clone(),
            method: method.to_owned(),
            outcome: outcome.to_owned(),
        }
    }
}
