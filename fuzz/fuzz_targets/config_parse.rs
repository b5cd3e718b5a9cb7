//! The config parser and validator: `Config::from_sources` over arbitrary
//! text (a main file and drop-ins, split at NUL bytes), `warnings()`, and the
//! value types rules are written in.
//!
//! Properties beyond "no panic":
//! - an accepted configuration is accepted again from the same sources, with
//!   the same hash and the same rules (the hash is deterministic);
//! - every condition's values in an accepted config (Span / Glob /
//!   HostPattern / Window) re-parse from their Display to equal values;
//! - each line of the input, tried as a lone value of each type, round-trips
//!   the same way when it parses; a span is at most `Span::MAX`; a block
//!   contains its own first address (also in IPv4-mapped form for IPv4
//!   blocks); the line with every character escaped is a glob that matches
//!   the line itself, also between stars.
#![no_main]

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use stepup_config::hostpattern::ParsedRhost;
use stepup_config::{Config, Glob, HostPattern, Span, Window};

fn round_trips<T>(value: &T, what: &str)
where
    T: FromStr + Display + PartialEq + std::fmt::Debug,
    T::Err: Display,
{
    let shown = value.to_string();
    match shown.parse::<T>() {
        Ok(again) => assert_eq!(&again, value, "{what} {shown:?} re-parsed differently"),
        Err(e) => panic!("{what} {value:?} displays as {shown:?}, which does not parse: {e}"),
    }
}

fn lone_values(line: &str) {
    let v = line.trim().trim_matches('"');
    if v.len() > 200 {
        return;
    }
    if let Ok(span) = v.parse::<Span>() {
        round_trips(&span, "span");
        assert!(span <= Span::MAX, "span {v:?} over the maximum");
    }
    if let Ok(glob) = v.parse::<Glob>() {
        round_trips(&glob, "glob");
        let _ = glob.matches(v);
        let _ = glob.matches("/dev/pts/0");
    }
    escaped_glob_matches_itself(v);
    if let Ok(pattern) = v.parse::<HostPattern>() {
        round_trips(&pattern, "host pattern");
        let _ = pattern.matches_parsed(&ParsedRhost::new(v));
        let _ = pattern.matches_parsed(&ParsedRhost::new("10.1.2.3"));
        block_contains_its_first_address(&pattern);
    }
    if let Ok(window) = v.parse::<Window>() {
        round_trips(&window, "window");
        for day in 0..7 {
            let _ = window.contains_local(day, 0);
            let _ = window.contains_local(day, 1439);
        }
    }
    // Arbitrary rhosts against fixed patterns.
    let parsed = ParsedRhost::new(v);
    for p in ["10.0.0.0/8", "2001:db8::/32", "*.example.org", "::ffff:192.0.2.0/120"] {
        if let Ok(pattern) = p.parse::<HostPattern>() {
            let _ = pattern.matches_parsed(&parsed);
        }
    }
}

fn escaped_glob_matches_itself(v: &str) {
    if v.is_empty() {
        return;
    }
    let escaped: String = v.chars().flat_map(|c| ['\\', c]).collect();
    for pattern in [escaped.clone(), format!("*{escaped}*"), format!("?*{escaped}")] {
        let glob = pattern.parse::<Glob>().expect("an escaped text is a glob");
        let text = if pattern.starts_with('?') { format!("x{v}") } else { v.to_owned() };
        assert!(glob.matches(&text), "{pattern:?} does not match {text:?}");
    }
}

/// A block's Display starts with its first address (no host bits are set),
/// which it contains; an IPv4 block also contains its IPv4-mapped form.
fn block_contains_its_first_address(pattern: &HostPattern) {
    let HostPattern::Net(net) = pattern else {
        return;
    };
    let first = net.addr();
    assert!(pattern.matches(&first.to_string()), "{pattern} misses {first}");
    if let std::net::IpAddr::V4(v4) = first {
        let mapped = v4.to_ipv6_mapped().to_string();
        assert!(pattern.matches(&mapped), "{pattern} misses {mapped}");
        assert!(pattern.matches(&format!("[{mapped}]")), "{pattern} misses [{mapped}]");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines().take(64) {
        lone_values(line);
    }
    let sources: Vec<(PathBuf, String)> = text
        .split('\0')
        .take(8)
        .enumerate()
        .map(|(i, part)| {
            let path = if i == 0 {
                PathBuf::from("/etc/stepup/stepup.toml")
            } else {
                PathBuf::from(format!("/etc/stepup/policy.d/{i:02}.toml"))
            };
            (path, part.to_owned())
        })
        .collect();
    match Config::from_sources(&sources) {
        Ok(config) => {
            let again = Config::from_sources(&sources).expect("accepted once, refused the second time");
            assert_eq!(config.hash, again.hash, "hash is not deterministic");
            assert_eq!(config.hash.len(), 64);
            assert_eq!(config.rules.len(), again.rules.len());
            for (a, b) in config.rules.iter().zip(&again.rules) {
                assert_eq!(a.name, b.name);
                assert_eq!(a.origin, b.origin);
            }
            for w in config.warnings() {
                let _ = w.to_string();
            }
            for rule in config.rules.iter().chain(std::iter::once(&config.fallback)) {
                round_trips(&rule.grace, "grace");
                // Each condition's own view of its values.
                for condition in rule.when.iter() {
                    if let Err(e) = condition.check_round_trip() {
                        panic!("{}: {e}", condition.key());
                    }
                }
                let _ = config.subject_item(&rule.name);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
