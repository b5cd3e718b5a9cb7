//! Faults, with real parts: stepupd killed or frozen mid-challenge,
//! dbus-daemon restarted under it, its state directory full (a tmpfs of its
//! own), its state file unreadable, and its wall clock stepped backwards
//! (libfaketime). Every case must fail closed, say why, and recover.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use stepup_tests::faults::*;
use stepup_tests::*;
use stepupd::store::SqliteStore;

const POLICY: &str = "[lockout]\ndeny = 0\n\n[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\nmax_tries = 1\n";

/// Generous room on a loaded 2-core box: the module's own bound is `timeout`.
const MARGIN: Duration = Duration::from_secs(8);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A code valid for at least the next minute: the next time step's (the
/// daemon accepts ±1 step), with that step.
fn code_for_next_step(secret: &str) -> (String, u64) {
    let next = unix_now() + 30;
    (oathtool_at(secret, next), next / 30)
}

/// The daemon refused the attempt's code as already used (with
/// `max_tries = 1` that ends the attempt: PAM_MAXTRIES).
fn refused_as_used(run: &Drive) {
    assert!(
        run.code == PAM_MAXTRIES || run.code == PAM_AUTH_ERR,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("already used"), "{}", run.stdout);
}

fn pam_result_name(end: &PamtesterEnd) -> &'static str {
    if end.success {
        "PAM_SUCCESS"
    } else if end.is_authinfo_unavail() {
        "PAM_AUTHINFO_UNAVAIL"
    } else if end.is_auth_err() {
        "PAM_AUTH_ERR"
    } else {
        "other"
    }
}

// ---------------------------------------------------------------- killed / frozen mid-challenge

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL: the daemon's socket closes, the bus knows at once.
    Kill,
    /// SIGSTOP: the daemon is there but never answers (a hang).
    Freeze,
}

/// Bring one attempt to the code prompt, hit the daemon with `fault`, then
/// type the right code. Returns how the attempt ended.
fn fault_mid_challenge(fault: Fault, failmode: &str, timeout: u64) -> PamtesterEnd {
    let bus = Bus::start(BusPolicy::Shipped);
    let mut daemon = Daemon::start(&bus, POLICY);
    let pam = PamService::new(&format!(
        "bus={} timeout={timeout} failmode={failmode}",
        bus.address
    ));
    let secret = random_secret();
    daemon.enroll_totp("midchal", &secret);
    let (code, _) = code_for_next_step(&secret);

    let mut attempt = PamtesterSession::start(&pam.name, "midchal");
    attempt.wait_for("Verification code", Duration::from_secs(20));
    match fault {
        Fault::Kill => kill(daemon.pid(), Signal::SIGKILL).unwrap(),
        Fault::Freeze => kill(daemon.pid(), Signal::SIGSTOP).unwrap(),
    }
    let end = attempt.answer_and_wait(&code, Duration::from_secs(timeout) + MARGIN * 2);
    eprintln!(
        "{fault:?} mid-challenge, failmode={failmode}, timeout={timeout}s: {} after {:?}\n{}",
        pam_result_name(&end),
        end.elapsed,
        end.output
    );
    assert!(
        !end.success,
        "{fault:?} mid-challenge with failmode={failmode} let the attempt through:\n{}",
        end.output
    );
    assert!(
        !end.output.contains("successfully authenticated"),
        "{}",
        end.output
    );
    assert!(
        end.elapsed <= Duration::from_secs(timeout) + MARGIN,
        "the module took {:?} (timeout={timeout}s)",
        end.elapsed
    );

    // A restarted daemon works at once (the killed attempt used nothing).
    if let Fault::Freeze = fault {
        kill(daemon.pid(), Signal::SIGKILL).unwrap();
    }
    wait_name_released(&bus.address);
    let restarted = Instant::now();
    daemon.restart();
    let fresh = drive(&pam, "midchal", &["-a", &code], &[]);
    eprintln!(
        "restart to a successful step-up: {:?} (drive {:?})",
        restarted.elapsed(),
        fresh.elapsed
    );
    assert_eq!(
        fresh.code, PAM_SUCCESS,
        "first attempt after the restart: {}",
        fresh.stdout
    );
    end
}

