//! stepupctl and stepupd as an administrator uses them.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use stepup_tests::*;

const POLICY: &str = "[defaults]\naction = \"step_up\"\n";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn enroll_prints_uri_and_qr_and_the_code_works() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, POLICY);
    let out = daemon.ctl(&["enroll", "totp", "dave", "--label", "phone"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let uri = text
        .split_whitespace()
        .find(|w| w.starts_with("otpauth://totp/stepup:dave?secret="))
        .unwrap_or_else(|| panic!("no otpauth URI in: {text}"));
    assert!(
        text.contains('█') || text.contains('▀') || text.contains('▄'),
        "no QR code drawn: {text}"
    );
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    // The generated secret works with an independent TOTP implementation.
    let pam = PamService::new(&format!("bus={}", bus.address));
    assert_eq!(
        drive(&pam, "dave", &["-a", &oathtool_now(secret)], &[]).code,
        PAM_SUCCESS
    );
    // The secret is never in the daemon's log.
    assert!(!daemon.log().contains(secret));
}

#[test]
fn list_remove_and_status() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, POLICY);
    daemon.enroll_totp("erin", &random_secret());
    let list = stdout(&daemon.ctl(&["list", "erin"]));
    let id = list.split_whitespace().next().unwrap().to_owned();
    assert!(
        id.starts_with("totp-") && list.contains("\ttotp\t"),
        "{list}"
    );

    let status = stdout(&daemon.ctl(&["status"]));
    assert!(
        status.contains("credentials: 1") && status.contains("protocol: 2"),
        "{status}"
    );

    // Removing someone else's credential id is refused and changes nothing.
    let out = daemon.ctl(&["remove", "frank", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("frank has no credential"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&daemon.ctl(&["list", "erin"])).contains(&id));

    let out = daemon.ctl(&["remove", "erin", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&daemon.ctl(&["list", "erin"])).contains("no credentials"));
    // Without a credential, erin can no longer step up.
    let pam = PamService::new(&format!("bus={}", bus.address));
    assert_eq!(drive(&pam, "erin", &[], &[]).code, PAM_AUTH_ERR);
}

