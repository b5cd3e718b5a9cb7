//! `group`, `not_group`: PAM_USER's groups, primary and supplementary, from
//! NSS (so LDAP/SSSD groups count). A user unknown to NSS satisfies
//! neither.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_by, list, spoken};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub groups: Vec<String>,
    pub negated: bool,
}

impl ConditionSpec for Group {
    const KEYS: &'static [&'static str] = &["group", "not_group"];
    const EXAMPLES: &'static [&'static str] = &[r#"["wheel"]"#, r#"["contractors", "docker"]"#];
    type Value = Vec<String>;

    fn build(key: &'static str, groups: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self {
            groups,
            negated: key == "not_group",
        })
    }
}

impl Condition for Group {
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
        let user = &attempt.context.user;
        let Some(member) = facts.in_any_group(user, &self.groups, lookups)? else {
            let detail = || format!("user {user:?} is unknown to NSS");
            return Ok(Eval::new(false, want, detail, || None));
        };
        let detail = || {
            format!(
                "groups of {user:?} {} {} {}",
                facts.groups_shown(),
                if member {
                    "include one of"
                } else {
                    "include none of"
                },
                list(&self.groups)
            )
        };
        let phrase = || {
            (!self.negated).then(|| format!("{user} is in group {}", spoken(&self.groups, "or")))
        };
        Ok(Eval::new(member != self.negated, want, detail, phrase))
    }

    /// A later `group` list only if equal; a later `not_group` list
    /// excluding at least what ours excludes.
    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| {
            mine.negated == theirs.negated
                && if mine.negated {
                    mine.groups.iter().all(|g| theirs.groups.contains(g))
                } else {
                    mine.groups == theirs.groups
                }
        })
    }
}
