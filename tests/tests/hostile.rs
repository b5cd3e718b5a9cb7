//! Hostile input through the real module and the real bus (issue 9, part 2).
//!
//! Each case goes through real libpam (the in-process driver, which can set
//! PAM items and answers to any bytes) or a raw root D-Bus client of the
//! daemon (calls the module never makes), and asserts what a user relies on:
//! the attempt fails closed, with `PAM_AUTH_ERR` whatever `failmode` says
//! (the daemon is there and the input is bad: `PAM_AUTHINFO_UNAVAIL` would let
//! `failmode=safe` turn attacker-chosen input into a pass); nothing is
//! written to the store for input that cannot be an attempt; the host process
//! does not panic (`PAM_ABORT`); the daemon stays up and still serves a
//! well-behaved client correctly afterwards. See docs/security.md.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stepup_tests::probe::{RawClient, context, error_name, is_alive};
use stepup_tests::*;
use stepupd::store::{HistoryEntry, SqliteStore};

const PAM_ABORT: i32 = 26;
const PAM_SYSTEM_ERR: i32 = 4;

/// alice is allowed without a factor; everyone else steps up with TOTP.
const POLICY: &str = r#"
[daemon]
max_sessions = 64
max_sessions_per_caller = 4

[lockout]
deny = 5
fail_interval = "15m"
unlock_time = "0s"

[defaults]
action = "step_up"
methods = ["totp"]
max_tries = 3
# These tests speak the raw bus and answer the first prompt at once; the
# reason step before it is tested in policy.rs (pamtester, sudo, raw bus).
show_reason = false

[[rule]]
name = "alice-allowed"
user = ["alice"]
action = "allow"
"#;

struct World {
    bus: Bus,
    daemon: Daemon,
    /// failmode=secure (the default).
    pam: PamService,
    /// failmode=safe: hostile input must not become a fail-safe pass.
    safe: PamService,
    files: tempfile::TempDir,
}

fn world(policy: &str) -> World {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, policy);
    let pam = PamService::new(&format!("bus={} timeout=10", bus.address));
    let safe = PamService::new(&format!("bus={} timeout=10 failmode=safe", bus.address));
    let files = tempfile::tempdir().unwrap();
    World {
        bus,
        daemon,
        pam,
        safe,
        files,
    }
}

impl World {
    /// A file holding exactly `bytes`, for the driver's -A / -I flags.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Run the driver against both services: the same failure either way.
    fn drive_both(&self, user: &str, extra: &[&str]) -> [Drive; 2] {
        [
            drive(&self.pam, user, extra, &[]),
            drive(&self.safe, user, extra, &[]),
        ]
    }

    fn history(&self, user: &str) -> Vec<HistoryEntry> {
        SqliteStore::open(self.daemon.state_dir.path())
            .unwrap()
            .history(user, 100_000)
            .unwrap()
    }

    fn credentials(&self) -> String {
        RawClient::connect(&self.bus.address).status()["credentials"].clone()
    }

    /// The daemon is up and serves a well-behaved client correctly: alice is
    /// allowed, and a freshly enrolled user steps up with the right code
    /// (once: the replay is refused).
    fn still_serves(&self) {
        assert!(
            is_alive(self.daemon.pid()),
            "stepupd died:\n{}",
            self.daemon.log()
        );
        let run = drive(&self.pam, "alice", &[], &[]);
        assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
        let user = format!("wb{}", &random_suffix()[..6]);
        let secret = random_secret();
        self.daemon.enroll_totp(&user, &secret);
        let code = oathtool_now(&secret);
        let run = drive(&self.pam, &user, &["-a", &code], &[]);
        assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
        assert_eq!(run.prompts(), 1, "{}", run.stdout);
        let replay = drive(&self.pam, &user, &["-a", &code], &[]);
        assert_ne!(replay.code, PAM_SUCCESS, "{}", replay.stdout);
    }
}

