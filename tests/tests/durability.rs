//! Durability: a step-up the daemon acknowledged survives SIGKILL (its
//! history row and its used TOTP step are on disk), so the acknowledged code
//! is never accepted again; a corrupted state database stops the daemon
//! instead of being silently replaced.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use stepup_tests::*;
use stepupd::store::Store;

const POLICY: &str = "[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\nmax_tries = 1\n";

const USERS: usize = 24;
const MAX_ROUNDS: usize = 15;
const ROUND_BUDGET: Duration = Duration::from_secs(40);
const MIN_ACKNOWLEDGED: usize = 10;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Wait until the daemon's bus name has no owner (the bus has noticed that
/// the process is gone), so that the harness' "name owned" check after a
/// restart can only be satisfied by the new process.
fn wait_name_released(bus: &Bus) {
    let start = Instant::now();
    while bus.has_owner(stepup_common::BUS_NAME) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} still owned 10 s after the daemon died",
            stepup_common::BUS_NAME
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL is not catchable: stop the old process for good, then start a new one.
fn restart_after_kill(bus: &Bus, daemon: &mut Daemon) {
    wait_name_released(bus);
    // restart() SIGTERMs the (already dead, not yet reaped) process, reaps it
    // and spawns a new one, waiting until it owns the name.
    daemon.restart();
}

/// A code the daemon itself refused (not one that never reached it).
fn refused_by_daemon(run: &Drive) -> bool {
    run.code != PAM_SUCCESS
        && run.code != PAM_AUTHINFO_UNAVAIL
        && (run.stdout.contains("already used") || run.stdout.contains("Wrong code"))
}

