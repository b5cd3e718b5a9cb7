//! One attempt, one story: every event of a PAM attempt carries its
//! `STEPUP_ATTEMPT` and context, and exactly one `attempt_ended` says how it
//! ended — for a right code, wrong codes until max_tries, a client killed
//! mid-prompt, a session that expires, grace, report-only, and the daemon
//! down with failmode=safe (the module's own event). Then `stepupctl audit
//! report` on the live journal and on an export, and an export with an
//! edited event. A real systemd-journald in its own namespace throughout.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stepup_tests::*;

/// bob and carol step up (grace 1 h on their tty), dave's rule is only
/// reported, erin's rule is reported and erin has no factor.
fn policy(journal: &str) -> String {
    format!(
        r#"
[daemon]
session_timeout = "2s"
[audit]
journal_socket = "{journal}"
[lockout]
deny = 0
[defaults]
action = "step_up"
max_tries = 3
[[rule]]
name = "trial"
user = ["dave", "erin"]
action = "step_up"
report_only = true
[[rule]]
name = "with-grace"
user = ["bob", "carol"]
action = "step_up"
grace = "1h"
grace_scope = "tty"
"#
    )
}

struct World {
    journald: Journald,
    bus: Bus,
    daemon: Daemon,
    pam: PamService,
    secrets: BTreeMap<&'static str, String>,
}

