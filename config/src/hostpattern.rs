//! `rhost_in` / `rhost_not_in` entries: IPv4 or IPv6 CIDR blocks, single
//! addresses, or literal host names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One entry of an `rhost_in` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// An address block; a bare address is a /32 or /128. Host bits beyond
    /// the prefix must be zero (`10.0.0.1/8` is an error, not a guess).
    Net { addr: IpAddr, prefix: u8 },
    /// A host name, matched only against an rhost that is that literal name
    /// (ASCII case-insensitive, a trailing dot ignored); never resolved.
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address pattern {input:?}: {reason}")]
pub struct HostPatternError {
    pub input: String,
    pub reason: String,
}

impl HostPattern {
    /// Does `rhost` (PAM_RHOST as reported: an address, possibly an IPv6
    /// address in brackets or with a `%zone`, an IPv4-mapped IPv6 address, or a
    /// host name) fall in this pattern? An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) matches IPv4 blocks. An address rhost never
    /// matches a Name and a name rhost never matches a Net. Empty never matches.
    pub fn matches(&self, _rhost: &str) -> bool {
        todo!("helper")
    }
}

impl FromStr for HostPattern {
    type Err = HostPatternError;
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        todo!("helper")
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!("helper")
    }
}

// From a TOML string via FromStr; errors through serde (so they get a position).
impl<'de> serde::Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        todo!("helper")
    }
}
