//! `asn_in`, `asn_not_in`: the autonomous system (AS number) announcing the
//! attempt's source address, from `[geoip] asn_database` or a City file that
//! carries AS numbers. As for `country_in`, only a known AS number can
//! satisfy either: local, non-public, unknown addresses and host names
//! satisfy neither.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_by, list, spoken};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asn {
    pub numbers: Vec<u32>,
    pub negated: bool,
}

impl ConditionSpec for Asn {
    const KEYS: &'static [&'static str] = &["asn_in", "asn_not_in"];
    const EXAMPLES: &'static [&'static str] = &["[64496]", "[64496, 64497, 4200000000]"];
    type Value = Vec<u32>;

    fn build(key: &'static str, numbers: Vec<u32>, _: &RuleEnv) -> Result<Self, String> {
        if numbers.is_empty() {
            return Err(format!("{key} needs at least one AS number"));
        }
        // AS 0 is reserved (RFC 7607): no database maps an address to it.
        if numbers.contains(&0) {
            return Err(format!(
                "{key}: AS 0 is reserved and announces no address (AS numbers are 1..4294967295)"
            ));
        }
        Ok(Self {
            numbers,
            negated: key == "asn_not_in",
        })
    }
}

impl Condition for Asn {
    fn key(&self) -> &'static str {
        Self::KEYS[usize::from(self.negated)]
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
        let Some(asn) = place.known().and_then(|f| f.asn) else {
            let detail = || match place.known() {
                Some(known) => format!("{rhost}: {}; no AS number known", known.describe()),
                None => place.describe(rhost),
            };
            return Ok(Eval::new(false, want, detail, || None));
        };
        let listed = self.numbers.contains(&asn);
        let detail = || {
            format!(
                "{}; AS{asn} {} {}",
                place.describe(rhost),
                super::is_in(listed),
                list(&self.numbers)
            )
        };
        let phrase = || {
            let org = place
                .known()
                .and_then(|f| f.as_org.as_deref())
                .map(|o| format!(", {o}"))
                .unwrap_or_default();
            Some(if self.negated {
                let listed: Vec<String> = self.numbers.iter().map(|n| format!("AS{n}")).collect();
                format!(
                    "from network AS{asn}{org} ({rhost}), not {}",
                    spoken(&listed, "or")
                )
            } else {
                format!("from network AS{asn}{org} ({rhost})")
            })
        };
        Ok(Eval::new(listed != self.negated, want, detail, phrase))
    }

    /// A later `asn_in` within our list; a later `asn_not_in` excluding at
    /// least what ours excludes.
    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| {
            mine.negated == theirs.negated
                && if mine.negated {
                    mine.numbers.iter().all(|n| theirs.numbers.contains(n))
                } else {
                    theirs.numbers.iter().all(|n| mine.numbers.contains(n))
                }
        })
    }
}
