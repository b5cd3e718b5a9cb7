//! `tty` patterns: shell-style globs over the PAM_TTY string. `*` matches any
//! run of characters (including `/`), `?` one character, `[abc]`, `[a-z]` and
//! `[!a-z]` one character from (or not from) a set; everything else is
//! literal; `\` escapes the next character.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tty pattern {input:?}: {reason}")]
pub struct GlobError {
    pub input: String,
    pub reason: String,
}

impl Glob {
    /// Does the whole of `text` match? (Anchored at both ends.)
    pub fn matches(&self, _text: &str) -> bool {
        todo!("helper")
    }
}

impl FromStr for Glob {
    type Err = GlobError;
    /// Errors: empty pattern, unclosed `[`, trailing `\`.
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        todo!("helper")
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        todo!("helper")
    }
}
