//! `command`, `not_command`: globs over the command line sudo is about to
//! run, as the sudo plugin reports it: the absolute path, then each argument
//! separated by one space (`"/usr/bin/systemctl restart *"`), escaped as on
//! the wire (an argument's own spaces and other non-printable bytes as
//! `\xNN`). An attempt with no command (sudo's PAM step, su, sshd)
//! satisfies neither.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal, list};
use crate::Glob;
use crate::attempt::{Attempt, Lookups};

/// What `explain` says about command conditions at PAM time.
pub const NO_COMMAND: &str = "no command known at this stage (only the sudo plugin reports one)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub globs: Vec<Glob>,
    pub negated: bool,
}

impl ConditionSpec for Command {
    const KEYS: &'static [&'static str] = &["command", "not_command"];
    const EXAMPLES: &'static [&'static str] = &[
        r#"["/usr/bin/systemctl restart *"]"#,
        r#"["/usr/bin/id"]"#,
        r#"["/usr/bin/apt *", "/usr/bin/dpkg *"]"#,
    ];
    type Value = Vec<Glob>;

    fn build(key: &'static str, globs: Vec<Glob>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self {
            globs,
            negated: key == "not_command",
        })
    }
}

impl Condition for Command {
    fn key(&self) -> &'static str {
        Self::KEYS[usize::from(self.negated)]
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
        let hit = self.globs.iter().any(|g| g.matches(&command.line));
        let detail = || {
            format!(
                "command {:?} {} {}",
                command.line,
                if hit { "matches" } else { "matches none of" },
                list(&self.globs)
            )
        };
        // The reason's lead names the command already.
        Ok(Eval::new(hit != self.negated, want, detail, || None))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        self.globs
            .iter()
            .try_for_each(|g| super::round_trips(g, "command glob"))
    }
}
