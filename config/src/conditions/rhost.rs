//! `rhost_in`, `rhost_not_in`: the attempt's source address against CIDR
//! blocks, single addresses or literal host names. An empty source (a
//! local attempt) is in no list.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal, is_in, list};
use crate::HostPattern;
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rhost {
    pub patterns: Vec<HostPattern>,
    pub negated: bool,
}

impl ConditionSpec for Rhost {
    const KEYS: &'static [&'static str] = &["rhost_in", "rhost_not_in"];
    const EXAMPLES: &'static [&'static str] = &[
        r#"["10.0.0.0/8"]"#,
        r#"["192.0.2.0/24", "2001:db8::/32"]"#,
        r#"["bastion.example.com"]"#,
    ];
    type Value = Vec<HostPattern>;

    fn build(key: &'static str, patterns: Vec<HostPattern>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self {
            patterns,
            negated: key == "rhost_not_in",
        })
    }
}

impl Condition for Rhost {
    fn key(&self) -> &'static str {
        Self::KEYS[usize::from(self.negated)]
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        facts: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let origin = attempt.origin;
        let hit = self
            .patterns
            .iter()
            .any(|p| p.matches_parsed(facts.rhost()));
        let detail = || {
            format!(
                "rhost {:?} ({}) {} {}",
                origin.rhost,
                origin.rhost_source,
                is_in(hit),
                list(&self.patterns)
            )
        };
        let phrase = || {
            Some(if self.negated {
                format!("from {} (outside the listed networks)", origin.rhost)
            } else {
                format!("from {}", origin.rhost)
            })
            .filter(|_| !origin.rhost.is_empty())
        };
        Ok(Eval::new(hit != self.negated, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        self.patterns
            .iter()
            .try_for_each(|p| super::round_trips(p, "rhost pattern"))
    }
}
