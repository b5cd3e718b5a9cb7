//! The audit trail in a real systemd-journald: stable MESSAGE_IDs and
//! fields, no secrets, the tamper-evident chain and `stepupctl audit
//! verify`; and the syslog fallback without journald.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::process::Command;
use std::time::Duration;

use stepup_tests::syslog::SyslogCapture;
use stepup_tests::*;

fn policy(journal: &str) -> String {
    format!(
        "[audit]\njournal_socket = \"{journal}\"\n[lockout]\ndeny = 0\n[defaults]\naction = \"step_up\"\n[[rule]]\nname = \"alice-ok\"\nuser = [\"alice\"]\naction = \"allow\"\n"
    )
}

fn entries(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn find<'a>(
    entries: &'a [serde_json::Value],
    event: &str,
    field: &str,
    value: &str,
) -> &'a serde_json::Value {
    entries
        .iter()
        .find(|e| e["STEPUP_EVENT"] == event && e[field] == value)
        .unwrap_or_else(|| panic!("no {event} with {field}={value} in {entries:#?}"))
}

#[test]
fn events_reach_journald_with_stable_fields_and_no_secrets() {
    let journald = Journald::start();
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, &policy(&journald.socket().display().to_string()));
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let secret = random_secret();
    daemon.enroll_totp("bob", &secret);
    let wrong = wrong_code(&secret);
    let right = oathtool_now(&secret);
    assert_eq!(
        drive(
            &pam,
            "alice",
            &["-t", "/dev/pts/3", "-r", "198.51.100.4"],
            &[]
        )
        .code,
        PAM_SUCCESS
    );
    assert_eq!(
        drive(&pam, "bob", &["-a", &wrong, "-a", &right], &[]).code,
        PAM_SUCCESS
    );

    let lines = journald.stepupd_json(8);
    let all = entries(&lines);
    let decision = find(&all, "decision", "STEPUP_USER", "alice");
    assert_eq!(decision["MESSAGE_ID"], "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a1");
    assert_eq!(decision["PRIORITY"], "6");
    assert_eq!(decision["SYSLOG_IDENTIFIER"], "stepupd");
    assert_eq!(decision["STEPUP_RULE"], "alice-ok");
    assert_eq!(decision["STEPUP_VERDICT"], "allow");
    assert_eq!(decision["STEPUP_TTY"], "/dev/pts/3");
    assert_eq!(decision["STEPUP_RHOST"], "198.51.100.4");
    assert_eq!(decision["STEPUP_SERVICE"], pam.name.as_str());
    assert_eq!(decision["STEPUP_REPORT_ONLY"], "false");
    assert!(
        decision["MESSAGE"]
            .as_str()
            .unwrap()
            .starts_with("policy decision")
    );
    let failed = find(&all, "factor_failed", "STEPUP_REASON", "wrong_code");
    assert_eq!(failed["MESSAGE_ID"], "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0a4");
    assert_eq!(failed["PRIORITY"], "4");
    let ok = find(&all, "factor_succeeded", "STEPUP_SUBJECT", "bob");
    assert_eq!(ok["STEPUP_METHOD"], "totp");
    assert!(ok["STEPUP_SESSION"].as_str().is_some_and(|s| s.len() == 32));
    let enrolled = find(&all, "enrolled", "STEPUP_USER", "bob");
    assert!(
        enrolled["STEPUP_CREDENTIAL"]
            .as_str()
            .unwrap()
            .starts_with("totp-")
    );
    // Every event is chained.
    for e in &all {
        assert!(
            e["STEPUP_SEQ"].as_str().is_some()
                && e["STEPUP_CHAIN"].as_str().is_some_and(|c| c.len() == 64)
        );
    }

    // No code, secret or recovery code anywhere in what was logged.
    let codes = daemon.recovery_codes("bob");
    let everything = format!("{}\n{}", lines.join("\n"), daemon.log());
    for needle in codes.iter().map(String::as_str).chain([secret.as_str()]) {
        assert!(!everything.contains(needle), "{needle} was logged");
    }
    // Six-digit codes cannot be made long: look for them as whole tokens
    // (digits inside hash chains and session ids do not count), in what the
    // daemon wrote: its stderr and its journal fields, not journald's own
    // `_`/`__` fields (pids, timestamps, cursors).
    let mut written: Vec<String> = all
        .iter()
        .flat_map(|e| e.as_object().unwrap().iter())
        .filter(|(field, _)| !field.starts_with('_'))
        .map(|(field, value)| format!("{field}={value}"))
        .collect();
    written.push(daemon.log());
    let written = written.join("\n");
    for code in [&wrong, &right] {
        assert!(
            !mentions_token(&written, code),
            "{code} was logged: {written}"
        );
    }
}

