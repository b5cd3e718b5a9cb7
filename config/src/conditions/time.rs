//! `time_in`, `time_not_in`: windows of weekdays and wall-clock hours in the
//! rule's `time_zone` (else `[defaults]`, else the system's).

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_by, is_in, list, spoken};
use crate::attempt::{Attempt, Lookups};
use crate::{Window, Zone};

#[derive(Debug, Clone)]
pub struct Time {
    pub windows: Vec<Window>,
    pub zone: Zone,
    pub negated: bool,
}

impl ConditionSpec for Time {
    const KEYS: &'static [&'static str] = &["time_in", "time_not_in"];
    const EXAMPLES: &'static [&'static str] = &[
        r#"["Mon-Fri 08:00-18:00"]"#,
        r#"["22:00-06:00"]"#,
        r#"["Sat,Sun 10:00-14:00", "Fri-Mon 00:00-24:00"]"#,
    ];
    type Value = Vec<Window>;

    fn build(key: &'static str, windows: Vec<Window>, rule: &RuleEnv) -> Result<Self, String> {
        Ok(Self {
            windows,
            zone: rule.time_zone.clone(),
            negated: key == "time_not_in",
        })
    }
}

impl Condition for Time {
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
        let (day, minute) = facts.local_time(attempt.now, &self.zone);
        let hit = self.windows.iter().any(|w| w.contains_local(day, minute));
        let detail = || {
            let local = attempt.now.to_zoned(self.zone.tz.clone());
            format!(
                "{} in {} {} {}",
                local.strftime("%a %H:%M"),
                self.zone.name,
                is_in(hit),
                list(&self.windows)
            )
        };
        let phrase = || {
            let windows = spoken(&self.windows, "or");
            let side = if self.negated { "outside" } else { "during" };
            Some(format!("{side} {windows} {}", self.zone.name))
        };
        Ok(Eval::new(hit != self.negated, want, detail, phrase))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| {
            mine.negated == theirs.negated
                && mine.windows == theirs.windows
                && mine.zone.name == theirs.zone.name
        })
    }

    fn check_round_trip(&self) -> Result<(), String> {
        self.windows
            .iter()
            .try_for_each(|w| super::round_trips(w, "time window"))
    }
}
