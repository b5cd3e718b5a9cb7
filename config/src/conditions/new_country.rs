//! `new_country = "90d"`: the attempt comes from a country this person was
//! not let in from within the span (never, or longer ago). Only a known
//! country can be new: local attempts, non-public and unknown addresses
//! never satisfy it. A country becomes known for a person when an attempt
//! from it is allowed (as a source address does for `new_rhost`).

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, ago, covers_if_equal};
use crate::Span;
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCountry {
    pub within: Span,
}

impl ConditionSpec for NewCountry {
    const KEYS: &'static [&'static str] = &["new_country"];
    const EXAMPLES: &'static [&'static str] = &[r#""90d""#, r#""1w""#, "86400"];
    type Value = Span;

    fn build(_: &'static str, within: Span, _: &RuleEnv) -> Result<Self, String> {
        if within.as_secs() == 0 {
            return Err("new_country must be a span longer than 0s".into());
        }
        Ok(Self { within })
    }
}

impl Condition for NewCountry {
    fn key(&self) -> &'static str {
        "new_country"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        facts: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let place = facts.place(attempt, lookups)?;
        let rhost = &attempt.origin.rhost;
        let Some(country) = place.known().and_then(|f| f.country.as_deref()) else {
            let detail = || format!("{}: no country, so none new", place.describe(rhost));
            return Ok(Eval::new(false, want, detail, || None));
        };
        let subject = attempt.subject;
        let seen = lookups.country_last_seen(subject, country)?;
        let holds = seen.is_none_or(|t| t < attempt.since(self.within));
        let detail = || match seen {
            None => format!(
                "{}; {subject} never let in from {country}",
                place.describe(rhost)
            ),
            Some(t) => format!(
                "{}; {subject} last let in from {country} {}; rule window {}",
                place.describe(rhost),
                ago(attempt.now_secs(), t),
                self.within
            ),
        };
        let phrase = || Some(format!("from a new country ({country}, {rhost})"));
        Ok(Eval::new(holds, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        super::round_trips(&self.within, "span")
    }
}
