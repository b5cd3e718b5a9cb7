//! `user`, `not_user`: PAM_USER, the account being authenticated (for `su`,
//! the target account).

use super::{Condition, ConditionSpec, Eval, Facts, NameList, RuleEnv, Want, covers_by};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub NameList);

impl ConditionSpec for User {
    const KEYS: &'static [&'static str] = &["user", "not_user"];
    const EXAMPLES: &'static [&'static str] = &[r#"["root"]"#, r#"["alice", "bob"]"#];
    type Value = Vec<String>;

    fn build(key: &'static str, names: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self(NameList {
            names,
            negated: key == "not_user",
        }))
    }
}

impl Condition for User {
    fn key(&self) -> &'static str {
        Self::KEYS[usize::from(self.0.negated)]
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let user = &attempt.context.user;
        let holds = self.0.holds(user);
        Ok(Eval::new(
            holds,
            want,
            || self.0.detail("user", user, holds),
            || (!self.0.negated).then(|| format!("as {user}")),
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| mine.0.covers(&theirs.0))
    }
}
