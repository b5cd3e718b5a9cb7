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
#[error("invalid time window {input:?}: {reason} (expected e.g. \"Mon-Fri 08:00-18:00\" or \"22:00-06:00\")")]
pub struct WindowError {
    pub input: String,
    pub reason: String,
}

impl Window {
    /// Is the local civil time `weekday` (0 = Monday) `minute` (0..1440)
    /// inside this window? For a window crossing midnight, the part after
    /// midnight belongs to the day after a listed day.
    pub fn contains_local(&self, _weekday: usize, _minute: u16) -> bool {
        todo!("helper")
    }

    /// Is `at` inside this window in zone `tz`?
    pub fn contains(&self, _at: Timestamp, _tz: &TimeZone) -> bool {
        todo!("helper")
    }
}

impl FromStr for Window {
    type Err = WindowError;
    /// Day names are English three-letter abbreviations, case-insensitive
    /// (`Mon`…`Sun`), in ranges (`Mon-Fri`, `Fri-Mon` wraps) and comma lists
    /// (`Mon,Wed,Fri`, `Mon-Wed,Sat`); no days means every day. Times are
    /// `HH:MM`, 24-hour, `24:00` allowed as an end.
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        todo!("helper")
    }
}

impl fmt::Display for Window {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!("helper")
    }
}

impl<'de> serde::Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        todo!("helper")
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
        todo!("helper")
    }
}

impl<'de> serde::Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        todo!("helper")
    }
}