#[test]
fn stepupd_killed_mid_challenge_fails_closed_with_failmode_secure() {
    let end = fault_mid_challenge(Fault::Kill, "secure", 5);
    // The daemon is gone: unavailable, never a pass.
    assert!(end.is_authinfo_unavail(), "{}", end.output);
}

/// failmode=safe lets attempts through only while the daemon cannot be
/// asked at all. An attempt the daemon already challenged is known to need
/// a step-up: killing the daemon mid-prompt must not skip the factor.
#[test]
fn stepupd_killed_mid_challenge_fails_closed_even_with_failmode_safe() {
    let end = fault_mid_challenge(Fault::Kill, "safe", 5);
    assert!(end.is_authinfo_unavail(), "{}", end.output);
}

#[test]
fn stepupd_frozen_mid_challenge_fails_closed_within_the_timeout() {
    for failmode in ["secure", "safe"] {
        let end = fault_mid_challenge(Fault::Freeze, failmode, 2);
        assert!(end.is_authinfo_unavail(), "{failmode}: {}", end.output);
        // It waited for the daemon (that is what timeout= is for) …
        assert!(
            end.elapsed >= Duration::from_millis(1900),
            "{failmode}: gave up after {:?}, before timeout=2",
            end.elapsed
        );
    }
}

/// Before the daemon has challenged anything, failmode=safe still passes
/// an attempt when the daemon is down (the admin's documented choice); the
/// mid-challenge rule above does not change that.
#[test]
fn failmode_safe_still_passes_when_the_daemon_is_down_before_any_challenge() {
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=2 failmode=safe", bus.address));
    let run = drive(&pam, "nobodyhere", &[], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(run.prompts(), 0, "{}", run.stdout);
}

// ---------------------------------------------------------------- dbus-daemon restarted

#[test]
fn dbus_daemon_restart_makes_stepupd_exit_non_zero_and_a_restarted_stepupd_serves() {
    // The behaviour relies on the unit restarting a daemon that failed.
    let unit = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/systemd/stepupd.service"),
    )
    .unwrap();
    assert!(
        unit.lines().any(|l| l.trim() == "Restart=on-failure"),
        "stepupd.service must restart a failed daemon"
    );

    let mut bus = FixedBus::start();
    let state = StateDir::new();
    let mut daemon = Stepupd::new(&bus.address, POLICY, state.path());
    daemon.start();
    let pam = PamService::new(&format!("bus={} timeout=3", bus.address));
    let secret = random_secret();
    daemon.enroll_totp("busgone", &secret);
    daemon.enroll_totp("busgone2", &secret);
    let (used, _) = code_for_next_step(&secret);
    let first = drive(&pam, "busgone", &["-a", &used], &[]);
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.stdout);

    // As `systemctl restart dbus` does: SIGTERM, then a new bus on the same socket.
    let stopped = Instant::now();
    bus.stop(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(15));
    let log = daemon.log();
    let status = status.unwrap_or_else(|| {
        panic!("stepupd still runs 15 s after its bus went away (a daemon serving nobody):\n{log}")
    });
    eprintln!(
        "bus stopped: stepupd exited ({status}) after {:?}",
        stopped.elapsed()
    );
    assert!(
        !status.success(),
        "stepupd exited 0: systemd would not restart it"
    );
    assert!(
        log.contains("lost the connection to the bus") && log.contains(&bus.address),
        "no clear log line:\n{log}"
    );
    assert!(
        log.contains("event=daemon_stopped reason=\"bus connection lost\"")
            || log.contains("event=daemon_stopped reason=bus"),
        "no daemon_stopped event with the reason:\n{log}"
    );

    // While the bus is down: the module fails closed, fast.
    let down = drive(&pam, "busgone", &["-a", &used], &[]);
    assert_eq!(down.code, PAM_AUTHINFO_UNAVAIL, "{}", down.stdout);
    assert!(down.elapsed < Duration::from_secs(3) + MARGIN);

    // dbus is back; systemd starts stepupd again: it serves at once, with its state.
    bus.spawn();
    daemon.start();
    let replay = drive(&pam, "busgone", &["-a", &used], &[]);
    refused_as_used(&replay);
    let fresh = drive(&pam, "busgone2", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(fresh.code, PAM_SUCCESS, "{}", fresh.stdout);
    assert_eq!(daemon.stop().map(|s| s.success()), Some(true));
}

