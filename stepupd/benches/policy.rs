//! Cost of policy evaluation on a 100-rule policy.
//!
//! `decide_100_rules_last_matches`: 99 rules that fail on cheap conditions
//! (service, user, tty, rhost_in, time_in, and group through the fake NSS),
//! then a matching last rule: the worst case, every rule evaluated.
//! `decide_100_rules_with_history`: 99 rules whose cheap conditions match but
//! whose history condition (new_rhost, recent_failures, stepped_up_within)
//! fails, so each one consults the (in-memory) history.
//! `explain_100_rules`: the traced evaluation of the first policy.
//! `decide_country_in_city_db` against `decide_rhost_in_same_shape`: what a
//! location condition adds to a decision — the daemon's own lookup
//! (`stepupd::geo::Geo::place`: a `stat` of the file to follow geoipupdate,
//! the non-public test, the lookup in the mapped City file, the place built)
//! — next to a policy of the same shape that decides on `rhost_in`. The City
//! file is the test database (tests/geoip/make-test-mmdb.pl, written to a
//! temporary directory; needs root and libmaxmind-db-writer-perl), or the
//! City file STEPUP_GEOIP_BENCH_DB names (a real GeoLite2-City, or the
//! ~45 MB one tests/geoip/make-bench-mmdb.pl writes, where the attempt's
//! address is unknown: a full descent of a large tree).
//!
//! Run: `cargo bench -p stepupd --bench policy` (add `-- --quick` for a
//! faster, rougher run).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use stepup_config::attempt::{GeoFacts, Place, Travel};
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

    /// The policies of this benchmark have no location conditions.
    fn place(&mut self, _rhost: &str) -> Result<Place, String> {
        Err("no location database in this benchmark".into())
    }

    fn country_last_seen(&mut self, _subject: &str, _country: &str) -> Result<Option<u64>, String> {
        Ok(None)
    }

    fn travel(
        &mut self,
        _subject: &str,
        _here: &GeoFacts,
        _now: u64,
    ) -> Result<Option<Travel>, String> {
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

/// Lookups whose place questions go to the daemon's location databases;
/// everything else as [`FixedLookups`].
struct GeoLookups {
    geo: stepupd::geo::Geo,
    fixed: FixedLookups,
}

impl Lookups for GeoLookups {
    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String> {
        self.fixed.groups(user)
    }
    fn source_last_seen(&mut self, subject: &str, rhost: &str) -> Result<Option<u64>, String> {
        self.fixed.source_last_seen(subject, rhost)
    }
    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String> {
        self.fixed.failures_since(subject, since)
    }
    fn last_success(
        &mut self,
        subject: &str,
        since: u64,
        scope: Scope,
        attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        self.fixed.last_success(subject, since, scope, attempt)
    }
    fn place(&mut self, rhost: &str) -> Result<Place, String> {
        Ok(self.geo.place(rhost))
    }
    fn country_last_seen(&mut self, subject: &str, country: &str) -> Result<Option<u64>, String> {
        self.fixed.country_last_seen(subject, country)
    }
    fn travel(
        &mut self,
        subject: &str,
        here: &GeoFacts,
        now: u64,
    ) -> Result<Option<Travel>, String> {
        self.fixed.travel(subject, here, now)
    }
}

/// A policy of one rule on the source (which does not match the attempt
/// from Sydney), then the default.
fn one_rule_on_the_source(database: &Path, condition: &str) -> Config {
    let text = format!(
        "[geoip]\ndatabase = \"{}\"\n{HEAD}\n[[rule]]\nname = \"from-home\"\naction = \"allow\"\nservice = [\"sudo\"]\n{condition}\n",
        database.display()
    );
    Config::from_str_named(Path::new("bench.toml"), &text).expect("bench policy parses")
}

fn bench_geo(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/geoip/make-test-mmdb.pl");
    let made = std::process::Command::new("perl")
        .arg(&generator)
        .arg(dir.path())
        .status()
        .expect("perl (and libmaxmind-db-writer-perl)");
    assert!(made.success(), "make-test-mmdb.pl failed");
    let test_city = dir.path().join("city.mmdb");
    let city = std::env::var_os("STEPUP_GEOIP_BENCH_DB").map_or(test_city.clone(), Into::into);
    let by_country = one_rule_on_the_source(&city, "country_in = [\"FR\"]");
    let by_block = one_rule_on_the_source(&city, "rhost_in = [\"192.0.2.0/24\"]");
    let settings = by_country.geoip.as_ref().expect("[geoip]");
    let mut lookups = GeoLookups {
        geo: stepupd::geo::Geo::open(settings).expect("the test City database opens"),
        fixed: FixedLookups::new(0),
    };
    let context = AttemptContext {
        service: "sudo".into(),
        user: "alice".into(),
        ruser: String::new(),
        tty: String::new(),
        rhost: RHOST.into(),
        command: None,
        login_key: None,
    };
    let origin = Origin {
        rhost: RHOST.into(),
        rhost_source: "PAM_RHOST".into(),
        remote: true,
        session_started: None,
        session_source: "none".into(),
    };
    let attempt = Attempt {
        context: &context,
        subject: "alice",
        origin: &origin,
        now: NOW.parse().expect("timestamp"),
    };
    // From Sydney (198.51.100.0/24 in the test file): neither rule matches.
    for config in [&by_country, &by_block] {
        let rule = policy::decide(config, &attempt, &mut lookups).expect("decide");
        assert_eq!(rule.name, "(default)");
    }
    if city == test_city {
        let place = lookups.geo.place(RHOST);
        assert!(
            matches!(place, Place::Known(ref f) if f.country.as_deref() == Some("AU")),
            "{place:?}"
        );
    }
    c.bench_function("decide_country_in_city_db", |b| {
        b.iter(|| policy::decide(black_box(&by_country), black_box(&attempt), &mut lookups))
    });
    c.bench_function("decide_rhost_in_same_shape", |b| {
        b.iter(|| policy::decide(black_box(&by_block), black_box(&attempt), &mut lookups))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench_policy, bench_geo
}
criterion_main!(benches);
