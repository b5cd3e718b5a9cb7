//! `stepped_up_within = { within = "10m", scope = "tty" }`: the person
//! completed a step-up within the span, in the scope (`tty`, `user` or
//! `rhost`; default `tty`).

use serde::Deserialize;

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, ago, covers_if_equal};
use crate::attempt::{Attempt, Lookups};
use crate::{Scope, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteppedUpWithin {
    pub within: Span,
    #[serde(default)]
    pub scope: Scope,
}

impl ConditionSpec for SteppedUpWithin {
    const KEYS: &'static [&'static str] = &["stepped_up_within"];
    const EXAMPLES: &'static [&'static str] = &[
        r#"{ within = "10m" }"#,
        r#"{ within = "1h", scope = "user" }"#,
        r#"{ within = "5m", scope = "rhost" }"#,
    ];
    type Value = Self;

    fn build(_: &'static str, value: Self, _: &RuleEnv) -> Result<Self, String> {
        Ok(value)
    }
}

impl Condition for SteppedUpWithin {
    fn key(&self) -> &'static str {
        "stepped_up_within"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let since = attempt.since(self.within);
        let last = lookups.last_success(attempt.subject, since, self.scope, attempt)?;
        let scope = self.scope.as_str();
        let detail = || match last {
            Some(t) => format!(
                "{} stepped up {} (scope {scope})",
                attempt.subject,
                ago(attempt.now_secs(), t)
            ),
            None => format!(
                "no step-up by {} within {} (scope {scope})",
                attempt.subject, self.within
            ),
        };
        let phrase = || Some(format!("after a step-up within {}", self.within));
        Ok(Eval::new(last.is_some(), want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        super::round_trips(&self.within, "span")
    }
}
