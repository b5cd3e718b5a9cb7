//! First-match rule evaluation over an attempt, with an optional trace of
//! every condition for `explain`.
//!
//! No I/O of its own: the clock is in the [`Attempt`], and the questions that
//! need NSS or the history go through [`Lookups`], asked lazily (only when a
//! rule gets that far), so cheap conditions decide most attempts.

use std::fmt::Display;

use std::cell::RefCell;

use jiff::Timestamp;
use serde::Serialize;
use stepup_config::hostpattern::ParsedRhost;
use stepup_config::{Config, Rule, Scope, Zone};

use crate::context::AttemptContext;

/// Where the attempt came from, and where each fact was learned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Origin {
    /// PAM_RHOST, or the remote host of the tty's login session from utmp.
    pub rhost: String,
    pub rhost_source: String,
    /// Remote when `rhost` is set or the tty is `ssh`.
    pub remote: bool,
    /// Unix time the tty's login session began (utmp).
    pub session_started: Option<i64>,
    pub session_source: String,
}

/// Everything known about one attempt.
pub struct Attempt<'a> {
    pub context: &'a AttemptContext,
    /// Whose factor (PAM_USER, or PAM_RUSER for `su`).
    pub subject: &'a str,
    pub origin: &'a Origin,
    pub now: Timestamp,
}

impl Attempt<'_> {
    fn now_secs(&self) -> u64 {
        u64::try_from(self.now.as_second()).unwrap_or(0)
    }
}

/// Answers that need NSS or the history. Errors are messages; an attempt
/// whose policy cannot be evaluated fails.
pub trait Lookups {
    /// Names of the user's groups (primary and supplementary); `None` if the
    /// user is unknown to NSS.
    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String>;
    fn source_last_seen(&mut self, subject: &str, rhost: &str) -> Result<Option<u64>, String>;
    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String>;
    /// The latest successful step-up of `subject` at or after `since` in `scope`.
    fn last_success(
        &mut self,
        subject: &str,
        since: u64,
        scope: Scope,
        attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String>;
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionTrace {
    pub condition: &'static str,
    pub holds: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    pub rule: String,
    pub origin: String,
    pub matched: bool,
    pub conditions: Vec<ConditionTrace>,
}

struct Tracer<'t> {
    trace: Option<&'t mut Vec<ConditionTrace>>,
    all: bool,
}

impl Tracer<'_> {
    /// Record one condition; false when evaluation of this rule can stop.
    fn record(
        &mut self,
        condition: &'static str,
        holds: bool,
        detail: impl FnOnce() -> String,
    ) -> bool {
        self.all &= holds;
        match self.trace.as_deref_mut() {
            Some(trace) => {
                trace.push(ConditionTrace {
                    condition,
                    holds,
                    detail: detail(),
                });
                true
            }
            None => holds,
        }
    }
}

fn list<T: Display>(items: &[T]) -> String {
    let inner: Vec<String> = items.iter().map(|i| format!("{i}")).collect();
    format!("[{}]", inner.join(", "))
}

fn is_in(holds: bool) -> &'static str {
    if holds { "is in" } else { "is not in" }
}

fn ago(now: u64, then: u64) -> String {
    format!("{}s ago", now.saturating_sub(then))
}

fn since(attempt: &Attempt<'_>, span: stepup_config::Span) -> u64 {
    attempt.now_secs().saturating_sub(span.0.as_secs())
}

/// What every rule asks about the attempt, worked out once per decision:
/// the parsed source address and the local time in each zone used.
struct Prepared<'a> {
    rhost: ParsedRhost<'a>,
    /// (zone name, weekday with Monday = 0, minute of the day).
    local: RefCell<Vec<(String, usize, u16)>>,
    /// PAM_USER's groups, asked of `Lookups` at most once.
    groups: RefCell<Option<Option<Vec<String>>>>,
}

impl<'a> Prepared<'a> {
    fn new(attempt: &Attempt<'a>) -> Self {
        Self {
            rhost: ParsedRhost::new(&attempt.origin.rhost),
            local: RefCell::new(Vec::new()),
            groups: RefCell::new(None),
        }
    }

    /// Do `user`'s groups include one of `wanted`? `None` if the user is unknown.
    fn in_any_group(
        &self,
        user: &str,
        wanted: &[String],
        lookups: &mut dyn Lookups,
    ) -> Result<Option<bool>, String> {
        if self.groups.borrow().is_none() {
            let groups = lookups.groups(user)?;
            *self.groups.borrow_mut() = Some(groups);
        }
        Ok(self
            .groups
            .borrow()
            .as_ref()
            .and_then(Option::as_ref)
            .map(|groups| wanted.iter().any(|g| groups.contains(g))))
    }

    fn groups_shown(&self) -> String {
        match self.groups.borrow().as_ref().and_then(Option::as_ref) {
            Some(groups) => list(groups),
            None => "(unknown)".to_owned(),
        }
    }

