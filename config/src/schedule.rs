//! `time_in` / `time_not_in` windows: weekdays and hours, e.g.
//! `"Mon-Fri 08:00-18:00"`, `"Sat,Sun 10:00-14:00"`, `"22:00-06:00"` (every
//! day, crossing midnight), `"Mon-Fri 22:00-06:00"` (starts Mon–Fri evenings,
//! ends the next morning), `"Sun 00:00-24:00"`.
//!
//! A window is evaluated in local civil time of a named IANA time zone, so
//! it follows DST changes: `08:00-18:00` means 08:00–18:00 on the wall clock
//! whether that day is 23, 24 or 25 hours long.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// One window. Days are the days the window *starts* on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday = index 0 … Sunday = index 6.
    pub days: [bool; 7],
    /// Minutes after local midnight, 0..=1439.
    pub start: u16,
    /// Minutes after local midnight, 1..=1440 (24:00). `end <= start` means
    /// the window crosses midnight into the next day. Start is inclusive,
    /// end exclusive. `start == end` is an error.
    pub end: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time window {input:?}: {reason} (expected e.g. \"Mon-Fri 08:00-18:00\" or \"22:00-06:00\")"
)]
pub struct WindowError {
    pub input: String,
    pub reason: String,
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MINUTES_PER_DAY: u16 = 24 * 60;

impl Window {
    /// Is the local civil time `weekday` (0 = Monday) `minute` (0..1440)
    /// inside this window? For a window crossing midnight, the part after
    /// midnight belongs to the day after a listed day.
    pub fn contains_local(&self, weekday: usize, minute: u16) -> bool {
        if weekday >= 7 || minute >= MINUTES_PER_DAY {
            return false;
        }
        let today = self.days[weekday];
        if self.start < self.end {
            today && self.start <= minute && minute < self.end
        } else {
            let yesterday = self.days[(weekday + 6) % 7];
            (today && minute >= self.start) || (yesterday && minute < self.end)
        }
    }

    /// Is `at` inside this window in zone `tz`?
    ///
    /// Uses the wall-clock reading at `at`: on a DST change a window holds
    /// for as long as the clock shows a time inside it (a skipped hour never
    /// matches, a repeated hour matches twice).
    pub fn contains(&self, at: Timestamp, tz: &TimeZone) -> bool {
        let local = at.to_zoned(tz.clone());
        let weekday = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        self.contains_local(weekday, minute)
    }

    /// Does the window cross midnight into the next day?
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// The day part in canonical form (`Mon-Fri`, `Sat,Sun`, `Fri-Mon`,
    /// `Mon-Wed,Sat`); empty when the window applies on every day.
    pub fn days_display(&self) -> String {
        if self.days.iter().all(|d| *d) {
            return String::new();
        }
        if !self.days.iter().any(|d| *d) {
            return "(no days)".into();
        }
        // Runs of consecutive days, cyclically; a run may wrap past Sunday.
        let mut parts = Vec::new();
        for (first, first_name) in DAY_NAMES.iter().enumerate() {
            if !self.days[first] || self.days[(first + 6) % 7] {
                continue;
            }
            let mut len = 1;
            while len < 7 && self.days[(first + len) % 7] {
                len += 1;
            }
            let last_name = DAY_NAMES[(first + len - 1) % 7];
            parts.push(match len {
                1 => (*first_name).to_owned(),
                2 => format!("{first_name},{last_name}"),
                _ => format!("{first_name}-{last_name}"),
            });
        }
        parts.join(",")
    }
}

fn parse_day(name: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            if name.is_empty() {
                "missing day name".to_owned()
            } else {
                format!("unknown day {name:?} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
            }
        })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty entry in the day list".into());
        }
        match item.split_once('-') {
            None => days[parse_day(item)?] = true,
            Some((from, to)) => {
                let from = parse_day(from.trim())?;
                let to = parse_day(to.trim())?;
                let mut day = from;
                loop {
                    days[day] = true;
                    if day == to {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
        }
    }
    Ok(days)
}

/// `HH:MM` (or `H:MM`) to minutes after midnight; 24:00 gives 1440.
fn parse_time(text: &str, which: &str) -> Result<u16, String> {
    let bad = || format!("invalid {which} time {text:?} (use HH:MM)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let hour: u16 = h.parse().map_err(|_| bad())?;
    let minute: u16 = m.parse().map_err(|_| bad())?;
    if minute > 59 {
        return Err(format!("minute {minute} in {text:?} is out of range 00-59"));
    }
    if hour == 24 && minute == 0 {
        return Ok(MINUTES_PER_DAY);
    }
    if hour > 23 {
        return Err(format!(
            "hour {hour} in {text:?} is out of range 00-23 (24:00 is allowed only as an end)"
        ));
    }
    Ok(hour * 60 + minute)
}

fn parse(s: &str) -> Result<Window, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    // Day names have no digits, so the time range starts at the first digit.
    let split = text
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| "missing time range".to_owned())?;
    let (day_text, time_text) = text.split_at(split);
    let day_text = day_text.trim();
    let days = if day_text.is_empty() {
        [true; 7]
    } else {
        parse_days(day_text)?
    };
    let (from, to) = time_text.split_once('-').ok_or_else(|| {
        format!("time range {time_text:?} needs a start and an end (HH:MM-HH:MM)")
    })?;
    let start = parse_time(from.trim(), "start")?;
    if start == MINUTES_PER_DAY {
        return Err("24:00 is allowed only as an end time".into());
    }
    let mut end = parse_time(to.trim(), "end")?;
    if start == end {
        return Err("start and end are the same (for a whole day write 00:00-24:00)".into());
    }
    if end == 0 {
        // Ending at midnight is the same as ending at 24:00.
        end = MINUTES_PER_DAY;
    }
    Ok(Window { days, start, end })
}

