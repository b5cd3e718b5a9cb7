//! Durability: a step-up the daemon acknowledged survives SIGKILL (its
//! history row and its used TOTP step are on disk), so the acknowledged code
//! is never accepted again; a corrupted state database stops the daemon
//! instead of being silently replaced.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use stepup_tests::*;
use stepupd::store::SqliteStore;

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

/// The daemon's answer was no (as opposed to: it never answered).
fn refused_by_daemon(run: &Drive) -> bool {
    run.code != PAM_SUCCESS
        && run.code != PAM_AUTHINFO_UNAVAIL
        && (run.stdout.contains("already used") || run.stdout.contains("Wrong code"))
}

/// When a round's SIGKILL comes.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the step-ups were launched.
    Blind(Duration),
    /// This long after the n-th step-up was acknowledged (PAM_SUCCESS), or
    /// once all are answered if fewer are.
    AfterAcks(usize, Duration),
}

/// Run one step-up per user at once, all answering `code`, and SIGKILL
/// `pid` as `when` says. Every drive has returned when this does.
fn step_up_all_and_kill<'u>(
    pam: &PamService,
    users: &[&'u str],
    code: &str,
    pid: Pid,
    when: Kill,
) -> Vec<(&'u str, Drive)> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for &user in users {
            let tx = tx.clone();
            scope.spawn(move || {
                let run = drive(pam, user, &["-a", code], &[]);
                tx.send((user, run)).unwrap();
            });
        }
        drop(tx);
        let sigkill = || kill(pid, Signal::SIGKILL).unwrap();
        let mut runs = Vec::with_capacity(users.len());
        let mut killed = false;
        if let Kill::Blind(delay) = when {
            std::thread::sleep(delay);
            sigkill();
            killed = true;
        }
        let mut acks = 0;
        for (user, run) in rx {
            acks += usize::from(run.code == PAM_SUCCESS);
            runs.push((user, run));
            if let Kill::AfterAcks(n, delay) = when
                && !killed
                && acks >= n
            {
                std::thread::sleep(delay);
                sigkill();
                killed = true;
            }
        }
        if !killed {
            sigkill();
        }
        runs
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

    // Each user is acknowledged at most once: never stepped up again after.
    let mut acknowledged: BTreeMap<&str, Acknowledged> = BTreeMap::new();
    // Users whose code for a step was refused as already used (a killed,
    // unacknowledged attempt had used it): not retried within that step,
    // which would only pile up failures towards the lockout.
    let mut step_spent: HashMap<&str, u64> = HashMap::new();
    // The time step of each user's latest attempt that the kill cut off.
    let mut killed_at_step: HashMap<&str, u64> = HashMap::new();
    let (mut rounds, mut kills, mut attempted) = (0, 0, 0);
    let (mut unavailable, mut refused) = (0, 0);
    // Rounds whose kill caught attempts in flight, and those of them where
    // other attempts had just been acknowledged.
    let (mut rounds_in_flight, mut rounds_ack_and_in_flight) = (0, 0);
    let rounds_start = Instant::now();
    for round in 0..MAX_ROUNDS {
        if rounds_start.elapsed() >= ROUND_BUDGET {
            break;
        }
        let now = unix_now();
        let step = now / 30;
        let pending: Vec<&str> = users
            .iter()
            .map(String::as_str)
            .filter(|u| !acknowledged.contains_key(u))
            .filter(|u| step_spent.get(u).is_none_or(|&spent| spent < step))
            .collect();
        if pending.is_empty() {
            // All acknowledged, or the rest wait for the next time step.
            break;
        }
        rounds += 1;
        let code = oathtool_at(&secret, now);
        // Every third round is killed blind, a few ms after launch (on a
        // debug build answers come 150–500 ms after launch, so this mostly
        // catches attempts connecting or starting); the others right after
        // a random number of acknowledgements, while the daemon is busy
        // answering the rest.
        let when = if round % 3 == 0 {
            Kill::Blind(Duration::from_millis(rand::random_range(0..=40)))
        } else {
            Kill::AfterAcks(
                rand::random_range(1..=pending.len().div_ceil(4)),
                Duration::from_millis(rand::random_range(0..=10)),
            )
        };
        let runs = step_up_all_and_kill(&pam, &pending, &code, daemon.pid(), when);
        kills += 1;
        attempted += runs.len();
        let (mut round_ack, mut round_unavail, mut round_refused) = (0, 0, 0);
        for (user, run) in runs {
            match run.code {
                PAM_SUCCESS => {
                    round_ack += 1;
                    let code = code.clone();
                    acknowledged.insert(user, Acknowledged { code, step, round });
                }
                PAM_AUTHINFO_UNAVAIL => {
                    killed_at_step.insert(user, step);
                    round_unavail += 1;
                }
                _ => {
                    // The daemon said no: only right if an earlier, killed
                    // attempt of this user used this step.
                    assert!(
                        run.stdout.contains("already used")
                            && killed_at_step.get(user) == Some(&step),
                        "round {round}: {user}'s fresh code refused ({}): {}",
                        run.code,
                        run.stdout
                    );
                    step_spent.insert(user, step);
                    round_refused += 1;
                }
            }
        }
        eprintln!(
            "round {round}: {when:?}: {} attempted, {round_ack} acknowledged, \
             {round_unavail} unavailable, {round_refused} refused as already used",
            pending.len()
        );
        unavailable += round_unavail;
        refused += round_refused;
        if round_unavail > 0 {
            rounds_in_flight += 1;
            if round_ack > 0 {
                rounds_ack_and_in_flight += 1;
            }
        }
        // SIGKILL cannot be caught: the process is gone. Once the bus has
        // noticed, restart() reaps it and starts a new one.
        wait_name_released(&bus);
        daemon.restart();
    }

    eprintln!(
        "durability: {rounds} rounds, {kills} SIGKILLs, {attempted} step-ups attempted, \
         {} acknowledged, {unavailable} unavailable (killed in flight), \
         {refused} refused as already used by a killed attempt; \
         {rounds_in_flight} kills caught attempts in flight, \
         {rounds_ack_and_in_flight} of them right after acknowledgements",
        acknowledged.len()
    );
    assert!(
        rounds_ack_and_in_flight >= 1,
        "no SIGKILL came between acknowledgements and attempts still in flight"
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
        let store = SqliteStore::open(daemon.state_dir.path()).unwrap();
        for (user, ack) in &acknowledged {
            let history = store.history(user, 1000).unwrap();
            assert!(
                history
                    .iter()
                    .any(|h| h.outcome == "success" && h.method == "totp"),
                "{user}, acknowledged in round {}, has no success on record: {history:?}",
                ack.round
            );
            let creds = store.totp_credentials(user).unwrap();
            assert_eq!(creds.len(), 1, "{user}");
            assert_eq!(
                creds[0].last_step,
                Some(ack.step),
                "{user}: the step of the code acknowledged in round {} is not the last used one",
                ack.round
            );
        }
        // Not promised, only reported: steps used by attempts killed before
        // their answer left (their code is spent, nobody was let in).
        let (mut spent_unacknowledged, mut spent_without_history) = (0, 0);
        for user in users
            .iter()
            .filter(|u| !acknowledged.contains_key(u.as_str()))
        {
            if store.totp_credentials(user).unwrap()[0].last_step.is_some() {
                spent_unacknowledged += 1;
                let history = store.history(user, 1000).unwrap();
                if !history.iter().any(|h| h.outcome == "success") {
                    spent_without_history += 1;
                }
            }
        }
        eprintln!(
            "durability: {spent_unacknowledged} users never acknowledged have a used step \
             (killed between using the step and answering; {spent_without_history} of them \
             with no success row)"
        );
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
            "{user}: replay not refused as used or wrong ({}): {}",
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
         {replay_wrong} \"Wrong code\" as their step left the window); wall time {:?}",
        acknowledged.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------- corruption

#[derive(Debug, Clone, Copy)]
enum Corruption {
    /// 4 KiB of 0xFF over the second page (the middle of the file).
    OverwriteMiddle,
    /// Only the first 100 bytes (the header) are left.
    Truncate,
}

fn corrupt(db: &Path, how: Corruption) {
    let file = fs::OpenOptions::new().write(true).open(db).unwrap();
    match how {
        Corruption::OverwriteMiddle => file.write_all_at(&[0xFF; 4096], 4096).unwrap(),
        Corruption::Truncate => file.set_len(100).unwrap(),
    }
    file.sync_all().unwrap();
}

/// What stepupd did when started on a state directory.
#[derive(Debug)]
struct Started {
    /// Its exit status, or None if it still ran after the time limit (then
    /// it was stopped).
    status: Option<std::process::ExitStatus>,
    /// Whether it owned its bus name when the time limit came.
    owned_name: bool,
    stderr: String,
}

/// stepupd on `daemon`'s directories and bus, as its unit would start it.
fn run_stepupd(bus: &Bus, daemon: &Daemon, limit: Duration) -> Started {
    let mut child = Command::new(artifact("stepupd"))
        .arg("--config-dir")
        .arg(daemon.config_dir.path())
        .arg("--state-dir")
        .arg(daemon.state_dir.path())
        .arg("--bus-address")
        .arg(&daemon.bus_address)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() >= limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let owned_name = status.is_none() && bus.has_owner(stepup_common::BUS_NAME);
    if status.is_none() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        std::thread::sleep(Duration::from_millis(500));
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    Started {
        status,
        owned_name,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Give a daemon some state, stop it, corrupt its database as `how` says,
/// then start stepupd on it: it must refuse, say why, and leave the
/// corrupt file for the administrator (no fresh, empty store).
fn corrupt_store_is_refused(how: Corruption) {
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=3", bus.address));
    let mut daemon = Daemon::start(&bus, POLICY);
    // Credentials and history over several pages.
    let secret = random_secret();
    for i in 0..40 {
        daemon.enroll_totp(&format!("corrupt{i:02}"), &secret);
    }
    let run = drive(&pam, "corrupt00", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    daemon.stop();
    wait_name_released(&bus);

    let db = daemon.state_dir.path().join("stepup.db");
    let wal = daemon.state_dir.path().join("stepup.db-wal");
    let wal_after_stop = fs::metadata(&wal).map(|m| m.len()).ok();
    // stepupd exits without checkpointing: its state may still be in the
    // WAL, where damage to stepup.db would not show. Closing the store
    // (the only connection) folds the WAL into stepup.db and removes it.
    drop(SqliteStore::open(daemon.state_dir.path()).unwrap());
    assert!(!wal.exists(), "the WAL survived a checkpoint");
    let clean_len = fs::metadata(&db).unwrap().len();
    assert!(clean_len >= 4 * 4096, "only {clean_len} bytes of state");
    corrupt(&db, how);
    let corrupted = fs::read(&db).unwrap();

    let started = run_stepupd(&bus, &daemon, Duration::from_secs(5));
    let after = fs::read(&db).unwrap_or_default();
    let context = format!(
        "{how:?} of a {clean_len}-byte database (WAL after a clean stop: {wal_after_stop:?} \
         bytes, checkpointed before the damage): stepupd {started:?}; database now {} bytes, {}",
        after.len(),
        if after == corrupted {
            "unchanged"
        } else {
            "REWRITTEN"
        }
    );
    eprintln!("{context}");
    let status = started.status.unwrap_or_else(|| {
        panic!(
            "{context}\nstepupd still ran 5 s after starting on a corrupt database \
             (serving on the bus: {})",
            started.owned_name
        )
    });
    assert!(!status.success(), "{context}");
    assert!(
        started.stderr.contains("state") || started.stderr.contains("stepup.db"),
        "{context}\nthe message does not name the state database"
    );
    assert!(
        after == corrupted,
        "{context}\nthe corrupt database was replaced"
    );
    assert!(
        SqliteStore::open(daemon.state_dir.path()).is_err(),
        "{context}\nthe store opens again: it was repaired or recreated"
    );
}

#[test]
fn corrupt_store_refuses_to_start_with_a_clear_message() {
    corrupt_store_is_refused(Corruption::Truncate);
}

/// The same with damage SQLite only sees when it reads that page (here
/// page 2, the credentials table): opening must check, not just read the
/// header and schema.
#[test]
fn corrupt_page_in_the_middle_of_the_store_refuses_to_start() {
    corrupt_store_is_refused(Corruption::OverwriteMiddle);
}