/// Failed closed with PAM_AUTH_ERR, no prompt, no panic in the host.
fn refused(runs: &[Drive], why: &str) {
    for run in runs {
        assert_ne!(run.code, PAM_ABORT, "the module panicked ({why}): {run:?}");
        assert_eq!(run.code, PAM_AUTH_ERR, "{why}: {}", run.stdout);
        assert_eq!(run.prompts(), 0, "{why}: {}", run.stdout);
    }
}

/// Count decisions the daemon logged for `user` (its audit lines).
fn decisions_for(daemon: &Daemon, user: &str) -> usize {
    daemon
        .log()
        .matches(&format!("event=decision user={user} "))
        .count()
}

// ---------------------------------------------------------------- user names

#[test]
fn user_name_with_a_nul_is_cut_at_the_nul_by_libpam_and_nothing_else_gets_through() {
    let w = world(POLICY);
    // PAM items are C strings: the module (and the application) sees "alice".
    let name = w.file("user", b"alice\0root");
    let run = drive(
        &w.pam,
        "nobody",
        &["-I", &format!("user={}", name.display())],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(decisions_for(&w.daemon, "alice"), 1, "{}", w.daemon.log());
    assert!(!w.daemon.log().contains("user=root"), "{}", w.daemon.log());

    // And for a user who must step up, the factor asked for is that user's.
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let name = w.file("user2", b"bob\0alice");
    let run = drive(
        &w.pam,
        "nobody",
        &[
            "-I",
            &format!("user={}", name.display()),
            "-a",
            &oathtool_now(&secret),
        ],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(run.prompts(), 1);
    w.still_serves();
}

#[test]
fn user_name_with_a_nul_cannot_be_sent_on_the_bus() {
    let w = world(POLICY);
    let client = RawClient::connect(&w.bus.address);
    // D-Bus strings may not hold NUL: zbus refuses to send it, or the bus
    // drops the message (and this connection); the daemon never sees it.
    let result = client.begin(&[("service", "sudo"), ("user", "alice\0root")]);
    eprintln!("Begin with a NUL in a string: {result:?}");
    assert!(result.is_err(), "{result:?}");
    assert_eq!(decisions_for(&w.daemon, "alice"), 0, "{}", w.daemon.log());
    assert!(w.history("alice").is_empty());
    w.still_serves();
}

#[test]
fn user_name_with_a_newline_is_refused() {
    let w = world(POLICY);
    let name = w.file("user", b"alice\nevent=decision user=root verdict=allow");
    let runs = w.drive_both("nobody", &["-I", &format!("user={}", name.display())]);
    refused(&runs, "newline in PAM_USER");
    assert!(
        !w.daemon.log().contains("user=root"),
        "a forged audit line: {}",
        w.daemon.log()
    );
    let client = RawClient::connect(&w.bus.address);
    let err = client
        .begin(&[("service", "sudo"), ("user", "alice\nroot")])
        .unwrap_err();
    assert_eq!(error_name(&err), "InvalidArgument", "{err}");
    assert!(w.history("alice").is_empty());
    assert!(w.history("alice\nroot").is_empty());
    w.still_serves();
}

#[test]
fn user_name_with_a_path_is_refused_and_not_recorded() {
    let w = world(POLICY);
    for name in ["../../etc/passwd", "..", "bob/..", "root:x:0:0"] {
        let runs = w.drive_both(name, &[]);
        refused(&runs, name);
        assert!(w.history(name).is_empty(), "{name} recorded");
        // Also as the caller (PAM_RUSER, the subject for su).
        let run = drive(&w.pam, "bob", &["-u", name], &[]);
        refused(&[run], name);
    }
    assert!(w.history("bob").is_empty());
    assert!(!w.daemon.log().contains("etc/passwd"), "{}", w.daemon.log());
    w.still_serves();
}

#[test]
fn user_name_of_10_kib_is_refused() {
    let w = world(POLICY);
    let long = "a".repeat(10 * 1024);
    let name = w.file("user", long.as_bytes());
    let runs = w.drive_both("nobody", &["-I", &format!("user={}", name.display())]);
    refused(&runs, "10 KiB PAM_USER");
    // Just over the account name limit, under the context's value limit.
    let runs = w.drive_both(&"b".repeat(257), &[]);
    refused(&runs, "257-byte PAM_USER");
    assert!(w.history(&long).is_empty());
    assert_eq!(w.credentials(), "0");
    w.still_serves();
}

#[test]
fn user_name_that_is_not_utf8_is_refused_by_the_module() {
    let w = world(POLICY);
    let name = w.file("user", b"alic\xe9");
    let runs = w.drive_both("nobody", &["-I", &format!("user={}", name.display())]);
    refused(&runs, "Latin-1 PAM_USER");
    // Other items too.
    let rhost = w.file("rhost", b"\xff\xfe192.0.2.1");
    let runs = w.drive_both("alice", &["-I", &format!("rhost={}", rhost.display())]);
    refused(&runs, "non-UTF-8 PAM_RHOST");
    // Nothing reached the daemon.
    assert_eq!(decisions_for(&w.daemon, "alice"), 0, "{}", w.daemon.log());
    w.still_serves();
}

// ---------------------------------------------------------------- big items

#[test]
fn tty_and_rhost_of_1_mib_are_refused() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let huge = w.file("huge", "x".repeat(1 << 20).as_bytes());
    let big = w.file("big", "x".repeat(8 * 1024).as_bytes());
    for user in ["alice", "bob"] {
        for item in ["tty", "rhost", "ruser"] {
            // 8 KiB reaches the module and the daemon: refused there.
            let runs = w.drive_both(user, &["-I", &format!("{item}={}", big.display())]);
            refused(&runs, &format!("8 KiB PAM_{item} for {user}"));
            // 1 MiB: libpam's own audit record (Debian builds libpam with
            // libaudit) cannot hold a tty or rhost that long, and libpam
            // turns the stack's result into PAM_SYSTEM_ERR; PAM_RUSER is not
            // in that record and reaches the daemon. A failure either way.
            let runs = w.drive_both(user, &["-I", &format!("{item}={}", huge.display())]);
            for run in &runs {
                assert_ne!(run.code, PAM_ABORT, "the module panicked: {run:?}");
                let expected: &[i32] = match item {
                    "ruser" => &[PAM_AUTH_ERR],
                    _ => &[PAM_AUTH_ERR, PAM_SYSTEM_ERR],
                };
                assert!(
                    expected.contains(&run.code),
                    "1 MiB PAM_{item} for {user}: {}",
                    run.stdout
                );
                assert_eq!(run.prompts(), 0);
            }
        }
    }
    // Straight on the bus, every context value over 1 KiB is refused.
    let client = RawClient::connect(&w.bus.address);
    let megabyte = "y".repeat(1 << 20);
    for key in ["tty", "rhost", "ruser", "service"] {
        let mut ctx = context(&[("service", "sudo"), ("user", "bob")]);
        ctx.insert(key.to_owned(), megabyte.clone());
        let err = client
            .begin_with(stepup_common::PROTOCOL_VERSION, ctx)
            .unwrap_err();
        assert_eq!(error_name(&err), "InvalidArgument", "{key}: {err}");
        assert!(err.to_string().len() < 1024, "the reply echoes the value");
    }
    let mut ctx = context(&[("service", "sudo"), ("user", "bob")]);
    ctx.insert(megabyte.clone(), "x".to_owned());
    let err = client
        .begin_with(stepup_common::PROTOCOL_VERSION, ctx)
        .unwrap_err();
    assert_eq!(error_name(&err), "InvalidArgument", "{err}");
    assert_eq!(decisions_for(&w.daemon, "alice"), 0, "{}", w.daemon.log());
    assert!(w.history("bob").is_empty());
    w.still_serves();
}

#[test]
fn answer_of_1_mib_is_not_checked_and_ends_the_attempt() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let huge = w.file("answer", "1".repeat(1 << 20).as_bytes());
    // The module does not relay it: the attempt ends, failing closed.
    let runs = w.drive_both(
        "bob",
        &[
            "-A",
            &huge.display().to_string(),
            "-a",
            &oathtool_now(&secret),
        ],
    );
    for run in &runs {
        assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
        assert_eq!(run.prompts(), 1, "{}", run.stdout);
    }
    // The raw bus: the daemon refuses it too, without checking it, and the
    // session is over (a right code after it is not taken).
    let client = RawClient::connect(&w.bus.address);
    let (session, kind, _) = client
        .begin(&[("service", "sudo"), ("user", "bob")])
        .unwrap();
    assert_eq!(kind, "prompt_secret");
    let err = client.respond(&session, &"9".repeat(1 << 20)).unwrap_err();
    assert_eq!(error_name(&err), "InvalidArgument", "{err}");
    let err = client
        .respond(&session, &oathtool_now(&secret))
        .unwrap_err();
    assert_eq!(error_name(&err), "NoSuchSession", "{err}");
    // Recorded as ended attempts, never as wrong codes (no lockout credit),
    // and the answer itself is nowhere.
    let history = w.history("bob");
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(
        history.iter().all(|h| h.outcome == "cancelled"),
        "{history:?}"
    );
    assert!(!w.daemon.log().contains("1111111111"));
    w.still_serves();
    // bob is not locked: his right code works.
    let run = drive(
        &w.pam,
        "bob",
        &["-a", &oathtool_at(&secret, now() + 30)],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
}

#[test]
fn answer_that_is_not_utf8_is_a_wrong_code() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let code = oathtool_now(&secret);
    // The right digits with a stray byte: not the code.
    let bad = w.file("answer", format!("{code}\u{0}999").as_bytes());
    let latin1 = w.file("answer2", &[b'1', 0xe9, b'2']);
    let run = drive(
        &w.pam,
        "bob",
        &[
            "-A",
            &latin1.display().to_string(),
            "-A",
            &bad.display().to_string(),
        ],
        &[],
    );
    // The NUL cut the second answer back to the right code: accepted.
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(run.errors(), ["Wrong code."], "{}", run.stdout);
    w.still_serves();
}

