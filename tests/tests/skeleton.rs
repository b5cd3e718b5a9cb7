//! The walking skeleton end to end: libpam → pam_stepup.so → private system
//! bus (with the shipped policy) → stepupd → TOTP, codes from oathtool.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use stepup_tests::syslog::SyslogCapture;
use stepup_tests::*;

/// alice is allowed without a factor; everyone else steps up with TOTP.
const POLICY: &str = r#"
[lockout]
deny = 0

[defaults]
action = "step_up"
methods = ["totp"]

[[rule]]
name = "alice-allowed"
user = ["alice"]
action = "allow"

[[rule]]
name = "mallory-denied"
user = ["mallory"]
action = "deny"
"#;

fn setup() -> (Bus, Daemon, PamService) {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, POLICY);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    (bus, daemon, pam)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn allow_rule_succeeds_without_a_prompt() {
    let (_bus, daemon, pam) = setup();
    let out = pamtester(&pam, "alice", &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Verification code"), "{}", text(&out));
    assert!(daemon.log().contains("rule=alice-allowed verdict=allow"));
}

#[test]
fn deny_rule_fails_with_auth_err() {
    let (_bus, _daemon, pam) = setup();
    let run = drive(&pam, "mallory", &[], &[]);
    assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
    assert_eq!(run.prompts(), 0);
}

#[test]
fn right_code_succeeds_once_and_its_replay_fails_also_after_restart() {
    let (_bus, mut daemon, pam) = setup();
    let secret = random_secret();
    daemon.enroll_totp("bob", &secret);

    let code = oathtool_now(&secret);
    let out = pamtester(&pam, "bob", &[&code], &[]);
    assert!(out.status.success(), "right code refused: {}", text(&out));
    assert!(text(&out).contains("Verification code"));

    let replay = drive(&pam, "bob", &["-a", &code], &[]);
    assert_ne!(
        replay.code, PAM_SUCCESS,
        "replayed code accepted: {}",
        replay.stdout
    );
    assert!(replay.stdout.contains("already used"), "{}", replay.stdout);

    daemon.restart();
    let replay = drive(&pam, "bob", &["-a", &code], &[]);
    assert_ne!(
        replay.code, PAM_SUCCESS,
        "replay accepted after restart: {}",
        replay.stdout
    );
    assert!(replay.stdout.contains("already used"), "{}", replay.stdout);
    assert!(daemon.log().matches("reason=replay").count() >= 2);
}

#[test]
fn wrong_code_fails_and_tries_are_capped() {
    let (_bus, daemon, pam) = setup();
    let secret = random_secret();
    daemon.enroll_totp("bob", &secret);
    let wrong = wrong_code(&secret);

    // pamtester answers one wrong code, then its input ends: a failure.
    let out = pamtester(&pam, "bob", &[&wrong], &[]);
    assert!(!out.status.success(), "wrong code accepted: {}", text(&out));
    assert!(text(&out).contains("Wrong code"), "{}", text(&out));

    // Three wrong codes (max_tries = 3) end the attempt with PAM_MAXTRIES,
    // even though a right one would have followed.
    let right = oathtool_now(&secret);
    let run = drive(
        &pam,
        "bob",
        &["-a", &wrong, "-a", &wrong, "-a", &wrong, "-a", &right],
        &[],
    );
    assert_eq!(run.code, PAM_MAXTRIES, "{}", run.stdout);
    assert_eq!(run.prompts(), 3);
}

#[test]
fn wrong_then_right_code_in_one_attempt_succeeds() {
    let (_bus, daemon, pam) = setup();
    let secret = random_secret();
    daemon.enroll_totp("bob", &secret);
    let run = drive(
        &pam,
        "bob",
        &["-a", &wrong_code(&secret), "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(run.errors(), ["Wrong code."]);
}

#[test]
fn not_enrolled_user_fails_with_a_message_saying_so() {
    let (_bus, _daemon, pam) = setup();
    let out = pamtester(&pam, "carol", &["123456"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("none is enrolled for carol"),
        "{}",
        text(&out)
    );
    let run = drive(&pam, "carol", &[], &[]);
    assert_eq!(run.code, PAM_AUTH_ERR);
    assert_eq!(
        run.prompts(),
        0,
        "no code should be asked for: {}",
        run.stdout
    );
}

#[test]
fn daemon_not_running_fails_closed_within_the_timeout() {
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=2", bus.address));
    let run = drive(&pam, "bob", &["-a", "123456"], &[]);
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL, "{}", run.stdout);
    assert!(run.stdout.contains("unavailable"), "{}", run.stdout);

    // No bus at all.
    let nowhere = PamService::new("bus=unix:path=/nonexistent/stepup-bus");
    assert_eq!(drive(&nowhere, "bob", &[], &[]).code, PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn hung_daemon_fails_closed_when_the_timeout_expires() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, POLICY);
    let pam = PamService::new(&format!("bus={} timeout=2", bus.address));
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let run = drive(&pam, "bob", &["-a", "123456"], &[]);
    nix::sys::signal::kill(daemon.pid(), nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL, "{}", run.stdout);
    // It gave up because of timeout=2, not because something else ended it.
    assert!(run.elapsed >= Duration::from_secs(2), "{:?}", run.elapsed);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn failmode_secure_and_safe_are_logged_to_authpriv() {
    let bus = Bus::start(BusPolicy::Shipped);
    let capture = SyslogCapture::start();

    let secure = PamService::new(&format!("bus={} timeout=2", bus.address));
    assert_eq!(drive(&secure, "bob", &[], &[]).code, PAM_AUTHINFO_UNAVAIL);
    let lines = capture.messages(Duration::from_secs(5), |l| l.contains("failing closed"));
    let line = lines
        .iter()
        .find(|l| l.contains("failing closed"))
        .expect("secure log line");
    assert!(
        line.starts_with("<83>pam_stepup["),
        "LOG_AUTHPRIV|LOG_ERR expected: {line}"
    );
    assert!(line.contains("user bob"), "{line}");

    let safe = PamService::new(&format!("bus={} timeout=2 failmode=safe", bus.address));
    let run = drive(&safe, "bob", &[], &[]);
    assert_eq!(
        run.code, PAM_SUCCESS,
        "failmode=safe must let the user in: {}",
        run.stdout
    );
    let lines = capture.messages(Duration::from_secs(5), |l| l.contains("FAIL-SAFE PASS"));
    let line = lines
        .iter()
        .find(|l| l.contains("FAIL-SAFE PASS"))
        .expect("fail-safe log line");
    assert!(
        line.starts_with("<81>pam_stepup["),
        "LOG_AUTHPRIV|LOG_ALERT expected: {line}"
    );
    assert!(line.contains("user bob"), "{line}");
}

#[test]
fn failmode_safe_does_not_pass_what_the_daemon_refused() {
    let (bus, daemon, _pam) = setup();
    let safe = PamService::new(&format!("bus={} failmode=safe", bus.address));
    // The daemon is up and says no: failmode does not apply.
    assert_eq!(drive(&safe, "mallory", &[], &[]).code, PAM_AUTH_ERR);
    let secret = random_secret();
    daemon.enroll_totp("bob", &secret);
    let wrong = wrong_code(&secret);
    assert_eq!(
        drive(
            &safe,
            "bob",
            &["-a", &wrong, "-a", &wrong, "-a", &wrong],
            &[]
        )
        .code,
        PAM_MAXTRIES
    );
    // Bytes the daemon refuses (a control character in the user name) fail too.
    assert_eq!(drive(&safe, "bob\u{1b}x", &[], &[]).code, PAM_AUTH_ERR);
}

#[test]
fn bus_address_from_the_environment_is_ignored() {
    // The attacker's bus, where a daemon would allow everyone.
    let attacker_bus = Bus::start(BusPolicy::Open);
    let attacker = Daemon::start(&attacker_bus, "[defaults]\naction = \"allow\"\n");
    // The module line has no bus=, so only the fixed system socket may be used.
    let pam = PamService::new("timeout=2");
    let run = drive(
        &pam,
        "bob",
        &[],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &attacker_bus.address)],
    );
    assert_ne!(
        run.code, PAM_SUCCESS,
        "module followed DBUS_SYSTEM_BUS_ADDRESS: {}",
        run.stdout
    );
    assert!(
        !attacker.log().contains("event=decision"),
        "attacker's daemon was asked:\n{}",
        attacker.log()
    );
}

/// Issue 19 lets the module send `Begin` to the name in the same write as
/// the owner lookup, before the uid check has answered (its context holds
/// no secret; the shipped bus policy lets only root own the name). What
/// must hold: a non-root owner's verdict is never believed, nothing it
/// says is shown, and no answer (`Respond`) ever reaches it.
#[test]
fn daemon_name_owned_by_a_non_root_process_is_refused() {
    let bus = Bus::start(BusPolicy::Open);
    // A stepupd running as nobody, ready to allow everyone.
    let impostor = Daemon::start_as(&bus, "[defaults]\naction = \"allow\"\n", Some(65534));
    let pam = PamService::new(&format!("bus={}", bus.address));
    let run = drive(&pam, "bob", &[], &[]);
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL, "{}", run.stdout);
    drop(impostor);

    // One that asks for a code it knows: the module shows no prompt and
    // sends no answer, right or wrong.
    let secret = random_secret();
    let impostor = Daemon::start_as(&bus, POLICY, Some(65534));
    impostor.enroll_totp("bob", &secret);
    let code = oathtool_now(&secret);
    let run = drive(&pam, "bob", &["-a", &code], &[]);
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL, "{}", run.stdout);
    assert_eq!(run.prompts(), 0, "{}", run.stdout);
    // (Its session ends as `cancelled` when the module leaves the bus.)
    let log = impostor.log();
    assert!(
        !log.contains("event=factor_succeeded") && !log.contains("reason=wrong_code"),
        "an answer reached the impostor:\n{log}"
    );
}

