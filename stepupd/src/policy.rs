//! First-match rule evaluation over an attempt: a loop over each rule's
//! conditions (one type each, in `stepup_config::conditions`), with an
//! optional trace of every condition for `explain`, and the reason a
//! person is shown before a prompt.
//!
//! No I/O of its own: the clock is in the [`Attempt`], and the questions that
//! need NSS or the history go through [`Lookups`], asked lazily (only when a
//! rule gets that far), so cheap conditions decide most attempts.

use serde::Serialize;
use stepup_config::conditions::{Facts, Want};
use stepup_config::{Config, Rule};

pub use stepup_config::attempt::{Attempt, AttemptContext, Lookups, Origin};

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

/// Do all of `rule`'s conditions hold? Stops at the first that does not.
fn matches(
    rule: &Rule,
    attempt: &Attempt<'_>,
    facts: &Facts<'_>,
    lookups: &mut dyn Lookups,
) -> Result<bool, String> {
    for condition in rule.when.iter() {
        if !condition
            .evaluate(attempt, facts, lookups, Want::Verdict)?
            .holds
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every condition of `rule`, evaluated and recorded.
fn trace(
    rule: &Rule,
    attempt: &Attempt<'_>,
    facts: &Facts<'_>,
    lookups: &mut dyn Lookups,
) -> Result<RuleTrace, String> {
    let mut conditions = Vec::new();
    for condition in rule.when.iter() {
        let eval = condition.evaluate(attempt, facts, lookups, Want::Detail)?;
        conditions.push(ConditionTrace {
            condition: condition.key(),
            holds: eval.holds,
            detail: eval.text.unwrap_or_default(),
        });
    }
    Ok(RuleTrace {
        rule: rule.name.clone(),
        origin: rule.origin.clone(),
        matched: conditions.iter().all(|c| c.holds),
        conditions,
    })
}

/// The rule that decides this attempt (the fallback when none matches).
pub fn decide<'c>(
    config: &'c Config,
    attempt: &Attempt<'_>,
    lookups: &mut dyn Lookups,
) -> Result<&'c Rule, String> {
    let facts = Facts::new(attempt);
    for rule in &config.rules {
        if matches(rule, attempt, &facts, lookups)? {
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
    let facts = Facts::new(attempt);
    let mut decided: Option<&Rule> = None;
    let mut traces = Vec::with_capacity(config.rules.len());
    for rule in &config.rules {
        let traced = trace(rule, attempt, &facts, lookups)?;
        if traced.matched && decided.is_none() {
            decided = Some(rule);
        }
        traces.push(traced);
    }
    Ok((decided.unwrap_or(&config.fallback), traces))
}

/// What the person is told before the first prompt of a step-up under
/// `rule`: the admin's own `reason` if the rule has one; otherwise, unless
/// `[defaults] show_reason = false`, a sentence from the phrases of the
/// conditions that held (`sudo needs a second factor: from a new address
/// (203.0.113.5); outside Mon-Fri 08:00-18:00 Europe/Paris (rule "x")`).
pub fn reason(
    config: &Config,
    rule: &Rule,
    attempt: &Attempt<'_>,
    lookups: &mut dyn Lookups,
) -> Result<Option<String>, String> {
    if let Some(own) = &rule.reason {
        return Ok(Some(own.clone()));
    }
    if !config.defaults.show_reason {
        return Ok(None);
    }
    let facts = Facts::new(attempt);
    let mut phrases = Vec::new();
    for condition in rule.when.iter() {
        let eval = condition.evaluate(attempt, &facts, lookups, Want::Phrase)?;
        phrases.extend(eval.text.filter(|_| eval.holds));
    }
    let lead = lead(attempt);
    Ok(Some(if phrases.is_empty() {
        format!("{lead} needs a second factor (rule {:?}).", rule.name)
    } else {
        format!(
            "{lead} needs a second factor: {} (rule {:?}).",
            phrases.join("; "),
            rule.name
        )
    }))
}

/// The longest command a prompt shows, in characters.
const COMMAND_SHOWN: usize = 60;

/// Who asks: the service, or for the sudo plugin the command and as whom
/// (`sudo: "systemctl restart nginx" as root`), shortened: the program's
/// name instead of its path, and at most [`COMMAND_SHOWN`] characters.
fn lead(attempt: &Attempt<'_>) -> String {
    let service = &attempt.context.service;
    let Some(command) = &attempt.context.command else {
        return service.clone();
    };
    let name = command.path.rsplit('/').next().unwrap_or(&command.path);
    let args = command.line.strip_prefix(&command.path).unwrap_or_default();
    let shown = format!("{name}{args}");
    let shown = match shown.char_indices().nth(COMMAND_SHOWN) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    };
    // Escaped on the wire: one line, no control characters.
    format!("{service}: \"{shown}\" as {}", command.runas_user)
}

#[cfg(test)]
mod tests;