impl FromStr for Window {
    type Err = WindowError;
    /// Day names are English three-letter abbreviations, case-insensitive
    /// (`Mon`…`Sun`), in ranges (`Mon-Fri`, `Fri-Mon` wraps) and comma lists
    /// (`Mon,Wed,Fri`, `Mon-Wed,Sat`); no days means every day. Times are
    /// `HH:MM`, 24-hour, `24:00` allowed as an end.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map_err(|reason| WindowError {
            input: s.to_owned(),
            reason,
        })
    }
}

fn write_time(f: &mut fmt::Formatter<'_>, minutes: u16) -> fmt::Result {
    write!(f, "{:02}:{:02}", minutes / 60, minutes % 60)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.days_display();
        if !days.is_empty() {
            write!(f, "{days} ")?;
        }
        write_time(f, self.start)?;
        f.write_str("-")?;
        write_time(f, self.end)
    }
}

struct WindowVisitor;

impl serde::de::Visitor<'_> for WindowVisitor {
    type Value = Window;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time window such as \"Mon-Fri 08:00-18:00\"")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Window, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> serde::Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(WindowVisitor)
    }
}

/// A named IANA time zone from the config (`"Europe/Paris"`, `"UTC"`), or
/// the system's zone when absent. Deserializes from a string; an unknown
/// name is an error naming it.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub tz: TimeZone,
}

impl Zone {
    /// The system's zone (`TimeZone::system()`), named after it; UTC if unknown.
    pub fn system() -> Self {
        let tz = TimeZone::system();
        if tz.is_unknown() {
            return Self::utc();
        }
        let name = tz.iana_name().unwrap_or("local").to_owned();
        Self { name, tz }
    }

    /// UTC.
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// Look up an IANA name (case-insensitive; the canonical spelling is kept).
    pub fn get(name: &str) -> Result<Self, String> {
        match TimeZone::get(name) {
            Ok(tz) if !name.is_empty() => Ok(Self {
                name: tz.iana_name().unwrap_or(name).to_owned(),
                tz,
            }),
            _ => Err(format!(
                "unknown time zone {name:?} (expected an IANA name such as \"Europe/Paris\" or \"UTC\")"
            )),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

struct ZoneVisitor;

impl serde::de::Visitor<'_> for ZoneVisitor {
    type Value = Zone;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an IANA time zone name such as \"Europe/Paris\" or \"UTC\"")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Zone, E> {
        Zone::get(v).map_err(E::custom)
    }
}

impl<'de> serde::Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ZoneVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const MON: usize = 0;
    const TUE: usize = 1;
    const WED: usize = 2;
    const THU: usize = 3;
    const FRI: usize = 4;
    const SAT: usize = 5;
    const SUN: usize = 6;

