//! `runas_user`, `not_runas_user`, `runas_group`, `not_runas_group`: whom
//! sudo will run the command as (`sudo -u` / `-g`; root by default), as the
//! sudo plugin reports it. An attempt with no command satisfies none.

use super::command::NO_COMMAND;
use super::{Condition, ConditionSpec, Eval, Facts, NameList, RuleEnv, Want, covers_by};
use crate::attempt::{Attempt, Lookups, SudoCommand};

/// The run-as user or group, as one condition type each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runas<const GROUP: bool>(pub NameList);

pub type RunasUser = Runas<false>;
pub type RunasGroup = Runas<true>;

impl<const GROUP: bool> Runas<GROUP> {
    const fn item() -> &'static str {
        if GROUP { "runas_group" } else { "runas_user" }
    }

    fn value(command: &SudoCommand) -> &str {
        if GROUP {
            &command.runas_group
        } else {
            &command.runas_user
        }
    }
}

impl ConditionSpec for RunasUser {
    const KEYS: &'static [&'static str] = &["runas_user", "not_runas_user"];
    const EXAMPLES: &'static [&'static str] = &[r#"["root"]"#, r#"["postgres", "www-data"]"#];
    type Value = Vec<String>;

    fn build(key: &'static str, names: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self(NameList {
            names,
            negated: key.starts_with("not_"),
        }))
    }
}

impl ConditionSpec for RunasGroup {
    const KEYS: &'static [&'static str] = &["runas_group", "not_runas_group"];
    const EXAMPLES: &'static [&'static str] = &[r#"["root"]"#, r#"["adm", "docker"]"#];
    type Value = Vec<String>;

    fn build(key: &'static str, names: Vec<String>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self(NameList {
            names,
            negated: key.starts_with("not_"),
        }))
    }
}

impl<const GROUP: bool> Condition for Runas<GROUP> {
    fn key(&self) -> &'static str {
        match (GROUP, self.0.negated) {
            (false, false) => "runas_user",
            (false, true) => "not_runas_user",
            (true, false) => "runas_group",
            (true, true) => "not_runas_group",
        }
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let Some(command) = &attempt.context.command else {
            return Ok(Eval::new(false, want, || NO_COMMAND.to_owned(), || None));
        };
        let value = Self::value(command);
        let holds = self.0.holds(value);
        // The reason's lead says "as USER" already.
        Ok(Eval::new(
            holds,
            want,
            || self.0.detail(Self::item(), value, holds),
            || None,
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| mine.0.covers(&theirs.0))
    }
}
