//! `country_in`, `country_not_in`: the country the location database puts
//! the attempt's source address in, against ISO 3166-1 alpha-2 codes.
//!
//! Only a known country can satisfy either: a local attempt, a loopback,
//! private or link-local address, a host name, and an address the database
//! does not know satisfy neither (as an unknown user satisfies neither
//! `group` nor `not_group`). So `country_not_in = ["FR"]` means "from a
//! known country other than France", never "from anywhere but France":
//! console logins and unknown addresses fall through to later rules and the
//! default (docs/policy.md, "Unknown and private addresses").

use std::fmt;
use std::str::FromStr;

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_by, list, spoken};
use crate::attempt::{Attempt, Lookups};

/// An ISO 3166-1 alpha-2 code as written in a rule: two upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CountryCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = "expected an ISO 3166-1 alpha-2 code of two upper-case letters, e.g. \"FR\"";
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            // The one code people write that ISO 3166 does not assign to
            // the country they mean (it is "exceptionally reserved"; the
            // databases say GB).
            if s == "UK" {
                return Err("invalid country code \"UK\": the United Kingdom is \"GB\" in ISO 3166 and in the location databases".into());
            }
            return Ok(Self(s.to_owned()));
        }
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "invalid country code {s:?}: country codes are upper case ({:?})",
                s.to_ascii_uppercase()
            ));
        }
        Err(format!("invalid country code {s:?}: {wanted}"))
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_parsed(d, "an ISO 3166-1 alpha-2 country code such as \"FR\"")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    pub codes: Vec<CountryCode>,
    pub negated: bool,
}

impl ConditionSpec for Country {
    const KEYS: &'static [&'static str] = &["country_in", "country_not_in"];
    const EXAMPLES: &'static [&'static str] = &[r#"["FR"]"#, r#"["FR", "DE", "BE"]"#, r#"["AU"]"#];
    type Value = Vec<CountryCode>;

    fn build(key: &'static str, codes: Vec<CountryCode>, _: &RuleEnv) -> Result<Self, String> {
        if codes.is_empty() {
            return Err(format!("{key} needs at least one country code"));
        }
        Ok(Self {
            codes,
            negated: key == "country_not_in",
        })
    }
}

impl Condition for Country {
    fn key(&self) -> &'static str {
        Self::KEYS[usize::from(self.negated)]
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
        let Some(country) = place.known().and_then(|f| f.country.as_deref()) else {
            let detail = || match place.known() {
                Some(known) => format!("{rhost}: {}; no country known", known.describe()),
                None => place.describe(rhost),
            };
            return Ok(Eval::new(false, want, detail, || None));
        };
        let listed = self.codes.iter().any(|c| c.as_str() == country);
        let detail = || {
            let described = place.describe(rhost);
            format!(
                "{described}; {country} {} {}",
                super::is_in(listed),
                list(&self.codes)
            )
        };
        let phrase = || {
            Some(if self.negated {
                format!(
                    "from {country} ({rhost}), outside {}",
                    spoken(&self.codes, "and")
                )
            } else {
                format!("from {country} ({rhost})")
            })
        };
        Ok(Eval::new(listed != self.negated, want, detail, phrase))
    }

    /// A later `country_in` within our list; a later `country_not_in`
    /// excluding at least what ours excludes.
    fn covers(&self, later: &dyn Condition) -> bool {
        covers_by(self, later, |mine, theirs| {
            mine.negated == theirs.negated
                && if mine.negated {
                    mine.codes.iter().all(|c| theirs.codes.contains(c))
                } else {
                    theirs.codes.iter().all(|c| mine.codes.contains(c))
                }
        })
    }

    fn check_round_trip(&self) -> Result<(), String> {
        self.codes
            .iter()
            .try_for_each(|c| match c.0.parse::<CountryCode>() {
                Ok(again) if again == *c => Ok(()),
                _ => Err(format!("country code {c} does not read back")),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_upper_case_letters() {
        for good in ["FR", "DE", "AU", "US", "GB"] {
            assert_eq!(good.parse::<CountryCode>().unwrap().as_str(), good);
        }
        let err = |s: &str| s.parse::<CountryCode>().unwrap_err();
        assert!(err("fr").contains("upper case (\"FR\")"), "{}", err("fr"));
        assert!(err("Fr").contains("upper case"), "{}", err("Fr"));
        assert!(err("UK").contains("\"GB\""), "{}", err("UK"));
        for bad in ["", "F", "FRA", "F1", "12", "É1", " FR", "FR "] {
            assert!(
                err(bad).contains("ISO 3166-1 alpha-2"),
                "{bad:?}: {}",
                err(bad)
            );
        }
    }
}