// ---------------------------------------------------------------- protocol

#[test]
fn unknown_protocol_versions_are_refused_and_nothing_is_recorded() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let client = RawClient::connect(&w.bus.address);
    for version in [0, 3, 7, u32::MAX] {
        for user in ["alice", "bob"] {
            let err = client
                .begin_with(version, context(&[("service", "sudo"), ("user", user)]))
                .unwrap_err();
            assert_eq!(error_name(&err), "ProtocolMismatch", "{version}: {err}");
            assert!(err.to_string().contains(&version.to_string()), "{err}");
        }
    }
    assert_eq!(client.sessions(), 0);
    assert!(w.history("bob").is_empty());
    assert_eq!(decisions_for(&w.daemon, "alice"), 0);
    // Wrong argument types are refused by the bus layer.
    let reply = client.call("Begin", &("1", context(&[("user", "bob")])));
    assert!(reply.is_err(), "{reply:?}");
    let reply = client.call("Respond", &(1u32,));
    assert!(reply.is_err(), "{reply:?}");
    w.still_serves();
}

#[test]
fn respond_and_cancel_to_another_connections_session_are_refused() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let owner = RawClient::connect(&w.bus.address);
    let thief = RawClient::connect(&w.bus.address);
    let (session, kind, _) = owner
        .begin(&[("service", "sudo"), ("user", "bob")])
        .unwrap();
    assert_eq!(kind, "prompt_secret");
    let code = oathtool_now(&secret);
    // Exactly as for a session that does not exist.
    let err = thief.respond(&session, &code).unwrap_err();
    assert_eq!(error_name(&err), "NoSuchSession", "{err}");
    let missing = thief.respond("00000000000000000000000000000000", &code);
    assert_eq!(error_name(&missing.unwrap_err()), "NoSuchSession");
    let err = thief.cancel(&session).unwrap_err();
    assert_eq!(error_name(&err), "NoSuchSession", "{err}");
    // A wrong guess from the thief did not count either.
    let _ = thief.respond(&session, "000000");
    // The owner's session is untouched: the right code works, once.
    let (kind, _) = owner.respond(&session, &code).unwrap();
    assert_eq!(kind, "allow");
    let history = w.history("bob");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].outcome, "success");
    w.still_serves();
}

