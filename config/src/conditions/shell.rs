//! `shell = true|false`: a shell was asked for — `sudo -s`, `sudo -i`, or a
//! command that is a login shell listed in /etc/shells (`sudo bash`,
//! `sudo su` runs /usr/bin/su, which is not a shell). An attempt with no
//! command satisfies neither value.

use super::command::NO_COMMAND;
use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    pub wanted: bool,
}

impl ConditionSpec for Shell {
    const KEYS: &'static [&'static str] = &["shell"];
    const EXAMPLES: &'static [&'static str] = &["true", "false"];
    type Value = bool;

    fn build(_: &'static str, wanted: bool, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self { wanted })
    }
}

impl Condition for Shell {
    fn key(&self) -> &'static str {
        "shell"
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
        let detail = || {
            format!(
                "{} (sudo mode {}, {}); rule wants {}",
                if command.shell {
                    "a shell"
                } else {
                    "not a shell"
                },
                command.mode.as_str(),
                command.path,
                if self.wanted { "a shell" } else { "no shell" }
            )
        };
        let phrase = || command.shell.then(|| "a shell".to_owned());
        Ok(Eval::new(
            command.shell == self.wanted,
            want,
            detail,
            phrase,
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }
}
