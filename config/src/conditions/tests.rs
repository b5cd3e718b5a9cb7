//! The registry as a whole: every key reachable, examples that parse, the
//! fuzzer's round trip, shadowing, and lazy text.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;
use crate::Config;
use crate::attempt::{AttemptContext, Origin};

fn rule_with(key: &str, value: &str) -> Result<Config, crate::ConfigError> {
    let text = format!("[[rule]]\nname = \"r\"\naction = \"allow\"\n{key} = {value}\n");
    Config::from_str_named(Path::new("stepup.toml"), &text)
}

#[test]
fn every_key_is_unique_and_a_rule_key() {
    let keys = keys();
    for (i, key) in keys.iter().enumerate() {
        assert!(!keys[..i].contains(key), "{key} registered twice");
        assert!(crate::rule_keys().contains(key), "{key} is not a rule key");
    }
    assert!(keys.len() >= 18, "{keys:?}");
}

/// The fuzzer builds policies from these examples: each must parse, keep
/// its key, print back to itself, and shadow an identical later rule.
#[test]
fn every_example_parses_round_trips_and_shadows_its_twin() {
    for (key, examples) in examples() {
        assert!(!examples.is_empty(), "{key} has no example");
        for value in examples {
            let config = rule_with(key, value).unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            let when = &config.rules[0].when;
            let condition = when.iter().next().unwrap();
            assert_eq!(condition.key(), key);
            condition.check_round_trip().unwrap();
            assert!(when.shadow(when), "{key} = {value} does not shadow itself");
        }
    }
}

#[test]
fn conditions_are_evaluated_in_registry_order_whatever_the_file_order() {
    let text = "[[rule]]\nname = \"r\"\naction = \"allow\"\nnew_rhost = \"1d\"\ngroup = [\"g\"]\nservice = [\"sudo\"]\ntime_in = [\"08:00-09:00\"]\n";
    let config = Config::from_str_named(Path::new("stepup.toml"), text).unwrap();
    let order: Vec<&str> = config.rules[0].when.iter().map(|c| c.key()).collect();
    assert_eq!(order, ["service", "time_in", "group", "new_rhost"]);
}

#[test]
fn a_list_covers_a_narrower_list_and_a_not_list_a_wider_one() {
    let wide = NameList {
        names: vec!["a".into(), "b".into()],
        negated: false,
    };
    let narrow = NameList {
        names: vec!["a".into()],
        negated: false,
    };
    assert!(wide.covers(&narrow));
    assert!(!narrow.covers(&wide));
    let excludes_a = NameList {
        names: vec!["a".into()],
        negated: true,
    };
    let excludes_ab = NameList {
        names: vec!["a".into(), "b".into()],
        negated: true,
    };
    assert!(excludes_a.covers(&excludes_ab));
    assert!(!excludes_ab.covers(&excludes_a));
    assert!(!wide.covers(&excludes_ab), "a list never covers a not-list");
}

#[test]
fn text_is_built_only_when_wanted() {
    let boom = || -> String { panic!("detail built for a verdict") };
    let eval = Eval::new(true, Want::Verdict, boom, || panic!("phrase built"));
    assert_eq!(
        eval,
        Eval {
            holds: true,
            text: None
        }
    );
    let eval = Eval::new(
        false,
        Want::Phrase,
        || "d".into(),
        || panic!("phrase of a failed condition"),
    );
    assert_eq!(eval.text, None);
    let eval = Eval::new(true, Want::Phrase, || "d".into(), || Some("p".into()));
    assert_eq!(eval.text.as_deref(), Some("p"));
    let eval = Eval::new(false, Want::Detail, || "d".into(), || Some("p".into()));
    assert_eq!(eval.text.as_deref(), Some("d"));
}

struct NoLookups;

impl Lookups for NoLookups {
    fn groups(&mut self, _: &str) -> Result<Option<Vec<String>>, String> {
        Ok(Some(vec!["wheel".into()]))
    }
    fn source_last_seen(&mut self, _: &str, _: &str) -> Result<Option<u64>, String> {
        Ok(None)
    }
    fn failures_since(&mut self, _: &str, _: u64) -> Result<u64, String> {
        Ok(3)
    }
    fn last_success(
        &mut self,
        _: &str,
        since: u64,
        _: crate::Scope,
        _: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        Ok(Some(since + 1))
    }
}