// ---------------------------------------------------------------- state directory full

#[test]
fn full_state_directory_fails_closed_says_why_and_recovers_without_damage() {
    let bus = Bus::start(BusPolicy::Shipped);
    // A 2 MiB tmpfs of its own as the state directory.
    let state = StateDir::tmpfs(2 * 1024 * 1024);
    let mut daemon = Stepupd::new(&bus.address, POLICY, state.path());
    daemon.start();
    // failmode=safe: a full disk must not become a pass either.
    let pam = PamService::new(&format!("bus={} timeout=5 failmode=safe", bus.address));
    let secret = random_secret();
    daemon.enroll_totp("diskfull", &secret);
    daemon.enroll_totp("diskfull2", &secret);
    let warmup = drive(&pam, "diskfull2", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(warmup.code, PAM_SUCCESS, "{}", warmup.stdout);

    let filled = state.fill("filler");
    eprintln!(
        "state directory filled with {filled} bytes, {} bytes free",
        state.free_bytes()
    );
    let (code, step) = code_for_next_step(&secret);
    let full = drive(&pam, "diskfull", &["-a", &code], &[]);
    eprintln!("attempt on a full disk: {} {}", full.code, full.stdout);
    assert_ne!(
        full.code, PAM_SUCCESS,
        "allowed although the success could not be recorded: {}",
        full.stdout
    );
    assert_eq!(full.code, PAM_AUTH_ERR, "{}", full.stdout);
    let log = daemon.log();
    assert!(
        log.contains("event=store_error")
            && log.contains("file system holding the state directory is full"),
        "no log line saying the disk is full:\n{log}"
    );

    // Space comes back: the store is sound, and the code whose success was
    // not recorded (nobody was let in) works exactly once.
    fs::remove_file(state.path().join("filler")).unwrap();
    let again = drive(&pam, "diskfull", &["-a", &code], &[]);
    assert_eq!(
        again.code, PAM_SUCCESS,
        "after freeing space: {}",
        again.stdout
    );
    let replay = drive(&pam, "diskfull", &["-a", &code], &[]);
    refused_as_used(&replay);

    assert_eq!(daemon.stop().map(|s| s.success()), Some(true));
    let store = SqliteStore::open(state.path()).expect("quick_check after a full disk");
    let history = store.history("diskfull", 100).unwrap();
    let successes = history.iter().filter(|h| h.outcome == "success").count();
    assert_eq!(successes, 1, "{history:?}");
    let creds = store.totp_credentials("diskfull").unwrap();
    assert_eq!(creds[0].last_step, Some(step));
    drop(store);

    // And a daemon starts on it and serves.
    daemon.start();
    // diskfull2's last code was the warm-up's, a step (or more) ago.
    let later = drive(
        &pam,
        "diskfull2",
        &["-a", &oathtool_at(&secret, unix_now() + 30)],
        &[],
    );
    assert_eq!(later.code, PAM_SUCCESS, "{}", later.stdout);
}

// ---------------------------------------------------------------- state file unreadable

/// How the state file is made unreadable.
#[derive(Debug, Clone, Copy)]
enum Unreadable {
    /// chmod 000, with stepupd run as the shipped unit runs it: root with
    /// an empty capability bounding set (no CAP_DAC_OVERRIDE), so the mode
    /// really keeps it out (EACCES).
    NoPermission,
    /// A directory where the file was (EISDIR), stepupd as plain root.
    Directory,
}

fn unreadable_state_file_is_refused(how: Unreadable) {
    let bus = Bus::start(BusPolicy::Shipped);
    let state = StateDir::new();
    let mut daemon = Stepupd::new(&bus.address, POLICY, state.path());
    if let Unreadable::NoPermission = how {
        daemon = daemon.wrapper(&[
            "setpriv",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
        ]);
    }
    daemon.start();
    let pam = PamService::new(&format!("bus={} timeout=3", bus.address));
    let secret = random_secret();
    daemon.enroll_totp("unread", &secret);
    let (used, _) = code_for_next_step(&secret);
    let ok = drive(&pam, "unread", &["-a", &used], &[]);
    assert_eq!(ok.code, PAM_SUCCESS, "{}", ok.stdout);
    assert_eq!(daemon.stop().map(|s| s.success()), Some(true));
    wait_name_released(&bus.address);

    let db = state.db();
    let aside = state.path().join("stepup.db.aside");
    match how {
        Unreadable::NoPermission => {
            fs::set_permissions(&db, fs::Permissions::from_mode(0o000)).unwrap();
        }
        Unreadable::Directory => {
            fs::rename(&db, &aside).unwrap();
            fs::create_dir(&db).unwrap();
        }
    }

    let started = daemon.try_start();
    let log = daemon.log();
    eprintln!("{how:?}: {started:?}\n{log}");
    match started {
        Started::Exited(status) => assert!(!status.success()),
        Started::Serving => panic!("{how:?}: stepupd serves without its state:\n{log}"),
    }
    assert!(
        log.contains("cannot be read") && log.contains(&db.display().to_string()),
        "{how:?}: the message does not say which file cannot be read:\n{log}"
    );
    assert!(
        !log.contains("is damaged"),
        "{how:?}: called damaged:\n{log}"
    );
    // Nothing was replaced or repaired.
    match how {
        Unreadable::NoPermission => {
            assert_eq!(fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0);
        }
        Unreadable::Directory => assert!(db.is_dir()),
    }
    // Meanwhile the module fails closed.
    let down = drive(&pam, "unread", &["-a", &used], &[]);
    assert_eq!(down.code, PAM_AUTHINFO_UNAVAIL, "{}", down.stdout);

    // Put right, everything is still there: the used code stays used.
    match how {
        Unreadable::NoPermission => {
            fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
        }
        Unreadable::Directory => {
            fs::remove_dir(&db).unwrap();
            fs::rename(&aside, &db).unwrap();
        }
    }
    daemon.start();
    let replay = drive(&pam, "unread", &["-a", &used], &[]);
    refused_as_used(&replay);
}

#[test]
fn state_file_without_read_permission_stops_an_unprivileged_root_daemon() {
    unreadable_state_file_is_refused(Unreadable::NoPermission);
}

#[test]
fn directory_in_place_of_the_state_file_stops_the_daemon() {
    unreadable_state_file_is_refused(Unreadable::Directory);
}

// ---------------------------------------------------------------- clock backwards

const GRACE_POLICY: &str = "[lockout]\ndeny = 0\n\n[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\nmax_tries = 1\ngrace = \"2m\"\ngrace_scope = \"user\"\n";

/// stepupd on a libfaketime clock the test moves.
fn faketime_daemon(bus: &Bus, policy: &str, state: &StateDir, clock: &FakeClock) -> Stepupd {
    let mut daemon = Stepupd::new(&bus.address, policy, state.path());
    for (key, value) in clock.env() {
        daemon = daemon.env(key, value);
    }
    daemon.start();
    daemon
}

/// The time the daemon wrote on its latest history row for `user`.
fn last_history_time(daemon: &mut Stepupd, state: &StateDir, user: &str) -> u64 {
    daemon.stop();
    let time = SqliteStore::open(state.path())
        .unwrap()
        .history(user, 1)
        .unwrap()
        .first()
        .map(|h| h.time)
        .unwrap();
    daemon.start();
    time
}

#[test]
fn clock_stepped_back_replays_no_code() {
    let bus = Bus::start(BusPolicy::Shipped);
    let state = StateDir::new();
    let clock = FakeClock::new();
    let mut daemon = faketime_daemon(&bus, POLICY, &state, &clock);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let secret = random_secret();
    daemon.enroll_totp("clockback", &secret);

    let now = unix_now();
    let code = oathtool_at(&secret, now);
    let first = drive(&pam, "clockback", &["-a", &code], &[]);
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.stdout);

    // Five minutes back, while the daemon runs.
    clock.set_offset(-300);
    let replay = drive(&pam, "clockback", &["-a", &code], &[]);
    assert_ne!(
        replay.code, PAM_SUCCESS,
        "replayed after the clock went back: {}",
        replay.stdout
    );
    // The code the daemon's clock now calls current was never used, but its
    // step is before the last accepted one: refused too.
    let behind = oathtool_at(&secret, unix_now() - 300);
    let old_step = drive(&pam, "clockback", &["-a", &behind], &[]);
    assert_ne!(old_step.code, PAM_SUCCESS, "{}", old_step.stdout);
    assert!(
        old_step.stdout.contains("already used"),
        "{}",
        old_step.stdout
    );

    // libfaketime really moved the daemon's clock: its history says so.
    let recorded = last_history_time(&mut daemon, &state, "clockback");
    let real = unix_now();
    eprintln!("daemon's clock on its last history row: {recorded} (real {real})");
    assert!(
        recorded + 250 <= real && recorded + 400 >= real,
        "the daemon's clock is not 5 minutes back: {recorded} vs {real}"
    );

    // Back to real time: the next step's code works, the old one still not.
    clock.set_offset(0);
    let again = drive(&pam, "clockback", &["-a", &code], &[]);
    assert_ne!(again.code, PAM_SUCCESS, "{}", again.stdout);
    let fresh = drive(
        &pam,
        "clockback",
        &["-a", &oathtool_at(&secret, unix_now() + 30)],
        &[],
    );
    assert_eq!(fresh.code, PAM_SUCCESS, "{}", fresh.stdout);
}

