//! `impossible_travel = "900km/h"`: to be where the database puts this
//! attempt, the person must have travelled faster than the speed since
//! their previous allowed remote attempt with coordinates. The distance is
//! the great-circle distance minus both attempts' accuracy radii (two fuzzy
//! fixes in one metro area are no journey), the time at least a minute; the
//! daemon computes both (`Lookups::travel`).
//!
//! Only an attempt with coordinates can satisfy it: local attempts,
//! non-public and unknown addresses, a Country edition (no coordinates), a
//! first attempt (nothing to compare with) and a previous attempt later
//! than now (the clock went back) never do.

use std::fmt;
use std::str::FromStr;

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, ago, covers_by};
use crate::attempt::{Attempt, Lookups, Travel};

/// A speed limit in whole km/h, written `"900km/h"`.
///
/// Only km/h is accepted: the unit `explain` and the audit field
/// `STEPUP_SPEED_KMH` use, so the number in a rule is the number in the
/// logs, with no conversion to get wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Speed(pub u32);

/// No two places on Earth are further apart than ~20 000 km, and a journey
/// counts as taking at least a minute: no speed can exceed 1.2 million km/h.
const MAX_KMH: u32 = 1_200_000;

impl FromStr for Speed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let invalid =
            |why: String| format!("invalid speed {s:?}: {why} (expected e.g. \"900km/h\")");
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(digits_end);
        if digits.is_empty() {
            return Err(invalid(if s.starts_with('-') {
                "a speed is not negative".into()
            } else {
                "it must start with a whole number".into()
            }));
        }
        match unit {
            "km/h" => {}
            "" => return Err(invalid("the unit is missing: write km/h".into())),
            "mph" | " mph" | "mi/h" => {
                return Err(invalid("only km/h is accepted (1 mph = 1.609 km/h)".into()));
            }
            u if u.starts_with(['.', ',']) => {
                return Err(invalid("whole km/h only, no fractions".into()));
            }
            u if u.starts_with(char::is_whitespace) => {
                return Err(invalid("no space between the number and km/h".into()));
            }
            u => return Err(invalid(format!("unknown unit {u:?}: write km/h"))),
        }
        let kmh: u32 = digits
            .parse()
            .ok()
            .filter(|&v| v <= MAX_KMH)
            .ok_or_else(|| invalid(format!("above {MAX_KMH}km/h, which nothing can exceed")))?;
        if kmh == 0 {
            return Err(invalid("0km/h would hold for every journey".into()));
        }
        Ok(Self(kmh))
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}km/h", self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Speed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_parsed(d, "a speed such as \"900km/h\"")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImpossibleTravel {
    pub over: Speed,
}

impl ConditionSpec for ImpossibleTravel {
    const KEYS: &'static [&'static str] = &["impossible_travel"];
    const EXAMPLES: &'static [&'static str] = &[r#""900km/h""#, r#""1000km/h""#, r#""300km/h""#];
    type Value = Speed;

    fn build(_: &'static str, over: Speed, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self { over })
    }
}

/// `Paris, FR (192.0.2.10) 600s ago`: the attempt a journey starts from;
/// with `at`, its time too (`… at 2026-01-05T22:20:00Z, 600s ago`).
fn previous_shown(travel: &Travel, now: u64, at: bool) -> String {
    let p = &travel.previous;
    let place = match (&p.city, &p.country) {
        (Some(city), Some(country)) => format!("{city}, {country}"),
        (None, Some(country)) => country.clone(),
        (Some(city), None) => city.clone(),
        (None, None) => format!("({}, {})", p.coordinates.0, p.coordinates.1),
    };
    let time = i64::try_from(p.time)
        .ok()
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map_or_else(|| p.time.to_string(), |t| t.to_string());
    let when = match (p.time > now, at) {
        (true, _) => format!("at {time} (later than now)"),
        (false, true) => format!("at {time}, {}", ago(now, p.time)),
        (false, false) => ago(now, p.time),
    };
    format!("{place} ({}) {when}", p.rhost)
}

impl Condition for ImpossibleTravel {
    fn key(&self) -> &'static str {
        "impossible_travel"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        facts: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let place = facts.place(attempt, lookups)?;
        let rhost = &attempt.origin.rhost;
        let Some(here) = place.known().filter(|f| f.coordinates.is_some()) else {
            let detail = || format!("{}: no coordinates, so no journey", place.describe(rhost));
            return Ok(Eval::new(false, want, detail, || None));
        };
        let now = attempt.now_secs();
        let Some(travel) = lookups.travel(attempt.subject, here, now)? else {
            let detail = || {
                format!(
                    "{}; no earlier allowed remote attempt by {} with a location",
                    place.describe(rhost),
                    attempt.subject
                )
            };
            return Ok(Eval::new(false, want, detail, || None));
        };
        let holds = travel.speed_kmh.is_some_and(|v| v > f64::from(self.over.0));
        let detail = || {
            let speed = match travel.speed_kmh {
                Some(v) => format!("{v:.0} km/h"),
                None => "speed unknown (the previous attempt is later than now)".into(),
            };
            format!(
                "{}; previous allowed attempt from {}: {:.0} km apart net of accuracy radii, {speed}; rule limit {}",
                place.describe(rhost),
                previous_shown(&travel, now, true),
                travel.distance_km,
                self.over
            )
        };
        let phrase = || {
            let speed = travel.speed_kmh.unwrap_or_default();
            Some(format!(
                "an impossible journey from {} ({speed:.0} km/h)",
                previous_shown(&travel, now, false)
            ))
        };
        Ok(Eval::new(holds, want, detail, phrase))
    }

    /// An earlier, lower (or equal) limit holds whenever a later one does.
    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| mine.over <= theirs.over)
    }

    fn check_round_trip(&self) -> Result<(), String> {
        super::round_trips(&self.over, "speed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_are_whole_km_per_hour() {
        assert_eq!("900km/h".parse::<Speed>(), Ok(Speed(900)));
        assert_eq!("1km/h".parse::<Speed>(), Ok(Speed(1)));
        assert_eq!("1200000km/h".parse::<Speed>(), Ok(Speed(MAX_KMH)));
        assert_eq!(Speed(900).to_string(), "900km/h");
        let err = |s: &str| s.parse::<Speed>().unwrap_err();
        for (bad, why) in [
            ("900", "unit is missing"),
            ("900 km/h", "no space"),
            ("560mph", "only km/h"),
            ("900kmh", "unknown unit \"kmh\""),
            ("900KM/H", "unknown unit"),
            ("900.5km/h", "no fractions"),
            ("-5km/h", "not negative"),
            ("km/h", "whole number"),
            ("", "whole number"),
            ("0km/h", "every journey"),
            ("1200001km/h", "above"),
            ("99999999999999999999km/h", "above"),
        ] {
            assert!(err(bad).contains(why), "{bad:?}: {}", err(bad));
            assert!(err(bad).contains("900km/h"), "{bad:?}: {}", err(bad));
        }
    }
}
