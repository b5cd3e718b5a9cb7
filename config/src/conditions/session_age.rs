//! `session_age = { over = "8h" }` and/or `{ under = "5m" }`: time since the
//! login session the tty belongs to began (utmp). Unknown never holds.

use serde::Deserialize;

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal};
use crate::Span;
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionAge {
    pub over: Option<Span>,
    pub under: Option<Span>,
}

impl ConditionSpec for SessionAge {
    const KEYS: &'static [&'static str] = &["session_age"];
    const EXAMPLES: &'static [&'static str] = &[
        r#"{ over = "12h" }"#,
        r#"{ under = "5m" }"#,
        r#"{ over = "1h", under = "8h" }"#,
    ];
    type Value = Self;

    fn build(_: &'static str, age: Self, _: &RuleEnv) -> Result<Self, String> {
        if age.over.is_none() && age.under.is_none() {
            return Err("session_age needs `over` or `under`".into());
        }
        Ok(age)
    }
}

impl SessionAge {
    fn wanted(&self) -> String {
        let over = self.over.map(|o| format!(" over {o}")).unwrap_or_default();
        let under = self
            .under
            .map(|u| format!(" under {u}"))
            .unwrap_or_default();
        format!("{over}{under}")
    }
}

impl Condition for SessionAge {
    fn key(&self) -> &'static str {
        "session_age"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let origin = attempt.origin;
        let now = attempt.now.as_second();
        let Some(started) = origin.session_started else {
            let detail = || "login session start unknown (tty not in utmp)".to_owned();
            return Ok(Eval::new(false, want, detail, || None));
        };
        // A start in the future (clock skew, a forged record) tells nothing.
        if started > now {
            let detail = || {
                format!(
                    "login session start {started} is in the future ({})",
                    origin.session_source
                )
            };
            return Ok(Eval::new(false, want, detail, || None));
        }
        // Saturating: a garbage start far in the past (i64::MIN from a
        // forged record) is a very old session, not an overflow.
        let age = u64::try_from(now.saturating_sub(started)).unwrap_or(0);
        let over_ok = self.over.is_none_or(|o| age >= o.as_secs());
        let under_ok = self.under.is_none_or(|u| age < u.as_secs());
        let detail = || {
            format!(
                "session began {age}s ago ({}); rule wants{}",
                origin.session_source,
                self.wanted()
            )
        };
        let phrase = || {
            let older = self.over.map(|o| format!("older than {o}"));
            let younger = self.under.map(|u| format!("younger than {u}"));
            let bounds: Vec<String> = older.into_iter().chain(younger).collect();
            Some(format!("in a login session {}", bounds.join(" and ")))
        };
        Ok(Eval::new(over_ok && under_ok, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        [self.over, self.under]
            .iter()
            .flatten()
            .try_for_each(|s| super::round_trips(s, "span"))
    }
}
