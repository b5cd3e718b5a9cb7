//! The policy engine through real libpam (pamtester, the in-process driver)
//! and the real daemon: contexts, grace, new sources, report-only, utmp,
//! explain and reload.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::Duration;

use stepup_tests::*;

fn start(policy: &str) -> (Bus, Daemon, PamService) {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, policy);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    (bus, daemon, pam)
}

fn out_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn same_user_three_contexts_three_verdicts() {
    let (_bus, daemon, pam) = start(
        r#"
[defaults]
action = "step_up"

[[rule]]
name = "office"
rhost_in = ["10.0.0.0/8", "2001:db8:10::/48"]
action = "allow"

[[rule]]
name = "blocked-net"
rhost_in = ["203.0.113.0/24"]
action = "deny"
message = "Logins from this network are not allowed."
"#,
    );
    let secret = random_secret();
    daemon.enroll_totp("olivia", &secret);

    let office = pamtester(&pam, "olivia", &[], &["rhost=10.20.30.40"]);
    assert!(office.status.success(), "{}", out_text(&office));
    assert!(!out_text(&office).contains("Verification code"));
    let office6 = drive(&pam, "olivia", &["-r", "2001:db8:10:ffff::1"], &[]);
    assert_eq!(office6.code, PAM_SUCCESS, "{}", office6.stdout);

    let blocked = pamtester(&pam, "olivia", &[], &["rhost=203.0.113.5"]);
    assert!(!blocked.status.success());
    assert!(
        out_text(&blocked).contains("Logins from this network are not allowed."),
        "{}",
        out_text(&blocked)
    );

    let elsewhere = drive(
        &pam,
        "olivia",
        &["-r", "198.51.100.7", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(elsewhere.code, PAM_SUCCESS, "{}", elsewhere.stdout);
    assert_eq!(elsewhere.prompts(), 1);

    let log = daemon.log();
    assert!(log.contains("rule=office verdict=allow"), "{log}");
    assert!(log.contains("rule=blocked-net verdict=deny"), "{log}");
    assert!(log.contains("rule=(default) verdict=step_up"), "{log}");
}

#[test]
fn grace_is_scoped_and_expires() {
    let (_bus, daemon, pam) = start(
        r#"
[[rule]]
name = "sudo-with-grace"
action = "step_up"
grace = "3s"
grace_scope = "tty"
"#,
    );
    let secret = random_secret();
    daemon.enroll_totp("paul", &secret);
    let first = drive(
        &pam,
        "paul",
        &["-t", "/dev/pts/71", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.stdout);

    // Same terminal, within the grace: no prompt.
    let again = drive(&pam, "paul", &["-t", "/dev/pts/71"], &[]);
    assert_eq!(again.code, PAM_SUCCESS, "{}", again.stdout);
    assert_eq!(again.prompts(), 0);
    assert!(daemon.log().contains("event=grace_used"));

    // Another terminal is another scope: asked again (and no answer fails).
    let other = drive(&pam, "paul", &["-t", "/dev/pts/72"], &[]);
    assert_eq!(other.prompts(), 1, "{}", other.stdout);
    assert_ne!(other.code, PAM_SUCCESS);

    // After the grace ends, asked again on the first terminal too.
    std::thread::sleep(Duration::from_secs(4));
    let expired = drive(&pam, "paul", &["-t", "/dev/pts/71"], &[]);
    assert_eq!(expired.prompts(), 1, "{}", expired.stdout);
    assert_ne!(expired.code, PAM_SUCCESS);
}

#[test]
fn new_rhost_fires_once_then_not() {
    let (_bus, daemon, pam) = start(
        r#"
[defaults]
action = "allow"

[[rule]]
name = "new-source"
remote = true
new_rhost = "30d"
action = "step_up"
"#,
    );
    let secret = random_secret();
    daemon.enroll_totp("quinn", &secret);

    let first = drive(
        &pam,
        "quinn",
        &["-r", "198.51.100.20", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.stdout);
    assert_eq!(first.prompts(), 1, "a new source must step up");

    let second = drive(&pam, "quinn", &["-r", "198.51.100.20"], &[]);
    assert_eq!(second.code, PAM_SUCCESS, "{}", second.stdout);
    assert_eq!(second.prompts(), 0, "a known source must not");

    let other = drive(&pam, "quinn", &["-r", "198.51.100.21"], &[]);
    assert_eq!(
        other.prompts(),
        1,
        "another new source steps up again: {}",
        other.stdout
    );
    // A failed attempt does not make a source known.
    let still_new = drive(&pam, "quinn", &["-r", "198.51.100.21"], &[]);
    assert_eq!(still_new.prompts(), 1, "{}", still_new.stdout);
}

#[test]
fn report_only_never_prompts_or_denies() {
    let (_bus, daemon, pam) = start(
        r#"
[defaults]
action = "deny"
report_only = true

[[rule]]
name = "would-step-up"
service = ["sshd"]
action = "step_up"
"#,
    );
    for (user, extra) in [
        ("rita", vec![]),
        ("rita", vec!["-r", "203.0.113.1"]),
        ("root", vec!["-t", "ssh"]),
    ] {
        let run = drive(&pam, user, &extra, &[]);
        assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
        assert_eq!(run.prompts(), 0);
        assert!(run.errors().is_empty(), "{:?}", run.errors());
    }
    assert!(
        daemon
            .log()
            .contains("verdict=deny grace=false report_only=true"),
        "{}",
        daemon.log()
    );
}

#[test]
fn per_rule_report_only_reports_that_rule_and_enforces_others() {
    let (_bus, daemon, pam) = start(
        r#"
[defaults]
action = "allow"

[[rule]]
name = "trial-deny"
user = ["sam"]
action = "deny"
report_only = true

[[rule]]
name = "enforced-deny"
user = ["tina"]
action = "deny"
"#,
    );
    assert_eq!(drive(&pam, "sam", &[], &[]).code, PAM_SUCCESS);
    assert_eq!(drive(&pam, "tina", &[], &[]).code, PAM_AUTH_ERR);
    assert!(
        daemon
            .log()
            .contains("rule=trial-deny verdict=deny grace=false report_only=true")
    );
}

#[test]
fn sudo_inside_an_ssh_session_is_remote_via_utmp() {
    let dir = tempfile::tempdir().unwrap();
    let utmp_path = dir.path().join("utmp");
    // sshd's record for the session on pts/88, started 2 hours ago.
    let started = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7200) as i32;
    let mut utmp = stepupd::utmp::record(7, "pts/88", "uma", "203.0.113.77", started);
    utmp.extend(stepupd::utmp::record(7, "pts/89", "uma", "", started));
    fs::write(&utmp_path, utmp).unwrap();
    // The rule names the PAM service, so build it in the right order.
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let daemon = Daemon::start(
        &bus,
        &format!(
            r#"
[daemon]
utmp = "{}"

[defaults]
action = "allow"

[[rule]]
name = "remote-sudo"
service = ["{}"]
remote = true
action = "deny"
message = "No sudo over the network."
"#,
            utmp_path.display(),
            pam.name
        ),
    );
    // Like sudo: a tty, no PAM_RHOST.
    let remote = drive(&pam, "uma", &["-t", "/dev/pts/88", "-u", "uma"], &[]);
    assert_eq!(remote.code, PAM_AUTH_ERR, "{}", remote.stdout);
    assert_eq!(remote.errors(), ["No sudo over the network."]);
    let local = drive(&pam, "uma", &["-t", "/dev/pts/89", "-u", "uma"], &[]);
    assert_eq!(local.code, PAM_SUCCESS, "{}", local.stdout);
    assert!(
        daemon.log().lines().any(|l| l.contains("event=decision ")
            && l.contains(" rhost=203.0.113.77 ")
            && l.contains(" rule=remote-sudo ")),
        "{}",
        daemon.log()
    );

    // explain says where the address came from.
    let out = daemon.ctl(&[
        "explain",
        "--user",
        "uma",
        "--service",
        &pam.name,
        "--tty",
        "/dev/pts/88",
    ]);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("utmp: uma logged in on /dev/pts/88 from 203.0.113.77"),
        "{text}"
    );
}

#[test]
fn recent_failures_condition_counts_wrong_codes() {
    let (_bus, daemon, pam) = start(
        r#"
[[rule]]
name = "after-failures"
recent_failures = { at_least = 2, within = "15m" }
action = "deny"
message = "Too many recent failures; ask an administrator."

[[rule]]
name = "everyone"
action = "step_up"
max_tries = 1
"#,
    );
    let secret = random_secret();
    daemon.enroll_totp("vic", &secret);
    let wrong = wrong_code(&secret);
    assert_eq!(drive(&pam, "vic", &["-a", &wrong], &[]).code, PAM_MAXTRIES);
    assert_eq!(drive(&pam, "vic", &["-a", &wrong], &[]).code, PAM_MAXTRIES);
    let locked = drive(&pam, "vic", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(locked.code, PAM_AUTH_ERR, "{}", locked.stdout);
    assert_eq!(locked.prompts(), 0);
    assert_eq!(
        locked.errors(),
        ["Too many recent failures; ask an administrator."]
    );
}

#[test]
fn group_condition_uses_nss() {
    let (_bus, _daemon, pam) = start(
        r#"
[defaults]
action = "deny"

[[rule]]
name = "admins"
group = ["root", "sudo"]
action = "allow"
"#,
    );
    assert_eq!(drive(&pam, "root", &[], &[]).code, PAM_SUCCESS);
    assert_eq!(drive(&pam, "nobody", &[], &[]).code, PAM_AUTH_ERR);
    // Unknown to NSS: the group condition does not hold.
    assert_eq!(drive(&pam, "no-such-user-xyz", &[], &[]).code, PAM_AUTH_ERR);
}

#[test]
fn explain_shows_every_rule_and_changes_nothing() {
    let (_bus, daemon, pam) = start(
        r#"
[defaults]
action = "step_up"
grace = "10m"

[[rule]]
name = "office"
rhost_in = ["10.0.0.0/8"]
action = "allow"

[[rule]]
name = "nights"
time_in = ["22:00-06:00"]
time_zone = "UTC"
action = "deny"
"#,
    );
    daemon.enroll_totp("wendy", &random_secret());
    let out = daemon.ctl(&[
        "explain",
        "--user",
        "wendy",
        "--service",
        "sudo",
        "--rhost",
        "192.0.2.1",
        "--at",
        "2026-11-23T23:30:00Z",
    ]);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rule \"office\""), "{text}");
    assert!(
        text.contains("[no ] rhost_in: rhost \"192.0.2.1\""),
        "{text}"
    );
    assert!(text.contains("[yes] time_in: Mon 23:30 in UTC"), "{text}");
    assert!(text.contains("Verdict: deny (rule \"nights\""), "{text}");

    let out = daemon.ctl(&[
        "explain",
        "--user",
        "wendy",
        "--service",
        "sudo",
        "--rhost",
        "192.0.2.1",
        "--at",
        "2026-11-23T12:00:00Z",
        "--json",
    ]);
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(json.contains(r#""decided_by":"(default)""#), "{json}");
    assert!(json.contains(r#""offered":true"#), "{json}");
    assert!(json.contains(r#""grace":"10m""#), "{json}");

    let bad = daemon.ctl(&[
        "explain",
        "--user",
        "wendy",
        "--service",
        "sudo",
        "--at",
        "yesterday",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(out_text(&bad).contains("--at"), "{}", out_text(&bad));

    // Nothing was recorded, and the live path still works.
    assert!(!daemon.log().contains("event=decision"));
    let run = drive(&pam, "wendy", &["-r", "10.1.1.1"], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(run.prompts(), 0);
}

#[test]
fn stepupctl_reload_swaps_policy_and_refuses_a_broken_one() {
    let (_bus, daemon, pam) = start("[defaults]\naction = \"deny\"\n");
    let status = |d: &Daemon| out_text(&d.ctl(&["status"]));
    let hash_of = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("policy_hash: "))
            .unwrap()
            .to_owned()
    };
    let before = hash_of(&status(&daemon));
    assert_eq!(drive(&pam, "xena", &[], &[]).code, PAM_AUTH_ERR);

    let main = daemon.config_dir.path().join("stepup.toml");
    fs::write(&main, "[defaults]\naction = \"allow\"\n").unwrap();
    let out = daemon.ctl(&["reload"]);
    assert!(out.status.success(), "{}", out_text(&out));
    let after = hash_of(&status(&daemon));
    assert_ne!(before, after);
    assert!(status(&daemon).contains("policy_loaded_at: "));
    assert_eq!(drive(&pam, "xena", &[], &[]).code, PAM_SUCCESS);

    fs::write(
        &main,
        "[defaults]\naction = \"allow\"\n[[rule]]\nname = \"x\"\naction = \"permit\"\n",
    )
    .unwrap();
    let out = daemon.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let text = out_text(&out);
    assert!(
        text.contains("stepup.toml:5:10") && text.contains("stays in force"),
        "{text}"
    );
    assert_eq!(hash_of(&status(&daemon)), after);
    assert_eq!(drive(&pam, "xena", &[], &[]).code, PAM_SUCCESS);
    assert!(daemon.log().contains("event=config_rejected"));
}
