//! One attempt's identity: its id (made at `Begin`), the person and place
//! it is about, and when it began. Every audit event about the attempt
//! carries these fields ([`Who::event`]), and history rows are built from
//! them ([`Who::history_entry`]). Shared by the attempt engine and the
//! session table, which keeps it for each open attempt.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use stepup_config::attempt::AttemptContext;

use stepup_common::context::{CALLER_PAM, CALLER_SUDO};

use crate::audit;
use crate::store::HistoryEntry;

#[derive(Debug, Clone, PartialEq)]
pub struct Who {
    /// `STEPUP_ATTEMPT`: joins every event of one PAM attempt.
    pub attempt: String,
    pub started: Instant,
    /// PAM_USER (for su, the target account).
    pub user: String,
    /// PAM_RUSER.
    pub ruser: String,
    /// Whose factor is asked (PAM_RUSER for su).
    pub subject: String,
    pub service: String,
    pub tty: String,
    /// The effective source: PAM_RHOST or the tty's login session.
    pub rhost: String,
    /// `pam_module` or `sudo_plugin`.
    pub caller: &'static str,
    /// What sudo is about to run (the sudo plugin's attempts only):
    /// (command line, capped; run-as user; run-as group).
    pub command: Option<(String, String, String)>,
    /// The fingerprint of the key an ssh login used (sshd's attempts only).
    pub login_key: Option<String>,
    /// Where the location database put the source (`[geoip]`); boxed, as
    /// most attempts have none and `Who` travels by value.
    pub geo: Box<GeoTags>,
}

/// What the location database said about an attempt's source, for its
/// events: `STEPUP_COUNTRY` and `STEPUP_ASN` when known, and
/// `STEPUP_SPEED_KMH` when `impossible_travel` computed a speed. Empty:
/// not known (or not asked). `located` is the place the decision saw,
/// kept so that a let-in records it without a second lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoTags {
    pub country: String,
    pub asn: String,
    pub speed_kmh: String,
    pub located: Option<stepup_config::attempt::GeoFacts>,
}

impl GeoTags {
    /// The fields that are known.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            ("country", self.country.as_str()),
            ("asn", self.asn.as_str()),
            ("speed_kmh", self.speed_kmh.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
    }
}

/// Longest command line an event carries; longer ones end in `…` (the
/// whole line is what policy saw; the event shows its start).
pub const MAX_COMMAND_SHOWN: usize = 1024;

impl Default for Who {
    fn default() -> Self {
        Self {
            attempt: String::new(),
            started: Instant::now(),
            user: String::new(),
            ruser: String::new(),
            subject: String::new(),
            service: String::new(),
            tty: String::new(),
            rhost: String::new(),
            caller: CALLER_PAM,
            command: None,
            login_key: None,
            geo: Box::default(),
        }
    }
}

/// `line` cut at [`MAX_COMMAND_SHOWN`] bytes (it is escaped ASCII).
fn capped(line: &str) -> String {
    if line.len() <= MAX_COMMAND_SHOWN {
        return line.to_owned();
    }
    let mut end = MAX_COMMAND_SHOWN;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// A fresh attempt id: 16 random bytes, hex.
fn new_attempt_id() -> String {
    let mut raw = [0u8; 16];
    rand::fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

impl Who {
    /// A new attempt by `subject` with this context, from `rhost`.
    pub fn begin(context: &AttemptContext, subject: &str, rhost: &str) -> Self {
        Self {
            attempt: new_attempt_id(),
            started: Instant::now(),
            user: context.user.clone(),
            ruser: context.ruser.clone(),
            subject: subject.to_owned(),
            service: context.service.clone(),
            tty: context.tty.clone(),
            rhost: rhost.to_owned(),
            caller: if context.command.is_some() {
                CALLER_SUDO
            } else {
                CALLER_PAM
            },
            command: context
                .command
                .as_ref()
                .map(|c| (capped(&c.line), c.runas_user.clone(), c.runas_group.clone())),
            login_key: context.login_key.as_ref().map(|k| k.fingerprint.clone()),
            geo: Box::default(),
        }
    }

    /// The fields every event of this attempt carries.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![
            ("user", self.user.as_str()),
            ("ruser", &self.ruser),
            ("subject", &self.subject),
            ("service", &self.service),
            ("tty", &self.tty),
            ("rhost", &self.rhost),
            ("attempt", &self.attempt),
            ("caller", self.caller),
        ];
        if let Some(fingerprint) = &self.login_key {
            fields.push(("login_key", fingerprint));
        }
        if let Some((line, runas_user, runas_group)) = &self.command {
            fields.push(("command", line));
            fields.push(("runas_user", runas_user));
            fields.push(("runas_group", runas_group));
        }
        fields
    }

    /// An audit event about this attempt: its fields, then `extra`.
    pub fn event(&self, name: &str, extra: &[(&str, &str)]) {
        let mut fields = self.fields();
        fields.extend(self.geo.fields());
        fields.extend_from_slice(extra);
        audit::event(name, &fields);
    }

    /// Milliseconds since `Begin`.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

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
            host: host_name().to_owned(),
        }
    }
}

static HOST_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Name the history rows this daemon writes with `name` (`[store]
/// host_name`), or with the kernel's host name when `None`. The first call
/// wins: the daemon calls it once at start.
pub fn set_host_name(name: Option<&str>) {
    let _ = HOST_NAME.set(name.map_or_else(kernel_host_name, str::to_owned));
}

/// The name this host writes into history (shared by every host of a
/// fleet store, so each row says where it happened).
pub fn host_name() -> &'static str {
    HOST_NAME.get_or_init(kernel_host_name)
}

fn kernel_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}
