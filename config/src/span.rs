//! Durations as admins write them: `90s`, `15m`, `12h`, `30d`, `2w`, combined
//! (`1h30m`), or a bare integer meaning seconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
const WEEK: u64 = 7 * DAY;

/// Units from largest to smallest; a combined span lists them in this order.
const UNITS: [(char, u64); 5] = [
    ('w', WEEK),
    ('d', DAY),
    ('h', HOUR),
    ('m', MINUTE),
    ('s', 1),
];

impl Span {
    /// A span of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Whole seconds (any sub-second part is dropped).
    pub const fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }
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
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map_err(|_| "too large".to_owned());
    }

    let mut total: u64 = 0;
    // Index into UNITS of the smallest unit used so far; the next must be smaller.
    let mut last_unit: Option<usize> = None;
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if !c.is_ascii_digit() {
            return Err(if c.is_alphabetic() {
                format!("missing number before {c:?}")
            } else if c.is_whitespace() {
                "spaces are not allowed inside a duration".into()
            } else {
                format!("unexpected character {c:?}")
            });
        }
        let mut end = start;
        while let Some(&(i, d)) = chars.peek() {
            if d.is_ascii_digit() {
                end = i + 1;
                chars.next();
            } else {
                break;
            }
        }
        let digits = &text[start..end];
        let Some((_, unit)) = chars.next() else {
            return Err(format!("number {digits} has no unit (s, m, h, d or w)"));
        };
        let Some(index) = UNITS.iter().position(|&(u, _)| u == unit) else {
            return Err(match unit {
                '.' | ',' => "fractions are not supported (write e.g. 1h30m)".into(),
                c if c.is_whitespace() => "spaces are not allowed inside a duration".into(),
                c => format!("unknown unit {c:?} (units are s, m, h, d, w)"),
            });
        };
        if let Some(prev) = last_unit {
            if index == prev {
                return Err(format!("unit {unit:?} appears twice"));
            }
            if index < prev {
                return Err("units must go from largest to smallest (w, d, h, m, s)".into());
            }
        }
        last_unit = Some(index);
        let n: u64 = digits.parse().map_err(|_| "too large".to_owned())?;
        total = n
            .checked_mul(UNITS[index].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "too large".to_owned())?;
    }
    Ok(total)
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
        Ok(Span::from_secs(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Span, E> {
        u64::try_from(v).map(Span::from_secs).map_err(|_| {
            E::custom(SpanError {
                input: v.to_string(),
                reason: "negative durations are not allowed".into(),
            })
        })
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
            ("18446744073709551615s", u64::MAX),
            ("18446744073709551615", u64::MAX),
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
            ("40000000000000w", "too large"),
            ("18446744073709551615s1w", "largest to smallest"),
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
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(value in any::<u64>()) {
            let span = Span::from_secs(value);
            prop_assert_eq!(span.to_string().parse::<Span>(), Ok(span));
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
