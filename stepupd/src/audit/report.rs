//! `stepupctl audit report`: the numbers of a roll-out and of a review, from
//! the events themselves (journald JSON, one object per line): attempts by
//! rule and outcome, what report-only mode would have done, step-up success
//! and time to answer per method, alarms, and who fails most.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{VerifyReport, verify};

/// Counts of attempts per (rule, outcome).
type Table = BTreeMap<String, BTreeMap<String, u64>>;

/// What report-only mode would have done for one rule or one person.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct WouldHave {
    /// A step-up would have been asked.
    pub challenged: u64,
    /// …by someone with no usable factor enrolled: refused once enforced.
    pub challenged_not_enrolled: u64,
    pub denied: u64,
}

/// Step-ups asked with one method (the first offered; the one that
/// succeeded if another did).
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct MethodStats {
    pub challenged: u64,
    pub succeeded: u64,
    /// succeeded / challenged.
    pub success_rate: f64,
    /// Median time from `Begin` to the answer that succeeded.
    pub median_ms: Option<u64>,
    #[serde(skip)]
    durations: Vec<u64>,
}

/// Alarms and operational facts.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Alarms {
    pub lockouts: u64,
    pub clone_alarms: u64,
    pub failsafe_passes: u64,
    /// The module could not ask the daemon and failed closed.
    pub daemon_unreachable: u64,
    pub daemon_starts: u64,
    pub config_rejections: u64,
}

/// The chain check of what was read (the report's first line).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ChainCheck {
    pub events: usize,
    pub intact: bool,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Everything `audit report` prints.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Report {
    pub chain: ChainCheck,
    /// Attempts (one `attempt_ended` each) by rule, then outcome.
    pub attempts: Table,
    pub report_only_by_rule: BTreeMap<String, WouldHave>,
    pub report_only_by_user: BTreeMap<String, WouldHave>,
    pub methods: BTreeMap<String, MethodStats>,
    pub alarms: Alarms,
    /// Failed step-ups (challenged attempts not allowed), most first.
    pub failed_by_source: Vec<(String, u64)>,
    pub failed_by_user: Vec<(String, u64)>,
}

/// How many rows the "top" lists keep.
pub const TOP: usize = 10;

/// One event's fields (strings only), from a JSON line.
type Event = BTreeMap<String, String>;

fn parse(line: &str) -> Option<Event> {
    let serde_json::Value::Object(object) = serde_json::from_str(line).ok()? else {
        return None;
    };
    let event: Event = object
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
        .collect();
    let ours = matches!(
        event.get("SYSLOG_IDENTIFIER").map(String::as_str),
        Some("stepupd" | "pam_stepup")
    );
    (ours && event.contains_key("STEPUP_EVENT")).then_some(event)
}

/// Build the report from journald JSON lines; `key` checks the chain.
pub fn report(key: &[u8; 32], lines: &[String]) -> Report {
    let mut report = Report {
        // verify() skips other programs' entries (the module's included).
        chain: chain_check(verify(key, lines.iter().cloned())),
        ..Report::default()
    };
    let mut failed_sources: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed_users: BTreeMap<String, u64> = BTreeMap::new();
    for event in lines.iter().filter_map(|l| parse(l)) {
        let field = |name: &str| event.get(name).map_or("", String::as_str);
        match field("STEPUP_EVENT") {
            "attempt_ended" => {
                report.count_attempt(&event);
                if field("STEPUP_CHALLENGED") == "true" && field("STEPUP_OUTCOME") != "allowed" {
                    *failed_sources
                        .entry(field("STEPUP_RHOST").to_owned())
                        .or_default() += 1;
                    *failed_users
                        .entry(field("STEPUP_SUBJECT").to_owned())
                        .or_default() += 1;
                }
            }
            "locked" => report.alarms.lockouts += 1,
            "key_counter_regression" => report.alarms.clone_alarms += 1,
            "failsafe_pass" => report.alarms.failsafe_passes += 1,
            "daemon_unreachable" => report.alarms.daemon_unreachable += 1,
            "daemon_started" => report.alarms.daemon_starts += 1,
            "config_rejected" => report.alarms.config_rejections += 1,
            _ => {}
        }
    }
    for stats in report.methods.values_mut() {
        stats.finish();
    }
    report.failed_by_source = top(failed_sources);
    report.failed_by_user = top(failed_users);
    report
}

fn chain_check(verified: VerifyReport) -> ChainCheck {
    ChainCheck {
        events: verified.events,
        intact: verified.problems.is_empty() && verified.events > 0,
        problems: verified.problems,
        notes: verified.notes,
    }
}