    fn win(s: &str) -> Window {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    fn days(list: &[usize]) -> [bool; 7] {
        let mut d = [false; 7];
        for &i in list {
            d[i] = true;
        }
        d
    }

    #[test]
    fn parses_days_and_times() {
        let all = [true; 7];
        let cases: Vec<(&str, [bool; 7], u16, u16)> = vec![
            (
                "Mon-Fri 08:00-18:00",
                days(&[MON, TUE, WED, THU, FRI]),
                480,
                1080,
            ),
            ("Sat,Sun 10:00-14:00", days(&[SAT, SUN]), 600, 840),
            ("22:00-06:00", all, 1320, 360),
            (
                "Mon-Fri 22:00-06:00",
                days(&[MON, TUE, WED, THU, FRI]),
                1320,
                360,
            ),
            ("Sun 00:00-24:00", days(&[SUN]), 0, 1440),
            ("00:00-24:00", all, 0, 1440),
            (
                "Fri-Mon 18:00-08:00",
                days(&[FRI, SAT, SUN, MON]),
                1080,
                480,
            ),
            ("Sun-Mon 09:00-10:00", days(&[SUN, MON]), 540, 600),
            ("Mon,Wed,Fri 09:00-17:00", days(&[MON, WED, FRI]), 540, 1020),
            (
                "Mon-Wed,Sat 09:00-17:00",
                days(&[MON, TUE, WED, SAT]),
                540,
                1020,
            ),
            ("Mon-Sun 09:00-17:00", all, 540, 1020),
            ("Tue-Mon 09:00-17:00", all, 540, 1020),
            ("Wed-Wed 09:00-17:00", days(&[WED]), 540, 1020),
            (
                "mon-FRI 08:00-18:00",
                days(&[MON, TUE, WED, THU, FRI]),
                480,
                1080,
            ),
            ("Mon,Mon 08:00-18:00", days(&[MON]), 480, 1080),
            (
                "  Mon - Fri ,  Sun   8:00 - 18:00  ",
                days(&[MON, TUE, WED, THU, FRI, SUN]),
                480,
                1080,
            ),
            ("23:59-00:01", all, 1439, 1),
            ("22:00-00:00", all, 1320, 1440),
            ("00:00-00:01", all, 0, 1),
            ("23:59-24:00", all, 1439, 1440),
            ("12:00-11:59", all, 720, 719),
        ];
        for (input, want_days, start, end) in cases {
            let w = win(input);
            assert_eq!(
                w,
                Window {
                    days: want_days,
                    start,
                    end
                },
                "{input:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_windows_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("Mon-Fri", "missing time range"),
            ("Mon-Fri 08:00", "needs a start and an end"),
            ("08:00-08:00", "the same"),
            ("00:00-00:00", "the same"),
            ("24:00-24:00", "only as an end"),
            ("24:00-06:00", "only as an end"),
            ("08:00-24:01", "out of range 00-23"),
            ("08:00-25:00", "out of range 00-23"),
            ("08:60-09:00", "out of range 00-59"),
            ("08:00-09:99", "out of range 00-59"),
            ("8-9", "invalid start time"),
            ("08:0-09:00", "invalid start time"),
            ("08:000-09:00", "invalid start time"),
            ("008:00-09:00", "invalid start time"),
            ("08:00-", "invalid end time"),
            ("-09:00", "missing day"),
            ("08:00-18:00 Mon", "invalid end time"),
            ("+8:00-09:00", "unknown day"),
            ("Mo 08:00-18:00", "unknown day \"Mo\""),
            ("Monday 08:00-18:00", "unknown day"),
            ("Mon Wed 08:00-18:00", "unknown day \"Mon Wed\""),
            ("Mon,,Wed 08:00-18:00", "empty entry"),
            ("Mon, 08:00-18:00", "empty entry"),
            ("Mon- 08:00-18:00", "missing day"),
            ("Mon-Wed-Fri 08:00-18:00", "unknown day"),
        ];
        for &(input, reason) in cases {
            let err = input.parse::<Window>().expect_err(input);
            assert_eq!(err.input, input);
            assert!(err.reason.contains(reason), "{input:?}: {}", err.reason);
            assert!(err.to_string().contains("expected e.g."), "{err}");
        }
    }

    #[test]
    fn contains_local_table() {
        // (window, weekday, "HH:MM", expected)
        let cases: &[(&str, usize, &str, bool)] = &[
            // Start inclusive, end exclusive.
            ("Mon-Fri 08:00-18:00", MON, "08:00", true),
            ("Mon-Fri 08:00-18:00", MON, "07:59", false),
            ("Mon-Fri 08:00-18:00", MON, "17:59", true),
            ("Mon-Fri 08:00-18:00", MON, "18:00", false),
            ("Mon-Fri 08:00-18:00", FRI, "12:00", true),
            ("Mon-Fri 08:00-18:00", SAT, "12:00", false),
            ("Mon-Fri 08:00-18:00", SUN, "12:00", false),
            // Every day, crossing midnight.
            ("22:00-06:00", WED, "22:00", true),
            ("22:00-06:00", WED, "21:59", false),
            ("22:00-06:00", WED, "23:59", true),
            ("22:00-06:00", WED, "00:00", true),
            ("22:00-06:00", WED, "05:59", true),
            ("22:00-06:00", WED, "06:00", false),
            ("22:00-06:00", WED, "12:00", false),
            // Listed day evening, next day morning.
            ("Mon 22:00-06:00", MON, "22:00", true),
            ("Mon 22:00-06:00", MON, "23:59", true),
            ("Mon 22:00-06:00", MON, "03:00", false),
            ("Mon 22:00-06:00", TUE, "00:00", true),
            ("Mon 22:00-06:00", TUE, "05:59", true),
            ("Mon 22:00-06:00", TUE, "06:00", false),
            ("Mon 22:00-06:00", TUE, "22:00", false),
            ("Mon 22:00-06:00", SUN, "23:00", false),
            // Friday night into Saturday morning, Mon-Fri.
            ("Mon-Fri 22:00-06:00", SAT, "03:00", true),
            ("Mon-Fri 22:00-06:00", SAT, "22:00", false),
            ("Mon-Fri 22:00-06:00", SUN, "03:00", false),
            ("Mon-Fri 22:00-06:00", MON, "03:00", false),
            ("Mon-Fri 22:00-06:00", MON, "22:30", true),
            ("Mon-Fri 22:00-06:00", TUE, "03:00", true),
            // Sunday into Monday wraps the week.
            ("Sun 22:00-06:00", SUN, "22:00", true),
            ("Sun 22:00-06:00", MON, "00:00", true),
            ("Sun 22:00-06:00", MON, "05:59", true),
            ("Sun 22:00-06:00", MON, "06:00", false),
            ("Sun 22:00-06:00", SAT, "23:00", false),
            ("Sun 22:00-06:00", SUN, "03:00", false),
            // Wrapping day range.
            ("Fri-Mon 10:00-12:00", FRI, "10:00", true),
            ("Fri-Mon 10:00-12:00", SAT, "11:00", true),
            ("Fri-Mon 10:00-12:00", SUN, "11:59", true),
            ("Fri-Mon 10:00-12:00", MON, "10:30", true),
            ("Fri-Mon 10:00-12:00", TUE, "10:30", false),
            ("Fri-Mon 10:00-12:00", THU, "10:30", false),
            // 24:00 ends.
            ("Sun 00:00-24:00", SUN, "00:00", true),
            ("Sun 00:00-24:00", SUN, "23:59", true),
            ("Sun 00:00-24:00", MON, "00:00", false),
            ("Sun 00:00-24:00", SAT, "23:59", false),
            ("Sat 22:00-24:00", SAT, "23:59", true),
            ("Sat 22:00-24:00", SUN, "00:00", false),
            ("Sat 22:00-00:00", SUN, "00:00", false),
            ("Sat 22:00-00:00", SAT, "22:00", true),
            ("00:00-24:00", THU, "00:00", true),
            ("00:00-24:00", THU, "23:59", true),
            // Tiny windows.
            ("23:59-00:01", TUE, "23:59", true),
            ("23:59-00:01", TUE, "00:00", true),
            ("23:59-00:01", TUE, "00:01", false),
            ("23:59-00:01", TUE, "23:58", false),
            ("12:00-11:59", TUE, "11:59", false),
            ("12:00-11:59", TUE, "11:58", true),
            ("12:00-11:59", TUE, "12:00", true),
        ];
        for &(window, weekday, time, want) in cases {
            let (h, m) = time.split_once(':').unwrap();
            let minute = hm(h.parse().unwrap(), m.parse().unwrap());
            assert_eq!(
                win(window).contains_local(weekday, minute),
                want,
                "{window} on day {weekday} at {time}"
            );
        }
    }

    #[test]
    fn contains_local_out_of_range_is_false() {
        let w = win("00:00-24:00");
        assert!(!w.contains_local(7, 0));
        assert!(!w.contains_local(usize::MAX, 0));
        assert!(!w.contains_local(0, 1440));
        assert!(!w.contains_local(0, u16::MAX));
    }

    #[test]
    fn display_is_canonical() {
        let cases: &[(&str, &str)] = &[
            ("Mon-Fri 08:00-18:00", "Mon-Fri 08:00-18:00"),
            ("mon-fri 8:00-18:00", "Mon-Fri 08:00-18:00"),
            ("22:00-06:00", "22:00-06:00"),
            ("Mon-Sun 22:00-06:00", "22:00-06:00"),
            ("Sat,Sun 10:00-14:00", "Sat,Sun 10:00-14:00"),
            ("Sat-Sun 10:00-14:00", "Sat,Sun 10:00-14:00"),
            ("Sun,Sat 10:00-14:00", "Sat,Sun 10:00-14:00"),
            ("Sun 00:00-24:00", "Sun 00:00-24:00"),
            ("Fri-Mon 10:00-12:00", "Fri-Mon 10:00-12:00"),
            ("Sun,Mon 10:00-12:00", "Sun,Mon 10:00-12:00"),
            ("Mon,Tue,Wed,Sat 10:00-12:00", "Mon-Wed,Sat 10:00-12:00"),
            ("Mon,Wed,Fri 10:00-12:00", "Mon,Wed,Fri 10:00-12:00"),
            ("Wed,Fri-Mon 10:00-12:00", "Wed,Fri-Mon 10:00-12:00"),
            ("Tue-Sun 10:00-12:00", "Tue-Sun 10:00-12:00"),
            ("Mon-Sat 10:00-12:00", "Mon-Sat 10:00-12:00"),
            ("Wed-Mon 10:00-12:00", "Wed-Mon 10:00-12:00"),
            ("22:00-00:00", "22:00-24:00"),
        ];
        for &(input, want) in cases {
            let w = win(input);
            assert_eq!(w.to_string(), want, "{input}");
            assert_eq!(win(want), w, "{want}");
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// How many minutes of real (UTC) time from `from` (inclusive) to `to`
    /// (exclusive) are inside `window` in `tz`.
    fn minutes_inside(window: &str, tz: &TimeZone, from: &str, to: &str) -> i64 {
        let w = win(window);
        let (from, to) = (ts(from), ts(to));
        let mut n = 0;
        let mut t = from;
        while t < to {
            if w.contains(t, tz) {
                n += 1;
            }
            t = t.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
        }
        n
    }

    #[test]
    fn contains_uses_wall_clock_and_weekday_of_the_zone() {
        let utc = TimeZone::UTC;
        let paris = zone("Europe/Paris");
        let ny = zone("America/New_York");
        let cases: &[(&str, &TimeZone, &str, bool)] = &[
            // 2026-03-06 is a Friday; 2026-03-07T02:00Z is Friday 21:00 in New York.
            ("Fri 20:00-22:00", &ny, "2026-03-07T02:00:00Z", true),
            ("Sat 20:00-22:00", &ny, "2026-03-07T02:00:00Z", false),
            ("Sat 02:00-03:00", &utc, "2026-03-07T02:00:00Z", true),
            ("Mon-Fri 08:00-18:00", &utc, "2026-03-06T17:59:59Z", true),
            ("Mon-Fri 08:00-18:00", &utc, "2026-03-06T18:00:00Z", false),
            // Winter: Paris is UTC+1.
            ("Mon-Fri 08:00-18:00", &paris, "2026-01-05T07:00:00Z", true),
            ("Mon-Fri 08:00-18:00", &paris, "2026-01-05T06:59:59Z", false),
            ("Mon-Fri 08:00-18:00", &paris, "2026-01-05T16:59:00Z", true),
            ("Mon-Fri 08:00-18:00", &paris, "2026-01-05T17:00:00Z", false),
            // Paris 2026-01-04 23:30 is a Sunday; 23:30Z is Monday 00:30 local.
            ("Mon 00:00-01:00", &paris, "2026-01-04T23:30:00Z", true),
            ("Sun 23:00-24:00", &paris, "2026-01-04T23:30:00Z", false),
            ("Sun 23:00-24:00", &paris, "2026-01-04T22:30:00Z", true),
        ];
        for &(window, tz, at, want) in cases {
            assert_eq!(win(window).contains(ts(at), tz), want, "{window} at {at}");
        }
    }

    #[test]
    fn paris_spring_forward() {
        let paris = zone("Europe/Paris");
        let day = ts("2026-03-29T12:00:00Z").to_zoned(paris.clone());
        assert_eq!(day.weekday(), jiff::civil::Weekday::Sunday);
        // 02:00 CET jumps to 03:00 CEST at 01:00Z.
        let cases: &[(&str, &str, bool)] = &[
            ("08:00-18:00", "2026-03-29T05:59:00Z", false), // 07:59 CEST
            ("08:00-18:00", "2026-03-29T06:00:00Z", true),  // 08:00 CEST
            ("08:00-18:00", "2026-03-29T15:59:00Z", true),  // 17:59 CEST
            ("08:00-18:00", "2026-03-29T16:00:00Z", false), // 18:00 CEST
            ("01:00-04:00", "2026-03-28T23:59:00Z", false), // 00:59 CET
            ("01:00-04:00", "2026-03-29T00:00:00Z", true),  // 01:00 CET
            ("01:00-04:00", "2026-03-29T00:59:00Z", true),  // 01:59 CET
            ("01:00-04:00", "2026-03-29T01:00:00Z", true),  // 03:00 CEST
            ("01:00-04:00", "2026-03-29T01:59:00Z", true),  // 03:59 CEST
            ("01:00-04:00", "2026-03-29T02:00:00Z", false), // 04:00 CEST
            ("02:00-03:00", "2026-03-29T00:59:00Z", false), // 01:59 CET
            ("02:00-03:00", "2026-03-29T01:00:00Z", false), // 03:00 CEST
        ];
        for &(window, at, want) in cases {
            assert_eq!(
                win(window).contains(ts(at), &paris),
                want,
                "{window} at {at}"
            );
        }
        let (from, to) = ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z");
        // The local day is 23 hours long; the windows follow the wall clock.
        assert_eq!(minutes_inside("Sun 08:00-18:00", &paris, from, to), 600);
        assert_eq!(minutes_inside("Sun 01:00-04:00", &paris, from, to), 120);
        assert_eq!(minutes_inside("Sun 02:00-03:00", &paris, from, to), 0);
        assert_eq!(minutes_inside("Sun 00:00-24:00", &paris, from, to), 23 * 60);
    }

    #[test]
    fn paris_fall_back() {
        let paris = zone("Europe/Paris");
        let day = ts("2026-10-25T12:00:00Z").to_zoned(paris.clone());
        assert_eq!(day.weekday(), jiff::civil::Weekday::Sunday);
        // 03:00 CEST falls back to 02:00 CET at 01:00Z.
        let cases: &[(&str, &str, bool)] = &[
            ("02:00-03:00", "2026-10-25T00:30:00Z", true), // 02:30 CEST
            ("02:00-03:00", "2026-10-25T01:30:00Z", true), // 02:30 CET
            ("02:00-03:00", "2026-10-24T23:59:00Z", false), // 01:59 CEST
            ("02:00-03:00", "2026-10-25T02:00:00Z", false), // 03:00 CET
            ("01:00-04:00", "2026-10-24T22:59:00Z", false), // 00:59 CEST
            ("01:00-04:00", "2026-10-24T23:00:00Z", true), // 01:00 CEST
            ("01:00-04:00", "2026-10-25T02:59:00Z", true), // 03:59 CET
            ("01:00-04:00", "2026-10-25T03:00:00Z", false), // 04:00 CET
            ("08:00-18:00", "2026-10-25T06:59:00Z", false), // 07:59 CET
            ("08:00-18:00", "2026-10-25T07:00:00Z", true), // 08:00 CET
            ("08:00-18:00", "2026-10-25T16:59:00Z", true), // 17:59 CET
            ("08:00-18:00", "2026-10-25T17:00:00Z", false), // 18:00 CET
        ];
        for &(window, at, want) in cases {
            assert_eq!(
                win(window).contains(ts(at), &paris),
                want,
                "{window} at {at}"
            );
        }
        let (from, to) = ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
        // The local day is 25 hours long; the repeated hour counts twice.
        assert_eq!(minutes_inside("Sun 08:00-18:00", &paris, from, to), 600);
        assert_eq!(minutes_inside("Sun 01:00-04:00", &paris, from, to), 240);
        assert_eq!(minutes_inside("Sun 02:00-03:00", &paris, from, to), 120);
        assert_eq!(minutes_inside("Sun 00:00-24:00", &paris, from, to), 25 * 60);
    }

    #[test]
    fn new_york_dst_changes() {
        let ny = zone("America/New_York");
        // Spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
        // Fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
        let cases: &[(&str, &str, bool)] = &[
            ("Sun 02:00-03:00", "2026-03-08T06:59:00Z", false), // 01:59 EST
            ("Sun 02:00-03:00", "2026-03-08T07:00:00Z", false), // 03:00 EDT
            ("Sun 01:00-03:00", "2026-03-08T06:59:00Z", true),  // 01:59 EST
            ("Sun 08:00-18:00", "2026-03-08T11:59:00Z", false), // 07:59 EDT
            ("Sun 08:00-18:00", "2026-03-08T12:00:00Z", true),  // 08:00 EDT
            ("Sun 08:00-18:00", "2026-03-08T21:59:00Z", true),  // 17:59 EDT
            ("Sun 08:00-18:00", "2026-03-08T22:00:00Z", false), // 18:00 EDT
            ("Sun 01:00-02:00", "2026-11-01T05:30:00Z", true),  // 01:30 EDT
            ("Sun 01:00-02:00", "2026-11-01T06:30:00Z", true),  // 01:30 EST
            ("Sun 01:00-02:00", "2026-11-01T07:00:00Z", false), // 02:00 EST
            ("Sat 22:00-02:00", "2026-11-01T06:59:00Z", true),  // Sun 01:59 EST
            ("Sat 22:00-02:00", "2026-11-01T07:00:00Z", false), // Sun 02:00 EST
            ("Sun 08:00-18:00", "2026-11-01T13:00:00Z", true),  // 08:00 EST
            ("Sun 08:00-18:00", "2026-11-01T12:59:00Z", false), // 07:59 EST
        ];
        for &(window, at, want) in cases {
            assert_eq!(win(window).contains(ts(at), &ny), want, "{window} at {at}");
        }
        let spring = ("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
        assert_eq!(
            minutes_inside("Sun 02:00-03:00", &ny, spring.0, spring.1),
            0
        );
        assert_eq!(
            minutes_inside("Sun 00:00-24:00", &ny, spring.0, spring.1),
            23 * 60
        );
        let fall = ("2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z");
        assert_eq!(minutes_inside("Sun 01:00-02:00", &ny, fall.0, fall.1), 120);
        assert_eq!(
            minutes_inside("Sun 00:00-24:00", &ny, fall.0, fall.1),
            25 * 60
        );
    }

    #[derive(Debug, serde::Deserialize)]
    struct T {
        x: Window,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Z {
        tz: Zone,
    }

    #[test]
    fn deserializes_through_toml_with_positions() {
        let t: T = toml::from_str("x = \"Mon-Fri 08:00-18:00\"").unwrap();
        assert_eq!(t.x, win("Mon-Fri 08:00-18:00"));
        let err = toml::from_str::<T>("\n\nx = \"Mon-Fri 08:00-25:00\"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("hour 25"), "{text}");
        assert!(text.contains("expected e.g."), "{text}");
        assert!(text.contains("line 3"), "{text}");
        assert_eq!(err.span(), Some(6..27));

        let z: Z = toml::from_str("tz = \"Europe/Paris\"").unwrap();
        assert_eq!(z.tz.name, "Europe/Paris");
        assert_eq!(z.tz.tz, zone("Europe/Paris"));
        let z: Z = toml::from_str("tz = \"america/new_york\"").unwrap();
        assert_eq!(z.tz.name, "America/New_York");
        let z: Z = toml::from_str("tz = \"UTC\"").unwrap();
        assert_eq!(z.tz.name, "UTC");

        let err = toml::from_str::<Z>("tz = \"Mars/Base\"").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "unknown time zone \"Mars/Base\" (expected an IANA name such as \"Europe/Paris\" or \"UTC\")"
            ),
            "{text}"
        );
        assert_eq!(err.span(), Some(5..16));
        let err = toml::from_str::<Z>("tz = \"\"").unwrap_err();
        assert!(err.to_string().contains("unknown time zone \"\""), "{err}");
        let err = toml::from_str::<Z>("tz = 1").unwrap_err();
        assert!(err.to_string().contains("IANA"), "{err}");
    }

    #[test]
    fn system_zone_has_a_name() {
        let z = Zone::system();
        assert!(!z.name.is_empty());
        assert_eq!(z.to_string(), z.name);
    }

    /// The window as the set of minutes of the week it covers, walking
    /// forward minute by minute from each listed day's start.
    fn reference(w: &Window) -> HashSet<usize> {
        const WEEK: usize = 7 * 1440;
        let len = if w.end > w.start {
            usize::from(w.end - w.start)
        } else {
            usize::from(w.end) + 1440 - usize::from(w.start)
        };
        let mut set = HashSet::new();
        for day in (0..7).filter(|&d| w.days[d]) {
            let begin = day * 1440 + usize::from(w.start);
            for k in 0..len {
                set.insert((begin + k) % WEEK);
            }
        }
        set
    }

    fn any_window() -> impl Strategy<Value = Window> {
        (1u8..128, 0u16..1440, 1u16..=1440)
            .prop_filter("start == end", |(_, s, e)| s != e)
            .prop_map(|(mask, start, end)| Window {
                days: std::array::from_fn(|i| mask & (1 << i) != 0),
                start,
                end,
            })
    }

    proptest! {
        #[test]
        fn contains_local_agrees_with_brute_force(
            w in any_window(),
            probes in proptest::collection::vec((0usize..7, 0u16..1440), 32),
        ) {
            let set = reference(&w);
            for (weekday, minute) in probes {
                let want = set.contains(&(weekday * 1440 + usize::from(minute)));
                prop_assert_eq!(w.contains_local(weekday, minute), want, "{} day {} minute {}", w, weekday, minute);
            }
            // Boundaries of the window on each day.
            for weekday in 0..7 {
                for minute in [w.start, w.end % 1440, w.start.saturating_sub(1), (w.end + 1439) % 1440] {
                    let want = set.contains(&(weekday * 1440 + usize::from(minute)));
                    prop_assert_eq!(w.contains_local(weekday, minute), want, "{} day {} minute {}", w, weekday, minute);
                }
            }
        }

        #[test]
        fn display_parse_round_trips(w in any_window()) {
            let text = w.to_string();
            let parsed: Window = text.parse().unwrap();
            prop_assert_eq!(&parsed, &w, "{}", text);
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn contains_matches_contains_local_in_utc(secs in 0i64..4_000_000_000, w in any_window()) {
            let at = Timestamp::from_second(secs).unwrap();
            let civil = at.to_zoned(TimeZone::UTC);
            let weekday = usize::from(civil.weekday().to_monday_zero_offset().unsigned_abs());
            let minute = u16::try_from(civil.hour()).unwrap() * 60 + u16::try_from(civil.minute()).unwrap();
            prop_assert_eq!(w.contains(at, &TimeZone::UTC), w.contains_local(weekday, minute));
        }
    }
}