    fn local_time(&self, now: Timestamp, zone: &Zone) -> (usize, u16) {
        if let Some((_, day, minute)) = self
            .local
            .borrow()
            .iter()
            .find(|(name, ..)| *name == zone.name)
        {
            return (*day, *minute);
        }
        let local = now.to_zoned(zone.tz.clone());
        let day = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let minute =
            u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        self.local
            .borrow_mut()
            .push((zone.name.clone(), day, minute));
        (day, minute)
    }
}

/// Evaluate one rule's conditions. With a trace, every condition is
/// evaluated and recorded; without, evaluation stops at the first failure.
fn check(
    rule: &Rule,
    attempt: &Attempt<'_>,
    prepared: &Prepared<'_>,
    lookups: &mut dyn Lookups,
    trace: Option<&mut Vec<ConditionTrace>>,
) -> Result<bool, String> {
    let w = &rule.when;
    let ctx = attempt.context;
    let mut t = Tracer { trace, all: true };
    macro_rules! cond {
        ($name:expr, $holds:expr, $detail:expr) => {
            if !t.record($name, $holds, || $detail) {
                return Ok(false);
            }
        };
    }

    if !w.service.is_empty() {
        let holds = w.service.contains(&ctx.service);
        cond!(
            "service",
            holds,
            format!(
                "service {:?} {} {}",
                ctx.service,
                is_in(holds),
                list(&w.service)
            )
        );
    }
    if !w.not_service.is_empty() {
        let holds = !w.not_service.contains(&ctx.service);
        cond!(
            "not_service",
            holds,
            format!(
                "service {:?} {} {}",
                ctx.service,
                is_in(!holds),
                list(&w.not_service)
            )
        );
    }
    if !w.user.is_empty() {
        let holds = w.user.contains(&ctx.user);
        cond!(
            "user",
            holds,
            format!("user {:?} {} {}", ctx.user, is_in(holds), list(&w.user))
        );
    }
    if !w.not_user.is_empty() {
        let holds = !w.not_user.contains(&ctx.user);
        cond!(
            "not_user",
            holds,
            format!(
                "user {:?} {} {}",
                ctx.user,
                is_in(!holds),
                list(&w.not_user)
            )
        );
    }
    if !w.ruser.is_empty() {
        let holds = w.ruser.contains(&ctx.ruser);
        cond!(
            "ruser",
            holds,
            format!("ruser {:?} {} {}", ctx.ruser, is_in(holds), list(&w.ruser))
        );
    }
    if !w.tty.is_empty() {
        let holds = w.tty.iter().any(|g| g.matches(&ctx.tty));
        cond!(
            "tty",
            holds,
            format!(
                "tty {:?} {} {}",
                ctx.tty,
                if holds { "matches" } else { "matches none of" },
                list(&w.tty)
            )
        );
    }
    if !w.not_tty.is_empty() {
        let hit = w.not_tty.iter().any(|g| g.matches(&ctx.tty));
        cond!(
            "not_tty",
            !hit,
            format!(
                "tty {:?} {} {}",
                ctx.tty,
                if hit { "matches" } else { "matches none of" },
                list(&w.not_tty)
            )
        );
    }
    let origin = attempt.origin;
    if let Some(remote) = w.remote {
        let holds = origin.remote == remote;
        cond!(
            "remote",
            holds,
            format!(
                "attempt is {} (rhost {:?} from {}, tty {:?}); rule wants {}",
                if origin.remote { "remote" } else { "local" },
                origin.rhost,
                origin.rhost_source,
                ctx.tty,
                if remote { "remote" } else { "local" }
            )
        );
    }
    if !w.rhost_in.is_empty() {
        let holds = w.rhost_in.iter().any(|p| p.matches_parsed(&prepared.rhost));
        cond!(
            "rhost_in",
            holds,
            format!(
                "rhost {:?} ({}) {} {}",
                origin.rhost,
                origin.rhost_source,
                is_in(holds),
                list(&w.rhost_in)
            )
        );
    }
    if !w.rhost_not_in.is_empty() {
        let hit = w
            .rhost_not_in
            .iter()
            .any(|p| p.matches_parsed(&prepared.rhost));
        cond!(
            "rhost_not_in",
            !hit,
            format!(
                "rhost {:?} ({}) {} {}",
                origin.rhost,
                origin.rhost_source,
                is_in(hit),
                list(&w.rhost_not_in)
            )
        );
    }
    if !w.time_in.is_empty() || !w.time_not_in.is_empty() {
        let (day, minute) = prepared.local_time(attempt.now, &w.time_zone);
        let shown = || {
            let local = attempt.now.to_zoned(w.time_zone.tz.clone());
            format!("{} in {}", local.strftime("%a %H:%M"), w.time_zone.name)
        };
        if !w.time_in.is_empty() {
            let holds = w.time_in.iter().any(|win| win.contains_local(day, minute));
            cond!(
                "time_in",
                holds,
                format!("{} {} {}", shown(), is_in(holds), list(&w.time_in))
            );
        }
        if !w.time_not_in.is_empty() {
            let hit = w
                .time_not_in
                .iter()
                .any(|win| win.contains_local(day, minute));
            cond!(
                "time_not_in",
                !hit,
                format!("{} {} {}", shown(), is_in(hit), list(&w.time_not_in))
            );
        }
    }
    if let Some(age) = w.session_age {
        match origin.session_started {
            None => cond!(
                "session_age",
                false,
                "login session start unknown (tty not in utmp)".to_owned()
            ),
            // A start in the future (clock skew, a forged record) tells nothing.
            Some(started) if started > attempt.now.as_second() => cond!(
                "session_age",
                false,
                format!(
                    "login session start {started} is in the future ({})",
                    origin.session_source
                )
            ),
            Some(started) => {
                // Saturating: a garbage start far in the past (i64::MIN from a
                // forged record) is a very old session, not an overflow.
                let age_secs =
                    u64::try_from(attempt.now.as_second().saturating_sub(started)).unwrap_or(0);
                let over_ok = age.over.is_none_or(|o| age_secs >= o.0.as_secs());
                let under_ok = age.under.is_none_or(|u| age_secs < u.0.as_secs());
                cond!(
                    "session_age",
                    over_ok && under_ok,
                    format!(
                        "session began {age_secs}s ago ({}); rule wants{}{}",
                        origin.session_source,
                        age.over.map(|o| format!(" over {o}")).unwrap_or_default(),
                        age.under.map(|u| format!(" under {u}")).unwrap_or_default()
                    )
                );
            }
        }
    }
    for (name, wanted, want_member) in [
        ("group", &w.group, true),
        ("not_group", &w.not_group, false),
    ] {
        if wanted.is_empty() {
            continue;
        }
        match prepared.in_any_group(&ctx.user, wanted, lookups)? {
            None => cond!(
                name,
                false,
                format!("user {:?} is unknown to NSS", ctx.user)
            ),
            Some(member) => cond!(
                name,
                member == want_member,
                format!(
                    "groups of {:?} {} {} {}",
                    ctx.user,
                    prepared.groups_shown(),
                    if member {
                        "include one of"
                    } else {
                        "include none of"
                    },
                    list(wanted)
                )
            ),
        }
    }
    if let Some(span) = w.new_rhost {
        if origin.rhost.is_empty() {
            cond!(
                "new_rhost",
                false,
                "no source address (local attempt)".to_owned()
            );
        } else {
            let seen = lookups.source_last_seen(attempt.subject, &origin.rhost)?;
            let cutoff = since(attempt, span);
            let holds = seen.is_none_or(|t| t < cutoff);
            let now = attempt.now_secs();
            cond!(
                "new_rhost",
                holds,
                match seen {
                    None => format!("{} never let in from {:?}", attempt.subject, origin.rhost),
                    Some(t) => format!(
                        "{} last let in from {:?} {}; rule window {span}",
                        attempt.subject,
                        origin.rhost,
                        ago(now, t)
                    ),
                }
            );
        }
    }
    if let Some(f) = w.recent_failures {
        let count = lookups.failures_since(attempt.subject, since(attempt, f.within))?;
        cond!(
            "recent_failures",
            count >= u64::from(f.at_least),
            format!(
                "{count} failed step-up(s) by {} within {}; rule wants at least {}",
                attempt.subject, f.within, f.at_least
            )
        );
    }
    if let Some(s) = w.stepped_up_within {
        let last =
            lookups.last_success(attempt.subject, since(attempt, s.within), s.scope, attempt)?;
        let now = attempt.now_secs();
        cond!(
            "stepped_up_within",
            last.is_some(),
            match last {
                Some(t) => format!(
                    "{} stepped up {} (scope {})",
                    attempt.subject,
                    ago(now, t),
                    s.scope.as_str()
                ),
                None => format!(
                    "no step-up by {} within {} (scope {})",
                    attempt.subject,
                    s.within,
                    s.scope.as_str()
                ),
            }
        );
    }
    Ok(t.all)
}