#[test]
fn bad_input_gets_a_clear_message_and_changes_nothing() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, POLICY);
    for (args, expected) in [
        (
            vec!["enroll", "totp", "gina", "--secret", "not-base32!"],
            "not valid base32",
        ),
        (
            vec!["enroll", "totp", "gina", "--secret", "GEZDGNBV"],
            "at least 16",
        ),
        (vec!["enroll", "totp", "bad/name"], "invalid user name"),
        (
            vec!["enroll", "totp", "gina", "--label", "a\u{7}b"],
            "label",
        ),
    ] {
        let out = daemon.ctl(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(stdout(&daemon.ctl(&["list", "gina"])).contains("no credentials"));
    // Usage errors exit 2.
    assert_eq!(daemon.ctl(&["enroll", "totp"]).status.code(), Some(2));
    assert_eq!(daemon.ctl(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn secret_can_come_from_stdin() {
    use std::io::Write as _;
    let bus = Bus::start(BusPolicy::Shipped);
    let _daemon = Daemon::start(&bus, POLICY);
    let secret = random_secret();
    let mut child = Command::new(artifact("stepupctl"))
        .args([
            "--bus-address",
            &bus.address,
            "enroll",
            "totp",
            "hank",
            "--secret",
            "-",
            "--no-qr",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{secret}\n").as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let pam = PamService::new(&format!("bus={}", bus.address));
    assert_eq!(
        drive(&pam, "hank", &["-a", &oathtool_now(&secret)], &[]).code,
        PAM_SUCCESS
    );
}

#[test]
fn stepupctl_without_a_daemon_fails_with_exit_1() {
    let bus = Bus::start(BusPolicy::Shipped);
    let out = Command::new(artifact("stepupctl"))
        .args(["--bus-address", &bus.address, "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stepupctl:"), "{}", stderr(&out));
}

fn config_dir(main: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("stepup.toml");
    fs::write(&path, main).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    dir
}

#[test]
fn check_reports_file_line_and_column() {
    let good = config_dir(POLICY);
    let out = Command::new(artifact("stepupctl"))
        .args(["check", "--config-dir"])
        .arg(good.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let bad = config_dir(
        "[defaults]\naction = \"step_up\"\n\n[[rule]]\nname = \"x\"\naction = \"permit\"\n",
    );
    let out = Command::new(artifact("stepupctl"))
        .args(["check", "--config-dir"])
        .arg(bad.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected = format!("{}:6:10:", bad.path().join("stepup.toml").display());
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[test]
fn stepupd_refuses_to_start_on_invalid_or_unsafe_config() {
    let bus = Bus::start(BusPolicy::Shipped);
    let state = tempfile::tempdir().unwrap();
    fs::set_permissions(state.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let run = |dir: &std::path::Path| {
        Command::new(artifact("stepupd"))
            .arg("--config-dir")
            .arg(dir)
            .arg("--state-dir")
            .arg(state.path())
            .args(["--bus-address", &bus.address])
            .output()
            .unwrap()
    };
    let bad = config_dir("[defaults]\nsurprise = true\n");
    let out = run(bad.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stepup.toml:2:1"), "{}", stderr(&out));

    let writable = config_dir(POLICY);
    fs::set_permissions(
        writable.path().join("stepup.toml"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let out = run(writable.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("writable by group or others"),
        "{}",
        stderr(&out)
    );
    assert!(!bus.has_owner(stepup_common::BUS_NAME));
}

#[test]
fn sighup_reloads_and_a_bad_reload_keeps_the_old_policy() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, "[defaults]\naction = \"deny\"\n");
    let pam = PamService::new(&format!("bus={}", bus.address));
    assert_eq!(drive(&pam, "ivy", &[], &[]).code, PAM_AUTH_ERR);

    let main = daemon.config_dir.path().join("stepup.toml");
    let hup = |daemon: &Daemon, marker: &str, count: usize| {
        nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
        let start = std::time::Instant::now();
        while daemon.log().matches(marker).count() < count {
            assert!(
                start.elapsed().as_secs() < 10,
                "no {marker} in {}",
                daemon.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    fs::write(&main, "[defaults]\naction = \"allow\"\n").unwrap();
    hup(&daemon, "event=config_loaded", 1);
    assert_eq!(drive(&pam, "ivy", &[], &[]).code, PAM_SUCCESS);

    fs::write(&main, "[defaults]\naction = \"deny\"\ntypo = 1\n").unwrap();
    hup(&daemon, "event=config_rejected", 1);
    // Still the last good policy (allow), not the broken one, not a default.
    assert_eq!(drive(&pam, "ivy", &[], &[]).code, PAM_SUCCESS);
}

#[test]
fn report_only_evaluates_but_never_challenges() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, "[defaults]\naction = \"deny\"\nreport_only = true\n");
    let pam = PamService::new(&format!("bus={}", bus.address));
    let run = drive(&pam, "jack", &[], &[]);
    assert_eq!(run.code, PAM_SUCCESS);
    assert_eq!(run.prompts(), 0);
    assert!(
        daemon
            .log()
            .contains("verdict=deny grace=false report_only=true"),
        "{}",
        daemon.log()
    );
}

#[test]
fn doctor_finds_sudo_timestamp_and_skippable_stacks() {
    let pam = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| fs::write(pam.path().join(name), text).unwrap();
    write(
        "common-auth",
        "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
    );
    write(
        "sudo",
        "@include common-auth\nauth required pam_stepup.so\n",
    );
    let etc = tempfile::tempdir().unwrap();
    let sudoers = etc.path().join("sudoers");
    fs::write(
        &sudoers,
        "Defaults env_reset, timestamp_timeout=0\nroot ALL=(ALL) ALL\n",
    )
    .unwrap();
    let config = config_dir(POLICY);
    let sudo_conf = etc.path().join("sudo.conf");
    fs::write(&sudo_conf, "Plugin sudoers_policy sudoers.so\n").unwrap();
    let doctor = |services: &[&str]| {
        let mut c = Command::new(artifact("stepupctl"));
        c.arg("doctor")
            .arg("--config-dir")
            .arg(config.path())
            .arg("--pam-dir")
            .arg(pam.path())
            .arg("--sudoers")
            .arg(&sudoers)
            .arg("--sudo-conf")
            .arg(&sudo_conf);
        for s in services {
            c.args(["--service", s]);
        }
        c.output().unwrap()
    };

    let out = doctor(&[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ok: nothing found"),
        "{}",
        stdout(&out)
    );

    // sudo's built-in 15 minutes: sudo skips PAM, so step-up is skipped.
    fs::write(&sudoers, "root ALL=(ALL) ALL\n").unwrap();
    let out = doctor(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("timestamp_timeout is 15 minutes"),
        "{}",
        stdout(&out)
    );
    // With the stepup approval plugin, sudo asks about every command: the
    // timestamp no longer skips step-up, it is a note.
    fs::write(
        &sudo_conf,
        "Plugin sudoers_policy sudoers.so\nPlugin stepup_approval stepup_sudo.so failmode=secure\n",
    )
    .unwrap();
    let out = doctor(&[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("note: ") && stdout(&out).contains("approval plugin is loaded"),
        "{}",
        stdout(&out)
    );
    fs::write(&sudo_conf, "Plugin sudoers_policy sudoers.so\n").unwrap();
    fs::write(&sudoers, "Defaults timestamp_timeout=0\n").unwrap();

    // A password alone is enough before pam_stepup: bypass.
    write(
        "sudo",
        "auth sufficient pam_unix.so\nauth required pam_stepup.so\n",
    );
    let out = doctor(&["sudo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("sufficient pam_unix.so"),
        "{}",
        stdout(&out)
    );

    // Explicitly named but missing from the stack.
    write("su", "auth required pam_unix.so\n");
    let out = doctor(&["su"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("not in the auth stack"),
        "{}",
        stdout(&out)
    );
}
