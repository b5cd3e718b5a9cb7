//! `rhost_in` / `rhost_not_in` entries: IPv4 or IPv6 CIDR blocks, single
//! addresses, or literal host names.
//!
//! Blocks are `ipnet` networks (masking and containment are its job). The
//! address part is parsed with std, not with `ipnet`'s own parser: that one
//! takes leading-zero octets (`010.0.0.0/8`, which inet_aton reads as octal)
//! that std refuses as ambiguous, and std's errors give the messages below.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv6Net};

/// One entry of an `rhost_in` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// An address block; a bare address is a /32 or /128. Host bits beyond
    /// the prefix must be zero (`10.0.0.1/8` is an error, not a guess), so
    /// the network's address is always its first address.
    Net(IpNet),
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

/// The block `::ffff:0:0/96` holding IPv4-mapped IPv6 addresses.
const MAPPED: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);

/// What an rhost string turned out to be.
/// An rhost classified once: an address, a name, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct ParsedRhost<'a>(Option<Rhost<'a>>);

impl<'a> ParsedRhost<'a> {
    pub fn new(rhost: &'a str) -> Self {
        Self(classify_rhost(rhost))
    }
}

#[derive(Debug, Clone, Copy)]
enum Rhost<'a> {
    Addr(IpAddr),
    Name(&'a str),
}

fn classify_rhost(rhost: &str) -> Option<Rhost<'_>> {
    if rhost.is_empty() {
        return None;
    }
    let inner = rhost
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rhost);
    if let Ok(addr) = inner.parse::<IpAddr>() {
        return Some(Rhost::Addr(addr));
    }
    // A scoped IPv6 address (`fe80::1%eth0`): the zone does not change the address.
    if let Some((addr, zone)) = inner.split_once('%')
        && !zone.is_empty()
        && let Ok(addr) = addr.parse::<Ipv6Addr>()
    {
        return Some(Rhost::Addr(IpAddr::V6(addr)));
    }
    if inner.len() != rhost.len() {
        // Brackets around something that is not an address.
        return None;
    }
    Some(Rhost::Name(rhost))
}

fn names_equal(a: &str, b: &str) -> bool {
    let a = a.strip_suffix('.').unwrap_or(a);
    let b = b.strip_suffix('.').unwrap_or(b);
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

impl HostPattern {
    /// Does `rhost` (PAM_RHOST as reported: an address, possibly an IPv6
    /// address in brackets or with a `%zone`, an IPv4-mapped IPv6 address, or a
    /// host name) fall in this pattern? An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) matches IPv4 blocks. An address rhost never
    /// matches a Name and a name rhost never matches a Net. Empty never matches.
    ///
    /// An IPv4-mapped rhost also matches IPv6 blocks containing it (such as
    /// `::ffff:0:0/96`), and a plain IPv4 rhost matches an IPv6 block that
    /// lies inside `::ffff:0:0/96` when its mapped form is in that block.
    pub fn matches(&self, rhost: &str) -> bool {
        self.matches_parsed(&ParsedRhost::new(rhost))
    }

    /// [`matches`](Self::matches) for an rhost parsed once with
    /// [`ParsedRhost::new`] (evaluating many patterns against one attempt).
    pub fn matches_parsed(&self, rhost: &ParsedRhost<'_>) -> bool {
        let Some(rhost) = rhost.0 else {
            return false;
        };
        match (self, rhost) {
            (Self::Name(name), Rhost::Name(host)) => names_equal(name, host),
            (Self::Net(net), Rhost::Addr(host)) => net_contains(net, host),
            _ => false,
        }
    }

    /// Is this a single address (a /32 or /128)?
    pub fn is_single_address(&self) -> bool {
        matches!(self, Self::Net(net) if net.prefix_len() == net.max_prefix_len())
    }
}

fn net_contains(net: &IpNet, host: IpAddr) -> bool {
    match (net, host) {
        (IpNet::V4(net), IpAddr::V4(host)) => net.contains(&host),
        (IpNet::V6(net), IpAddr::V6(host)) => net.contains(&host),
        (IpNet::V4(net), IpAddr::V6(host)) => host
            .to_ipv4_mapped()
            .is_some_and(|host| net.contains(&host)),
        // Only blocks that are IPv4 blocks in IPv6 notation. The prefix test
        // settles most IPv6 blocks before any masking (a third faster).
        (IpNet::V6(net), IpAddr::V4(host)) => {
            net.prefix_len() >= MAPPED.prefix_len()
                && MAPPED.contains(net)
                && net.contains(&host.to_ipv6_mapped())
        }
    }
}

fn parse(s: &str) -> Result<HostPattern, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err("contains whitespace (write one address, block or name per entry)".into());
    }
    if let Some((addr_text, prefix_text)) = s.split_once('/') {
        return parse_block(addr_text, prefix_text).map(HostPattern::Net);
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Ok(HostPattern::Net(IpNet::from(addr)));
    }
    parse_name(s).map(HostPattern::Name)
}