/// The rule that decides this attempt (the fallback when none matches).
pub fn decide<'c>(
    config: &'c Config,
    attempt: &Attempt<'_>,
    lookups: &mut dyn Lookups,
) -> Result<&'c Rule, String> {
    let prepared = Prepared::new(attempt);
    for rule in &config.rules {
        if check(rule, attempt, &prepared, lookups, None)? {
            return Ok(rule);
        }
    }
    Ok(&config.fallback)
}

/// Like [`decide`], and a trace of every rule and condition.
pub fn explain<'c>(
    config: &'c Config,
    attempt: &Attempt<'_>,
    lookups: &mut dyn Lookups,
) -> Result<(&'c Rule, Vec<RuleTrace>), String> {
    let prepared = Prepared::new(attempt);
    let mut decided: Option<&Rule> = None;
    let mut traces = Vec::with_capacity(config.rules.len());
    for rule in &config.rules {
        let mut conditions = Vec::new();
        let matched = check(rule, attempt, &prepared, lookups, Some(&mut conditions))?;
        if matched && decided.is_none() {
            decided = Some(rule);
        }
        traces.push(RuleTrace {
            rule: rule.name.clone(),
            origin: rule.origin.clone(),
            matched,
            conditions,
        });
    }
    Ok((decided.unwrap_or(&config.fallback), traces))
}

#[cfg(test)]
mod tests;
