//! Matching an attempt against tty globs and rhost patterns allocates
//! nothing: the policy is evaluated on every PAM call, and these matchers run
//! once per pattern per rule. Counted with dhat's heap profiler (its own
//! test binary, since it replaces the global allocator).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use stepup_config::hostpattern::ParsedRhost;
use stepup_config::{Glob, HostPattern};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const GLOBS: &[&str] = &[
    "/dev/pts/*",
    "tty[1-6]",
    "[!0-9]*",
    "*sudo *--user=*",
    "a*😀?",
    "\\*",
];
const TTYS: &[&str] = &[
    "/dev/pts/3",
    "tty7",
    "ssh",
    "",
    "/usr/bin/sudo -u root --user=alice /bin/sh",
    "/dev/pts/é",
    "a€€😀x",
];
const PATTERNS: &[&str] = &[
    "10.0.0.0/8",
    "192.0.2.7",
    "2001:db8::/32",
    "::ffff:192.0.2.0/120",
    "bastion.example.com",
];
const RHOSTS: &[&str] = &[
    "10.1.2.3",
    "::ffff:192.0.2.9",
    "[2001:db8::1]",
    "fe80::1%eth0",
    "BASTION.example.com.",
    "192.0.2.7",
    "",
    "[not-an-address]",
];

#[test]
fn matching_does_not_allocate() {
    // On a failed assertion dhat saves its profile: not into the source tree.
    let _profiler = dhat::Profiler::builder()
        .testing()
        .file_name(std::env::temp_dir().join("stepup-config-alloc-free-dhat.json"))
        .build();
    let globs: Vec<Glob> = GLOBS.iter().map(|g| g.parse().unwrap()).collect();
    let patterns: Vec<HostPattern> = PATTERNS.iter().map(|p| p.parse().unwrap()).collect();

    let before = dhat::HeapStats::get();
    let mut outcomes = [0usize; 2];
    for tty in TTYS {
        for glob in &globs {
            outcomes[usize::from(glob.matches(tty))] += 1;
        }
    }
    for rhost in RHOSTS {
        let parsed = ParsedRhost::new(rhost);
        for pattern in &patterns {
            outcomes[usize::from(pattern.matches_parsed(&parsed))] += 1;
        }
    }
    let after = dhat::HeapStats::get();

    dhat::assert_eq!(after.total_blocks, before.total_blocks);
    // Both outcomes happened (so every matcher ran its whole loop somewhere).
    dhat::assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