fn busctl_begin(address: &str, as_nobody: bool, protocol: &str) -> std::process::Output {
    let mut command = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"]);
        c
    } else {
        Command::new("busctl")
    };
    command
        .arg(format!("--address={address}"))
        .args([
            "call",
            "org.stepup.Daemon1",
            "/org/stepup/Daemon1",
            "org.stepup.Daemon1",
            "Begin",
            "ua{ss}",
            protocol,
            "2",
            "service",
            "sudo",
            "user",
            "root",
        ])
        .output()
        .unwrap()
}

#[test]
fn unprivileged_caller_is_refused_by_the_shipped_bus_policy() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, POLICY);
    let out = busctl_begin(&bus.address, true, "1");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Access denied") || text(&out).contains("AccessDenied"),
        "{}",
        text(&out)
    );
    assert!(!daemon.log().contains("event=decision"));
    // Root gets through the same bus (and the daemon answers).
    let out = busctl_begin(&bus.address, false, "1");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn unprivileged_caller_is_refused_by_the_daemon_itself() {
    let bus = Bus::start(BusPolicy::Open);
    let daemon = Daemon::start(&bus, POLICY);
    let out = busctl_begin(&bus.address, true, "1");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("only root may call stepupd"),
        "{}",
        text(&out)
    );
    assert!(!daemon.log().contains("event=decision"));
}

