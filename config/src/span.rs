//! Durations as admins write them: `90s`, `15m`, `12h`, `30d`, `2w`, combined
//! (`1h30m`), or a bare integer meaning seconds; at most [`Span::MAX`].
//!
//! jiff's "friendly" parser reads them. The syntax the docs promise is a
//! strict subset of jiff's format, which would also take spaces, long unit
//! names (`1 hour`), fractions, signs, `ago`, `HH:MM:SS`, sub-second units
//! and months or years (no fixed length); `check_designators` refuses all
//! of that, with a reason, before jiff parses.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::SpanRelativeTo;
use jiff::fmt::friendly::SpanParser;

/// A length of time from the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason} (expected e.g. \"90s\", \"15m\", \"12h\", \"30d\", \"2w\", \"1h30m\")"
)]
pub struct SpanError {
    pub input: String,
    pub reason: String,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The units a duration may use, largest first.
const UNITS: &str = "wdhms";

/// The most days a jiff span holds (its limit for every unit is this long).
const MAX_DAYS: u64 = 7_304_484;

static FRIENDLY: SpanParser = SpanParser::new();

impl Span {
    /// The longest duration accepted: 7304484 days (631107417600 seconds,
    /// about 20,000 years), the most jiff can hold; every span up to it
    /// displays as text that parses back.
    pub const MAX: Self = Self::from_secs(MAX_DAYS * DAY);

    /// A span of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Whole seconds (any sub-second part is dropped).
    pub const fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }
}

fn too_large() -> String {
    format!("too large (at most {}, about 20,000 years)", Span::MAX)
}

fn parse(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    if text.starts_with('-') {
        return Err("negative durations are not allowed".into());
    }
    // A bare number is seconds, as in the integer form.
    let secs = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().map_err(|_| too_large())?
    } else {
        check_designators(text)?;
        let span = FRIENDLY.parse_span(text).map_err(|e| {
            if e.is_range() {
                too_large()
            } else {
                // The designators are well formed, so what jiff refuses is their order.
                "units must go from largest to smallest (w, d, h, m, s) and none appears twice"
                    .to_owned()
            }
        })?;
        let duration = span
            .to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| too_large())?;
        u64::try_from(duration.as_secs()).map_err(|_| too_large())?
    };
    if secs > Span::MAX.as_secs() {
        return Err(too_large());
    }
    Ok(secs)
}

/// The documented syntax, checked before jiff parses: one or more
/// `<digits><unit>`, unit one of w d h m s, nothing else. A number of more
/// than 12 significant digits is too large for any unit, and jiff reads at
/// most 21 digits (more only with leading zeros): both are refused here, with
/// a clearer message than jiff's.
fn check_designators(text: &str) -> Result<(), String> {
    let mut number: Option<&str> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() {
            if number.is_none() {
                start = i;
            }
            let digits = &text[start..=i];
            if digits.trim_start_matches('0').len() > 12 {
                return Err(too_large());
            }
            if digits.len() > 20 {
                return Err(format!("number {digits}… has too many digits"));
            }
            number = Some(digits);
            continue;
        }
        let after_number = number.take().is_some();
        match c {
            c if after_number && UNITS.contains(c) => {}
            'y' => return Err(no_fixed_length("years")),
            'o' if text[..i].ends_with('m') => return Err(no_fixed_length("months")),
            c if c.is_alphabetic() && !after_number => {
                let prev = text[..i].chars().next_back();
                return Err(if prev.is_some_and(char::is_alphabetic) {
                    format!("missing number before {c:?} (units are single letters: s, m, h, d, w)")
                } else {
                    format!("missing number before {c:?}")
                });
            }
            c if c.is_alphabetic() => {
                return Err(format!("unknown unit {c:?} (units are s, m, h, d, w)"));
            }
            '.' | ',' if after_number => {
                return Err("fractions are not supported (write e.g. 1h30m)".into());
            }
            c if c.is_whitespace() => return Err("spaces are not allowed inside a duration".into()),
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    match number {
        Some(digits) => Err(format!("number {digits} has no unit (s, m, h, d or w)")),
        None => Ok(()),
    }
}

fn no_fixed_length(what: &str) -> String {
    format!("{what} have no fixed length (write days or weeks, e.g. 30d)")
}

impl FromStr for Span {
    type Err = SpanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map(Self::from_secs).map_err(|reason| SpanError {
            input: s.to_owned(),
            reason,
        })
    }
}