/// Run one step-up per user at once, answering `code`; `during` runs
/// meanwhile (in this thread) once all of them are launched.
fn step_up_all<'u>(
    pam: &PamService,
    users: &[&'u String],
    code: &str,
    during: impl FnOnce(),
) -> Vec<(&'u String, Drive)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter()
            .map(|&user| scope.spawn(move || (user, drive(pam, user, &["-a", code], &[]))))
            .collect();
        during();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

struct Acknowledged {
    code: String,
    step: u64,
    round: usize,
}

#[test]
fn acknowledged_step_ups_survive_sigkill_and_codes_are_never_reused() {
    let started = Instant::now();
    let bus = Bus::start(BusPolicy::Shipped);
    let mut daemon = Daemon::start(&bus, POLICY);
    let pam = PamService::new(&format!("bus={} timeout=3", bus.address));
    // One secret for everyone: one current code is a first use for each
    // user, since each credential keeps its own last used step.
    let secret = random_secret();
    let users: Vec<String> = (0..USERS).map(|i| format!("dur{i:02}")).collect();
    for user in &users {
        daemon.enroll_totp(user, &secret);
    }

    // When do answers arrive? A batch of wrong codes (refused, so no user is
    // used up) takes as long as a batch of right ones; the kills are aimed
    // at random moments of that span (on a debug build here, about
    // 200–300 ms after launch: a kill in the first few ms hits nothing).
    let all: Vec<&String> = users.iter().collect();
    let calibration = step_up_all(&pam, &all, &wrong_code(&secret), || {});
    for (user, run) in &calibration {
        assert!(refused_by_daemon(run), "{user}: {}", run.stdout);
    }
    let answered_ms = |pick: fn(u128, u128) -> u128| {
        calibration
            .iter()
            .map(|(_, run)| run.elapsed.as_millis())
            .reduce(pick)
            .unwrap() as u64
    };
    // (earliest, latest) kill delay in ms, narrowed as rounds tell more.
    let mut window = (answered_ms(u128::min) / 2, answered_ms(u128::max) + 20);
    eprintln!("durability: a batch is answered {}–{} ms after launch", answered_ms(u128::min), answered_ms(u128::max));

    let mut acknowledged: BTreeMap<String, Acknowledged> = BTreeMap::new();
    let (mut rounds, mut kills, mut attempted, mut unavailable, mut refused) = (0, 0, 0, 0, 0);
    // Rounds where the kill caught attempts in flight, and where it did so
    // while others had just been acknowledged.
    let (mut rounds_in_flight, mut rounds_ack_and_in_flight) = (0, 0);
    let rounds_start = Instant::now();
    for round in 0..MAX_ROUNDS {
        if rounds_start.elapsed() >= ROUND_BUDGET {
            break;
        }
        let pending: Vec<&String> = users
            .iter()
            .filter(|u| !acknowledged.contains_key(*u))
            .collect();
        if pending.is_empty() {
            break;
        }
        rounds += 1;
        let now = unix_now();
        let code = oathtool_at(&secret, now);
        let step = now / 30;
        let delay = Duration::from_millis(rand::random_range(window.0..=window.1));
        let pid = daemon.pid();
        let runs = step_up_all(&pam, &pending, &code, || {
            std::thread::sleep(delay);
            kill(pid, Signal::SIGKILL).unwrap();
        });
        kills += 1;
        attempted += runs.len();
        let (mut round_ack, mut round_unavail, mut round_refused) = (0, 0, 0);
        for (user, run) in runs {
            match run.code {
                PAM_SUCCESS => {
                    round_ack += 1;
                    acknowledged.insert(
                        user.clone(),
                        Acknowledged {
                            code: code.clone(),
                            step,
                            round,
                        },
                    );
                }
                PAM_AUTHINFO_UNAVAIL => round_unavail += 1,
                _ => {
                    // The daemon answered no: only possible when an earlier,
                    // killed attempt of this user consumed this step.
                    assert!(
                        refused_by_daemon(&run),
                        "round {round}: {user} got {} unexpectedly: {}",
                        run.code,
                        run.stdout
                    );
                    round_refused += 1;
                }
            }
        }
        eprintln!(
            "round {round}: kill after {delay:?}: {} attempted, {round_ack} acknowledged, \
             {round_unavail} unavailable, {round_refused} refused",
            pending.len()
        );
        // A kill before any answer or after all of them exercised less:
        // aim later or earlier next time.
        let delay_ms = delay.as_millis() as u64;
        if round_ack == 0 {
            window.0 = delay_ms.min(window.1.saturating_sub(10));
        } else if round_unavail == 0 {
            window.1 = delay_ms.max(window.0 + 10);
        }
        unavailable += round_unavail;
        refused += round_refused;
        if round_unavail > 0 {
            rounds_in_flight += 1;
            if round_ack > 0 {
                rounds_ack_and_in_flight += 1;
            }
        }
        restart_after_kill(&bus, &mut daemon);
    }

    eprintln!(
        "durability: {rounds} rounds, {kills} SIGKILLs, {attempted} step-ups attempted, \
         {} acknowledged, {unavailable} unavailable, {refused} refused; \
         {rounds_in_flight} rounds killed with attempts in flight, \
         {rounds_ack_and_in_flight} of them right after acknowledgements",
        acknowledged.len()
    );
    assert!(
        rounds_in_flight >= 1,
        "no SIGKILL caught an attempt in flight: the test exercised nothing"
    );
    assert!(
        acknowledged.len() >= MIN_ACKNOWLEDGED,
        "only {} step-ups acknowledged (want {MIN_ACKNOWLEDGED})",
        acknowledged.len()
    );

    // What the store says, read while no daemon runs.
    daemon.stop();
    wait_name_released(&bus);
    {
        let store = Store::open(daemon.state_dir.path()).unwrap();
        for (user, ack) in &acknowledged {
            let history = store.history(user, 1000).unwrap();
            assert!(
                history.iter().any(|h| h.outcome == "success" && h.method == "totp"),
                "{user} was acknowledged in round {} but has no success on record: {history:?}",
                ack.round
            );
            let creds = store.totp_credentials(user).unwrap();
            assert_eq!(creds.len(), 1, "{user}");
            assert_eq!(
                creds[0].last_step,
                Some(ack.step),
                "{user}: acknowledged code (step {}, round {}) is not the last used step",
                ack.step,
                ack.round
            );
        }
    }

    // Every acknowledged code, replayed to a fresh daemon, is refused.
    daemon.restart();
    let (mut replay_already_used, mut replay_wrong) = (0, 0);
    for (user, ack) in &acknowledged {
        let run = drive(&pam, user, &["-a", &ack.code], &[]);
        assert_ne!(
            run.code, PAM_SUCCESS,
            "{user}: code acknowledged in round {} accepted again: {}",
            ack.round, run.stdout
        );
        assert!(
            refused_by_daemon(&run),
            "{user}: replay not refused by the daemon (code {}): {}",
            run.code,
            run.stdout
        );
        if run.stdout.contains("already used") {
            replay_already_used += 1;
        } else {
            replay_wrong += 1;
        }
    }
    eprintln!(
        "durability: {} replays refused ({replay_already_used} \"already used\", \
         {replay_wrong} \"Wrong code\"); wall time {:?}",
        acknowledged.len(),
        started.elapsed()
    );
}