/// The phrase each condition gives a prompt's reason when it holds.
#[test]
fn each_condition_has_a_short_phrase_for_people() {
    let ctx = AttemptContext {
        service: "sudo".into(),
        user: "alice".into(),
        ruser: "alice".into(),
        tty: "/dev/pts/3".into(),
        rhost: String::new(),
        command: None,
        login_key: None,
    };
    let origin = Origin {
        rhost: "203.0.113.5".into(),
        rhost_source: "utmp".into(),
        remote: true,
        session_started: Some(0),
        session_source: "utmp".into(),
    };
    let now = "2026-01-05T22:30:00Z".parse().unwrap();
    let attempt = Attempt {
        context: &ctx,
        subject: "alice",
        origin: &origin,
        now,
    };
    let cases = [
        ("service", r#"["sudo"]"#, None),
        ("user", r#"["alice"]"#, Some("as alice")),
        ("ruser", r#"["alice"]"#, Some("called by alice")),
        ("tty", r#"["/dev/pts/*"]"#, Some("on /dev/pts/3")),
        ("remote", "true", Some("from a remote session")),
        (
            "rhost_in",
            r#"["203.0.113.0/24"]"#,
            Some("from 203.0.113.5"),
        ),
        (
            "time_not_in",
            r#"["Mon-Fri 08:00-18:00"]"#,
            Some("outside Mon-Fri 08:00-18:00 UTC"),
        ),
        (
            "session_age",
            r#"{ over = "8h" }"#,
            Some("in a login session older than 8h"),
        ),
        ("group", r#"["wheel"]"#, Some("alice is in group wheel")),
        (
            "new_rhost",
            r#""30d""#,
            Some("from a new address (203.0.113.5)"),
        ),
        (
            "recent_failures",
            r#"{ at_least = 3, within = "1h" }"#,
            Some("3 failed step-ups in the last 1h"),
        ),
        (
            "stepped_up_within",
            r#"{ within = "1h" }"#,
            Some("after a step-up within 1h"),
        ),
    ];
    for (key, value, phrase) in cases {
        let text = format!(
            "[defaults]\ntime_zone = \"UTC\"\n[[rule]]\nname = \"r\"\naction = \"allow\"\n{key} = {value}\n"
        );
        let config = Config::from_str_named(Path::new("stepup.toml"), &text).unwrap();
        let condition = config.rules[0].when.iter().next().unwrap();
        let facts = Facts::new(&attempt);
        let eval = condition
            .evaluate(&attempt, &facts, &mut NoLookups, Want::Phrase)
            .unwrap();
        assert!(eval.holds, "{key} = {value} should hold");
        assert_eq!(eval.text.as_deref(), phrase, "{key}");
    }
}

/// Command conditions hold only for the sudo plugin's attempts, and match
/// the escaped line as a whole.
#[test]
fn command_conditions_need_a_command_and_match_the_escaped_line() {
    use crate::attempt::{SudoCommand, SudoMode};
    let mut ctx = AttemptContext {
        service: "sudo".into(),
        user: "alice".into(),
        ..AttemptContext::default()
    };
    let origin = Origin::default();
    let eval = |ctx: &AttemptContext, key: &str, value: &str| {
        let text = format!("[[rule]]\nname = \"r\"\naction = \"allow\"\n{key} = {value}\n");
        let config = Config::from_str_named(Path::new("stepup.toml"), &text).unwrap();
        let attempt = Attempt {
            context: ctx,
            subject: "alice",
            origin: &origin,
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        let condition = config.rules[0].when.iter().next().unwrap();
        condition
            .evaluate(
                &attempt,
                &Facts::new(&attempt),
                &mut NoLookups,
                Want::Detail,
            )
            .unwrap()
    };
    for (key, value) in [
        ("command", r#"["*"]"#),
        ("not_command", r#"["/usr/bin/id"]"#),
        ("runas_user", r#"["root"]"#),
        ("not_runas_user", r#"["nobody"]"#),
        ("runas_group", r#"["root"]"#),
        ("shell", "false"),
        ("shell", "true"),
    ] {
        let e = eval(&ctx, key, value);
        assert!(!e.holds, "{key} held with no command");
        assert!(e.text.unwrap().starts_with("no command known"), "{key}");
    }
    ctx.command = Some(SudoCommand {
        path: "/usr/bin/systemctl".into(),
        line: "/usr/bin/systemctl restart nginx\\x0arule=x".into(),
        runas_user: "root".into(),
        runas_group: "adm".into(),
        cwd: "/".into(),
        mode: SudoMode::Command,
        shell: false,
    });
    assert!(eval(&ctx, "command", r#"["/usr/bin/systemctl restart *"]"#).holds);
    assert!(!eval(&ctx, "command", r#"["/usr/bin/systemctl restart nginx"]"#).holds);
    assert!(eval(&ctx, "not_command", r#"["/usr/bin/id"]"#).holds);
    assert!(eval(&ctx, "runas_user", r#"["root"]"#).holds);
    assert!(!eval(&ctx, "not_runas_user", r#"["root"]"#).holds);
    assert!(eval(&ctx, "runas_group", r#"["adm"]"#).holds);
    assert!(eval(&ctx, "shell", "false").holds);
    assert!(!eval(&ctx, "shell", "true").holds);
}