// ---------------------------------------------------------------- floods

/// `n` Begins for an enrolled user on one connection (up to 32 in flight):
/// how many opened a session, and every refusal's error name.
fn begin_flood(client: &RawClient, user: &str, n: usize) -> (usize, Vec<&'static str>) {
    let mut opened = 0;
    let mut errors = Vec::new();
    let ctx = [("service", "sudo"), ("user", user), ("tty", "/dev/pts/9")];
    for result in client.begin_many(&ctx, n, 32) {
        match result {
            Ok((session, kind, _)) => {
                assert_eq!(kind, "prompt_secret");
                assert!(!session.is_empty());
                opened += 1;
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("too many attempts"),
                    "unexpected refusal: {e}"
                );
                errors.push(error_name(&e));
            }
        }
    }
    (opened, errors)
}

/// Wait (by count, generously) until `user` has `rows` history rows.
fn wait_history(w: &World, user: &str, rows: usize) -> Vec<HistoryEntry> {
    let start = Instant::now();
    loop {
        let history = w.history(user);
        if history.len() >= rows || start.elapsed() > Duration::from_secs(60) {
            return history;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ten_thousand_begins_on_one_connection_are_capped_per_caller() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let fd_before = stepup_tests::probe::fd_count(w.daemon.pid());

    // The flood runs in a thread; a well-behaved client steps up meanwhile.
    let address = w.bus.address.clone();
    let flood = std::thread::spawn(move || {
        let client = RawClient::connect(&address);
        let start = Instant::now();
        let (opened, errors) = begin_flood(&client, "bob", 10_000);
        let sessions = client.sessions();
        (opened, errors, sessions, start.elapsed(), client)
    });
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    while !flood.is_finished() && served < 20 {
        let user = format!("wb{}", &random_suffix()[..6]);
        let secret = random_secret();
        w.daemon.enroll_totp(&user, &secret);
        let run = drive(&w.pam, &user, &["-a", &oathtool_now(&secret)], &[]);
        assert_eq!(run.code, PAM_SUCCESS, "during the flood: {}", run.stdout);
        slowest = slowest.max(run.elapsed);
        served += 1;
    }
    let (opened, errors, sessions, took, client) = flood.join().unwrap();
    eprintln!(
        "10000 Begins on one connection: {opened} opened, {} refused, in {took:?}; \
         {served} well-behaved step-ups meanwhile, slowest {slowest:?}",
        errors.len()
    );
    assert_eq!(opened, 4, "max_sessions_per_caller = 4");
    assert_eq!(errors.len(), 10_000 - 4);
    assert!(errors.iter().all(|e| *e == "Failed"));
    assert_eq!(sessions, 4, "only the flood's own sessions are open");
    assert!(slowest < Duration::from_secs(10), "{slowest:?}");
    // The refused Begins left nothing behind: no history, no sessions.
    assert!(w.history("bob").is_empty());
    // Its sessions end with its connection.
    drop(client);
    let start = Instant::now();
    while RawClient::connect(&w.bus.address).sessions() != 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "sessions linger");
        std::thread::sleep(Duration::from_millis(50));
    }
    let history = wait_history(&w, "bob", 4);
    assert_eq!(history.len(), 4, "{history:?}");
    assert!(
        history.iter().all(|h| h.outcome == "cancelled"),
        "{history:?}"
    );
    assert!(stepup_tests::probe::fd_count(w.daemon.pid()) <= fd_before + 2);
    w.still_serves();
}

