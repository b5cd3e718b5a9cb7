//! `Explain`: a dry run of the policy that records nothing, and the shape
//! of its answer (JSON over the bus).

use super::*;

impl Engine {
    /// A dry run of the policy for `ctx` at `at` (default now): every rule
    /// and condition, the verdict, grace, and the factors that would be
    /// offered. Changes nothing.
    pub fn explain(
        &self,
        mut ctx: AttemptContext,
        at: Option<Timestamp>,
    ) -> Result<Explanation, DaemonError> {
        if let Some(command) = ctx.command.as_mut() {
            command.shell |= crate::shells::listed(&command.path);
        }
        let config = self.config();
        let origin = self.origin_of(&config, &ctx);
        let subject = subject_of(&config, &ctx).to_owned();
        let attempt = Attempt {
            context: &ctx,
            subject: &subject,
            origin: &origin,
            now: at.unwrap_or_else(Timestamp::now),
        };
        let mut lookups = self.lookups();
        let (rule, rules) =
            policy::explain(&config, &attempt, &mut lookups).map_err(|e| lookups.error(e))?;
        let grace = grace_earned(rule, &attempt, &mut lookups).map_err(|e| lookups.error(e))?;
        let enrolled = self.enrolled_factors(&subject, rule)?;
        let history = self.recent_history(&subject)?;
        // What the person would be told before the prompt.
        let reason = if rule.action == Action::StepUp && grace.is_none() {
            policy::reason(&config, rule, &attempt, &mut lookups).map_err(|e| lookups.error(e))?
        } else {
            None
        };
        let verdict = verdict_of(rule, grace.is_some());
        Ok(Explanation {
            at: attempt.now.to_string(),
            service: ctx.service.clone(),
            user: ctx.user.clone(),
            ruser: ctx.ruser.clone(),
            tty: ctx.tty.clone(),
            command: ctx.command.as_ref().map(|c| ExplainedCommand {
                line: c.line.clone(),
                runas_user: c.runas_user.clone(),
                runas_group: c.runas_group.clone(),
                mode: c.mode.as_str(),
                shell: c.shell,
            }),
            subject: subject.clone(),
            origin: origin.clone(),
            rules,
            decided_by: rule.name.clone(),
            action: rule.action.as_str().to_owned(),
            report_only: rule.report_only,
            verdict,
            message: (rule.action == Action::Deny).then(|| rule.message.clone()),
            reason,
            methods: rule.methods.iter().map(|m| m.as_str().to_owned()).collect(),
            grace: rule.grace.to_string(),
            grace_scope: rule.grace_scope.as_str().to_owned(),
            grace_applies: grace.is_some(),
            max_tries: rule.max_tries,
            enrolled,
            history,
            policy_hash: config.hash.clone(),
            location: (!origin.rhost.is_empty())
                .then(|| lookups.place_if_configured(&origin.rhost))
                .flatten(),
        })
    }
}

/// The verdict as `explain` words it.
fn verdict_of(rule: &Rule, grace: bool) -> String {
    if rule.report_only {
        format!("allow (report-only; would {})", rule.action.as_str())
    } else if rule.action == Action::StepUp && grace {
        "allow (grace from an earlier step-up)".to_owned()
    } else {
        rule.action.as_str().to_owned()
    }
}

impl Engine {
    /// The subject's factors, and which of them `rule` would offer.
    fn enrolled_factors(
        &self,
        subject: &str,
        rule: &Rule,
    ) -> Result<Vec<EnrolledFactor>, DaemonError> {
        Ok(lock(&self.store)
            .list(subject)
            .map_err(failed)?
            .into_iter()
            .map(|c| EnrolledFactor {
                offered: rule.action == Action::StepUp
                    && rule.methods.iter().any(|m| m.as_str() == c.method),
                id: c.id,
                method: c.method,
                label: c.label,
            })
            .collect())
    }

    /// The subject's latest history rows, for `explain`.
    fn recent_history(&self, subject: &str) -> Result<Vec<HistoryLine>, DaemonError> {
        Ok(lock(&self.store)
            .history(subject, EXPLAIN_HISTORY)
            .map_err(failed)?
            .into_iter()
            .map(|h| HistoryLine {
                time: h.time,
                host: h.host,
                service: h.service,
                rhost: h.rhost,
                method: h.method,
                outcome: h.outcome,
            })
            .collect())
    }
}

/// How many of the subject's latest history rows `explain` shows.
const EXPLAIN_HISTORY: usize = 5;

/// One row of the subject's history as `explain` shows it: with a shared
/// store, `host` says which host recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    pub time: u64,
    pub host: String,
    pub service: String,
    pub rhost: String,
    pub method: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrolledFactor {
    pub id: String,
    pub method: String,
    pub label: String,
    /// Would the deciding rule offer this factor?
    pub offered: bool,
}

/// The command of a sudo plugin attempt, as `explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedCommand {
    pub line: String,
    pub runas_user: String,
    pub runas_group: String,
    pub mode: &'static str,
    pub shell: bool,
}

/// What `stepupctl explain` shows (serialized as JSON over the bus).
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub at: String,
    pub service: String,
    pub user: String,
    pub ruser: String,
    pub tty: String,
    /// What the sudo plugin reported sudo would run (none at PAM time).
    pub command: Option<ExplainedCommand>,
    pub subject: String,
    pub origin: Origin,
    pub rules: Vec<RuleTrace>,
    pub decided_by: String,
    pub action: String,
    pub report_only: bool,
    /// What the module would actually get.
    pub verdict: String,
    pub message: Option<String>,
    /// The line shown before the first prompt of a step-up (`reason`, or
    /// the generated sentence unless `show_reason = false`).
    pub reason: Option<String>,
    pub methods: Vec<String>,
    pub grace: String,
    pub grace_scope: String,
    pub grace_applies: bool,
    pub max_tries: u32,
    pub enrolled: Vec<EnrolledFactor>,
    /// The subject's latest history rows (history conditions and grace
    /// read these), newest first.
    pub history: Vec<HistoryLine>,
    pub policy_hash: String,
    /// Where the location databases put the source (`[geoip]` and a source
    /// address only).
    pub location: Option<Place>,
}
