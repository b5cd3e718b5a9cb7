//! Durations as admins write them: `90s`, `15m`, `12h`, `30d`, `2w`, combined
//! (`1h30m`), or a bare integer meaning seconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A length of time from the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (expected e.g. \"90s\", \"15m\", \"12h\", \"30d\", \"2w\", \"1h30m\")")]
pub struct SpanError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Span {
    type Err = SpanError;
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        todo!("helper: parse")
    }
}

impl fmt::Display for Span {
    /// The shortest form that parses back to the same value (`0s` for zero).
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!("helper: display")
    }
}

// Deserialize from a TOML string (parsed with FromStr) or a non-negative
// integer (seconds); errors go through serde so toml reports their position.
impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        todo!("helper: deserialize")
    }
}