/// `ADDRESS/PREFIX`, the address with no host bits set.
fn parse_block(addr_text: &str, prefix_text: &str) -> Result<IpNet, String> {
    let addr: IpAddr = addr_text.parse().map_err(|_| {
        if addr_text.is_empty() {
            "missing address before '/'".to_owned()
        } else {
            format!("{addr_text:?} is not an IP address (only addresses take a /prefix)")
        }
    })?;
    // Digits only: u8's parse would also take a leading '+'.
    let prefix = (!prefix_text.is_empty() && prefix_text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| prefix_text.parse::<u8>().ok())
        .flatten();
    let net = prefix
        .and_then(|prefix| IpNet::new(addr, prefix).ok())
        .ok_or_else(|| {
            let (max, family) = if addr.is_ipv4() {
                (32, "IPv4")
            } else {
                (128, "IPv6")
            };
            format!("prefix length {prefix_text:?} is not a number from 0 to {max} ({family})")
        })?;
    if net.trunc() != net {
        return Err(format!("host bits set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.starts_with('[') {
        return Err("write addresses without brackets".into());
    }
    if s.contains(':') {
        return Err("not a valid IPv6 address".into());
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(match bad {
            '*' | '?' => "wildcards are not supported in host names".into(),
            '%' => "zones are not allowed in patterns".into(),
            '[' | ']' => "write addresses without brackets".into(),
            c => format!("{c:?} is not allowed in a host name (letters, digits, '-' and '.' only)"),
        });
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.split('.').any(str::is_empty) {
        return Err("empty label in host name".into());
    }
    if !name.chars().any(|c| c.is_ascii_alphabetic() || c == '-') {
        return Err("looks like an address but is not a valid IPv4 address".into());
    }
    Ok(name.to_ascii_lowercase())
}

impl FromStr for HostPattern {
    type Err = HostPatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map_err(|reason| HostPatternError {
            input: s.to_owned(),
            reason,
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net(net) if self.is_single_address() => write!(f, "{}", net.addr()),
            Self::Net(net) => write!(f, "{net}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

struct HostPatternVisitor;

impl serde::de::Visitor<'_> for HostPatternVisitor {
    type Value = HostPattern;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an address, CIDR block or host name such as \"10.0.0.0/8\" or \"bastion.example.com\"",
        )
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HostPattern, E> {
        v.parse().map_err(E::custom)
    }
}

// From a TOML string via FromStr; errors through serde (so they get a position).
impl<'de> serde::Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(HostPatternVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    // Masks computed independently of ipnet, as the tests' reference.
    fn mask_v4(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    fn mask_v6(prefix: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
    }

    fn pat(s: &str) -> HostPattern {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_blocks_addresses_and_names() {
        let net =
            |s: &str, prefix: u8| HostPattern::Net(IpNet::new(s.parse().unwrap(), prefix).unwrap());
        let cases: Vec<(&str, HostPattern)> = vec![
            ("10.0.0.0/8", net("10.0.0.0", 8)),
            ("192.0.2.7", net("192.0.2.7", 32)),
            ("192.0.2.7/32", net("192.0.2.7", 32)),
            ("0.0.0.0/0", net("0.0.0.0", 0)),
            ("2001:db8::/32", net("2001:db8::", 32)),
            ("::1", net("::1", 128)),
            ("::/0", net("::", 0)),
            ("::ffff:0:0/96", net("::ffff:0:0", 96)),
            (
                "bastion.example.com",
                HostPattern::Name("bastion.example.com".into()),
            ),
            (
                "Bastion.Example.COM.",
                HostPattern::Name("bastion.example.com".into()),
            ),
            ("localhost", HostPattern::Name("localhost".into())),
            ("host-1", HostPattern::Name("host-1".into())),
            ("123-456", HostPattern::Name("123-456".into())),
            ("a1.2", HostPattern::Name("a1.2".into())),
            // A prefix with a leading zero is still decimal.
            ("10.0.0.0/08", net("10.0.0.0", 8)),
            ("2001:db8::/032", net("2001:db8::", 32)),
        ];
        for (input, want) in cases {
            assert_eq!(pat(input), want, "{input:?}");
        }
    }

    #[test]
    fn rejects_bad_patterns_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("bastion example.com", "whitespace"),
            (" 10.0.0.0/8", "whitespace"),
            ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8?"),
            ("192.0.2.7/24", "did you mean 192.0.2.0/24?"),
            ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
            ("0.0.0.1/0", "did you mean 0.0.0.0/0?"),
            ("10.0.0.0/33", "0 to 32"),
            ("2001:db8::/129", "0 to 128"),
            ("10.0.0.0/", "0 to 32"),
            ("10.0.0.0/+8", "0 to 32"),
            ("10.0.0.0/08x", "0 to 32"),
            ("10.0.0.0/8/8", "0 to 32"),
            ("10.0.0.0/999999999999", "0 to 32"),
            ("/8", "missing address"),
            ("example.com/24", "not an IP address"),
            ("10.0.0/8", "not an IP address"),
            // Leading-zero octets read as octal by inet_aton: refused (ipnet's
            // own parser would take them as decimal).
            ("010.0.0.0/8", "not an IP address"),
            ("10.0.0.010", "not a valid IPv4"),
            ("10.0.0", "not a valid IPv4"),
            ("10.0.0.256", "not a valid IPv4"),
            ("1234", "not a valid IPv4"),
            ("2001:db8:::1", "not a valid IPv6"),
            ("fe80::1%eth0", "not a valid IPv6"),
            ("10.0.0.1:22", "not a valid IPv6"),
            ("*.example.com", "wildcards"),
            ("[::1]", "brackets"),
            ("host_name", "not allowed"),
            ("exa..mple", "empty label"),
            (".example", "empty label"),
            ("example..", "empty label"),
            (".", "empty label"),
        ];
        for &(input, reason) in cases {
            let err = input.parse::<HostPattern>().expect_err(input);
            assert_eq!(err.input, input);
            assert!(err.reason.contains(reason), "{input:?}: {}", err.reason);
        }
    }

    #[test]
    fn matches_table() {
        // (pattern, rhost, expected)
        let cases: &[(&str, &str, bool)] = &[
            // IPv4 block boundaries.
            ("10.0.0.0/8", "10.0.0.0", true),
            ("10.0.0.0/8", "10.255.255.255", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("192.0.2.0/24", "192.0.2.0", true),
            ("192.0.2.0/24", "192.0.2.255", true),
            ("192.0.2.0/24", "192.0.3.0", false),
            ("192.0.2.128/25", "192.0.2.127", false),
            ("192.0.2.128/25", "192.0.2.128", true),
            ("192.0.2.128/25", "192.0.2.255", true),
            ("192.0.2.6/31", "192.0.2.6", true),
            ("192.0.2.6/31", "192.0.2.7", true),
            ("192.0.2.6/31", "192.0.2.8", false),
            // /0 and /32.
            ("0.0.0.0/0", "0.0.0.0", true),
            ("0.0.0.0/0", "255.255.255.255", true),
            ("0.0.0.0/0", "::1", false),
            ("0.0.0.0/0", "example.com", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.6", false),
            ("192.0.2.7", "192.0.2.8", false),
            ("192.0.2.7/32", "192.0.2.7", true),
            // IPv6 blocks, /64 boundaries, /128, /0.
            ("2001:db8::/32", "2001:db8::", true),
            (
                "2001:db8::/32",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                true,
            ),
            ("2001:db8::/32", "2001:db9::", false),
            (
                "2001:db8::/32",
                "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
                false,
            ),
            ("2001:db8:0:1::/64", "2001:db8:0:1::", true),
            (
                "2001:db8:0:1::/64",
                "2001:db8:0:1:ffff:ffff:ffff:ffff",
                true,
            ),
            ("2001:db8:0:1::/64", "2001:db8:0:2::", false),
            (
                "2001:db8:0:1::/64",
                "2001:db8:0:0:ffff:ffff:ffff:ffff",
                false,
            ),
            ("::1", "::1", true),
            ("::1", "::2", false),
            ("::1", "::", false),
            ("::1/128", "::1", true),
            ("::/0", "::", true),
            ("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("::/0", "192.0.2.7", false),
            ("::/0", "localhost", false),
            // Brackets and zones.
            ("2001:db8::/32", "[2001:db8::1]", true),
            ("2001:db8::/32", "[2001:db9::1]", false),
            ("fe80::/10", "fe80::1%eth0", true),
            ("fe80::/10", "[fe80::1%eth0]", true),
            ("fe80::1", "fe80::1%2", true),
            ("fe80::/10", "fe80::1%", false),
            ("192.0.2.7", "[192.0.2.7]", true),
            ("192.0.2.7", "192.0.2.7%eth0", false),
            ("localhost", "[localhost]", false),
            // IPv4-mapped IPv6.
            ("192.0.2.0/24", "::ffff:192.0.2.7", true),
            ("192.0.2.0/24", "[::ffff:192.0.2.7]", true),
            ("192.0.2.0/24", "::ffff:c000:207", true),
            ("192.0.2.0/24", "::ffff:192.0.3.7", false),
            ("192.0.2.7", "::ffff:192.0.2.7", true),
            ("0.0.0.0/0", "::ffff:1.2.3.4", true),
            ("0.0.0.0/0", "::1.2.3.4", false),
            ("::ffff:0:0/96", "::ffff:192.0.2.7", true),
            ("::ffff:0:0/96", "192.0.2.7", true),
            ("::ffff:192.0.2.0/120", "192.0.2.200", true),
            ("::ffff:192.0.2.0/120", "192.0.3.1", false),
            ("::ffff:192.0.2.7", "192.0.2.7", true),
            ("::/0", "::ffff:192.0.2.7", true),
            ("::/95", "192.0.2.7", false),
            ("192.0.2.0/24", "::192.0.2.7", false),
            // Names.
            ("bastion.example.com", "bastion.example.com", true),
            ("bastion.example.com", "BASTION.Example.Com", true),
            ("bastion.example.com", "bastion.example.com.", true),
            ("bastion.example.com.", "bastion.example.com", true),
            ("bastion.example.com", "bastion.example.com..", false),
            ("bastion.example.com", "other.example.com", false),
            ("bastion.example.com", "bastion.example.co", false),
            ("bastion.example.com", "x.bastion.example.com", false),
            ("bastion.example.com", "bastion", false),
            ("bastion.example.com", "192.0.2.7", false),
            ("example.com", "", false),
            ("example.com", ".", false),
            // Names never match nets, addresses never match names.
            ("0.0.0.0/0", "bastion.example.com", false),
            ("0.0.0.0/0", "", false),
            ("::/0", "", false),
            ("::/0", "[]", false),
            ("0.0.0.0/0", "10.0.0", false),
            ("0.0.0.0/0", "010.0.0.1", false),
            ("localhost", "127.0.0.1", false),
            ("localhost", "::1", false),
        ];
        for &(pattern, rhost, want) in cases {
            assert_eq!(pat(pattern).matches(rhost), want, "{pattern} vs {rhost:?}");
        }
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        let cases: &[(&str, &str)] = &[
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.0.2.7", "192.0.2.7"),
            ("192.0.2.7/32", "192.0.2.7"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:DB8::/32", "2001:db8::/32"),
            ("2001:db8:0:0::1", "2001:db8::1"),
            ("::1/128", "::1"),
            ("::/0", "::/0"),
            ("::ffff:0:0/96", "::ffff:0.0.0.0/96"),
            ("Bastion.Example.COM.", "bastion.example.com"),
        ];
        for &(input, want) in cases {
            let p = pat(input);
            assert_eq!(p.to_string(), want, "{input}");
            assert_eq!(pat(want), p, "{want}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct T {
        x: HostPattern,
    }

    #[derive(Debug, serde::Deserialize)]
    struct L {
        rhost_in: Vec<HostPattern>,
    }

    #[test]
    fn deserializes_through_toml_with_positions() {
        let t: T = toml::from_str("x = \"10.0.0.0/8\"").unwrap();
        assert_eq!(t.x, pat("10.0.0.0/8"));
        let l: L = toml::from_str("rhost_in = [\"::1\", \"bastion.example.com\"]").unwrap();
        assert_eq!(l.rhost_in.len(), 2);

        let err = toml::from_str::<L>("\nrhost_in = [\"::1\", \"10.0.0.1/8\"]").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("host bits set; did you mean 10.0.0.0/8?"),
            "{text}"
        );
        assert!(text.contains("line 2"), "{text}");
        assert_eq!(err.span(), Some(20..32));

        let err = toml::from_str::<T>("x = 10").unwrap_err();
        assert!(err.to_string().contains("CIDR block"), "{err}");
    }

    fn v4_block() -> impl Strategy<Value = (u32, u8)> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| (a & mask_v4(p), p))
    }

    fn v6_block() -> impl Strategy<Value = (u128, u8)> {
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| (a & mask_v6(p), p))
    }

    proptest! {
        #[test]
        fn v4_host_bits_match_and_prefix_bits_do_not(
            (net, prefix) in v4_block(),
            host in any::<u32>(),
            flip in 0u8..32,
        ) {
            let p = pat(&format!("{}/{prefix}", Ipv4Addr::from(net)));
            let inside = net | (host & !mask_v4(prefix));
            prop_assert!(p.matches(&Ipv4Addr::from(inside).to_string()));
            if prefix > 0 {
                let bit = flip % prefix;
                let outside = inside ^ (1u32 << (31 - u32::from(bit)));
                prop_assert!(!p.matches(&Ipv4Addr::from(outside).to_string()));
            }
        }

        #[test]
        fn v6_host_bits_match_and_prefix_bits_do_not(
            (net, prefix) in v6_block(),
            host in any::<u128>(),
            flip in 0u8..128,
        ) {
            let p = pat(&format!("{}/{prefix}", Ipv6Addr::from(net)));
            let inside = net | (host & !mask_v6(prefix));
            let inside_addr = Ipv6Addr::from(inside);
            let bracketed = format!("[{inside_addr}]");
            let zoned = format!("{inside_addr}%eth0");
            prop_assert!(p.matches(&inside_addr.to_string()));
            prop_assert!(p.matches(&bracketed));
            prop_assert!(p.matches(&zoned));
            if prefix > 0 {
                let bit = flip % prefix;
                let outside = inside ^ (1u128 << (127 - u32::from(bit)));
                prop_assert!(!p.matches(&Ipv6Addr::from(outside).to_string()));
            }
        }

        #[test]
        fn mapped_form_matches_exactly_the_v4_blocks_the_plain_address_does(
            addr in any::<u32>(),
            other in any::<u32>(),
            prefix in 0u8..=32,
            near in any::<bool>(),
        ) {
            // Half the blocks are built around the address so that both
            // outcomes are exercised.
            let base = if near { addr } else { other };
            let p = pat(&format!("{}/{prefix}", Ipv4Addr::from(base & mask_v4(prefix))));
            let plain = Ipv4Addr::from(addr);
            let mapped = plain.to_ipv6_mapped();
            let want = p.matches(&plain.to_string());
            prop_assert_eq!(p.matches(&mapped.to_string()), want);
            let bracketed = format!("[{mapped}]");
            let dotted_quad = format!("::ffff:{plain}");
            prop_assert_eq!(p.matches(&bracketed), want);
            prop_assert_eq!(p.matches(&dotted_quad), want);
            if near {
                prop_assert!(want);
            }
        }

        #[test]
        fn display_parse_round_trips_for_blocks(
            (net4, p4) in v4_block(),
            (net6, p6) in v6_block(),
        ) {
            for p in [
                HostPattern::Net(IpNet::new(IpAddr::V4(net4.into()), p4).unwrap()),
                HostPattern::Net(IpNet::new(IpAddr::V6(net6.into()), p6).unwrap()),
            ] {
                prop_assert_eq!(pat(&p.to_string()), p);
            }
        }

        #[test]
        fn names_match_themselves_in_any_case(name in "[a-z][a-z0-9-]{0,10}(\\.[a-z0-9-]{1,10}){0,3}") {
            let p = pat(&name);
            prop_assert!(p.matches(&name));
            prop_assert!(p.matches(&name.to_ascii_uppercase()));
            let dotted = format!("{name}.");
            prop_assert!(p.matches(&dotted));
            let longer = format!("{name}x");
            prop_assert!(!p.matches(&longer));
        }
    }
}