#[test]
fn protocol_mismatch_is_refused_with_a_clear_message() {
    let (bus, daemon, _pam) = setup();
    let out = busctl_begin(&bus.address, false, "99");
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("protocols 1 to 2") && msg.contains("sent 99"),
        "{msg}"
    );
    assert!(daemon.log().contains("event=protocol_mismatch"));
}

#[test]
fn module_exports_exactly_the_six_pam_entry_points() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(module_path())
        .output()
        .expect("nm (binutils)");
    let mut symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    symbols.sort();
    assert_eq!(
        symbols,
        [
            "pam_sm_acct_mgmt",
            "pam_sm_authenticate",
            "pam_sm_chauthtok",
            "pam_sm_close_session",
            "pam_sm_open_session",
            "pam_sm_setcred"
        ]
    );
}

#[test]
fn module_leaves_no_thread_or_fd_behind() {
    let (bus, daemon, pam) = setup();
    let secret = random_secret();
    daemon.enroll_totp("bob", &secret);
    // Allow path, repeated.
    let run = drive(&pam, "alice", &["-c", "-n", "20"], &[]);
    assert_eq!(run.code, PAM_SUCCESS);
    let (before, after) = run.resources();
    assert_eq!(before, after, "threads/fds before vs after: {}", run.stdout);
    // Step-up path with a wrong code, then a right one.
    let run = drive(
        &pam,
        "bob",
        &[
            "-c",
            "-a",
            &wrong_code(&secret),
            "-a",
            &oathtool_now(&secret),
        ],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    let (before, after) = run.resources();
    assert_eq!(before, after, "{}", run.stdout);
    // Unreachable daemon.
    drop(daemon);
    let down = PamService::new(&format!("bus={} timeout=1", bus.address));
    let run = drive(&down, "bob", &["-c"], &[]);
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL);
    let (before, after) = run.resources();
    assert_eq!(before, after, "{}", run.stdout);
}

#[test]
fn setcred_succeeds() {
    let (_bus, _daemon, pam) = setup();
    // pamtester runs pam_setcred for "setcred"; a failure would be reported.
    let out = Command::new("pamtester")
        .args([&pam.name, "alice", "setcred"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_stuck_syslog_never_hangs_the_module_or_the_daemon() {
    let bus = Bus::start(BusPolicy::Shipped);
    let mut capture = SyslogCapture::start();
    capture.stall();
    // Fill /dev/log's queue so that a blocking send would wait forever.
    let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    while filler.send_to(b"<14>filler: x", "/dev/log").is_ok() {}

    let down = PamService::new(&format!("bus={} timeout=1", bus.address));
    let run = drive(&down, "bob", &[], &[]);
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL);
    assert!(run.elapsed < Duration::from_secs(8), "{:?}", run.elapsed);

    let daemon = Daemon::start(&bus, POLICY);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let run = drive(&pam, "alice", &[], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(daemon.log().contains("event=decision user=alice"));
}