#[test]
fn audit_verify_passes_untouched_and_reports_a_removed_or_edited_event() {
    let journald = Journald::start();
    let bus = Bus::start(BusPolicy::Shipped);
    let mut daemon = Daemon::start(&bus, &policy(&journald.socket().display().to_string()));
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    for user in ["alice", "carl", "dina", "alice"] {
        drive(&pam, user, &[], &[]);
    }
    // A clean restart continues the chain.
    daemon.restart();
    drive(&pam, "alice", &[], &[]);
    let lines = journald.stepupd_json(10);
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--state-dir"];
        let state = daemon.state_dir.path().display().to_string();
        args.push(&state);
        args.extend_from_slice(extra);
        let out = Command::new(artifact("stepupctl"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let namespace = format!("--namespace={}", journald.namespace);
    let (code, text) = verify(&[&namespace]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("chain intact"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.json");
    let file = export.display().to_string();
    fs::write(&export, lines.join("\n")).unwrap();
    assert_eq!(verify(&["--file", &file]).0, Some(0));

    // One event removed from the middle.
    let mut dropped = lines.clone();
    dropped.remove(lines.len() / 2);
    fs::write(&export, dropped.join("\n")).unwrap();
    let (code, text) = verify(&["--file", &file]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("missing"), "{text}");

    // One field edited (a denial turned into an allow).
    let mut edited = lines.clone();
    let i = edited
        .iter()
        .position(|l| l.contains("\"STEPUP_VERDICT\":\"step_up\""))
        .unwrap();
    edited[i] = edited[i].replace(
        "\"STEPUP_VERDICT\":\"step_up\"",
        "\"STEPUP_VERDICT\":\"allow\"",
    );
    fs::write(&export, edited.join("\n")).unwrap();
    let (code, text) = verify(&["--file", &file]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("edited"), "{text}");

    // Without the host key nothing verifies.
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(artifact("stepupctl"))
        .args(["audit", "verify", "--state-dir"])
        .arg(other.path())
        .args(["--file", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn without_journald_events_go_to_syslog_as_key_value_lines() {
    let capture = SyslogCapture::start();
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, &policy("/nonexistent/journal/socket"));
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    assert_eq!(drive(&pam, "alice", &[], &[]).code, PAM_SUCCESS);
    // Other tests' daemons log to /dev/log too: this attempt's line is the
    // one naming this test's PAM service.
    let ours = |l: &str| {
        l.contains("event=decision user=alice") && l.contains(&format!("service={}", pam.name))
    };
    let lines = capture.messages(Duration::from_secs(5), |l| ours(l));
    let line = lines
        .iter()
        .find(|l| ours(l))
        .unwrap_or_else(|| panic!("no decision line in {lines:?}"));
    assert!(
        line.starts_with("<86>stepupd: "),
        "LOG_AUTHPRIV|LOG_INFO expected: {line}"
    );
    assert!(
        line.contains("rule=alice-ok verdict=allow")
            && line.contains(" seq=")
            && line.contains(" chain="),
        "{line}"
    );
    assert!(daemon.log().contains("event=decision user=alice"));
}

/// The journald catalog: one entry per MESSAGE_ID of the code (no more, no
/// fewer), each with the three parts, and systemd's own parser takes it.
/// (`journalctl -x` on a real event, with the catalog installed by the
/// deb, is in the package test.)
#[test]
fn the_journald_catalog_explains_every_message_id() {
    let catalog_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/journald/stepup.catalog");
    let catalog = fs::read_to_string(&catalog_path).unwrap();
    let entries: Vec<(&str, &str)> = catalog
        .split("\n-- ")
        .skip(1)
        .map(|e| e.split_once('\n').unwrap())
        .collect();
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.trim()).collect();
    for kind in stepup_common::events::CATALOGUE {
        let count = ids.iter().filter(|id| **id == kind.message_id).count();
        assert_eq!(
            count, 1,
            "{} ({}) has {count} catalog entries",
            kind.name, kind.message_id
        );
    }
    assert_eq!(
        ids.len(),
        stepup_common::events::CATALOGUE.len(),
        "stale entries: {ids:?}"
    );
    for (id, body) in &entries {
        for part in ["Subject: ", "Defined-By: stepup", "Security:", "Action:"] {
            assert!(body.contains(part), "entry {id} lacks {part:?}");
        }
    }
    // systemd's parser: build a catalog database in a scratch root.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("usr/lib/systemd/catalog");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(&catalog_path, dir.join("stepup.catalog")).unwrap();
    let journalctl = |args: &[&str]| {
        let out = Command::new("journalctl")
            .arg(format!("--root={}", root.path().display()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    journalctl(&["--update-catalog"]);
    let listed = journalctl(&["--list-catalog"]);
    for id in &ids {
        assert!(
            listed.contains(id),
            "journalctl does not list {id}:\n{listed}"
        );
    }
}