impl Report {
    /// One `attempt_ended`: the attempts table, report-only, methods.
    fn count_attempt(&mut self, event: &Event) {
        let field = |name: &str| event.get(name).map_or("", String::as_str);
        let (rule, outcome) = (field("STEPUP_RULE"), field("STEPUP_OUTCOME"));
        *self
            .attempts
            .entry(rule.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
        if outcome == "report_only" {
            let would = |entry: &mut WouldHave| match field("STEPUP_VERDICT") {
                "step_up" if field("STEPUP_ENROLLED") == "false" => {
                    entry.challenged += 1;
                    entry.challenged_not_enrolled += 1;
                }
                "step_up" => entry.challenged += 1,
                "deny" => entry.denied += 1,
                _ => {}
            };
            would(self.report_only_by_rule.entry(rule.to_owned()).or_default());
            would(
                self.report_only_by_user
                    .entry(field("STEPUP_SUBJECT").to_owned())
                    .or_default(),
            );
        }
        let method = field("STEPUP_METHOD");
        if field("STEPUP_CHALLENGED") == "true" && !method.is_empty() {
            let stats = self.methods.entry(method.to_owned()).or_default();
            stats.challenged += 1;
            if outcome == "allowed" {
                stats.succeeded += 1;
                if let Ok(ms) = field("STEPUP_DURATION_MS").parse() {
                    stats.durations.push(ms);
                }
            }
        }
    }
}

impl MethodStats {
    fn finish(&mut self) {
        if self.challenged > 0 {
            self.success_rate = self.succeeded as f64 / self.challenged as f64;
        }
        self.durations.sort_unstable();
        self.median_ms = match self.durations.len() {
            0 => None,
            n if n % 2 == 1 => Some(self.durations[n / 2]),
            n => Some((self.durations[n / 2 - 1] + self.durations[n / 2]) / 2),
        };
    }
}

/// The largest counts first (ties by name), at most [`TOP`].
fn top(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(TOP);
    rows
}

impl Report {
    /// The report as a person reads it in a terminal. The first line says
    /// whether the chain of what was read is intact.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_chain(&mut out);
        self.render_attempts(&mut out);
        self.render_report_only(&mut out);
        self.render_methods(&mut out);
        self.render_alarms(&mut out);
        let (sources, people) = (&self.failed_by_source, &self.failed_by_user);
        render_top(
            &mut out,
            "Failed step-ups by source address",
            sources,
            "(local: no address)",
        );
        render_top(&mut out, "Failed step-ups by person", people, "(unknown)");
        out
    }

    fn render_chain(&self, out: &mut String) {
        let c = &self.chain;
        out.push_str(&if c.intact {
            format!(
                "Audit chain: intact ({} chained events verified)\n",
                c.events
            )
        } else if c.events == 0 {
            "Audit chain: NOT VERIFIED: no stepupd events found\n".to_owned()
        } else {
            format!(
                "Audit chain: BROKEN: {} problem(s) in {} events; the numbers below may be wrong\n",
                c.problems.len(),
                c.events
            )
        });
        for problem in &c.problems {
            out.push_str(&format!("  problem: {problem}\n"));
        }
        for note in &c.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }

    fn render_attempts(&self, out: &mut String) {
        out.push_str("\nAttempts by rule and outcome\n");
        if self.attempts.is_empty() {
            out.push_str("  (none)\n");
        }
        for (rule, outcomes) in &self.attempts {
            let total: u64 = outcomes.values().sum();
            let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
            out.push_str(&format!(
                "  {:<28} {total:>6}  {}\n",
                shown(rule),
                parts.join(", ")
            ));
        }
    }

    fn render_report_only(&self, out: &mut String) {
        if self.report_only_by_rule.is_empty() {
            return;
        }
        out.push_str("\nReport-only: what enforcing would have done\n");
        out.push_str(&format!(
            "  {:<28} {:>10} {:>14} {:>8}\n",
            "rule", "challenged", "not enrolled", "denied"
        ));
        for (rule, w) in &self.report_only_by_rule {
            out.push_str(&would_row(rule, w));
        }
        out.push_str(&format!(
            "  {:<28} {:>10} {:>14} {:>8}\n",
            "person", "challenged", "not enrolled", "denied"
        ));
        for (user, w) in &self.report_only_by_user {
            out.push_str(&would_row(user, w));
        }
        let locked_out: Vec<&str> = self
            .report_only_by_user
            .iter()
            .filter(|(_, w)| w.challenged_not_enrolled > 0)
            .map(|(u, _)| u.as_str())
            .collect();
        if !locked_out.is_empty() {
            out.push_str(&format!(
                "  Would be refused once enforced (no factor enrolled): {}\n",
                locked_out.join(", ")
            ));
        }
    }

    fn render_methods(&self, out: &mut String) {
        out.push_str("\nStep-ups by method\n");
        if self.methods.is_empty() {
            out.push_str("  (none)\n");
        }
        for (method, m) in &self.methods {
            out.push_str(&format!(
                "  {method:<10} asked {:>6}  succeeded {:>6}  ({:.0}%)  median time to answer {}\n",
                m.challenged,
                m.succeeded,
                m.success_rate * 100.0,
                m.median_ms
                    .map_or("-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
            ));
        }
    }

    fn render_alarms(&self, out: &mut String) {
        let a = &self.alarms;
        out.push_str("\nAlarms and operations\n");
        for (what, n) in [
            ("lockouts", a.lockouts),
            ("security-key clone alarms", a.clone_alarms),
            (
                "fail-safe passes (daemon unreachable, let through)",
                a.failsafe_passes,
            ),
            ("daemon unreachable (failed closed)", a.daemon_unreachable),
            ("daemon starts", a.daemon_starts),
            ("policy reloads rejected", a.config_rejections),
        ] {
            out.push_str(&format!("  {what:<52} {n:>6}\n"));
        }
    }
}

fn shown(name: &str) -> &str {
    if name.is_empty() { "(none)" } else { name }
}

fn would_row(name: &str, w: &WouldHave) -> String {
    format!(
        "  {:<28} {:>10} {:>14} {:>8}\n",
        shown(name),
        w.challenged,
        w.challenged_not_enrolled,
        w.denied
    )
}

fn render_top(out: &mut String, title: &str, rows: &[(String, u64)], empty_name: &str) {
    out.push_str(&format!("\n{title}\n"));
    if rows.is_empty() {
        out.push_str("  (none)\n");
    }
    for (name, n) in rows {
        let name = if name.is_empty() { empty_name } else { name };
        out.push_str(&format!("  {name:<40} {n:>6}\n"));
    }
}
