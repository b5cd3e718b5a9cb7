//! The policy evaluator over arbitrary attempts: an arbitrary context,
//! origin, clock and lookup answers (groups, history, injected errors),
//! evaluated against each of the fixed policies below (the shipped default,
//! the demo policy, the docs/policy.md examples, and a "kitchen sink" policy
//! that uses every condition), or against a policy generated from every
//! condition's own examples (`stepup_config::conditions::examples`).
//!
//! Properties beyond "no panic":
//! - `decide` and `explain` choose the same rule;
//! - in the trace, the chosen rule is the first matched one, a matched rule's
//!   conditions all hold, an unmatched rule has a condition that does not;
//! - the same attempt decided twice gives the same rule (no hidden state).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use stepup_config::attempt::{LoginKey, SudoCommand, SudoMode};
use stepup_config::{Config, Scope};
use stepupd::context::AttemptContext;
use stepupd::policy::{self, Attempt, Lookups, Origin};

const POLICIES: [&str; 7] = [
    include_str!("../seeds/config_parse/kitchen_sink.toml"),
    include_str!("../seeds/config_parse/defaults.toml"),
    include_str!("../seeds/config_parse/demo.toml"),
    include_str!("../seeds/config_parse/fuzz_engine.toml"),
    include_str!("../seeds/config_parse/policy_md_00.toml"),
    include_str!("../seeds/config_parse/policy_md_12.toml"),
    include_str!("../seeds/config_parse/policy_md_11.toml"),
];

fn policies() -> &'static [Config] {
    static CELL: OnceLock<Vec<Config>> = OnceLock::new();
    CELL.get_or_init(|| {
        let configs: Vec<Config> = POLICIES
            .iter()
            .filter_map(|text| Config::from_str_named(Path::new("/etc/stepup/stepup.toml"), text).ok())
            .collect();
        assert!(configs.len() >= 4, "the fixed policies must parse");
        configs
    })
}

#[derive(Arbitrary, Debug, Clone)]
struct Answers {
    groups: Option<Vec<String>>,
    source_last_seen: Option<u64>,
    failures: u64,
    last_success: Option<u64>,
    /// Make the n-th lookup fail.
    fail_at: Option<u8>,
}

struct Fake {
    answers: Answers,
    calls: u8,
}

impl Fake {
    fn tick(&mut self) -> Result<(), String> {
        let n = self.calls;
        self.calls = self.calls.saturating_add(1);
        if self.answers.fail_at == Some(n) {
            Err("injected lookup failure".into())
        } else {
            Ok(())
        }
    }
}

impl Lookups for Fake {
    fn groups(&mut self, _user: &str) -> Result<Option<Vec<String>>, String> {
        self.tick()?;
        Ok(self.answers.groups.clone())
    }
    fn source_last_seen(&mut self, _s: &str, _r: &str) -> Result<Option<u64>, String> {
        self.tick()?;
        Ok(self.answers.source_last_seen)
    }
    fn failures_since(&mut self, _s: &str, _since: u64) -> Result<u64, String> {
        self.tick()?;
        Ok(self.answers.failures)
    }
    fn last_success(
        &mut self,
        _s: &str,
        since: u64,
        _scope: Scope,
        _a: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        self.tick()?;
        Ok(self.answers.last_success.filter(|t| *t >= since))
    }
}

