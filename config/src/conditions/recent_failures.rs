//! `recent_failures = { at_least = 3, within = "15m" }`: the person gave at
//! least that many wrong answers (wrong or replayed codes) within the span,
//! across all services.

use serde::Deserialize;

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal};
use crate::Span;
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentFailures {
    pub at_least: u32,
    pub within: Span,
}

impl ConditionSpec for RecentFailures {
    const KEYS: &'static [&'static str] = &["recent_failures"];
    const EXAMPLES: &'static [&'static str] = &[
        r#"{ at_least = 3, within = "15m" }"#,
        r#"{ at_least = 1, within = "1h" }"#,
    ];
    type Value = Self;

    fn build(_: &'static str, failures: Self, _: &RuleEnv) -> Result<Self, String> {
        if failures.at_least == 0 {
            return Err("recent_failures.at_least must be at least 1 (0 would always hold)".into());
        }
        Ok(failures)
    }
}

impl Condition for RecentFailures {
    fn key(&self) -> &'static str {
        "recent_failures"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let count = lookups.failures_since(attempt.subject, attempt.since(self.within))?;
        let detail = || {
            format!(
                "{count} failed step-up(s) by {} within {}; rule wants at least {}",
                attempt.subject, self.within, self.at_least
            )
        };
        let phrase = || {
            let plural = if count == 1 { "" } else { "s" };
            Some(format!(
                "{count} failed step-up{plural} in the last {}",
                self.within
            ))
        };
        Ok(Eval::new(
            count >= u64::from(self.at_least),
            want,
            detail,
            phrase,
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        super::round_trips(&self.within, "span")
    }
}
