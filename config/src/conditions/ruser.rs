//! `ruser`: PAM_RUSER, the caller, where the service reports one (`su`,
//! `sudo`).

use super::{Condition, ConditionSpec, Eval, Facts, NameList, RuleEnv, Want, covers_by};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruser(pub NameList);

impl ConditionSpec for Ruser {
    const KEYS: &'static [&'static str] = &["ruser"];
    const EXAMPLES: &'static [&'static str] = &[r#"["alice"]"#, r#"["alice", "bob"]"#];
    type Value = Vec<String>;

    fn build(_: &'static str, names: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self(NameList {
            names,
            negated: false,
        }))
    }
}

impl Condition for Ruser {
    fn key(&self) -> &'static str {
        "ruser"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let ruser = &attempt.context.ruser;
        let holds = self.0.holds(ruser);
        Ok(Eval::new(
            holds,
            want,
            || self.0.detail("ruser", ruser, holds),
            || Some(format!("called by {ruser}")),
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| mine.0.covers(&theirs.0))
    }
}
