//! Table-driven tests of policy evaluation through [`decide`] and [`explain`].
//!
//! Every case goes through both entry points: `decide` must pick the first
//! rule that `explain` reports as matched (or the fallback), so each table
//! checks the short-circuiting and the tracing evaluator against each other.

use std::collections::HashMap;
use std::path::Path;

use jiff::Timestamp;
use stepup_config::{Action, Config, DEFAULT_RUSER_SERVICES, HostPattern, Scope};

use super::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Monday 2026-01-05, 10:00 in Paris (CET, UTC+1).
const NOW: &str = "2026-01-05T09:00:00Z";
const DAY: u64 = 86_400;

/// `[defaults]` for most cases: deny when nothing matches, Paris time.
const HEAD: &str = "[defaults]\naction = \"deny\"\ntime_zone = \"Europe/Paris\"\n";

fn config(toml: &str) -> Config {
    Config::from_str_named(Path::new("stepup.toml"), toml)
        .unwrap_or_else(|e| panic!("test config does not parse: {e}\n--- config ---\n{toml}"))
}

/// [`HEAD`] and one rule named `r` (action allow) with these condition lines.
fn one_rule(when: &str) -> Config {
    config(&format!(
        "{HEAD}\n[[rule]]\nname = \"r\"\naction = \"allow\"\n{when}\n"
    ))
}

fn ts(rfc3339: &str) -> Timestamp {
    rfc3339
        .parse()
        .unwrap_or_else(|e| panic!("bad timestamp {rfc3339:?}: {e}"))
}

fn secs(t: Timestamp) -> u64 {
    u64::try_from(t.as_second()).expect("timestamp after 1970")
}

fn now() -> Timestamp {
    ts(NOW)
}

fn now_secs() -> u64 {
    secs(now())
}

fn ctx(service: &str, user: &str, tty: &str, rhost: &str) -> AttemptContext {
    AttemptContext {
        service: service.into(),
        user: user.into(),
        ruser: String::new(),
        tty: tty.into(),
        rhost: rhost.into(),
        command: None,
        login_key: None,
    }
}

fn ctx_ruser(service: &str, user: &str, ruser: &str) -> AttemptContext {
    AttemptContext {
        ruser: ruser.into(),
        ..ctx(service, user, "/dev/pts/0", "")
    }
}

/// The usual attempt: alice running sudo on a pseudo-terminal, locally.
fn sudo() -> AttemptContext {
    ctx("sudo", "alice", "/dev/pts/0", "")
}

fn origin(rhost: &str, remote: bool, started: Option<i64>) -> Origin {
    Origin {
        rhost: rhost.into(),
        rhost_source: if rhost.is_empty() {
            "none"
        } else {
            "PAM_RHOST"
        }
        .into(),
        remote,
        session_started: started,
        session_source: if started.is_some() { "utmp" } else { "none" }.into(),
    }
}

fn local() -> Origin {
    origin("", false, None)
}

fn from(rhost: &str) -> Origin {
    origin(rhost, !rhost.is_empty(), None)
}

/// The attempt as the daemon builds it: the subject is PAM_RUSER for `su`.
fn attempt<'a>(ctx: &'a AttemptContext, origin: &'a Origin, now: Timestamp) -> Attempt<'a> {
    let subject = if DEFAULT_RUSER_SERVICES.contains(&ctx.service.as_str()) {
        &ctx.ruser
    } else {
        &ctx.user
    };
    Attempt {
        context: ctx,
        subject,
        origin,
        now,
    }
}

/// One call the evaluator made to [`Lookups`], with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Groups(String),
    SourceLastSeen {
        subject: String,
        rhost: String,
    },
    FailuresSince {
        subject: String,
        since: u64,
    },
    LastSuccess {
        subject: String,
        since: u64,
        scope: Scope,
    },
}

impl Call {
    fn is_history(&self) -> bool {
        !matches!(self, Self::Groups(_))
    }
}

/// In-memory [`Lookups`] that records every call.
#[derive(Default)]
struct Fake {
    /// User → groups; a user not in the map is unknown to NSS.
    groups: HashMap<String, Vec<String>>,
    /// (subject, rhost) → last time let in from there.
    seen: HashMap<(String, String), u64>,
    /// Times of failed step-ups (of any subject).
    failures: Vec<u64>,
    /// Successful step-ups: scope and time.
    successes: Vec<(Scope, u64)>,
    /// Every lookup fails with this message.
    error: Option<&'static str>,
    calls: Vec<Call>,
}

impl Fake {
    /// alice is in wheel, bob in users and docker, root in root; anyone
    /// else (mallory) is unknown to NSS.
    fn new() -> Self {
        let groups = [
            ("alice", &["alice", "wheel"][..]),
            ("bob", &["bob", "users", "docker"][..]),
            ("root", &["root"][..]),
            ("nogroups", &[][..]),
        ]
        .into_iter()
        .map(|(u, gs)| (u.to_owned(), gs.iter().map(|g| (*g).to_owned()).collect()))
        .collect();
        Self {
            groups,
            ..Self::default()
        }
    }

    fn failing(message: &'static str) -> Self {
        Self {
            error: Some(message),
            ..Self::new()
        }
    }

    fn fail(&self) -> Result<(), String> {
        match self.error {
            Some(e) => Err(e.to_owned()),
            None => Ok(()),
        }
    }
}

impl Lookups for Fake {
    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String> {
        self.calls.push(Call::Groups(user.into()));
        self.fail()?;
        Ok(self.groups.get(user).cloned())
    }

    fn source_last_seen(&mut self, subject: &str, rhost: &str) -> Result<Option<u64>, String> {
        self.calls.push(Call::SourceLastSeen {
            subject: subject.into(),
            rhost: rhost.into(),
        });
        self.fail()?;
        Ok(self
            .seen
            .get(&(subject.to_owned(), rhost.to_owned()))
            .copied())
    }

    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String> {
        self.calls.push(Call::FailuresSince {
            subject: subject.into(),
            since,
        });
        self.fail()?;
        let n = self.failures.iter().filter(|t| **t >= since).count();
        Ok(u64::try_from(n).expect("count fits"))
    }

    fn last_success(
        &mut self,
        subject: &str,
        since: u64,
        scope: Scope,
        _attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        self.calls.push(Call::LastSuccess {
            subject: subject.into(),
            since,
            scope,
        });
        self.fail()?;
        Ok(self
            .successes
            .iter()
            .filter(|(s, t)| *s == scope && *t >= since)
            .map(|(_, t)| *t)
            .max())
    }
}

/// Evaluate with both `decide` and `explain` and check they agree: `decide`
/// picks the first rule `explain` reports matched, else the fallback; a rule
/// is matched exactly when all its recorded conditions hold. Returns the
/// decided rule's name and the trace.
fn run(
    config: &Config,
    ctx: &AttemptContext,
    origin: &Origin,
    now: Timestamp,
    fake: &mut Fake,
) -> (String, Vec<RuleTrace>) {
    let a = attempt(ctx, origin, now);
    let decided = decide(config, &a, fake).expect("decide");
    let (explained, traces) = explain(config, &a, fake).expect("explain");
    assert_eq!(
        traces.len(),
        config.rules.len(),
        "explain traces every rule"
    );
    for (trace, rule) in traces.iter().zip(&config.rules) {
        assert_eq!(trace.rule, rule.name);
        assert_eq!(trace.origin, rule.origin);
        assert_eq!(
            trace.matched,
            trace.conditions.iter().all(|c| c.holds),
            "rule {} matched iff all its conditions hold: {:?}",
            rule.name,
            trace.conditions
        );
    }
    let first = traces
        .iter()
        .position(|t| t.matched)
        .map_or(&config.fallback, |i| &config.rules[i]);
    assert_eq!(
        decided.name, first.name,
        "decide = first matched in explain"
    );
    assert_eq!(
        explained.name, first.name,
        "explain's verdict = its first match"
    );
    assert!(
        std::ptr::eq(decided, first),
        "decide returns the config's own rule"
    );
    (decided.name.clone(), traces)
}

/// Does the single rule `r` with `when` match? Also checks the fallback is
/// taken otherwise, and returns the rule's trace.
fn eval(
    when: &str,
    ctx: &AttemptContext,
    origin: &Origin,
    now: Timestamp,
    fake: &mut Fake,
) -> RuleTrace {
    let config = one_rule(when);
    let (name, mut traces) = run(&config, ctx, origin, now, fake);
    let trace = traces.pop().expect("one trace");
    if trace.matched {
        assert_eq!(name, "r");
    } else {
        assert_eq!(name, "(default)");
    }
    trace
}

/// [`eval`] with the standard fake at [`NOW`]; whether the rule matched.
fn holds(when: &str, ctx: &AttemptContext, origin: &Origin) -> bool {
    eval(when, ctx, origin, now(), &mut Fake::new()).matched
}

/// The trace entry of `condition` (which must be there exactly once).
fn cond<'t>(trace: &'t RuleTrace, condition: &str) -> &'t ConditionTrace {
    let mut found = trace.conditions.iter().filter(|c| c.condition == condition);
    let c = found
        .next()
        .unwrap_or_else(|| panic!("no {condition} in {:?}", trace.conditions));
    assert!(found.next().is_none(), "{condition} recorded twice");
    c
}

