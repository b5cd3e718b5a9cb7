//! `tty`, `not_tty`: shell globs over PAM_TTY (`/dev/pts/N`, `/dev/ttyN`,
//! `ssh` from sshd).

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal, list};
use crate::Glob;
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tty {
    pub globs: Vec<Glob>,
    pub negated: bool,
}

impl ConditionSpec for Tty {
    const KEYS: &'static [&'static str] = &["tty", "not_tty"];
    const EXAMPLES: &'static [&'static str] = &[r#"["/dev/tty[0-9]*"]"#, r#"["ssh"]"#, r#"["*"]"#];
    type Value = Vec<Glob>;

    fn build(key: &'static str, globs: Vec<Glob>, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self {
            globs,
            negated: key == "not_tty",
        })
    }
}

impl Condition for Tty {
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
        let tty = &attempt.context.tty;
        let hit = self.globs.iter().any(|g| g.matches(tty));
        let detail = || {
            format!(
                "tty {tty:?} {} {}",
                if hit { "matches" } else { "matches none of" },
                list(&self.globs)
            )
        };
        let phrase = || (!self.negated && !tty.is_empty()).then(|| format!("on {tty}"));
        Ok(Eval::new(hit != self.negated, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        self.globs
            .iter()
            .try_for_each(|g| super::round_trips(g, "tty glob"))
    }
}