#[test]
fn many_connections_fill_the_table_and_the_daemon_fails_closed_then_recovers() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let good = random_secret();
    w.daemon.enroll_totp("carol", &good);

    // 16 connections x 4 = max_sessions (64); a 17th gets "full".
    let flood: Vec<RawClient> = (0..17)
        .map(|_| RawClient::connect(&w.bus.address))
        .collect();
    let mut total = 0;
    for client in &flood[..16] {
        let (opened, _) = begin_flood(client, "bob", 10);
        assert_eq!(opened, 4);
        total += opened;
    }
    assert_eq!(total, 64);
    let (opened, errors) = begin_flood(&flood[16], "bob", 100);
    assert_eq!(opened, 0);
    assert_eq!(errors.len(), 100);

    // A well-behaved client is answered at once, and refused: PAM_AUTH_ERR
    // even with failmode=safe (a flood must not become a pass), no prompt.
    for pam in [&w.pam, &w.safe] {
        let run = drive(pam, "carol", &["-a", &oathtool_now(&good)], &[]);
        assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
        assert_eq!(run.prompts(), 0);
        assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    }
    // Allow rules need no session and still work.
    assert_eq!(drive(&w.pam, "alice", &[], &[]).code, PAM_SUCCESS);

    // Half the flood goes away: its sessions are released and carol gets in.
    let mut flood = flood;
    flood.truncate(8);
    let start = Instant::now();
    while flood[0].sessions() > 32 {
        assert!(start.elapsed() < Duration::from_secs(30), "sessions linger");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = drive(&w.pam, "carol", &["-a", &oathtool_now(&good)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    drop(flood);
    w.still_serves();
}

/// Connections leaving are watched only while sessions are open (one match
/// rule, on until no session was opened for a `session_timeout`;
/// docs/performance.md "Issue 19"): allowed attempts turn nothing on, and a
/// connection that leaves right after `Begin` (before the watch could see
/// it) still has its session ended as cancelled, not at its deadline.
#[test]
fn departures_are_watched_only_while_sessions_are_open_and_a_quick_leaver_is_caught() {
    let w = world(&POLICY.replace(
        "max_sessions = 64",
        "max_sessions = 64\nsession_timeout = \"8s\"",
    ));
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let rules = || w.bus.match_rules_of("org.stepup.Daemon1");
    let until = |want: u32, why: &str| {
        let start = Instant::now();
        while rules() != want {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{why}: {} rules",
                rules()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let baseline = rules();
    for _ in 0..20 {
        assert_eq!(drive(&w.pam, "alice", &[], &[]).code, PAM_SUCCESS);
    }
    assert_eq!(rules(), baseline, "allowed attempts turn no watch on");

    // Connections that leave at once after opening a session: each session
    // ends as cancelled well before its 8-s deadline.
    let start = Instant::now();
    for _ in 0..10 {
        let client = RawClient::connect(&w.bus.address);
        let (_, kind, _) = client
            .begin(&[("service", "sudo"), ("user", "bob")])
            .unwrap();
        assert_eq!(kind, "prompt_secret");
        drop(client);
    }
    while RawClient::connect(&w.bus.address).sessions() != 0 {
        assert!(start.elapsed() < Duration::from_secs(6), "sessions linger");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rules(), baseline + 1, "the watch is on");
    let history = wait_history(&w, "bob", 10);
    assert_eq!(history.len(), 10, "{history:?}");
    assert!(
        history.iter().all(|h| h.outcome == "cancelled"),
        "{history:?}"
    );
    // No session for a session_timeout: the watch goes, rule and all.
    until(baseline, "the watch goes when sessions have stopped");
    w.still_serves();
}

#[test]
fn sessions_that_are_never_answered_expire() {
    let w = world(&POLICY.replace(
        "max_sessions = 64",
        "max_sessions = 64\nsession_timeout = \"2s\"",
    ));
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    let client = RawClient::connect(&w.bus.address);
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(
            client
                .begin(&[("service", "sudo"), ("user", "bob")])
                .unwrap()
                .0,
        );
    }
    let (opened, _) = begin_flood(&client, "bob", 100);
    assert_eq!(opened, 0, "capped while they are open");
    // Expired by the daemon's clock, with the connection still open.
    let start = Instant::now();
    while client.sessions() != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sessions did not expire"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = wait_history(&w, "bob", 4);
    assert_eq!(history.len(), 4, "{history:?}");
    assert!(
        history.iter().all(|h| h.outcome == "timeout"),
        "{history:?}"
    );
    // A late answer, even the right code, is told the attempt timed out: a
    // final deny (PAM_AUTH_ERR), not "no such session" (which the module
    // must read as a lost daemon).
    let (kind, text) = client
        .respond(&sessions[0], &oathtool_now(&secret))
        .unwrap();
    assert_eq!(kind, "deny", "{text}");
    assert!(text.contains("timed out"), "{text}");
    let err = client.respond(&sessions[0], "000000").unwrap_err();
    assert_eq!(error_name(&err), "NoSuchSession");
    // The connection gets its share back.
    let (opened, _) = begin_flood(&client, "bob", 10);
    assert_eq!(opened, 4);
    drop(client);
    w.still_serves();
}

#[test]
fn a_person_who_answers_after_the_timeout_is_refused_even_with_failmode_safe() {
    let w = world(&POLICY.replace(
        "max_sessions = 64",
        "max_sessions = 64\nsession_timeout = \"1s\"",
    ));
    let secret = random_secret();
    w.daemon.enroll_totp("bob", &secret);
    for pam in [&w.pam, &w.safe] {
        // The driver waits 4 s before answering (-D): the session is gone.
        let run = drive(
            pam,
            "bob",
            &["-D", "4000", "-a", &oathtool_now(&secret)],
            &[],
        );
        assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
        assert!(run.stdout.contains("timed out"), "{}", run.stdout);
    }
    w.still_serves();
}

#[test]
fn a_flood_of_wrong_codes_locks_the_target_only() {
    let w = world(POLICY);
    let secret = random_secret();
    w.daemon.enroll_totp("amy", &secret);
    let other = random_secret();
    w.daemon.enroll_totp("ben", &other);
    let wrong = wrong_code(&secret);

    // Through PAM: 5 wrong codes (deny = 5) lock amy.
    let run = drive(
        &w.pam,
        "amy",
        &["-a", &wrong, "-a", &wrong, "-a", &wrong],
        &[],
    );
    assert_eq!(run.code, PAM_MAXTRIES, "{}", run.stdout);
    let run = drive(&w.pam, "amy", &["-a", &wrong, "-a", &wrong], &[]);
    assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
    assert!(run.stdout.contains("locked"), "{}", run.stdout);

    // Then a raw flood: 200 attempts, each refused at Begin without a prompt.
    let client = RawClient::connect(&w.bus.address);
    for _ in 0..200 {
        let (session, kind, text) = client
            .begin(&[("service", "sudo"), ("user", "amy")])
            .unwrap();
        assert_eq!(kind, "deny", "{text}");
        assert!(session.is_empty());
    }
    // Even the right code is not asked for while locked.
    let run = drive(&w.pam, "amy", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(run.code, PAM_AUTH_ERR);
    assert_eq!(run.prompts(), 0);
    // ben is unaffected, and quickly served.
    let run = drive(&w.pam, "ben", &["-a", &oathtool_now(&other)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(run.elapsed < Duration::from_secs(10));
    let history = w.history("amy");
    assert_eq!(
        history.iter().filter(|h| h.outcome == "wrong_code").count(),
        5,
        "{history:?}"
    );
    assert!(w.history("ben").iter().all(|h| h.outcome == "success"));
    w.still_serves();
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