fn world() -> World {
    let journald = Journald::start();
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, &policy(&journald.socket().display().to_string()));
    let pam = PamService::new(&format!(
        "bus={} timeout=5 journal_socket={}",
        bus.address,
        journald.socket().display()
    ));
    let mut secrets = BTreeMap::new();
    for user in ["bob", "carol", "dave", "frank"] {
        let secret = random_secret();
        daemon.enroll_totp(user, &secret);
        secrets.insert(user, secret);
    }
    World {
        journald,
        bus,
        daemon,
        pam,
        secrets,
    }
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The events of the attempt whose `attempt_ended` has these fields.
fn story<'a>(all: &'a [Value], fields: &[(&str, &str)]) -> (String, Vec<&'a Value>) {
    let ended: Vec<&Value> = all
        .iter()
        .filter(|e| e["STEPUP_EVENT"] == "attempt_ended")
        .filter(|e| fields.iter().all(|(k, v)| e[*k] == *v))
        .collect();
    assert_eq!(
        ended.len(),
        1,
        "one attempt_ended with {fields:?}: {ended:#?}"
    );
    let id = ended[0]["STEPUP_ATTEMPT"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    let events: Vec<&Value> = all
        .iter()
        .filter(|e| e["STEPUP_ATTEMPT"] == id.as_str())
        .collect();
    let endings = events
        .iter()
        .filter(|e| e["STEPUP_EVENT"] == "attempt_ended")
        .count();
    assert_eq!(
        endings, 1,
        "attempt {id} ended {endings} times: {events:#?}"
    );
    assert_eq!(
        events.last().unwrap()["STEPUP_EVENT"],
        "attempt_ended",
        "attempt_ended is the last event of {id}"
    );
    (id, events)
}

fn kinds(events: &[&Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["STEPUP_EVENT"].as_str().unwrap().to_owned())
        .collect()
}

/// Every event of the story carries the attempt's context.
fn assert_context(events: &[&Value], user: &str, service: &str, tty: &str, rhost: &str) {
    for e in events {
        assert_eq!(e["STEPUP_USER"], user, "{e:#}");
        assert_eq!(e["STEPUP_SUBJECT"], user, "{e:#}");
        assert_eq!(e["STEPUP_SERVICE"], service, "{e:#}");
        assert_eq!(e["STEPUP_TTY"], tty, "{e:#}");
        assert_eq!(e["STEPUP_RHOST"], rhost, "{e:#}");
    }
}

/// Run every kind of attempt; returns the journal lines.
fn run_the_attempts(w: &World) -> Vec<String> {
    let code = |u: &str| oathtool_now(&w.secrets[u]);
    // bob: right code, from an address, on a tty.
    let run = drive(
        &w.pam,
        "bob",
        &[
            "-t",
            "/dev/pts/41",
            "-r",
            "198.51.100.77",
            "-a",
            &code("bob"),
        ],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    // bob again on the same tty: grace.
    let run = drive(
        &w.pam,
        "bob",
        &["-t", "/dev/pts/41", "-r", "198.51.100.77"],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    // carol: three wrong codes.
    let wrong = wrong_code(&w.secrets["carol"]);
    let run = drive(
        &w.pam,
        "carol",
        &[
            "-t",
            "/dev/pts/42",
            "-a",
            &wrong,
            "-a",
            &wrong,
            "-a",
            &wrong,
        ],
        &[],
    );
    assert_eq!(run.code, PAM_MAXTRIES, "{}", run.stdout);
    // dave and erin: report-only (erin has no factor).
    assert_eq!(
        drive(&w.pam, "dave", &["-t", "/dev/pts/43"], &[]).code,
        PAM_SUCCESS
    );
    assert_eq!(
        drive(&w.pam, "erin", &["-t", "/dev/pts/44"], &[]).code,
        PAM_SUCCESS
    );
    abandon_mid_prompt(w);
    // grace (another session of frank's) that nobody answers: expires.
    let client = stepup_tests::probe::RawClient::connect(&w.bus.address);
    let (_, kind, _) = client
        .begin(&[
            ("service", "sudo"),
            ("user", "frank"),
            ("tty", "/dev/pts/46"),
        ])
        .unwrap();
    assert_eq!(kind, "info");
    wait_for_event(w, "timed_out");
    drop(client);
    daemon_down_failsafe(w);
    let start = Instant::now();
    loop {
        let lines = w.journald.json(&["stepupd", "pam_stepup"], 0);
        if lines
            .iter()
            .any(|l| l.contains("\"STEPUP_EVENT\":\"failsafe_pass\""))
        {
            return lines;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no failsafe_pass event"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// frank's client is killed while the prompt is open: the connection
/// vanishes mid-attempt.
fn abandon_mid_prompt(w: &World) {
    let mut child = Command::new(pam_drive())
        .args(["-t", "/dev/pts/45", "-D", "60000", "-a", "123456"])
        .arg(&w.pam.name)
        .arg("frank")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !w
        .journald
        .json(&["stepupd"], 0)
        .iter()
        .any(|l| l.contains("\"STEPUP_EVENT\":\"challenge\"") && l.contains("/dev/pts/45"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no challenge for frank"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for_event(w, "cancelled");
}

fn wait_for_event(w: &World, outcome: &str) {
    let needle = format!("\"STEPUP_OUTCOME\":\"{outcome}\"");
    let start = Instant::now();
    while !w
        .journald
        .json(&["stepupd"], 0)
        .iter()
        .any(|l| l.contains(&needle))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no attempt_ended {outcome}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon stopped and a module with failmode=safe: it lets the person
/// through and says so in the journal itself.
fn daemon_down_failsafe(w: &World) {
    // A bus where nobody owns the daemon's name and nothing can start it.
    let lonely = Bus::start(BusPolicy::Shipped);
    let safe = PamService::new(&format!(
        "bus={} timeout=2 failmode=safe journal_socket={}",
        lonely.address,
        w.journald.socket().display()
    ));
    let run = drive(
        &safe,
        "gina",
        &["-t", "/dev/pts/47", "-r", "192.0.2.99"],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
}

#[test]
fn every_attempt_tells_its_whole_story_and_audit_report_counts_them() {
    let w = world();
    let lines = run_the_attempts(&w);
    let all = parse(&lines);
    let service = w.pam.name.as_str();

    let (_, bob) = story(
        &all,
        &[("STEPUP_OUTCOME", "allowed"), ("STEPUP_GRACE", "false")],
    );
    assert_eq!(
        kinds(&bob),
        ["decision", "challenge", "factor_succeeded", "attempt_ended"]
    );
    assert_context(&bob, "bob", service, "/dev/pts/41", "198.51.100.77");
    let ended = bob.last().unwrap();
    assert_eq!(ended["MESSAGE_ID"], "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0b6");
    assert_eq!(ended["STEPUP_RULE"], "with-grace");
    assert_eq!(ended["STEPUP_METHOD"], "totp");
    assert_eq!(ended["STEPUP_CHALLENGED"], "true");
    assert!(
        ended["STEPUP_DURATION_MS"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );

    let (_, grace) = story(&all, &[("STEPUP_GRACE", "true")]);
    assert_eq!(kinds(&grace), ["decision", "grace_used", "attempt_ended"]);
    assert_eq!(grace.last().unwrap()["STEPUP_OUTCOME"], "allowed");
    assert_eq!(grace.last().unwrap()["STEPUP_CHALLENGED"], "false");

    let (_, carol) = story(&all, &[("STEPUP_OUTCOME", "max_tries")]);
    assert_eq!(
        kinds(&carol),
        [
            "decision",
            "challenge",
            "factor_failed",
            "factor_failed",
            "factor_failed",
            "factor_failed",
            "attempt_ended"
        ]
    );
    assert_context(&carol, "carol", service, "/dev/pts/42", "");
    assert_eq!(carol.last().unwrap()["STEPUP_METHOD"], "totp");

    let report_only: Vec<&Value> = all
        .iter()
        .filter(|e| e["STEPUP_OUTCOME"] == "report_only")
        .collect();
    assert_eq!(report_only.len(), 2, "{report_only:#?}");
    for e in &report_only {
        assert_eq!(e["STEPUP_VERDICT"], "step_up");
        let enrolled = if e["STEPUP_USER"] == "dave" {
            "true"
        } else {
            "false"
        };
        assert_eq!(e["STEPUP_ENROLLED"], enrolled, "{e:#}");
    }

    let (_, frank) = story(&all, &[("STEPUP_OUTCOME", "cancelled")]);
    assert_eq!(frank.first().unwrap()["STEPUP_TTY"], "/dev/pts/45");
    let (_, expired) = story(&all, &[("STEPUP_OUTCOME", "timed_out")]);
    assert_eq!(expired.first().unwrap()["STEPUP_TTY"], "/dev/pts/46");

    let failsafe: Vec<&Value> = all
        .iter()
        .filter(|e| e["STEPUP_EVENT"] == "failsafe_pass")
        .collect();
    assert_eq!(failsafe.len(), 1, "{failsafe:#?}");
    let pass = failsafe[0];
    assert_eq!(pass["MESSAGE_ID"], "5f0c3e1a9b6d4c7e8a21f4b3c2d1e0c2");
    assert_eq!(pass["SYSLOG_IDENTIFIER"], "pam_stepup");
    assert_eq!(pass["PRIORITY"], "1");
    assert_eq!(pass["STEPUP_USER"], "gina");
    assert_eq!(pass["STEPUP_RHOST"], "192.0.2.99");
    assert_eq!(pass["STEPUP_FAILMODE"], "safe");

    // Nothing logged holds a code or a secret.
    let everything = format!("{}\n{}", lines.join("\n"), w.daemon.log());
    for secret in w.secrets.values() {
        assert!(!everything.contains(secret.as_str()), "a secret was logged");
    }

    check_the_report(&w, &lines);
}

fn stepupctl_report(w: &World, args: &[&str]) -> (i32, String) {
    let out = Command::new(artifact("stepupctl"))
        .args(["audit", "report", "--state-dir"])
        .arg(w.daemon.state_dir.path())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `audit report` counts exactly what the attempts above did, on the live
/// journal and on an export; an edited export says so in its first line.
fn check_the_report(w: &World, lines: &[String]) {
    let namespace = format!("--namespace={}", w.journald.namespace);
    let (code, text) = stepupctl_report(w, &[&namespace, "--json"]);
    assert_eq!(code, 0, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["chain"]["intact"], true, "{json:#}");
    assert_eq!(json["attempts"]["with-grace"]["allowed"], 2, "{json:#}");
    assert_eq!(json["attempts"]["with-grace"]["max_tries"], 1, "{json:#}");
    assert_eq!(json["attempts"]["(default)"]["cancelled"], 1, "{json:#}");
    assert_eq!(json["attempts"]["(default)"]["timed_out"], 1, "{json:#}");
    assert_eq!(
        json["report_only_by_rule"]["trial"]["challenged"], 2,
        "{json:#}"
    );
    assert_eq!(
        json["report_only_by_rule"]["trial"]["challenged_not_enrolled"],
        1
    );
    assert_eq!(
        json["report_only_by_user"]["erin"]["challenged_not_enrolled"],
        1
    );
    // TOTP: bob succeeded; carol, frank (killed) and frank (expired) did not.
    assert_eq!(json["methods"]["totp"]["challenged"], 4, "{json:#}");
    assert_eq!(json["methods"]["totp"]["succeeded"], 1, "{json:#}");
    assert!(json["methods"]["totp"]["median_ms"].as_u64().is_some());
    assert_eq!(json["alarms"]["failsafe_passes"], 1, "{json:#}");
    assert_eq!(json["alarms"]["daemon_starts"], 1, "{json:#}");
    assert_eq!(
        json["failed_by_user"][0],
        serde_json::json!(["frank", 2]),
        "{json:#}"
    );

    let (code, text) = stepupctl_report(w, &[&namespace]);
    assert_eq!(code, 0, "{text}");
    eprintln!("audit report:\n{text}");
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("Audit chain: intact ("), "{text}");
    assert!(
        text.contains("Would be refused once enforced (no factor enrolled): erin"),
        "{text}"
    );
    assert!(
        text.contains("totp       asked      4  succeeded      1  (25%)"),
        "{text}"
    );

    // The same numbers from an export.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.json");
    fs::write(&export, lines.join("\n")).unwrap();
    let file = export.display().to_string();
    let (code, from_file) = stepupctl_report(w, &["--file", &file, "--json"]);
    assert_eq!(code, 0, "{from_file}");
    assert_eq!(serde_json::from_str::<Value>(&from_file).unwrap(), json);

    // An export with carol's ending edited: the report says it cannot be trusted.
    let edited: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace(
                "\"STEPUP_OUTCOME\":\"max_tries\"",
                "\"STEPUP_OUTCOME\":\"allowed\"",
            )
        })
        .collect();
    assert_ne!(edited, lines);
    fs::write(&export, edited.join("\n")).unwrap();
    let (code, text) = stepupctl_report(w, &["--file", &file]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("Audit chain: BROKEN"),
        "{text}"
    );
    assert!(text.contains("edited"), "{text}");
}

#[test]
fn an_attempt_open_when_the_daemon_stops_ends_as_unavailable() {
    let journald = Journald::start();
    let bus = Bus::start(BusPolicy::Shipped);
    let mut daemon = Daemon::start(&bus, &policy(&journald.socket().display().to_string()));
    daemon.enroll_totp("bob", &random_secret());
    let client = stepup_tests::probe::RawClient::connect(&bus.address);
    let (_, kind, _) = client
        .begin(&[("service", "sudo"), ("user", "bob"), ("tty", "/dev/pts/9")])
        .unwrap();
    assert_eq!(kind, "info");
    daemon.stop();
    let lines = journald.stepupd_json(6);
    let all = parse(&lines);
    let (_, events) = story(&all, &[("STEPUP_OUTCOME", "unavailable")]);
    assert_eq!(kinds(&events), ["decision", "challenge", "attempt_ended"]);
    let stopped = all
        .iter()
        .position(|e| e["STEPUP_EVENT"] == "daemon_stopped")
        .unwrap();
    let ended = all
        .iter()
        .position(|e| e["STEPUP_OUTCOME"] == "unavailable")
        .unwrap();
    assert!(
        ended < stopped,
        "the attempt ends before the daemon says it stopped"
    );
}
