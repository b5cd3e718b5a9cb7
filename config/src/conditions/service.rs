//! `service`, `not_service`: the PAM service name (`sudo`, `su`, `sshd`…).

use super::{Condition, ConditionSpec, Eval, Facts, NameList, RuleEnv, Want, covers_by};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service(pub NameList);

impl Service {
    /// Could a `service = […]` condition hold for an attempt on `service`?
    pub fn admits(&self, service: &str) -> bool {
        self.0.holds(service)
    }
}

impl ConditionSpec for Service {
    const KEYS: &'static [&'static str] = &["service", "not_service"];
    const EXAMPLES: &'static [&'static str] = &[r#"["sudo"]"#, r#"["su", "su-l"]"#, r#"["sshd"]"#];
    type Value = Vec<String>;

    fn build(key: &'static str, names: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self(NameList {
            names,
            negated: key == "not_service",
        }))
    }
}

impl Condition for Service {
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
        let service = &attempt.context.service;
        let holds = self.0.holds(service);
        // The prompt names the service itself; the condition adds nothing.
        Ok(Eval::new(
            holds,
            want,
            || self.0.detail("service", service, holds),
            || None,
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| mine.0.covers(&theirs.0))
    }
}