impl fmt::Display for Span {
    /// The shortest form that parses back to the same value (`0s` for zero).
    ///
    /// Seconds, minutes, hours and days are split greedily (`5400s` is
    /// `1h30m`); weeks are used only for a whole number of weeks, because
    /// `8d` is shorter than `1w1d`. A sub-second part is not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_secs();
        if rest == 0 {
            return f.write_str("0s");
        }
        let days = rest / DAY;
        rest %= DAY;
        if days > 0 {
            if days.is_multiple_of(7) {
                write!(f, "{}w", days / 7)?;
            } else {
                write!(f, "{days}d")?;
            }
        }
        for (unit, size) in [('h', HOUR), ('m', MINUTE), ('s', 1)] {
            let n = rest / size;
            rest %= size;
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

struct SpanVisitor;

impl serde::de::Visitor<'_> for SpanVisitor {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"15m\" or \"1h30m\", or a whole number of seconds")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Span, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Span, E> {
        if v > Span::MAX.as_secs() {
            return Err(E::custom(SpanError {
                input: v.to_string(),
                reason: too_large(),
            }));
        }
        Ok(Span::from_secs(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Span, E> {
        let v = u64::try_from(v).map_err(|_| {
            E::custom(SpanError {
                input: v.to_string(),
                reason: "negative durations are not allowed".into(),
            })
        })?;
        self.visit_u64(v)
    }
}

// Deserialize from a TOML string (parsed with FromStr) or a non-negative
// integer (seconds); errors go through serde so toml reports their position.
impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpanVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WEEK: u64 = 7 * DAY;

    fn secs(s: &str) -> u64 {
        s.parse::<Span>()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .as_secs()
    }

    #[test]
    fn parses_single_and_combined_units() {
        let cases: &[(&str, u64)] = &[
            ("0s", 0),
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("1s", 1),
            ("15m", 15 * 60),
            ("12h", 12 * 3600),
            ("30d", 30 * 86400),
            ("2w", 14 * 86400),
            ("1h30m", 5400),
            ("1d12h", 36 * 3600),
            ("1w1d1h1m1s", WEEK + DAY + HOUR + MINUTE + 1),
            ("90m", 5400),
            ("0h0m", 0),
            ("007m", 7 * 60),
            ("  15m  ", 900),
            ("\t2w\n", 14 * 86400),
            // The longest span, in every form (Display gives the last one).
            ("631107417600s", Span::MAX.as_secs()),
            ("631107417600", Span::MAX.as_secs()),
            ("7304484d", Span::MAX.as_secs()),
            ("175307616h", Span::MAX.as_secs()),
            ("1043497w5d", Span::MAX.as_secs()),
            ("0000000000000000001s", 1),
        ];
        for &(input, want) in cases {
            assert_eq!(secs(input), want, "{input:?}");
        }
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("-5m", "negative"),
            ("-0s", "negative"),
            ("5x", "unknown unit"),
            ("5M", "unknown unit"),
            ("5ms", "missing number"),
            ("h", "missing number"),
            ("1hm", "missing number"),
            ("1h30", "no unit"),
            ("1.5h", "fractions"),
            ("1h 30m", "spaces"),
            ("1 h", "spaces"),
            ("30m1h", "largest to smallest"),
            ("1h1h", "appears twice"),
            ("+5m", "unexpected character"),
            ("18446744073709551616s", "too large"),
            ("18446744073709551616", "too large"),
            ("18446744073709551615s", "too large"),
            ("18446744073709551615", "too large"),
            ("40000000000000w", "too large"),
            // One second over Span::MAX, in each form jiff bounds differently.
            ("631107417601s", "too large"),
            ("631107417601", "too large"),
            ("7304484d1s", "too large"),
            ("7304485d", "too large"),
            ("1043498w", "too large"),
            ("1043497w6d", "too large"),
            ("175307616h1s", "too large"),
            ("10518456961m", "too large"),
            ("999999999999w", "too large"),
            ("0000000000000000000001s", "too many digits"),
            // What jiff's friendly format takes but the docs do not promise.
            ("1 hour", "spaces"),
            ("15 minutes", "spaces"),
            ("1hour", "units are single letters"),
            ("2hrs", "units are single letters"),
            ("1h 30m", "spaces"),
            ("1h, 30m", "unexpected character ','"),
            ("2w ago", "spaces"),
            ("01:30:00", "unexpected character ':'"),
            ("0.5s", "fractions"),
            ("1,5h", "fractions"),
            ("500ms", "missing number"),
            ("10us", "unknown unit 'u'"),
            ("1ns", "unknown unit 'n'"),
            ("+1h", "unexpected character '+'"),
            ("PT1H", "missing number"),
            // No fixed length: refused whatever the rest says.
            ("1y", "years have no fixed length"),
            ("1y2d", "years have no fixed length"),
            ("1mo", "months have no fixed length"),
            ("1w1mo", "months have no fixed length"),
            ("y", "years have no fixed length"),
            ("18446744073709551615s1w", "too large"),
            ("5s1w", "largest to smallest"),
            ("2000000000000000w2000000000000000d", "too large"),
        ];
        for &(input, reason) in cases {
            let err = input.parse::<Span>().expect_err(input);
            assert_eq!(err.input, input);
            assert!(err.reason.contains(reason), "{input:?}: {}", err.reason);
            let text = err.to_string();
            assert!(text.contains("expected e.g."), "{text}");
        }
    }

    #[test]
    fn display_is_canonical() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m"),
            (90, "1m30s"),
            (3600, "1h"),
            (5400, "1h30m"),
            (3661, "1h1m1s"),
            (DAY, "1d"),
            (DAY + 12 * HOUR, "1d12h"),
            (6 * DAY, "6d"),
            (WEEK, "1w"),
            (8 * DAY, "8d"),
            (14 * DAY, "2w"),
            (30 * DAY, "30d"),
            (WEEK + 1, "1w1s"),
            (8 * DAY + HOUR, "8d1h"),
        ];
        for &(value, want) in cases {
            let span = Span::from_secs(value);
            assert_eq!(span.to_string(), want, "{value}");
            assert_eq!(want.parse::<Span>(), Ok(span), "{want}");
        }
        // Sub-second parts are not shown.
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1s");
    }

    #[derive(Debug, serde::Deserialize)]
    struct T {
        x: Span,
    }

    #[test]
    fn deserializes_strings_and_integers() {
        let t: T = toml::from_str("x = \"1h30m\"").unwrap();
        assert_eq!(t.x, Span::from_secs(5400));
        let t: T = toml::from_str("x = 90").unwrap();
        assert_eq!(t.x, Span::from_secs(90));
        let t: T = toml::from_str("x = 0").unwrap();
        assert_eq!(t.x, Span::from_secs(0));
    }

    #[test]
    fn deserialize_errors_explain_and_have_a_position() {
        let err = toml::from_str::<T>("x = \"15 minutes\"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("invalid duration \"15 minutes\""), "{text}");
        assert!(text.contains("expected e.g."), "{text}");
        assert!(text.contains("line 1"), "{text}");
        assert_eq!(err.span(), Some(4..16));

        let err = toml::from_str::<T>("\nx = -5").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("negative durations are not allowed"),
            "{text}"
        );
        assert!(text.contains("line 2"), "{text}");

        let err = toml::from_str::<T>("x = 1.5").unwrap_err();
        assert!(err.to_string().contains("whole number of seconds"), "{err}");

        // Integers are bounded like strings.
        let t: T = toml::from_str("x = 631107417600").unwrap();
        assert_eq!(t.x, Span::MAX);
        for big in ["631107417601", "9223372036854775807"] {
            let err = toml::from_str::<T>(&format!("x = {big}")).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("too large (at most 7304484d, about 20,000 years)"),
                "{text}"
            );
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(value in 0..=Span::MAX.as_secs()) {
            let span = Span::from_secs(value);
            prop_assert_eq!(span.to_string().parse::<Span>(), Ok(span));
        }

        #[test]
        fn longer_than_max_is_refused_in_every_form(over in 1..=u64::MAX - Span::MAX.as_secs()) {
            let value = Span::MAX.as_secs() + over;
            let err = value.to_string().parse::<Span>().expect_err("bare");
            prop_assert!(err.reason.contains("too large"), "{}", err.reason);
            let err = Span::from_secs(value).to_string().parse::<Span>().expect_err("display");
            prop_assert!(err.reason.contains("too large"), "{}", err.reason);
        }

        // jiff checks the order of units; anything in order parses to the
        // sum, anything else is refused with that reason.
        #[test]
        fn units_in_order_parse_and_others_are_refused(
            parts in proptest::collection::vec((0usize..5, 0u64..100_000), 1..7),
        ) {
            let text: String = parts
                .iter()
                .map(|&(unit, n)| format!("{n}{}", &UNITS[unit..=unit]))
                .collect();
            let in_order = parts.windows(2).all(|w| w[0].0 < w[1].0);
            let sizes = [WEEK, DAY, HOUR, MINUTE, 1];
            match text.parse::<Span>() {
                Ok(span) => {
                    prop_assert!(in_order, "{text} accepted");
                    let want: u64 = parts.iter().map(|&(unit, n)| n * sizes[unit]).sum();
                    prop_assert_eq!(span.as_secs(), want, "{}", text);
                }
                Err(e) => {
                    prop_assert!(!in_order, "{text}: {}", e.reason);
                    prop_assert!(e.reason.contains("largest to smallest"), "{text}: {}", e.reason);
                }
            }
        }

        #[test]
        fn small_display_parse_round_trips(value in 0u64..10_000_000) {
            let span = Span::from_secs(value);
            let text = span.to_string();
            prop_assert_eq!(text.parse::<Span>(), Ok(span));
            // Canonical: re-displaying the parsed value gives the same text.
            prop_assert_eq!(text.parse::<Span>().unwrap().to_string(), text);
        }

        #[test]
        fn components_add_up(w in 0u64..100, d in 0u64..100, h in 0u64..100, m in 0u64..100, s in 0u64..100) {
            let text = format!("{w}w{d}d{h}h{m}m{s}s");
            let want = w * WEEK + d * DAY + h * HOUR + m * MINUTE + s;
            prop_assert_eq!(text.parse::<Span>(), Ok(Span::from_secs(want)));
        }
    }
}