fn assert_mentions(detail: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            detail.contains(part),
            "detail {detail:?} should mention {part:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Conditions on the PAM items
// ---------------------------------------------------------------------------

#[test]
fn service_and_not_service() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"service = ["sudo", "su"]"#, "sudo", true),
        (r#"service = ["sudo", "su"]"#, "su", true),
        (r#"service = ["sudo", "su"]"#, "sshd", false),
        (r#"service = ["sudo", "su"]"#, "sudo-i", false),
        (r#"service = ["sudo", "su"]"#, "SUDO", false),
        (r#"service = ["sudo", "su"]"#, "", false),
        (r#"not_service = ["sshd"]"#, "sudo", true),
        (r#"not_service = ["sshd"]"#, "sshd", false),
        (r#"not_service = ["sshd", "login"]"#, "login", false),
        (r#"not_service = ["sshd"]"#, "", true),
        (
            "service = [\"sudo\", \"sshd\"]\nnot_service = [\"sshd\"]",
            "sshd",
            false,
        ),
        (
            "service = [\"sudo\", \"sshd\"]\nnot_service = [\"sshd\"]",
            "sudo",
            true,
        ),
    ];
    for &(when, service, want) in cases {
        let c = ctx(service, "alice", "/dev/pts/0", "");
        assert_eq!(
            holds(when, &c, &local()),
            want,
            "{when} / service {service:?}"
        );
    }
}

#[test]
fn user_not_user_and_ruser() {
    let cases: &[(&str, &str, &str, bool)] = &[
        // (when, user, ruser, holds)
        (r#"user = ["root"]"#, "root", "alice", true),
        (r#"user = ["root"]"#, "alice", "", false),
        (r#"user = ["root"]"#, "Root", "", false),
        (r#"user = ["root", "alice"]"#, "alice", "", true),
        (r#"not_user = ["root"]"#, "alice", "", true),
        (r#"not_user = ["root"]"#, "root", "alice", false),
        (r#"ruser = ["alice"]"#, "root", "alice", true),
        (r#"ruser = ["alice"]"#, "root", "bob", false),
        // A service that does not report PAM_RUSER: never in a list.
        (r#"ruser = ["alice"]"#, "alice", "", false),
        // ruser is PAM_RUSER only: PAM_USER being in the list does not count.
        (r#"ruser = ["root"]"#, "root", "alice", false),
        (
            "user = [\"root\"]\nruser = [\"alice\", \"bob\"]",
            "root",
            "bob",
            true,
        ),
        (
            "user = [\"root\"]\nruser = [\"alice\", \"bob\"]",
            "root",
            "carol",
            false,
        ),
    ];
    for &(when, user, ruser, want) in cases {
        let c = ctx_ruser("su", user, ruser);
        assert_eq!(
            holds(when, &c, &local()),
            want,
            "{when} / user {user:?} ruser {ruser:?}"
        );
    }
}

#[test]
fn group_and_not_group_with_unknown_user() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"group = ["wheel"]"#, "alice", true),
        (r#"group = ["wheel"]"#, "bob", false),
        (r#"group = ["wheel", "docker"]"#, "bob", true),
        (r#"group = ["wheel"]"#, "nogroups", false),
        // Unknown to NSS: neither group nor not_group holds.
        (r#"group = ["wheel"]"#, "mallory", false),
        (r#"not_group = ["wheel"]"#, "mallory", false),
        (r#"not_group = ["wheel"]"#, "alice", false),
        (r#"not_group = ["wheel"]"#, "bob", true),
        (r#"not_group = ["wheel"]"#, "nogroups", true),
        (r#"not_group = ["wheel", "docker"]"#, "bob", false),
        (
            "group = [\"users\"]\nnot_group = [\"docker\"]",
            "bob",
            false,
        ),
        (
            "group = [\"alice\"]\nnot_group = [\"docker\"]",
            "alice",
            true,
        ),
    ];
    for &(when, user, want) in cases {
        let c = ctx("sudo", user, "/dev/pts/0", "");
        let mut fake = Fake::new();
        let trace = eval(when, &c, &local(), now(), &mut fake);
        assert_eq!(trace.matched, want, "{when} / user {user:?}");
        // NSS is asked about PAM_USER, once per evaluation (decide, explain).
        assert_eq!(
            fake.calls,
            vec![Call::Groups(user.into()); 2],
            "{when} / {user}"
        );
        if user == "mallory" {
            for c in &trace.conditions {
                assert_mentions(&c.detail, &["\"mallory\"", "unknown to NSS"]);
            }
        }
    }
}

#[test]
fn unknown_user_fails_both_group_conditions_in_explain() {
    let c = ctx("sudo", "mallory", "/dev/pts/0", "");
    let trace = eval(
        "group = [\"wheel\"]\nnot_group = [\"wheel\"]",
        &c,
        &local(),
        now(),
        &mut Fake::new(),
    );
    assert!(!trace.matched);
    assert!(!cond(&trace, "group").holds);
    assert!(!cond(&trace, "not_group").holds);
}

#[test]
fn groups_are_those_of_pam_user_not_the_subject() {
    // su: PAM_USER is the target (root), the subject is the caller (alice).
    let c = ctx_ruser("su", "root", "alice");
    let mut fake = Fake::new();
    let trace = eval(r#"group = ["wheel"]"#, &c, &local(), now(), &mut fake);
    assert!(!trace.matched, "root is not in wheel, alice is");
    assert!(
        fake.calls
            .iter()
            .all(|call| *call == Call::Groups("root".into()))
    );
}

#[test]
fn tty_and_not_tty_globs() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"tty = ["/dev/pts/*"]"#, "/dev/pts/3", true),
        (r#"tty = ["/dev/pts/*"]"#, "/dev/pts/", true),
        (r#"tty = ["/dev/pts/*"]"#, "/dev/tty1", false),
        (r#"tty = ["/dev/pts/*"]"#, "ssh", false),
        // A missing PAM_TTY is the empty string.
        (r#"tty = ["/dev/pts/*"]"#, "", false),
        (r#"tty = ["*"]"#, "", true),
        (r#"tty = ["*"]"#, "/dev/pts/0", true),
        (r#"tty = ["?*"]"#, "", false),
        (r#"tty = ["tty[1-6]"]"#, "tty3", true),
        (r#"tty = ["tty[1-6]"]"#, "tty7", false),
        (r#"tty = ["tty[1-6]"]"#, "tty10", false),
        (r#"tty = ["tty[!1-6]"]"#, "tty7", true),
        (r#"tty = ["ssh", "/dev/pts/*"]"#, "ssh", true),
        (r#"tty = ["/dev/pts/?"]"#, "/dev/pts/12", false),
        (r#"not_tty = ["/dev/pts/*"]"#, "", true),
        (r#"not_tty = ["/dev/pts/*"]"#, "/dev/pts/0", false),
        (r#"not_tty = ["/dev/pts/*"]"#, "/dev/tty1", true),
        (r#"not_tty = ["*"]"#, "", false),
        (r#"not_tty = ["ssh", ":*"]"#, ":0", false),
        ("tty = [\"*\"]\nnot_tty = [\"ssh\"]", "ssh", false),
        ("tty = [\"*\"]\nnot_tty = [\"ssh\"]", "", true),
    ];
    for &(when, tty, want) in cases {
        let c = ctx("sudo", "alice", tty, "");
        let trace = eval(when, &c, &local(), now(), &mut Fake::new());
        assert_eq!(trace.matched, want, "{when} / tty {tty:?}");
        for c in &trace.conditions {
            assert_mentions(&c.detail, &[&format!("tty {tty:?}")]);
        }
    }
}

#[test]
fn remote_comes_from_the_origin() {
    let cases: &[(&str, Origin, bool)] = &[
        ("remote = true", from("192.0.2.1"), true),
        ("remote = true", local(), false),
        ("remote = false", local(), true),
        ("remote = false", from("192.0.2.1"), false),
        // Remote without an address (tty "ssh"), as the daemon derives it.
        ("remote = true", origin("", true, None), true),
        ("remote = false", origin("", true, None), false),
    ];
    for (when, o, want) in cases {
        let c = ctx("sshd", "alice", "ssh", "");
        assert_eq!(holds(when, &c, o), *want, "{when} / {o:?}");
    }
    // The PAM item alone does not make an attempt remote: Origin decides.
    let c = ctx("sudo", "alice", "/dev/pts/0", "192.0.2.1");
    assert!(!holds("remote = true", &c, &local()));
    // And an rhost learned from utmp makes a local-looking PAM item remote.
    let o = Origin {
        rhost_source: "utmp".into(),
        ..from("192.0.2.1")
    };
    let trace = eval("remote = true", &sudo(), &o, now(), &mut Fake::new());
    assert!(trace.matched);
    assert_mentions(
        &cond(&trace, "remote").detail,
        &["attempt is remote", "192.0.2.1", "utmp", "wants remote"],
    );
}

// ---------------------------------------------------------------------------
// Source addresses
// ---------------------------------------------------------------------------

#[test]
fn rhost_in_ipv4_cidr_boundaries() {
    let cases: &[(&str, &str, bool)] = &[
        ("192.0.2.0/24", "192.0.2.0", true),
        ("192.0.2.0/24", "192.0.2.255", true),
        ("192.0.2.0/24", "192.0.2.77", true),
        ("192.0.2.0/24", "192.0.1.255", false),
        ("192.0.2.0/24", "192.0.3.0", false),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("172.16.0.0/12", "172.31.255.255", true),
        ("172.16.0.0/12", "172.32.0.0", false),
        ("172.16.0.0/12", "172.15.255.255", false),
        ("198.51.100.128/25", "198.51.100.128", true),
        ("198.51.100.128/25", "198.51.100.127", false),
        ("198.51.100.4/31", "198.51.100.5", true),
        ("198.51.100.4/31", "198.51.100.6", false),
        // A bare address is a /32.
        ("203.0.113.5", "203.0.113.5", true),
        ("203.0.113.5", "203.0.113.4", false),
        ("203.0.113.5", "203.0.113.6", false),
        ("203.0.113.5/32", "203.0.113.5", true),
        ("0.0.0.0/0", "255.255.255.255", true),
        ("0.0.0.0/0", "0.0.0.0", true),
        // Families: an IPv4 block does not hold for an IPv6 rhost…
        ("0.0.0.0/0", "2001:db8::1", false),
        // …except an IPv4-mapped one.
        ("192.0.2.0/24", "::ffff:192.0.2.7", true),
        ("192.0.2.0/24", "::ffff:192.0.3.7", false),
        // Names are never resolved.
        ("192.0.2.0/24", "host.example.com", false),
        ("0.0.0.0/0", "localhost", false),
        ("192.0.2.0/24", "", false),
        // Junk is no address.
        ("192.0.2.0/24", "192.0.2.1.5", false),
        ("192.0.2.0/24", " 192.0.2.1", false),
    ];
    for &(block, rhost, want) in cases {
        let when = format!("rhost_in = [{block:?}]");
        assert_eq!(
            holds(&when, &sudo(), &from(rhost)),
            want,
            "{when} / rhost {rhost:?}"
        );
    }
}

#[test]
fn rhost_in_ipv6_cidr_boundaries() {
    let cases: &[(&str, &str, bool)] = &[
        ("2001:db8::/32", "2001:db8::1", true),
        ("2001:db8::/32", "2001:db8::", true),
        (
            "2001:db8::/32",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            true,
        ),
        (
            "2001:db8::/32",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            false,
        ),
        ("2001:db8::/32", "2001:db9::", false),
        ("2001:db8::/32", "2001:DB8::abcd", true),
        ("2001:db8::/32", "[2001:db8::1]", true),
        ("2001:db8::/32", "192.0.2.1", false),
        ("2001:db8::/32", "[2001:db8::1", false),
        (
            "2001:db8:0:1::/64",
            "2001:db8:0:1:ffff:ffff:ffff:ffff",
            true,
        ),
        ("2001:db8:0:1::/64", "2001:db8:0:2::", false),
        ("2001:db8::/127", "2001:db8::1", true),
        ("2001:db8::/127", "2001:db8::2", false),
        ("2001:db8::5", "2001:db8::5", true),
        ("2001:db8::5", "2001:db8::4", false),
        ("2001:db8::5/128", "2001:db8:0:0:0:0:0:5", true),
        ("fe80::/10", "fe80::1%eth0", true),
        ("fe80::/10", "febf:ffff::1", true),
        ("fe80::/10", "fec0::1", false),
        ("::/0", "2001:db8::1", true),
        ("::/0", "", false),
        ("::1", "::1", true),
        ("::1", "127.0.0.1", false),
        // An IPv4 rhost holds for an IPv6 block of IPv4-mapped addresses.
        ("::ffff:192.0.2.0/120", "192.0.2.9", true),
        ("::ffff:192.0.2.0/120", "192.0.3.9", false),
    ];
    for &(block, rhost, want) in cases {
        let when = format!("rhost_in = [{block:?}]");
        assert_eq!(
            holds(&when, &sudo(), &from(rhost)),
            want,
            "{when} / rhost {rhost:?}"
        );
    }
}

#[test]
fn rhost_names_match_only_literal_names() {
    let cases: &[(&str, &str, bool)] = &[
        ("bastion.example.com", "bastion.example.com", true),
        ("bastion.example.com", "BASTION.Example.COM", true),
        ("bastion.example.com", "bastion.example.com.", true),
        ("bastion.example.com.", "bastion.example.com", true),
        ("bastion.example.com", "evil-bastion.example.com", false),
        ("bastion.example.com", "bastion.example.com.evil.net", false),
        ("bastion.example.com", "bastion", false),
        // The name's address is not looked up.
        ("bastion.example.com", "192.0.2.1", false),
        ("localhost", "127.0.0.1", false),
        ("localhost", "::1", false),
        ("bastion.example.com", "", false),
    ];
    for &(name, rhost, want) in cases {
        let when = format!("rhost_in = [{name:?}]");
        assert_eq!(
            holds(&when, &sudo(), &from(rhost)),
            want,
            "{when} / rhost {rhost:?}"
        );
        let when = format!("rhost_not_in = [{name:?}]");
        assert_eq!(
            holds(&when, &sudo(), &from(rhost)),
            !want,
            "{when} / rhost {rhost:?}"
        );
    }
}

#[test]
fn rhost_not_in_and_empty_rhost() {
    let cases: &[(&str, &str, bool, bool)] = &[
        // (list, rhost, rhost_in holds, rhost_not_in holds)
        (r#"["10.0.0.0/8"]"#, "10.1.2.3", true, false),
        (r#"["10.0.0.0/8"]"#, "192.0.2.1", false, true),
        (r#"["10.0.0.0/8"]"#, "name.example", false, true),
        // No source address: rhost_in never holds, rhost_not_in always does.
        (r#"["10.0.0.0/8"]"#, "", false, true),
        (r#"["0.0.0.0/0", "::/0"]"#, "", false, true),
        (r#"["localhost"]"#, "", false, true),
        (r#"["0.0.0.0/0", "::/0"]"#, "2001:db8::1", true, false),
        (
            r#"["10.0.0.0/8", "2001:db8::/32"]"#,
            "2001:db8::1",
            true,
            false,
        ),
        (
            r#"["10.0.0.0/8", "2001:db8::/32"]"#,
            "2001:db9::1",
            false,
            true,
        ),
    ];
    for &(list, rhost, want_in, want_not_in) in cases {
        let o = from(rhost);
        let when = format!("rhost_in = {list}");
        assert_eq!(holds(&when, &sudo(), &o), want_in, "{when} / {rhost:?}");
        let when = format!("rhost_not_in = {list}");
        assert_eq!(holds(&when, &sudo(), &o), want_not_in, "{when} / {rhost:?}");
    }
}

#[test]
fn rhost_conditions_use_the_origin_not_the_pam_item() {
    // PAM_RHOST empty, the address learned from utmp.
    let o = Origin {
        rhost_source: "utmp".into(),
        ..from("10.1.2.3")
    };
    let trace = eval(
        r#"rhost_in = ["10.0.0.0/8"]"#,
        &sudo(),
        &o,
        now(),
        &mut Fake::new(),
    );
    assert!(trace.matched);
    assert_mentions(
        &cond(&trace, "rhost_in").detail,
        &["\"10.1.2.3\"", "(utmp)", "is in", "[10.0.0.0/8]"],
    );
    // PAM_RHOST set but the daemon's Origin says otherwise: Origin wins.
    let c = ctx("sshd", "alice", "ssh", "10.1.2.3");
    let trace = eval(
        r#"rhost_not_in = ["10.0.0.0/8"]"#,
        &c,
        &from("192.0.2.1"),
        now(),
        &mut Fake::new(),
    );
    assert!(trace.matched);
}

#[test]
fn rhost_detail_names_the_address_and_its_source() {
    let o = Origin {
        rhost_source: "utmp".into(),
        ..from("203.0.113.9")
    };
    let trace = eval(
        "rhost_in = [\"10.0.0.0/8\", \"bastion.example.com\"]\nrhost_not_in = [\"203.0.113.0/24\"]",
        &sudo(),
        &o,
        now(),
        &mut Fake::new(),
    );
    assert!(!trace.matched);
    let d = &cond(&trace, "rhost_in").detail;
    assert_mentions(
        d,
        &[
            "203.0.113.9",
            "utmp",
            "is not in",
            "10.0.0.0/8",
            "bastion.example.com",
        ],
    );
    let d = &cond(&trace, "rhost_not_in").detail;
    assert_mentions(d, &["203.0.113.9", "utmp", "is in", "203.0.113.0/24"]);
}

// ---------------------------------------------------------------------------
// Time windows
// ---------------------------------------------------------------------------

/// Does `when` (evaluated in Europe/Paris from the defaults) hold at `at`?
fn holds_at(when: &str, at: &str) -> bool {
    eval(when, &sudo(), &local(), ts(at), &mut Fake::new()).matched
}

#[test]
fn time_in_office_hours_in_paris() {
    let office = r#"time_in = ["Mon-Fri 08:00-18:00"]"#;
    let cases: &[(&str, bool)] = &[
        // Winter, CET = UTC+1. Monday 2026-01-05.
        ("2026-01-05T07:00:00Z", true),  // 08:00, start inclusive
        ("2026-01-05T06:59:59Z", false), // 07:59:59
        ("2026-01-05T16:59:59Z", true),  // 17:59:59
        ("2026-01-05T17:00:00Z", false), // 18:00, end exclusive
        ("2026-01-05T17:30:00Z", false), // 18:30 (17:30 UTC would be inside in UTC)
        ("2026-01-09T12:00:00Z", true),  // Friday
        ("2026-01-10T12:00:00Z", false), // Saturday
        ("2026-01-11T12:00:00Z", false), // Sunday
        // Summer, CEST = UTC+2. Monday 2026-07-06.
        ("2026-07-06T06:00:00Z", true),  // 08:00
        ("2026-07-06T05:59:00Z", false), // 07:59
        ("2026-07-06T15:59:00Z", true),  // 17:59
        ("2026-07-06T16:00:00Z", false), // 18:00
        // The same UTC instant on either side of the local week boundary:
        // Sunday 23:30 UTC is Monday 00:30 in Paris.
        ("2026-01-04T23:30:00Z", false),
    ];
    for &(at, want) in cases {
        assert_eq!(holds_at(office, at), want, "{office} at {at}");
        let not = r#"time_not_in = ["Mon-Fri 08:00-18:00"]"#;
        assert_eq!(holds_at(not, at), !want, "{not} at {at}");
    }
}

#[test]
fn time_in_window_crossing_midnight() {
    let cases: &[(&str, &str, bool)] = &[
        // Every night 22:00-06:00 (CET = UTC+1).
        ("22:00-06:00", "2026-01-05T21:00:00Z", true), // Mon 22:00
        ("22:00-06:00", "2026-01-05T20:59:00Z", false), // Mon 21:59
        ("22:00-06:00", "2026-01-05T23:00:00Z", true), // Tue 00:00
        ("22:00-06:00", "2026-01-06T04:59:00Z", true), // Tue 05:59
        ("22:00-06:00", "2026-01-06T05:00:00Z", false), // Tue 06:00
        ("22:00-06:00", "2026-01-06T11:00:00Z", false), // Tue 12:00
        // Friday night only: the part after midnight belongs to Saturday.
        ("Fri 22:00-06:00", "2026-01-09T22:00:00Z", true), // Fri 23:00
        ("Fri 22:00-06:00", "2026-01-10T04:00:00Z", true), // Sat 05:00
        ("Fri 22:00-06:00", "2026-01-10T05:00:00Z", false), // Sat 06:00
        ("Fri 22:00-06:00", "2026-01-10T21:30:00Z", false), // Sat 22:30
        ("Fri 22:00-06:00", "2026-01-09T04:00:00Z", false), // Fri 05:00 (Thursday night)
        // Ending at midnight.
        ("Sun 18:00-00:00", "2026-01-11T22:59:00Z", true), // Sun 23:59
        ("Sun 18:00-00:00", "2026-01-11T23:00:00Z", false), // Mon 00:00
        ("Sun 00:00-24:00", "2026-01-10T23:00:00Z", true), // Sun 00:00
        ("Sun 00:00-24:00", "2026-01-11T22:59:59Z", true), // Sun 23:59:59
        ("Sun 00:00-24:00", "2026-01-11T23:00:00Z", false), // Mon 00:00
    ];
    for &(window, at, want) in cases {
        let when = format!("time_in = [{window:?}]");
        assert_eq!(holds_at(&when, at), want, "{when} at {at}");
        let when = format!("time_not_in = [{window:?}]");
        assert_eq!(holds_at(&when, at), !want, "{when} at {at}");
    }
}

#[test]
fn time_windows_across_dst_changes() {
    let cases: &[(&str, &str, bool)] = &[
        // Spring forward, Sunday 2026-03-29: 02:00 CET (01:00 UTC) becomes 03:00 CEST.
        ("Sun 01:00-04:00", "2026-03-29T00:00:00Z", true), // 01:00 CET
        ("Sun 01:00-04:00", "2026-03-28T23:59:59Z", false), // 00:59:59 CET
        ("Sun 01:00-04:00", "2026-03-29T00:59:59Z", true), // 01:59:59 CET
        ("Sun 01:00-04:00", "2026-03-29T01:00:00Z", true), // 03:00 CEST
        ("Sun 01:00-04:00", "2026-03-29T01:59:59Z", true), // 03:59:59 CEST
        ("Sun 01:00-04:00", "2026-03-29T02:00:00Z", false), // 04:00 CEST: only 2h long
        // The skipped hour never shows on the clock.
        ("Sun 02:00-03:00", "2026-03-29T00:59:59Z", false), // 01:59:59 CET
        ("Sun 02:00-03:00", "2026-03-29T01:00:00Z", false), // 03:00 CEST
        ("Sun 02:00-03:00", "2026-03-29T01:30:00Z", false), // 03:30 CEST
        // Office hours the Friday before (CET) and the Monday after (CEST).
        ("Mon-Fri 08:00-18:00", "2026-03-27T07:00:00Z", true), // Fri 08:00 CET
        ("Mon-Fri 08:00-18:00", "2026-03-27T06:30:00Z", false), // Fri 07:30 CET
        ("Mon-Fri 08:00-18:00", "2026-03-30T06:00:00Z", true), // Mon 08:00 CEST
        ("Mon-Fri 08:00-18:00", "2026-03-30T05:59:00Z", false), // Mon 07:59 CEST
        ("Mon-Fri 08:00-18:00", "2026-03-30T16:00:00Z", false), // Mon 18:00 CEST
        // Night window over the change: Sat 22:00 CET to Sun 06:00 CEST (7h).
        ("Sat 22:00-06:00", "2026-03-28T21:00:00Z", true), // Sat 22:00 CET
        ("Sat 22:00-06:00", "2026-03-28T20:59:00Z", false), // Sat 21:59 CET
        ("Sat 22:00-06:00", "2026-03-29T03:59:00Z", true), // Sun 05:59 CEST
        ("Sat 22:00-06:00", "2026-03-29T04:00:00Z", false), // Sun 06:00 CEST
        // Fall back, Sunday 2026-10-25: 03:00 CEST (01:00 UTC) becomes 02:00 CET.
        // The repeated hour 02:00-03:00 holds both times.
        ("Sun 02:00-03:00", "2026-10-24T23:59:59Z", false), // 01:59:59 CEST
        ("Sun 02:00-03:00", "2026-10-25T00:00:00Z", true),  // 02:00 CEST
        ("Sun 02:00-03:00", "2026-10-25T00:59:59Z", true),  // 02:59:59 CEST
        ("Sun 02:00-03:00", "2026-10-25T01:00:00Z", true),  // 02:00 CET
        ("Sun 02:00-03:00", "2026-10-25T01:59:59Z", true),  // 02:59:59 CET
        ("Sun 02:00-03:00", "2026-10-25T02:00:00Z", false), // 03:00 CET
        // Night window over the change: Sat 22:00 CEST to Sun 06:00 CET (9h).
        ("Sat 22:00-06:00", "2026-10-24T20:00:00Z", true), // Sat 22:00 CEST
        ("Sat 22:00-06:00", "2026-10-24T19:59:00Z", false), // Sat 21:59 CEST
        ("Sat 22:00-06:00", "2026-10-25T04:59:00Z", true), // Sun 05:59 CET
        ("Sat 22:00-06:00", "2026-10-25T05:00:00Z", false), // Sun 06:00 CET
        // Office hours the Monday after (CET again).
        ("Mon-Fri 08:00-18:00", "2026-10-26T07:00:00Z", true), // Mon 08:00 CET
        ("Mon-Fri 08:00-18:00", "2026-10-26T06:59:00Z", false), // Mon 07:59 CET
    ];
    for &(window, at, want) in cases {
        let when = format!("time_in = [{window:?}]");
        assert_eq!(holds_at(&when, at), want, "{when} at {at}");
        let when = format!("time_not_in = [{window:?}]");
        assert_eq!(holds_at(&when, at), !want, "{when} at {at}");
    }
}

#[test]
fn time_lists_and_both_conditions() {
    let cases: &[(&str, &str, bool)] = &[
        // Any window of the list.
        (
            r#"time_in = ["Mon-Fri 08:00-12:00", "Mon-Fri 14:00-18:00"]"#,
            "2026-01-05T14:00:00Z", // Mon 15:00
            true,
        ),
        (
            r#"time_in = ["Mon-Fri 08:00-12:00", "Mon-Fri 14:00-18:00"]"#,
            "2026-01-05T12:00:00Z", // Mon 13:00
            false,
        ),
        // time_not_in holds only outside all of them.
        (
            r#"time_not_in = ["Mon-Fri 08:00-12:00", "Mon-Fri 14:00-18:00"]"#,
            "2026-01-05T12:00:00Z",
            true,
        ),
        (
            r#"time_not_in = ["Mon-Fri 08:00-12:00", "Mon-Fri 14:00-18:00"]"#,
            "2026-01-05T10:00:00Z", // Mon 11:00
            false,
        ),
        // Office hours but not over lunch.
        (
            "time_in = [\"Mon-Fri 08:00-18:00\"]\ntime_not_in = [\"12:00-14:00\"]",
            "2026-01-05T11:30:00Z", // Mon 12:30
            false,
        ),
        (
            "time_in = [\"Mon-Fri 08:00-18:00\"]\ntime_not_in = [\"12:00-14:00\"]",
            "2026-01-05T13:00:00Z", // Mon 14:00
            true,
        ),
    ];
    for &(when, at, want) in cases {
        assert_eq!(holds_at(when, at), want, "{when} at {at}");
    }
}

#[test]
fn time_zone_of_the_rule_overrides_the_defaults() {
    let config = config(
        r#"
[defaults]
action = "deny"
time_zone = "UTC"

[[rule]]
name = "new-york"
action = "allow"
time_in = ["Mon-Fri 09:00-17:00"]
time_zone = "America/New_York"

[[rule]]
name = "utc"
action = "step_up"
time_in = ["Mon-Fri 09:00-17:00"]
"#,
    );
    // 15:00 UTC = 10:00 in New York (EST): both hold, the first decides.
    let (name, traces) = run(
        &config,
        &sudo(),
        &local(),
        ts("2026-01-05T15:00:00Z"),
        &mut Fake::new(),
    );
    assert_eq!(name, "new-york");
    assert!(traces[1].matched);
    assert_mentions(
        &cond(&traces[0], "time_in").detail,
        &[
            "Mon 10:00 in America/New_York",
            "is in",
            "Mon-Fri 09:00-17:00",
        ],
    );
    assert_mentions(&cond(&traces[1], "time_in").detail, &["Mon 15:00 in UTC"]);
    // 10:00 UTC = 05:00 in New York: only the UTC rule.
    let (name, _) = run(
        &config,
        &sudo(),
        &local(),
        ts("2026-01-05T10:00:00Z"),
        &mut Fake::new(),
    );
    assert_eq!(name, "utc");
    // 21:00 UTC = 16:00 in New York: only the New York rule.
    let (name, _) = run(
        &config,
        &sudo(),
        &local(),
        ts("2026-01-05T21:00:00Z"),
        &mut Fake::new(),
    );
    assert_eq!(name, "new-york");
    // 23:00 UTC = 18:00 in New York: neither.
    let (name, _) = run(
        &config,
        &sudo(),
        &local(),
        ts("2026-01-05T23:00:00Z"),
        &mut Fake::new(),
    );
    assert_eq!(name, "(default)");
}

#[test]
fn time_detail_shows_local_time_and_zone() {
    let trace = eval(
        "time_in = [\"Sat,Sun 00:00-24:00\"]\ntime_not_in = [\"22:00-06:00\"]",
        &sudo(),
        &local(),
        now(),
        &mut Fake::new(),
    );
    assert!(!trace.matched);
    assert_mentions(
        &cond(&trace, "time_in").detail,
        &[
            "Mon 10:00 in Europe/Paris",
            "is not in",
            "[Sat,Sun 00:00-24:00]",
        ],
    );
    let not = cond(&trace, "time_not_in");
    assert!(not.holds);
    assert_mentions(
        &not.detail,
        &["Mon 10:00 in Europe/Paris", "is not in", "22:00-06:00"],
    );
}

// ---------------------------------------------------------------------------
// History: new_rhost, recent_failures, stepped_up_within
// ---------------------------------------------------------------------------

#[test]
fn new_rhost_against_the_history() {
    const RHOST: &str = "198.51.100.7";
    let n = now_secs();
    // (rhost, (subject, seconds ago) it was last let in from RHOST, holds)
    type Case<'a> = (&'a str, Option<(&'a str, u64)>, bool);
    let cases: &[Case] = &[
        (RHOST, None, true),
        (RHOST, Some(("alice", DAY)), false),
        (RHOST, Some(("alice", 40 * DAY)), true),
        (RHOST, Some(("alice", 30 * DAY - 1)), false),
        (RHOST, Some(("alice", 30 * DAY)), false),
        (RHOST, Some(("alice", 30 * DAY + 1)), true),
        (RHOST, Some(("alice", 0)), false),
        // Someone else's history does not count.
        (RHOST, Some(("bob", DAY)), true),
        // Local attempt: no source, so nothing is new.
        ("", None, false),
        ("", Some(("alice", 40 * DAY)), false),
    ];
    for &(rhost, seen, want) in cases {
        let mut fake = Fake::new();
        if let Some((subject, ago)) = seen {
            fake.seen.insert((subject.into(), RHOST.into()), n - ago);
        }
        let o = from(rhost);
        let trace = eval(r#"new_rhost = "30d""#, &sudo(), &o, now(), &mut fake);
        assert_eq!(trace.matched, want, "rhost {rhost:?} seen {seen:?}");
        let expected: Vec<Call> = if rhost.is_empty() {
            vec![]
        } else {
            vec![
                Call::SourceLastSeen {
                    subject: "alice".into(),
                    rhost: rhost.into(),
                };
                2
            ]
        };
        assert_eq!(fake.calls, expected, "rhost {rhost:?}");
        let d = &cond(&trace, "new_rhost").detail;
        match (rhost, seen) {
            ("", _) => assert_mentions(d, &["no source address"]),
            (_, Some(("alice", ago))) => {
                assert_mentions(d, &["alice", RHOST, &format!("{ago}s ago"), "30d"]);
            }
            _ => assert_mentions(d, &["alice", "never", RHOST]),
        }
    }
}

#[test]
fn new_rhost_asks_about_the_subject() {
    // su: the subject is the caller (PAM_RUSER), not the target account.
    let mut c = ctx_ruser("su", "root", "alice");
    c.rhost = "192.0.2.1".into();
    let mut fake = Fake::new();
    fake.seen
        .insert(("alice".into(), "192.0.2.1".into()), now_secs() - DAY);
    let o = from("192.0.2.1");
    let a = attempt(&c, &o, now());
    let config = one_rule(r#"new_rhost = "7d""#);
    let rule = decide(&config, &a, &mut fake).expect("decide");
    assert_eq!(
        rule.name, "(default)",
        "alice was let in from there yesterday"
    );
    assert_eq!(
        fake.calls,
        [Call::SourceLastSeen {
            subject: "alice".into(),
            rhost: "192.0.2.1".into()
        }]
    );
}

#[test]
fn recent_failures_at_least_boundary() {
    let n = now_secs();
    let when = r#"recent_failures = { at_least = 3, within = "15m" }"#;
    let cases: &[(&[u64], bool)] = &[
        // Seconds ago of each failure.
        (&[], false),
        (&[10, 20], false),
        (&[10, 20, 30], true),
        (&[10, 20, 30, 40], true),
        // Only those the lookup counts since now − 15m.
        (&[10, 20, 901], false),
        (&[10, 20, 900], true),
    ];
    for &(ago, want) in cases {
        let mut fake = Fake::new();
        fake.failures = ago.iter().map(|a| n - a).collect();
        let trace = eval(when, &sudo(), &local(), now(), &mut fake);
        assert_eq!(trace.matched, want, "failures {ago:?} ago");
        assert_eq!(
            fake.calls,
            vec![
                Call::FailuresSince {
                    subject: "alice".into(),
                    since: n - 900,
                };
                2
            ]
        );
        let count = ago.iter().filter(|a| **a <= 900).count();
        assert_mentions(
            &cond(&trace, "recent_failures").detail,
            &[
                &format!("{count} failed step-up(s) by alice"),
                "within 15m",
                "at least 3",
            ],
        );
    }
    // at_least = 1: one failure is enough, none is not.
    let when = r#"recent_failures = { at_least = 1, within = "1h" }"#;
    let mut fake = Fake::new();
    assert!(!eval(when, &sudo(), &local(), now(), &mut fake).matched);
    assert_eq!(
        fake.calls[0],
        Call::FailuresSince {
            subject: "alice".into(),
            since: n - 3600
        }
    );
    fake.failures = vec![n - 3599];
    assert!(eval(when, &sudo(), &local(), now(), &mut fake).matched);
}

#[test]
fn stepped_up_within_each_scope() {
    let n = now_secs();
    let scopes = [
        ("tty", Scope::Tty),
        ("user", Scope::User),
        ("rhost", Scope::Rhost),
    ];
    for (name, rule_scope) in scopes {
        let when = format!(r#"stepped_up_within = {{ within = "10m", scope = "{name}" }}"#);
        for (_, success_scope) in scopes {
            let mut fake = Fake::new();
            fake.successes = vec![(success_scope, n - 60)];
            let trace = eval(&when, &sudo(), &local(), now(), &mut fake);
            let want = rule_scope == success_scope;
            assert_eq!(trace.matched, want, "{when} / success in {success_scope:?}");
            assert_eq!(
                fake.calls,
                vec![
                    Call::LastSuccess {
                        subject: "alice".into(),
                        since: n - 600,
                        scope: rule_scope,
                    };
                    2
                ],
                "{when}"
            );
            let d = &cond(&trace, "stepped_up_within").detail;
            if want {
                assert_mentions(d, &["alice stepped up 60s ago", &format!("(scope {name})")]);
            } else {
                assert_mentions(
                    d,
                    &["no step-up by alice within 10m", &format!("(scope {name})")],
                );
            }
        }
        // A success older than the window does not count.
        let mut fake = Fake::new();
        fake.successes = vec![(rule_scope, n - 601)];
        assert!(
            !eval(&when, &sudo(), &local(), now(), &mut fake).matched,
            "{when}"
        );
        fake.successes = vec![(rule_scope, n - 600)];
        assert!(
            eval(&when, &sudo(), &local(), now(), &mut fake).matched,
            "{when}"
        );
    }
}

#[test]
fn stepped_up_within_scope_defaults_to_tty() {
    let mut fake = Fake::new();
    fake.successes = vec![(Scope::Tty, now_secs() - 5)];
    let trace = eval(
        r#"stepped_up_within = { within = "1m" }"#,
        &sudo(),
        &local(),
        now(),
        &mut fake,
    );
    assert!(trace.matched);
    assert!(matches!(
        fake.calls[0],
        Call::LastSuccess {
            scope: Scope::Tty,
            ..
        }
    ));
}

/// Found by fuzzing (fuzz/regressions/policy_eval): a login-session start
/// far in the past overflowed `now - started` (a panic in debug builds, and a
/// wrapped age of 0, "a young session", in release).
#[test]
fn session_age_with_a_start_at_the_dawn_of_time_is_very_old() {
    for started in [i64::MIN, i64::MIN + 1, -(1 << 62)] {
        let o = origin("", false, Some(started));
        assert!(!holds(r#"session_age = { under = "5m" }"#, &sudo(), &o));
        assert!(holds(r#"session_age = { over = "8h" }"#, &sudo(), &o));
    }
}

#[test]
fn session_age_boundaries() {
    let n = now().as_second();
    let cases: &[(&str, Option<i64>, bool)] = &[
        // (when, session age in seconds (None: start unknown), holds)
        (r#"session_age = { over = "8h" }"#, Some(8 * 3600), true),
        (
            r#"session_age = { over = "8h" }"#,
            Some(8 * 3600 - 1),
            false,
        ),
        (r#"session_age = { over = "8h" }"#, Some(30 * 3600), true),
        (r#"session_age = { over = "8h" }"#, None, false),
        (r#"session_age = { under = "5m" }"#, Some(299), true),
        (r#"session_age = { under = "5m" }"#, Some(300), false),
        (r#"session_age = { under = "5m" }"#, Some(0), true),
        (r#"session_age = { under = "5m" }"#, None, false),
        (
            r#"session_age = { over = "1h", under = "2h" }"#,
            Some(3599),
            false,
        ),
        (
            r#"session_age = { over = "1h", under = "2h" }"#,
            Some(3600),
            true,
        ),
        (
            r#"session_age = { over = "1h", under = "2h" }"#,
            Some(7199),
            true,
        ),
        (
            r#"session_age = { over = "1h", under = "2h" }"#,
            Some(7200),
            false,
        ),
        (
            r#"session_age = { over = "1h", under = "2h" }"#,
            None,
            false,
        ),
    ];
    for &(when, age, want) in cases {
        let o = origin("", false, age.map(|a| n - a));
        let trace = eval(when, &sudo(), &o, now(), &mut Fake::new());
        assert_eq!(trace.matched, want, "{when} / age {age:?}");
        let d = &cond(&trace, "session_age").detail;
        match age {
            None => assert_mentions(d, &["unknown"]),
            Some(a) => assert_mentions(d, &[&format!("began {a}s ago"), "(utmp)"]),
        }
    }
}

// ---------------------------------------------------------------------------
// Rule order, fallback, explain vs decide
// ---------------------------------------------------------------------------

#[test]
fn first_matching_rule_wins() {
    let both = |first: &str, second: &str| {
        config(&format!(
            "{HEAD}\n[[rule]]\nname = \"{first}\"\naction = \"allow\"\nservice = [\"sudo\"]\n\n[[rule]]\nname = \"{second}\"\naction = \"deny\"\nuser = [\"alice\"]\n"
        ))
    };
    let config = both("a", "b");
    let (name, traces) = run(&config, &sudo(), &local(), now(), &mut Fake::new());
    assert_eq!(name, "a");
    assert!(
        traces[0].matched && traces[1].matched,
        "explain reports both"
    );
    let (c, o) = (sudo(), local());
    let a = attempt(&c, &o, now());
    let mut fake = Fake::new();
    assert_eq!(
        decide(&config, &a, &mut fake).expect("decide").action,
        Action::Allow
    );

    let config = both("b", "a");
    let (name, _) = run(&config, &sudo(), &local(), now(), &mut Fake::new());
    assert_eq!(name, "b");

    // A later, more specific rule does not beat an earlier general one.
    let config = config_with_rules(&[
        ("catch-all", "step_up", ""),
        (
            "alice-sudo",
            "allow",
            "service = [\"sudo\"]\nuser = [\"alice\"]",
        ),
    ]);
    let (name, _) = run(&config, &sudo(), &local(), now(), &mut Fake::new());
    assert_eq!(name, "catch-all");
    assert_eq!(
        config.warnings().len(),
        1,
        "the shadowed rule is warned about"
    );
}

/// [`HEAD`] and rules given as (name, action, condition lines).
fn config_with_rules(rules: &[(&str, &str, &str)]) -> Config {
    let mut text = HEAD.to_owned();
    for (name, action, when) in rules {
        text.push_str(&format!(
            "\n[[rule]]\nname = \"{name}\"\naction = \"{action}\"\n{when}\n"
        ));
    }
    config(&text)
}

#[test]
fn no_match_falls_back_to_the_defaults() {
    let cfg = config_with_rules(&[
        ("ssh", "step_up", "service = [\"sshd\"]"),
        ("bob", "allow", "user = [\"bob\"]"),
    ]);
    let (c, o) = (sudo(), local());
    let a = attempt(&c, &o, now());
    let rule = decide(&cfg, &a, &mut Fake::new()).expect("decide");
    assert_eq!(rule.name, "(default)");
    assert!(std::ptr::eq(rule, &cfg.fallback));
    assert_eq!(rule.action, Action::Deny);
    assert_eq!(rule.action, cfg.defaults.action);
    assert!(rule.origin.ends_with(":[defaults]"), "{}", rule.origin);
    let (rule, traces) = explain(&cfg, &a, &mut Fake::new()).expect("explain");
    assert_eq!(rule.name, "(default)");
    assert_eq!(traces.len(), 2);
    assert!(traces.iter().all(|t| !t.matched));

    // No [defaults]: the fallback steps up.
    let cfg = config("[[rule]]\nname = \"x\"\naction = \"deny\"\nservice = [\"login\"]\n");
    let rule = decide(&cfg, &a, &mut Fake::new()).expect("decide");
    assert_eq!(rule.name, "(default)");
    assert_eq!(rule.action, Action::StepUp);

    // No rules at all.
    let cfg = config("[defaults]\naction = \"allow\"\n");
    let (name, traces) = run(&cfg, &sudo(), &local(), now(), &mut Fake::new());
    assert_eq!(name, "(default)");
    assert!(traces.is_empty());
    assert_eq!(cfg.fallback.action, Action::Allow);
}

#[test]
fn rule_without_conditions_matches_everything() {
    let config = config_with_rules(&[("all", "deny", "")]);
    for (c, o) in [
        (sudo(), local()),
        (
            ctx("sshd", "mallory", "", "2001:db8::1"),
            from("2001:db8::1"),
        ),
        (ctx("", "", "", ""), Origin::default()),
    ] {
        let (name, traces) = run(&config, &c, &o, now(), &mut Fake::new());
        assert_eq!(name, "all");
        assert!(traces[0].conditions.is_empty());
    }
}

/// Every condition, in the order the evaluator checks them.
const EVERY_CONDITION: &str = r#"
service = ["sudo"]
not_service = ["sshd"]
user = ["alice"]
not_user = ["root"]
ruser = ["bob"]
tty = ["/dev/pts/*"]
not_tty = ["/dev/pts/9"]
remote = true
rhost_in = ["10.0.0.0/8"]
rhost_not_in = ["10.9.0.0/16"]
time_in = ["Mon-Fri 08:00-18:00"]
time_not_in = ["12:00-14:00"]
session_age = { under = "8h" }
group = ["wheel"]
not_group = ["docker"]
new_rhost = "30d"
recent_failures = { at_least = 2, within = "15m" }
stepped_up_within = { within = "10m", scope = "user" }
"#;

const EVERY_NAME: [&str; 18] = [
    "service",
    "not_service",
    "user",
    "not_user",
    "ruser",
    "tty",
    "not_tty",
    "remote",
    "rhost_in",
    "rhost_not_in",
    "time_in",
    "time_not_in",
    "session_age",
    "group",
    "not_group",
    "new_rhost",
    "recent_failures",
    "stepped_up_within",
];

/// An attempt and history for which every condition of [`EVERY_CONDITION`] holds.
fn every_condition_holds() -> (AttemptContext, Origin, Fake) {
    let n = now_secs();
    let mut c = ctx("sudo", "alice", "/dev/pts/1", "10.1.2.3");
    c.ruser = "bob".into();
    let o = origin("10.1.2.3", true, Some(now().as_second() - 3600));
    let mut fake = Fake::new();
    fake.failures = vec![n - 10, n - 20];
    fake.successes = vec![(Scope::User, n - 30)];
    (c, o, fake)
}

#[test]
fn explain_records_every_condition_in_order() {
    let (c, o, mut fake) = every_condition_holds();
    let trace = eval(EVERY_CONDITION, &c, &o, now(), &mut fake);
    assert!(trace.matched, "{:#?}", trace.conditions);
    let names: Vec<&str> = trace.conditions.iter().map(|c| c.condition).collect();
    assert_eq!(names, EVERY_NAME);
    assert_eq!(trace.conditions.len(), 18);

    // The first (cheapest) condition fails: decide stops there, explain
    // still evaluates and records all 18, asking NSS and the history.
    let mut c2 = c.clone();
    c2.service = "sshd".into();
    let config = one_rule(EVERY_CONDITION);
    let a = attempt(&c2, &o, now());
    let mut decide_fake = every_condition_holds().2;
    assert_eq!(
        decide(&config, &a, &mut decide_fake).expect("decide").name,
        "(default)"
    );
    assert!(decide_fake.calls.is_empty(), "{:?}", decide_fake.calls);
    let mut explain_fake = every_condition_holds().2;
    let (rule, traces) = explain(&config, &a, &mut explain_fake).expect("explain");
    assert_eq!(rule.name, "(default)");
    let holds: Vec<bool> = traces[0].conditions.iter().map(|c| c.holds).collect();
    let mut want = vec![true; 18];
    want[0] = false; // service
    want[1] = false; // not_service
    assert_eq!(holds, want);
    assert_eq!(
        explain_fake.calls,
        [
            Call::Groups("alice".into()),
            Call::SourceLastSeen {
                subject: "alice".into(),
                rhost: "10.1.2.3".into()
            },
            Call::FailuresSince {
                subject: "alice".into(),
                since: now_secs() - 900
            },
            Call::LastSuccess {
                subject: "alice".into(),
                since: now_secs() - 600,
                scope: Scope::User
            },
        ]
    );
}

#[test]
fn decide_short_circuits_before_lookups() {
    // Each case: a cheap condition that fails, then every lookup condition.
    let history = "new_rhost = \"30d\"\nrecent_failures = { at_least = 1, within = \"1h\" }\nstepped_up_within = { within = \"1h\" }";
    let lookups = format!("group = [\"wheel\"]\nnot_group = [\"docker\"]\n{history}");
    let failing_cheap = [
        r#"service = ["sshd"]"#,
        r#"not_service = ["sudo"]"#,
        r#"user = ["bob"]"#,
        r#"not_user = ["alice"]"#,
        r#"ruser = ["carol"]"#,
        r#"tty = ["tty1"]"#,
        r#"not_tty = ["/dev/pts/*"]"#,
        "remote = false",
        r#"rhost_in = ["192.0.2.0/24"]"#,
        r#"rhost_not_in = ["10.0.0.0/8"]"#,
        r#"time_in = ["Sat,Sun 00:00-24:00"]"#,
        r#"time_not_in = ["Mon 00:00-24:00"]"#,
        r#"session_age = { over = "1d" }"#,
    ];
    let (c, o, _) = every_condition_holds();
    let a = attempt(&c, &o, now());
    for cheap in failing_cheap {
        let config = one_rule(&format!("{cheap}\n{lookups}"));
        let mut fake = every_condition_holds().2;
        let rule = decide(&config, &a, &mut fake).expect("decide");
        assert_eq!(rule.name, "(default)", "{cheap}");
        assert!(
            fake.calls.is_empty(),
            "{cheap}: decide asked {:?}",
            fake.calls
        );
        let mut fake = every_condition_holds().2;
        let (_, traces) = explain(&config, &a, &mut fake).expect("explain");
        assert_eq!(traces[0].conditions.len(), 6, "{cheap}");
        assert_eq!(
            fake.calls.len(),
            4,
            "{cheap}: explain asks every lookup once"
        );
    }

    // A failing group stops decide before the history.
    let config = one_rule(&format!("group = [\"docker\"]\n{history}"));
    let mut fake = every_condition_holds().2;
    decide(&config, &a, &mut fake).expect("decide");
    assert_eq!(fake.calls, [Call::Groups("alice".into())]);
    // new_rhost failing stops before failures and successes.
    let mut fake = every_condition_holds().2;
    fake.seen
        .insert(("alice".into(), "10.1.2.3".into()), now_secs() - 60);
    let config = one_rule(&lookups);
    decide(&config, &a, &mut fake).expect("decide");
    assert_eq!(fake.calls.len(), 2, "{:?}", fake.calls);
    assert!(fake.calls[1].is_history());
}

#[test]
fn decide_stops_at_the_first_match() {
    let config = config_with_rules(&[
        ("skip", "deny", "service = [\"sshd\"]\ngroup = [\"wheel\"]"),
        ("hit", "allow", "user = [\"alice\"]"),
        ("later", "deny", "group = [\"wheel\"]\nnew_rhost = \"1d\""),
    ]);
    let (c, o, _) = every_condition_holds();
    let a = attempt(&c, &o, now());
    let mut fake = Fake::new();
    assert_eq!(decide(&config, &a, &mut fake).expect("decide").name, "hit");
    assert!(fake.calls.is_empty(), "{:?}", fake.calls);
    // explain goes on through "later" (and the first rule's group).
    let mut fake = Fake::new();
    let (rule, traces) = explain(&config, &a, &mut fake).expect("explain");
    assert_eq!(rule.name, "hit");
    let counts: Vec<usize> = traces.iter().map(|t| t.conditions.len()).collect();
    assert_eq!(counts, [2, 1, 2]);
    assert!(
        traces[2].matched,
        "later also matches: never seen from 10.1.2.3"
    );
    // Groups are asked of NSS once per decision, however many rules use them.
    assert_eq!(fake.calls.iter().filter(|c| !c.is_history()).count(), 1);
    assert_eq!(fake.calls.iter().filter(|c| c.is_history()).count(), 1);
}

#[test]
fn explain_counts_conditions_of_every_rule() {
    let config = config_with_rules(&[
        (
            "a",
            "deny",
            "service = [\"sshd\"]\nuser = [\"alice\"]\ntty = [\"/dev/pts/*\"]",
        ),
        (
            "b",
            "allow",
            "user = [\"alice\"]\nrhost_in = [\"192.0.2.0/24\"]\ngroup = [\"wheel\"]\nsession_age = { over = \"1m\" }",
        ),
        ("c", "step_up", "service = [\"sudo\"]"),
        ("d", "deny", ""),
        ("e", "allow", "remote = true\nnot_tty = [\"ssh\"]"),
    ]);
    let (name, traces) = run(&config, &sudo(), &local(), now(), &mut Fake::new());
    assert_eq!(name, "c");
    let counts: Vec<usize> = traces.iter().map(|t| t.conditions.len()).collect();
    assert_eq!(counts, [3, 4, 1, 0, 2]);
    let matched: Vec<bool> = traces.iter().map(|t| t.matched).collect();
    assert_eq!(matched, [false, false, true, true, false]);
    let failing: Vec<Vec<&str>> = traces
        .iter()
        .map(|t| {
            t.conditions
                .iter()
                .filter(|c| !c.holds)
                .map(|c| c.condition)
                .collect()
        })
        .collect();
    assert_eq!(
        failing,
        [
            vec!["service"],
            vec!["rhost_in", "session_age"],
            vec![],
            vec![],
            vec!["remote"]
        ]
    );
}

#[test]
fn explain_details_mention_the_values() {
    let (c, o, mut fake) = every_condition_holds();
    let o = Origin {
        rhost_source: "utmp".into(),
        session_source: "utmp".into(),
        ..o
    };
    let trace = eval(EVERY_CONDITION, &c, &o, now(), &mut fake);
    let detail = |name: &str| cond(&trace, name).detail.clone();
    assert_mentions(&detail("service"), &["\"sudo\"", "is in", "[sudo]"]);
    assert_mentions(&detail("not_service"), &["\"sudo\"", "is not in", "[sshd]"]);
    assert_mentions(&detail("user"), &["\"alice\"", "[alice]"]);
    assert_mentions(&detail("not_user"), &["\"alice\"", "is not in", "[root]"]);
    assert_mentions(&detail("ruser"), &["\"bob\"", "[bob]"]);
    assert_mentions(&detail("tty"), &["\"/dev/pts/1\"", "matches", "/dev/pts/*"]);
    assert_mentions(
        &detail("not_tty"),
        &["\"/dev/pts/1\"", "matches none of", "/dev/pts/9"],
    );
    assert_mentions(&detail("remote"), &["remote", "10.1.2.3", "utmp"]);
    assert_mentions(&detail("rhost_in"), &["10.1.2.3", "utmp", "10.0.0.0/8"]);
    assert_mentions(
        &detail("rhost_not_in"),
        &["10.1.2.3", "utmp", "10.9.0.0/16"],
    );
    assert_mentions(&detail("time_in"), &["Mon 10:00", "Europe/Paris"]);
    assert_mentions(&detail("session_age"), &["3600s ago", "utmp", "under 8h"]);
    assert_mentions(&detail("group"), &["alice", "wheel", "include one of"]);
    assert_mentions(&detail("not_group"), &["docker", "include none of"]);
    assert_mentions(&detail("new_rhost"), &["alice", "never", "10.1.2.3"]);
    assert_mentions(
        &detail("recent_failures"),
        &["2 failed", "alice", "15m", "at least 2"],
    );
    assert_mentions(
        &detail("stepped_up_within"),
        &["alice", "30s ago", "scope user"],
    );
}

#[test]
fn lookup_errors_propagate() {
    let (c, o, _) = every_condition_holds();
    let a = attempt(&c, &o, now());
    for when in [
        r#"group = ["wheel"]"#,
        r#"not_group = ["wheel"]"#,
        r#"new_rhost = "30d""#,
        r#"recent_failures = { at_least = 1, within = "1h" }"#,
        r#"stepped_up_within = { within = "1h", scope = "rhost" }"#,
    ] {
        let config = one_rule(when);
        let mut fake = Fake::failing("history unavailable");
        assert_eq!(
            decide(&config, &a, &mut fake).map(|r| r.name.clone()),
            Err("history unavailable".to_owned()),
            "{when}"
        );
        assert_eq!(fake.calls.len(), 1, "{when}");
        let mut fake = Fake::failing("history unavailable");
        assert_eq!(
            explain(&config, &a, &mut fake).map(|(r, _)| r.name.clone()),
            Err("history unavailable".to_owned()),
            "{when}"
        );
    }
    // An error in a rule decide never reaches does not matter to decide,
    // but explain (which evaluates every rule) fails.
    let config = config_with_rules(&[
        ("hit", "allow", "service = [\"sudo\"]"),
        ("later", "deny", "group = [\"wheel\"]"),
    ]);
    let mut fake = Fake::failing("nss down");
    assert_eq!(decide(&config, &a, &mut fake).expect("decide").name, "hit");
    assert!(explain(&config, &a, &mut Fake::failing("nss down")).is_err());
    // An error in an earlier rule fails decide even if a later rule would match.
    let config = config_with_rules(&[
        ("first", "deny", "group = [\"wheel\"]"),
        ("hit", "allow", "service = [\"sudo\"]"),
    ]);
    assert!(decide(&config, &a, &mut Fake::failing("nss down")).is_err());
}

// ---------------------------------------------------------------------------
// Properties over pseudo-random policies and attempts
// ---------------------------------------------------------------------------

/// xorshift64*: deterministic, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("fits")).expect("fits")
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A non-empty subset, as a TOML array of strings.
    fn list(&mut self, items: &[&str]) -> String {
        let mut chosen: Vec<&str> = items.iter().copied().filter(|_| self.chance(40)).collect();
        if chosen.is_empty() {
            chosen.push(self.pick(items));
        }
        let quoted: Vec<String> = chosen.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(", "))
    }
}

const SERVICES: [&str; 4] = ["sudo", "su", "sshd", "login"];
const USERS: [&str; 4] = ["alice", "bob", "root", "mallory"];
const RUSERS: [&str; 3] = ["", "alice", "bob"];
const GROUPS: [&str; 5] = ["wheel", "users", "docker", "root", "alice"];
const TTYS: [&str; 5] = ["", "/dev/pts/1", "tty1", "ssh", ":0"];
const TTY_GLOBS: [&str; 5] = ["/dev/pts/*", "tty[1-6]", "*", "ssh", "?*"];
const RHOSTS: [&str; 6] = [
    "",
    "10.1.2.3",
    "192.0.2.9",
    "2001:db8::5",
    "bastion.example.com",
    "::ffff:10.9.9.9",
];
const HOST_PATTERNS: [&str; 6] = [
    "10.0.0.0/8",
    "192.0.2.0/24",
    "2001:db8::/32",
    "bastion.example.com",
    "0.0.0.0/0",
    "10.1.2.3",
];
const WINDOWS: [&str; 5] = [
    "Mon-Fri 08:00-18:00",
    "22:00-06:00",
    "Sat,Sun 00:00-24:00",
    "Fri 22:00-06:00",
    "Sun 02:00-03:00",
];
const SPANS: [&str; 5] = ["1m", "15m", "1h", "1d", "30d"];
const SCOPES: [&str; 3] = ["tty", "user", "rhost"];

fn random_rule(rng: &mut Rng, name: &str) -> String {
    let mut r = format!(
        "\n[[rule]]\nname = \"{name}\"\naction = \"{}\"\n",
        rng.pick(&["allow", "deny", "step_up"])
    );
    let p = 12;
    let mut line = |rng: &mut Rng, key: &str, value: String| {
        if rng.chance(p) {
            r.push_str(&format!("{key} = {value}\n"));
        }
    };
    for (key, items) in [
        ("service", &SERVICES[..]),
        ("not_service", &SERVICES[..]),
        ("user", &USERS[..]),
        ("not_user", &USERS[..]),
        ("ruser", &RUSERS[1..]),
        ("group", &GROUPS[..]),
        ("not_group", &GROUPS[..]),
        ("tty", &TTY_GLOBS[..]),
        ("not_tty", &TTY_GLOBS[..]),
        ("rhost_in", &HOST_PATTERNS[..]),
        ("rhost_not_in", &HOST_PATTERNS[..]),
        ("time_in", &WINDOWS[..]),
        ("time_not_in", &WINDOWS[..]),
    ] {
        let value = rng.list(items);
        line(rng, key, value);
    }
    let remote = rng.pick(&["true", "false"]).to_owned();
    line(rng, "remote", remote);
    let tz = format!(
        "{:?}",
        rng.pick(&["UTC", "Europe/Paris", "America/New_York"])
    );
    line(rng, "time_zone", tz);
    let span = format!("{:?}", rng.pick(&SPANS));
    line(rng, "new_rhost", span);
    let rf = format!(
        "{{ at_least = {}, within = {:?} }}",
        1 + rng.below(3),
        rng.pick(&SPANS)
    );
    line(rng, "recent_failures", rf);
    let su = format!(
        "{{ within = {:?}, scope = {:?} }}",
        rng.pick(&SPANS),
        rng.pick(&SCOPES)
    );
    line(rng, "stepped_up_within", su);
    let sa = match rng.below(3) {
        0 => format!("{{ over = {:?} }}", rng.pick(&SPANS)),
        1 => format!("{{ under = {:?} }}", rng.pick(&SPANS)),
        _ => format!("{{ over = \"1m\", under = {:?} }}", rng.pick(&SPANS[2..])),
    };
    line(rng, "session_age", sa);
    r
}

/// A fake whose answers depend only on the arguments (so `decide` and
/// `explain` see the same history), randomised per case.
fn random_history(rng: &mut Rng, now: u64) -> Fake {
    let mut fake = Fake::new();
    for subject in ["alice", "bob", ""] {
        for rhost in RHOSTS {
            if rng.chance(40) {
                let ago = rng.next() % (40 * DAY);
                fake.seen.insert((subject.into(), rhost.into()), now - ago);
            }
        }
    }
    for _ in 0..rng.below(5) {
        fake.failures.push(now - rng.next() % (2 * 3600));
    }
    for _ in 0..rng.below(3) {
        let scope = rng.pick(&[Scope::Tty, Scope::User, Scope::Rhost]);
        fake.successes.push((scope, now - rng.next() % (2 * 3600)));
    }
    fake
}

#[test]
fn property_decide_is_the_first_rule_explain_matches() {
    let mut rng = Rng(0x5eed_0f57_e90b);
    let start = secs(ts("2026-01-01T00:00:00Z"));
    let mut decided_by_rule = 0;
    let mut warnings_checked = 0;
    for _policy in 0..1_000 {
        let rules = rng.below(6);
        let mut text = String::from("[defaults]\ntime_zone = \"Europe/Paris\"\n");
        if rng.chance(50) {
            text.push_str(&format!(
                "action = \"{}\"\n",
                rng.pick(&["allow", "deny", "step_up"])
            ));
        }
        for i in 0..rules {
            text.push_str(&random_rule(&mut rng, &format!("r{i}")));
        }
        let config = config(&text);
        // Pairs (earlier, later) of rules the config says can never match.
        let shadowed: Vec<(usize, usize)> = config
            .warnings()
            .iter()
            .filter_map(|w| {
                let mut names = w.message.split('"').skip(1).step_by(2);
                let later = names.next()?.strip_prefix('r')?.parse().ok()?;
                let earlier = names.next()?.strip_prefix('r')?.parse().ok()?;
                Some((earlier, later))
            })
            .collect();
        for _attempt in 0..10 {
            let mut c = ctx(
                rng.pick(&SERVICES),
                rng.pick(&USERS),
                rng.pick(&TTYS),
                rng.pick(&RHOSTS),
            );
            c.ruser = rng.pick(&RUSERS).to_owned();
            let now_s = start + rng.next() % (365 * DAY);
            let now =
                Timestamp::from_second(i64::try_from(now_s).expect("fits")).expect("in range");
            let started = rng
                .chance(70)
                .then(|| i64::try_from(now_s - rng.next() % (2 * DAY)).expect("fits"));
            let o = origin(&c.rhost, !c.rhost.is_empty() || c.tty == "ssh", started);
            let mut fake = random_history(&mut rng, now_s);
            let a = attempt(&c, &o, now);
            let decided = decide(&config, &a, &mut fake).expect("decide");
            let (explained, traces) = explain(&config, &a, &mut fake).expect("explain");
            let first = traces.iter().position(|t| t.matched);
            let want = first.map_or(&config.fallback, |i| &config.rules[i]);
            assert!(
                std::ptr::eq(decided, want),
                "decide chose {} but explain's first match is {}\n{text}\n{c:?}\n{o:?}\n{traces:#?}",
                decided.name,
                want.name
            );
            assert!(std::ptr::eq(explained, want));
            for t in &traces {
                assert_eq!(t.matched, t.conditions.iter().all(|c| c.holds), "{t:#?}");
            }
            decided_by_rule += usize::from(first.is_some());
            for &(earlier, later) in &shadowed {
                warnings_checked += 1;
                assert!(
                    !traces[later].matched || traces[earlier].matched,
                    "warning says r{earlier} shadows r{later}, but only r{later} matched\n{text}\n{c:?}\n{o:?}\n{traces:#?}"
                );
            }
        }
    }
    // The generator exercises both outcomes and the warnings.
    assert!(
        decided_by_rule > 1_000 && decided_by_rule < 9_000,
        "{decided_by_rule}"
    );
    assert!(warnings_checked > 100, "{warnings_checked}");
}

#[test]
fn property_rhost_in_and_not_in_never_both_hold() {
    let mut rng = Rng(0x0bad_cafe_1234_5678);
    let (mut inside, mut outside) = (0, 0);
    for _ in 0..10_000 {
        let prefix = u32::try_from(rng.below(33)).expect("fits");
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        let network = u32::try_from(rng.next() >> 32).expect("fits") & mask;
        // Half the addresses inside the block, half anywhere.
        let random = u32::try_from(rng.next() >> 32).expect("fits");
        let addr = if rng.chance(50) {
            network | (random & !mask)
        } else {
            random
        };
        let net_ip = std::net::Ipv4Addr::from(network);
        let ip = std::net::Ipv4Addr::from(addr);
        let rhost = if rng.chance(10) {
            format!("::ffff:{ip}")
        } else {
            ip.to_string()
        };
        let list = format!("[\"{net_ip}/{prefix}\"]");
        let config = config(&format!(
            "[[rule]]\nname = \"r\"\naction = \"allow\"\nrhost_in = {list}\nrhost_not_in = {list}\n"
        ));
        assert_eq!(
            config.rules[0]
                .when
                .find::<stepup_config::conditions::rhost::Rhost>("rhost_in")
                .expect("rhost_in")
                .patterns,
            [format!("{net_ip}/{prefix}")
                .parse::<HostPattern>()
                .expect("pattern")]
        );
        let c = ctx("sshd", "alice", "ssh", &rhost);
        let o = from(&rhost);
        let mut fake = Fake::new();
        let a = attempt(&c, &o, now());
        let (_, traces) = explain(&config, &a, &mut fake).expect("explain");
        let is_in = cond(&traces[0], "rhost_in").holds;
        let not_in = cond(&traces[0], "rhost_not_in").holds;
        assert!(!(is_in && not_in), "both hold for {rhost} and {list}");
        assert!(is_in || not_in, "neither holds for {rhost} and {list}");
        let want = addr & mask == network;
        assert_eq!(is_in, want, "{rhost} in {list}");
        assert!(!traces[0].matched);
        assert_eq!(
            decide(&config, &a, &mut fake).expect("decide").name,
            "(default)"
        );
        if want {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    assert!(inside > 4_000 && outside > 2_000, "{inside} / {outside}");
}

// ---------------------------------------------------------------------------
// The line shown before a prompt
// ---------------------------------------------------------------------------

#[test]
fn the_reason_names_the_command_as_whom_and_what_held() {
    use stepup_config::attempt::{SudoCommand, SudoMode};
    let config = config(&format!(
        "{HEAD}\n[[rule]]\nname = \"restarts\"\ncommand = [\"/usr/bin/systemctl restart *\"]\nrecent_failures = {{ at_least = 1, within = \"1h\" }}\naction = \"step_up\"\n"
    ));
    let mut c = sudo();
    c.command = Some(SudoCommand {
        path: "/usr/bin/systemctl".into(),
        line: format!("/usr/bin/systemctl restart {}", "x".repeat(80)),
        runas_user: "root".into(),
        mode: SudoMode::Command,
        ..SudoCommand::default()
    });
    let o = local();
    let mut fake = Fake::new();
    fake.failures = vec![now_secs() - 60];
    let a = attempt(&c, &o, now());
    let rule = decide(&config, &a, &mut fake).expect("decide");
    assert_eq!(rule.name, "restarts");
    let shown = reason(&config, rule, &a, &mut fake)
        .expect("reason")
        .expect("a line");
    assert!(
        shown.starts_with("sudo: \"systemctl restart xxx")
            && shown.contains("…\" as root needs a second factor: 1 failed step-up in the last 1h (rule \"restarts\")."),
        "{shown}"
    );
    // The admin's own words win; show_reason = false hides only the sentence.
    let own = config_with_reason(Some("Ask ops first."), true);
    let rule = &own.rules[0];
    assert_eq!(
        reason(&own, rule, &a, &mut fake).unwrap().as_deref(),
        Some("Ask ops first.")
    );
    let hidden = config_with_reason(Some("Ask ops first."), false);
    assert_eq!(
        reason(&hidden, &hidden.rules[0], &a, &mut fake)
            .unwrap()
            .as_deref(),
        Some("Ask ops first.")
    );
    let silent = config_with_reason(None, false);
    assert_eq!(
        reason(&silent, &silent.rules[0], &a, &mut fake).unwrap(),
        None
    );
}

fn config_with_reason(reason: Option<&str>, show: bool) -> Config {
    let reason = reason
        .map(|r| format!("reason = {r:?}\n"))
        .unwrap_or_default();
    config(&format!(
        "[defaults]\nshow_reason = {show}\n[[rule]]\nname = \"r\"\naction = \"step_up\"\n{reason}"
    ))
}
