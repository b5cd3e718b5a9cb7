//! Cost of policy evaluation on a 100-rule policy.
//!
//! `decide_100_rules_last_matches`: 99 rules that fail on cheap conditions
//! (service, user, tty, rhost_in, time_in, and group through the fake NSS),
//! then a matching last rule: the worst case, every rule evaluated.
//! `decide_100_rules_with_history`: 99 rules whose cheap conditions match but
//! whose history condition (new_rhost, recent_failures, stepped_up_within)
//! fails, so each one consults the (in-memory) history.
//! `explain_100_rules`: the traced evaluation of the first policy.
//!
//! Run: `cargo bench -p stepupd --bench policy` (add `-- --quick` for a
//! faster, rougher run).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use stepup_config::{Config, Scope};
use stepupd::context::AttemptContext;
use stepupd::policy::{self, Attempt, Lookups, Origin};

const RULES: usize = 100;
/// Monday 2026-01-05, 10:30 in Paris.
const NOW: &str = "2026-01-05T09:30:00Z";
const RHOST: &str = "198.51.100.7";

/// Fixed answers, no I/O: alice is in alice, wheel and staff; she was last
/// let in from anywhere a day ago; one recent failure; no recent step-up.
struct FixedLookups {
    groups: Vec<String>,
    last_seen: u64,
}

impl FixedLookups {
    fn new(now: u64) -> Self {
        Self {
            groups: ["alice", "wheel", "staff"].map(String::from).to_vec(),
            last_seen: now - 86_400,
        }
    }
}

impl Lookups for FixedLookups {
    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String> {
        Ok((user == "alice").then(|| self.groups.clone()))
    }

    fn source_last_seen(&mut self, _subject: &str, _rhost: &str) -> Result<Option<u64>, String> {
        Ok(Some(self.last_seen))
    }

    fn failures_since(&mut self, _subject: &str, _since: u64) -> Result<u64, String> {
        Ok(1)
    }

    fn last_success(
        &mut self,
        _subject: &str,
        _since: u64,
        _scope: Scope,
        _attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        Ok(None)
    }
}

const HEAD: &str = "[defaults]\naction = \"deny\"\ntime_zone = \"Europe/Paris\"\n";

/// The rule every policy ends with; it matches the benchmark's attempt.
const LAST: &str = r#"
[[rule]]
name = "match"
action = "step_up"
service = ["sudo"]
user = ["alice"]
rhost_in = ["198.51.100.0/24", "203.0.113.0/24"]
time_in = ["Mon-Fri 08:00-18:00"]
"#;

fn rule(text: &mut String, name: &str, action: &str, conditions: &str) {
    write!(
        text,
        "\n[[rule]]\nname = \"{name}\"\naction = \"{action}\"\n{conditions}"
    )
    .expect("write to String");
}

/// 99 rules that fail on a cheap condition (one on group), then [`LAST`].
fn cheap_policy() -> String {
    let mut text = HEAD.to_owned();
    for i in 0..RULES - 1 {
        let conditions = match i % 6 {
            0 => "service = [\"sshd\", \"login\"]\nuser = [\"alice\"]\n".to_owned(),
            1 => "service = [\"sudo\", \"su\"]\nuser = [\"bob\", \"carol\", \"dave\"]\n".to_owned(),
            2 => "service = [\"sudo\"]\ntty = [\"tty[1-6]\", \"/dev/console\", \":[0-9]\"]\n"
                .to_owned(),
            3 => format!(
                "service = [\"sudo\"]\nuser = [\"alice\"]\nrhost_in = [\"10.{i}.0.0/16\", \"172.16.0.0/12\", \"192.168.{i}.0/24\", \"2001:db8:{i:x}::/48\"]\n"
            ),
            4 => "service = [\"sudo\"]\nrhost_in = [\"198.51.100.0/24\"]\ntime_in = [\"Sat,Sun 00:00-24:00\", \"Mon-Fri 20:00-06:00\"]\n"
                .to_owned(),
            _ => format!(
                "service = [\"sudo\"]\ntty = [\"/dev/pts/*\"]\ngroup = [\"admins{i}\", \"ops\"]\n"
            ),
        };
        let action = ["allow", "deny"][i % 2];
        rule(&mut text, &format!("cheap-{i:02}"), action, &conditions);
    }
    text.push_str(LAST);
    text
}

/// 99 rules whose cheap conditions match and whose history condition fails,
/// then [`LAST`].
fn history_policy() -> String {
    let mut text = HEAD.to_owned();
    for i in 0..RULES - 1 {
        let conditions = match i % 3 {
            0 => "service = [\"sudo\"]\nuser = [\"alice\"]\nnew_rhost = \"30d\"\n",
            1 => {
                "service = [\"sudo\"]\nrhost_in = [\"198.51.100.0/24\"]\nrecent_failures = { at_least = 5, within = \"15m\" }\n"
            }
            _ => {
                "tty = [\"/dev/pts/*\"]\ngroup = [\"wheel\"]\nstepped_up_within = { within = \"10m\", scope = \"tty\" }\n"
            }
        };
        rule(&mut text, &format!("history-{i:02}"), "allow", conditions);
    }
    text.push_str(LAST);
    text
}

fn parse(text: &str) -> Config {
    let config =
        Config::from_str_named(Path::new("bench.toml"), text).expect("bench policy parses");
    assert_eq!(config.rules.len(), RULES);
    config
}

fn bench_policy(c: &mut Criterion) {
    let cheap = parse(&cheap_policy());
    let history = parse(&history_policy());
    let context = AttemptContext {
        service: "sudo".into(),
        user: "alice".into(),
        ruser: String::new(),
        tty: "/dev/pts/3".into(),
        rhost: RHOST.into(),
        command: None,
        login_key: None,
    };
    let now: Timestamp = NOW.parse().expect("timestamp");
    let now_secs = u64::try_from(now.as_second()).expect("after 1970");
    let origin = Origin {
        rhost: RHOST.into(),
        rhost_source: "PAM_RHOST".into(),
        remote: true,
        session_started: Some(now.as_second() - 7_200),
        session_source: "utmp".into(),
    };
    let attempt = Attempt {
        context: &context,
        subject: "alice",
        origin: &origin,
        now,
    };
    let mut lookups = FixedLookups::new(now_secs);

    // The policies do what the benchmark names say.
    for config in [&cheap, &history] {
        let rule = policy::decide(config, &attempt, &mut lookups).expect("decide");
        assert_eq!(rule.name, "match");
        let (rule, traces) = policy::explain(config, &attempt, &mut lookups).expect("explain");
        assert_eq!(rule.name, "match");
        assert_eq!(traces.iter().filter(|t| t.matched).count(), 1);
    }

    c.bench_function("decide_100_rules_last_matches", |b| {
        b.iter(|| policy::decide(black_box(&cheap), black_box(&attempt), &mut lookups))
    });
    c.bench_function("decide_100_rules_with_history", |b| {
        b.iter(|| policy::decide(black_box(&history), black_box(&attempt), &mut lookups))
    });
    c.bench_function("explain_100_rules", |b| {
        b.iter(|| policy::explain(black_box(&cheap), black_box(&attempt), &mut lookups))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench_policy
}
criterion_main!(benches);
