//! `new_rhost = "30d"`: the attempt's source address was not let in for
//! this person within the span (never, or longer ago). A local attempt (no
//! address) never satisfies it.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, ago, covers_if_equal};
use crate::Span;
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRhost {
    pub within: Span,
}

impl ConditionSpec for NewRhost {
    const KEYS: &'static [&'static str] = &["new_rhost"];
    const EXAMPLES: &'static [&'static str] = &[r#""30d""#, r#""1h30m""#, "3600"];
    type Value = Span;

    fn build(_: &'static str, within: Span, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self { within })
    }
}

impl Condition for NewRhost {
    fn key(&self) -> &'static str {
        "new_rhost"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let rhost = &attempt.origin.rhost;
        if rhost.is_empty() {
            let detail = || "no source address (local attempt)".to_owned();
            return Ok(Eval::new(false, want, detail, || None));
        }
        let seen = lookups.source_last_seen(attempt.subject, rhost)?;
        let holds = seen.is_none_or(|t| t < attempt.since(self.within));
        let detail = || match seen {
            None => format!("{} never let in from {rhost:?}", attempt.subject),
            Some(t) => format!(
                "{} last let in from {rhost:?} {}; rule window {}",
                attempt.subject,
                ago(attempt.now_secs(), t),
                self.within
            ),
        };
        let phrase = || Some(format!("from a new address ({rhost})"));
        Ok(Eval::new(holds, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        super::round_trips(&self.within, "span")
    }
}