#[test]
fn clock_stepped_back_extends_no_grace() {
    let bus = Bus::start(BusPolicy::Shipped);
    let state = StateDir::new();
    let clock = FakeClock::new();
    let daemon = faketime_daemon(&bus, GRACE_POLICY, &state, &clock);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let secret = random_secret();
    daemon.enroll_totp("graceback", &secret);

    let first = drive(&pam, "graceback", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.stdout);
    assert_eq!(first.prompts(), 1);
    // Within grace: no prompt.
    let graced = drive(&pam, "graceback", &[], &[]);
    assert_eq!(graced.code, PAM_SUCCESS, "{}", graced.stdout);
    assert_eq!(graced.prompts(), 0, "{}", graced.stdout);

    // The clock goes back 5 minutes: the success is now "in the future".
    // Counting it as within the 2-minute grace would stretch grace to
    // 2 minutes plus the jump; it must not count.
    clock.set_offset(-300);
    let after_jump = drive(&pam, "graceback", &[], &[]);
    assert_ne!(
        after_jump.code, PAM_SUCCESS,
        "grace from a success in the future: {}",
        after_jump.stdout
    );
    assert_eq!(after_jump.prompts(), 1, "{}", after_jump.stdout);
    let explained = daemon.ctl(&[
        "explain",
        "--user",
        "graceback",
        "--service",
        "sudo",
        "--json",
    ]);
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(
        explained.contains("\"grace_applies\":false")
            || explained.contains("\"grace_applies\": false"),
        "{explained}"
    );

    // Clock back to real time: the success is 2 minutes-or-less old again.
    clock.set_offset(0);
    let restored = drive(&pam, "graceback", &[], &[]);
    assert_eq!(restored.code, PAM_SUCCESS, "{}", restored.stdout);
    assert_eq!(restored.prompts(), 0, "{}", restored.stdout);
}