/// A policy of up to 8 rules, each with up to 6 conditions picked from the
/// registry's examples (so every condition, present and future, is fuzzed).
fn generated(picks: &[(u8, u8, u8)]) -> Config {
    let examples = stepup_config::conditions::examples();
    let mut text = String::from("[defaults]\naction = \"deny\"\ntime_zone = \"UTC\"\n");
    for (rule, chunk) in picks.chunks(6).take(8).enumerate() {
        let action = ["allow", "deny", "step_up"][rule % 3];
        text.push_str(&format!("[[rule]]\nname = \"g{rule}\"\naction = \"{action}\"\n"));
        let mut used = Vec::new();
        for (key, value, _) in chunk {
            let (key, values) = examples[usize::from(*key) % examples.len()];
            if used.contains(&key) {
                continue;
            }
            used.push(key);
            text.push_str(&format!("{key} = {}\n", values[usize::from(*value) % values.len()]));
        }
    }
    Config::from_str_named(Path::new("/etc/stepup/stepup.toml"), &text)
        .unwrap_or_else(|e| panic!("a policy of examples does not parse: {e}\n{text}"))
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Empty: one of the fixed policies; otherwise the generated one.
    picks: Vec<(u8, u8, u8)>,
    policy: u8,
    service: String,
    user: String,
    ruser: String,
    tty: String,
    rhost: String,
    /// What the sudo plugin would send: (path, args, runas user, mode).
    command: Option<(String, String, String, u8)>,
    /// What sshd would report about the login key: (type, fingerprint).
    login_key: Option<(String, String)>,
    origin_rhost: String,
    remote: bool,
    session_started: Option<i64>,
    now: i64,
    answers: Answers,
}

fuzz_target!(|input: Input| {
    let all = policies();
    let built = (!input.picks.is_empty()).then(|| generated(&input.picks));
    let config = built.as_ref().unwrap_or(&all[usize::from(input.policy) % all.len()]);
    let ctx = AttemptContext {
        service: input.service,
        user: input.user,
        ruser: input.ruser,
        tty: input.tty,
        rhost: input.rhost,
        command: input.command.map(|(path, args, runas_user, mode)| SudoCommand {
            line: if args.is_empty() { path.clone() } else { format!("{path} {args}") },
            path,
            runas_user,
            runas_group: String::new(),
            cwd: "/".into(),
            mode: [SudoMode::Command, SudoMode::Shell, SudoMode::LoginShell, SudoMode::Edit]
                [usize::from(mode % 4)],
            shell: mode % 2 == 1,
        }),
        login_key: input.login_key.map(|(key_type, fingerprint)| LoginKey { key_type, fingerprint }),
    };
    let origin = Origin {
        rhost: input.origin_rhost,
        rhost_source: "fuzz".into(),
        remote: input.remote,
        session_started: input.session_started,
        session_source: "fuzz".into(),
    };
    let secs = input.now.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    let Ok(now) = Timestamp::from_second(secs) else {
        return;
    };
    let subject = stepupd::attempt::subject_of(config, &ctx);
    let attempt = Attempt { context: &ctx, subject, origin: &origin, now };

    let mut fake = Fake { answers: input.answers.clone(), calls: 0 };
    let decided = policy::decide(config, &attempt, &mut fake).map(|r| r.name.clone());
    let mut fake2 = Fake { answers: input.answers.clone(), calls: 0 };
    let again = policy::decide(config, &attempt, &mut fake2).map(|r| r.name.clone());
    assert_eq!(decided, again, "decide is not deterministic");

    let mut no_fail = input.answers.clone();
    no_fail.fail_at = None;
    let mut fake3 = Fake { answers: no_fail.clone(), calls: 0 };
    let mut fake4 = Fake { answers: no_fail, calls: 0 };
    let decided = policy::decide(config, &attempt, &mut fake3).expect("no lookup fails");
    let (explained, traces) = policy::explain(config, &attempt, &mut fake4).expect("no lookup fails");
    assert_eq!(decided.name, explained.name, "decide and explain disagree");
    assert_eq!(traces.len(), config.rules.len());
    let first = traces.iter().position(|t| t.matched);
    match first {
        Some(i) => assert_eq!(traces[i].rule, decided.name),
        None => assert_eq!(decided.name, config.fallback.name),
    }
    for t in &traces {
        let all_hold = t.conditions.iter().all(|c| c.holds);
        assert_eq!(t.matched, all_hold, "rule {} matched={} but conditions {:?}", t.rule, t.matched, t.conditions);
    }
    let _ = serde_json::to_string(&traces);
});
