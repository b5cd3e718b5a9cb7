//! Many hosts, one state: two `stepupd` daemons on two private buses (two
//! hosts) sharing one real PostgreSQL server (a private cluster), driven
//! through real libpam and a raw bus client.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stepup_tests::postgres::{Postgres, fleet_key, store_section};
use stepup_tests::probe::{RawClient, error_name};
use stepup_tests::*;

const POLICY: &str = "[lockout]\ndeny = 0\n[defaults]\naction = \"step_up\"\nmethods = [\"totp\", \"recovery\"]\nmax_tries = 1\n";

pub struct Host {
    pub bus: Bus,
    pub daemon: Daemon,
    pub pam: PamService,
}

impl Host {
    fn start(policy: &str, store: &str, module_args: &str) -> Self {
        let bus = Bus::start(BusPolicy::Shipped);
        let daemon = Daemon::start(&bus, &format!("{policy}\n{store}"));
        let pam = PamService::new(&format!("bus={} timeout=8 {module_args}", bus.address));
        Self { bus, daemon, pam }
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.daemon.ctl(args);
        assert!(
            out.status.success(),
            "stepupctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn events(&self, name: &str) -> usize {
        let marker = format!("event={name} ");
        self.daemon
            .log()
            .lines()
            .filter(|l| l.contains(&marker))
            .count()
    }
}

struct Fleet {
    pg: Postgres,
    keys: tempfile::TempDir,
    key: PathBuf,
    a: Host,
    b: Host,
}

fn fleet(policy: &str) -> Fleet {
    fleet_with(policy, "")
}

fn fleet_with(policy: &str, module_args: &str) -> Fleet {
    let pg = Postgres::start();
    let keys = tempfile::tempdir().unwrap();
    let key = fleet_key(keys.path(), "fleet.key");
    let a = Host::start(
        policy,
        &store_section(&pg.url(), &key, "host-a"),
        module_args,
    );
    let b = Host::start(
        policy,
        &store_section(&pg.url(), &key, "host-b"),
        module_args,
    );
    Fleet {
        pg,
        keys,
        key,
        a,
        b,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A code for a step no earlier test in this process used: the next one.
fn next_code(secret: &str) -> String {
    oathtool_at(secret, now() + 30)
}

#[test]
fn enroll_on_one_host_step_up_on_the_other_and_removal_applies_to_both() {
    let f = fleet(POLICY);
    let secret = random_secret();
    f.a.daemon.enroll_totp("amy", &secret);

    let code = oathtool_now(&secret);
    let run = drive(&f.b.pam, "amy", &["-a", &code], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    // The code is used fleet-wide: host A refuses it.
    let replay = drive(&f.a.pam, "amy", &["-a", &code], &[]);
    assert_ne!(replay.code, PAM_SUCCESS, "{}", replay.stdout);
    assert!(replay.stdout.contains("already used"), "{}", replay.stdout);

    // Recovery codes issued on B work once, on A.
    let codes = f.b.daemon.recovery_codes("amy");
    assert_eq!(
        drive(&f.a.pam, "amy", &["-a", &codes[0]], &[]).code,
        PAM_SUCCESS
    );
    assert_ne!(
        drive(&f.b.pam, "amy", &["-a", &codes[0]], &[]).code,
        PAM_SUCCESS
    );

    // History names the host of each row; explain on A shows B's rows.
    let explained =
        f.a.ctl_ok(&["explain", "--user", "amy", "--service", "sudo"]);
    assert!(
        explained.contains("on host host-b: wrong_code"),
        "{explained}"
    );
    assert!(explained.contains("on host host-a: success"), "{explained}");
    assert!(explained.contains("on host host-a: replay"), "{explained}");
    let status = f.a.ctl_ok(&["status"]);
    assert!(
        status.contains(&format!("store: postgresql {}", f.pg.url())),
        "{status}"
    );
    assert!(status.contains("store_state: answers"), "{status}");
    assert!(status.contains("host_name: host-a"), "{status}");

    // Imported on B: works on A.
    let imported = random_secret();
    let file = f.keys.path().join("google_authenticator");
    std::fs::write(&file, format!("{imported}\n\" TOTP_AUTH\n")).unwrap();
    let report = f.b.ctl_ok(&[
        "import",
        "google-authenticator",
        "ian",
        file.to_str().unwrap(),
    ]);
    assert!(report.contains("ian"), "{report}");
    let run = drive(&f.a.pam, "ian", &["-a", &oathtool_now(&imported)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);

    // Removed on B: A no longer has it.
    let listed = f.a.ctl_ok(&["list", "amy"]);
    let id = listed
        .split_whitespace()
        .find(|w| w.starts_with("totp-"))
        .unwrap();
    f.b.ctl_ok(&["remove", "amy", id]);
    f.b.ctl_ok(&["remove", "amy", "recovery"]);
    let after = drive(&f.a.pam, "amy", &["-a", &next_code(&secret)], &[]);
    assert_eq!(after.code, PAM_AUTH_ERR, "{}", after.stdout);
    assert!(
        after.stdout.contains("none is enrolled"),
        "{}",
        after.stdout
    );
}

/// Begin on a host's bus and get to the code prompt; the session id.
fn to_prompt(client: &RawClient, user: &str) -> String {
    let (session, mut kind, _) = client
        .begin(&[("service", "sudo"), ("user", user), ("tty", "/dev/pts/9")])
        .unwrap();
    while kind == "info" {
        kind = client.respond(&session, "").unwrap().0;
    }
    assert_eq!(kind, "prompt_secret");
    session
}

#[test]
fn the_same_code_sent_to_two_hosts_at_the_same_instant_is_accepted_once() {
    let f = fleet(POLICY);
    let secret = random_secret();
    let trials = 50;
    let mut wins = (0, 0);
    for trial in 0..trials {
        let user = format!("race{trial}");
        f.a.daemon.enroll_totp(&user, &secret);
        let (ca, cb) = (
            RawClient::connect(&f.a.bus.address),
            RawClient::connect(&f.b.bus.address),
        );
        let (sa, sb) = (to_prompt(&ca, &user), to_prompt(&cb, &user));
        let code = oathtool_now(&secret);
        let barrier = Barrier::new(2);
        let (ra, rb) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                barrier.wait();
                ca.respond(&sa, &code).unwrap().0
            });
            let b = s.spawn(|| {
                barrier.wait();
                cb.respond(&sb, &code).unwrap().0
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let allowed = [&ra, &rb].iter().filter(|k| **k == "allow").count();
        assert_eq!(allowed, 1, "trial {trial}: A {ra}, B {rb}");
        if ra == "allow" {
            wins.0 += 1;
        } else {
            wins.1 += 1;
        }
        // One success row, written by the winner.
        let rows = f.pg.psql(&format!(
            "SELECT count(*) FROM history WHERE user_name = '{user}' AND outcome = 'success'"
        ));
        assert_eq!(rows, "1", "trial {trial}");
    }
    eprintln!(
        "{trials} trials: host A won {}, host B won {}",
        wins.0, wins.1
    );
}

#[test]
fn lockout_counts_failures_from_every_host_and_unlock_on_one_lifts_it_on_the_other() {
    let f = fleet(
        "[lockout]\ndeny = 3\nfail_interval = \"15m\"\nunlock_time = \"0s\"\n[defaults]\naction = \"step_up\"\nmax_tries = 1\n",
    );
    let secret = random_secret();
    f.a.daemon.enroll_totp("lou", &secret);
    let wrong = wrong_code(&secret);
    assert_eq!(
        drive(&f.a.pam, "lou", &["-a", &wrong], &[]).code,
        PAM_MAXTRIES
    );
    assert_eq!(
        drive(&f.b.pam, "lou", &["-a", &wrong], &[]).code,
        PAM_MAXTRIES
    );
    let third = drive(&f.a.pam, "lou", &["-a", &wrong], &[]);
    assert!(third.stdout.contains("locked"), "{}", third.stdout);
    // Locked on B too: not even asked.
    let on_b = drive(&f.b.pam, "lou", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(on_b.code, PAM_AUTH_ERR);
    assert_eq!(on_b.prompts(), 0, "{}", on_b.stdout);
    assert!(
        on_b.stdout.contains("stepupctl unlock lou"),
        "{}",
        on_b.stdout
    );

    assert!(f.a.ctl_ok(&["unlock", "lou"]).contains("Unlocked lou"));
    let run = drive(&f.b.pam, "lou", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_database_outage_fails_closed_mid_attempt_lets_state_free_rules_decide_and_recovers() {
    let policy = "[lockout]\ndeny = 0\n[[rule]]\nname = \"ops-allowed\"\nuser = [\"opsbot\"]\naction = \"allow\"\n[[rule]]\nname = \"nobody\"\nuser = [\"mallory\"]\naction = \"deny\"\n[defaults]\naction = \"step_up\"\n";
    let f = fleet_with(policy, "failmode=safe");
    let secret = random_secret();
    f.a.daemon.enroll_totp("olga", &secret);
    let client = RawClient::connect(&f.a.bus.address);
    let session = to_prompt(&client, "olga");

    f.pg.stop();
    // Mid-attempt: the answer cannot be recorded, so it is not accepted;
    // the daemon says "unavailable", and the module, having shown a
    // prompt, fails closed even with failmode=safe.
    let code = oathtool_now(&secret);
    let err = client.respond(&session, &code).unwrap_err();
    assert_eq!(error_name(&err), "Unavailable", "{err:?}");
    let started = Instant::now();
    let fresh = drive(&f.a.pam, "olga", &["-a", &code], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // Not challenged yet: failmode=safe decides (a fail-safe pass).
    assert_eq!(fresh.code, PAM_SUCCESS, "{}", fresh.stdout);
    assert_eq!(fresh.prompts(), 0, "{}", fresh.stdout);
    let secure = PamService::new(&format!("bus={} timeout=8", f.a.bus.address));
    assert_eq!(
        drive(&secure, "olga", &["-a", &code], &[]).code,
        PAM_AUTHINFO_UNAVAIL
    );
    // Rules that need no state still decide.
    assert_eq!(drive(&secure, "opsbot", &[], &[]).code, PAM_SUCCESS);
    assert_eq!(drive(&secure, "mallory", &[], &[]).code, PAM_AUTH_ERR);
    let status = f.a.ctl_ok(&["status"]);
    assert!(status.contains("store_state: does not answer"), "{status}");

    // B had nothing to do meanwhile; its keep-alive notices the outage.
    wait_for("B to notice", Duration::from_secs(15), || {
        f.b.events("store_unreachable") == 1
    });
    f.pg.restart();
    for host in [&f.a, &f.b] {
        wait_for("store_recovered", Duration::from_secs(15), || {
            host.events("store_recovered") == 1
        });
        assert_eq!(host.events("store_unreachable"), 1, "{}", host.daemon.log());
    }
    // The code the outage cut off was never accepted: it works now, once.
    let run = drive(&secure, "olga", &["-a", &code], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_ne!(
        drive(&f.b.pam, "olga", &["-a", &code], &[]).code,
        PAM_SUCCESS
    );
}

#[test]
fn a_daemon_killed_mid_transaction_leaves_nothing_half_written() {
    let f = fleet(POLICY);
    let secret = random_secret();
    f.a.daemon.enroll_totp("kip", &secret);
    let code = oathtool_now(&secret);
    // Hold kip's credential row so that A's accepting transaction waits
    // inside its UPDATE, then kill A there.
    let holder = {
        let socket = f.pg.socket_dir().to_owned();
        let port = f.pg.port.to_string();
        Command::new(stepup_tests::postgres::bin("psql"))
            .arg("-h")
            .arg(socket)
            .args(["-p", &port, "-U", "postgres", "-d", "stepup", "-c"])
            .arg("BEGIN; SELECT id FROM credentials WHERE user_name = 'kip' FOR UPDATE; SELECT pg_sleep(2.5); COMMIT;")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    let pid = f.a.daemon.pid();
    let run = std::thread::scope(|s| {
        let attempt = s.spawn(|| drive(&f.a.pam, "kip", &["-a", &code], &[]));
        wait_for(
            "A's UPDATE to wait for the row lock",
            Duration::from_secs(5),
            || {
                f.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    == "1"
            },
        );
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        attempt.join().unwrap()
    });
    // The module fails closed: the daemon died mid-challenge.
    assert_eq!(run.code, PAM_AUTHINFO_UNAVAIL, "{}", run.stdout);
    let mut holder = holder;
    holder.wait().unwrap();
    wait_for(
        "the killed host's session to end",
        Duration::from_secs(10),
        || {
            f.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stepupd' AND state LIKE 'idle in transaction%'") == "0"
        },
    );
    // Nothing of the cut-off transaction: no used step, no success row.
    assert_eq!(
        f.pg.psql(
            "SELECT count(*) FROM credentials WHERE user_name = 'kip' AND last_step IS NOT NULL"
        ),
        "0"
    );
    assert_eq!(
        f.pg.psql("SELECT count(*) FROM history WHERE user_name = 'kip' AND outcome = 'success'"),
        "0"
    );
    // So the code works on B, once.
    assert_eq!(
        drive(&f.b.pam, "kip", &["-a", &code], &[]).code,
        PAM_SUCCESS
    );
    assert_ne!(
        drive(&f.b.pam, "kip", &["-a", &code], &[]).code,
        PAM_SUCCESS
    );
}

/// `bytes` contains `needle`.
fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_secret(dump: &[u8], secret_b32: &str) {
    let raw = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    let hex = data_encoding::HEXLOWER.encode(&raw);
    for needle in [
        secret_b32.to_owned(),
        secret_b32.to_lowercase(),
        hex.clone(),
        hex.to_uppercase(),
        "argon2id".to_owned(),
    ] {
        assert!(
            !contains(dump, needle.as_bytes()),
            "the dump holds {needle}"
        );
    }
    assert!(!contains(dump, &raw), "the dump holds the raw secret");
}

#[test]
fn a_dump_holds_no_secret_and_a_rekey_moves_every_host_to_the_new_key() {
    let f = fleet(POLICY);
    let secret = random_secret();
    f.a.daemon.enroll_totp("dot", &secret);
    let codes = f.a.daemon.recovery_codes("dot");
    let dump = f.pg.dump();
    assert!(contains(&dump, b"dot"), "the dump is not of the store");
    assert_no_secret(&dump, &secret);
    for code in &codes {
        assert!(!contains(&dump, code.as_bytes()));
    }

    // Rekey with A's configuration; B gets the new key, A keeps the old.
    let new_key = fleet_key(f.keys.path(), "fleet.key.new");
    let out = Command::new(artifact("stepupctl"))
        .args(["store", "rekey", "--new-key"])
        .arg(&new_key)
        .arg("--config-dir")
        .arg(f.a.daemon.config_dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("1 TOTP secret(s)") && said.contains("10 recovery code(s)"),
        "{said}"
    );
    assert_no_secret(&f.pg.dump(), &secret);

    // A, on the old key only, decrypts nothing: it fails closed, even with
    // failmode=safe, and records no success.
    let safe_a = PamService::new(&format!("bus={} timeout=8 failmode=safe", f.a.bus.address));
    let code = oathtool_now(&secret);
    let refused = drive(&safe_a, "dot", &["-a", &code], &[]);
    assert_eq!(refused.code, PAM_AUTH_ERR, "{}", refused.stdout);
    assert!(
        f.a.daemon.log().contains("sealed under fleet key"),
        "{}",
        f.a.daemon.log()
    );
    assert_eq!(
        f.pg.psql("SELECT count(*) FROM history WHERE outcome = 'success'"),
        "0"
    );

    // A host restarted on the old key alone refuses to start, and says why.
    let (status, stderr) = start_fails(&f.a.daemon, &store_section(&f.pg.url(), &f.key, "host-c"));
    assert!(!status.success());
    assert!(stderr.contains("fleet key"), "{stderr}");
    // B on the new key (and the old as previous_key_file) works.
    let b = Host::start(
        POLICY,
        &format!(
            "{}previous_key_file = \"{}\"\n",
            store_section(&f.pg.url(), &new_key, "host-b2"),
            f.key.display()
        ),
        "",
    );
    assert_eq!(drive(&b.pam, "dot", &["-a", &code], &[]).code, PAM_SUCCESS);
    assert_eq!(
        drive(&b.pam, "dot", &["-a", &codes[1]], &[]).code,
        PAM_SUCCESS
    );
}

/// Start a stepupd on `daemon`'s bus with `store` as its whole config,
/// expecting it to exit: (status, what it said).
fn start_fails(daemon: &Daemon, store: &str) -> (std::process::ExitStatus, String) {
    let config = policy_dir("stepup-cfg-", &format!("{POLICY}\n{store}"));
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let out = Command::new(artifact("stepupd"))
        .arg("--config-dir")
        .arg(config.path())
        .arg("--state-dir")
        .arg(state.path())
        .arg("--bus-address")
        .arg(&daemon.bus_address)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_verify_full_against_the_test_ca_works_and_a_wrong_ca_is_refused() {
    let ca = stepup_tests::postgres::TestCa::new();
    let pg = Postgres::start_with(Some(&ca));
    let keys = tempfile::tempdir().unwrap();
    let key = fleet_key(keys.path(), "fleet.key");
    let password = keys.path().join("db.password");
    std::fs::write(&password, format!("{}\n", stepup_tests::postgres::PASSWORD)).unwrap();
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let section = |ca_file: &Path, host: &str| {
        format!(
            "{}password_file = \"{}\"\n",
            store_section(&pg.tls_url(ca_file), &key, host),
            password.display()
        )
    };
    let host = Host::start(POLICY, &section(&ca.ca_cert, "tls-a"), "");
    let secret = random_secret();
    host.daemon.enroll_totp("tia", &secret);
    let run = drive(&host.pam, "tia", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(host.ctl_ok(&["status"]).contains("store_state: answers"));
    // Over TCP the connection really is TLS.
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = 'stepupd'"),
        "1"
    );

    // Another CA: the server is not trusted; nothing is asked or recorded.
    let other = stepup_tests::postgres::TestCa::new();
    let wrong = Host::start(POLICY, &section(&other.ca_cert, "tls-b"), "");
    let status = wrong.ctl_ok(&["status"]);
    assert!(status.contains("store_state: does not answer"), "{status}");
    assert!(wrong.daemon.log().contains("event=store_unreachable"));
    assert!(
        wrong.daemon.log().to_lowercase().contains("certificate"),
        "{}",
        wrong.daemon.log()
    );
    let refused = drive(&wrong.pam, "tia", &["-a", &next_code(&secret)], &[]);
    assert_eq!(refused.code, PAM_AUTHINFO_UNAVAIL, "{}", refused.stdout);
}

#[test]
fn check_validates_the_store_section_offline() {
    let keys = tempfile::tempdir().unwrap();
    let key = fleet_key(keys.path(), "fleet.key");
    let check = |store: &str| {
        let dir = policy_dir("stepup-cfg-", &format!("{POLICY}\n{store}"));
        let out = Command::new(artifact("stepupctl"))
            .args(["check", "--config-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    // Nothing listens there: check never connects.
    let url = "postgresql://stepup@/stepup?host=/nonexistent";
    let (ok, text) = check(&store_section(url, &key, "h1"));
    assert!(ok, "{text}");
    assert!(text.contains("not connected"), "{text}");
    let id_line = text
        .lines()
        .find(|l| l.starts_with("store:"))
        .unwrap()
        .to_owned();
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(!text.contains(key_text.trim()), "{text}");

    let (ok, text) = check(&store_section(
        "postgresql://stepup:Pw9zzsecret@db.example.org/stepup?sslmode=verify-full",
        &key,
        "h1",
    ));
    assert!(
        !ok && text.contains("password_file") && !text.contains("Pw9zzsecret"),
        "{text}"
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (ok, text) = check(&store_section(url, &key, "h1"));
    assert!(!ok && text.contains("0644"), "{text}");
    assert!(id_line.contains("fleet key"), "{id_line}");
}

/// `stepupctl store migrate …` as root; (success, what it said).
fn migrate(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(artifact("stepupctl"))
        .args(["store", "migrate"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn migrate_moves_a_populated_store_and_every_factor_works_on_the_other_host() {
    let soft = tempfile::tempdir().unwrap();
    let key_state = soft.path().join("softkey.json");
    let policy = format!(
        "[lockout]\ndeny = 0\n[fido2]\nauthenticator = \"software:{}\"\ntouch_timeout = \"2s\"\n[defaults]\naction = \"step_up\"\nmethods = [\"fido2\", \"totp\", \"recovery\"]\nmax_tries = 1\n",
        key_state.display()
    );
    // A host on its own SQLite store, with every kind of factor and history.
    let mut old = Host::start(&policy, "", "");
    let secret = random_secret();
    old.daemon.enroll_totp("mia", &secret);
    let codes = old.daemon.recovery_codes("mia");
    let enrolled = old.ctl_ok(&["enroll", "key", "mia", "--label", "blue key"]);
    assert!(enrolled.contains("key-"), "{enrolled}");
    let used = oathtool_now(&secret);
    assert_eq!(
        drive(&old.pam, "mia", &["-r", "10.0.0.7", "-a", &used], &[]).code,
        PAM_SUCCESS
    );
    assert_eq!(
        drive(&old.pam, "mia", &["-r", "10.0.0.7", "-a", &codes[0]], &[]).code,
        PAM_SUCCESS
    );
    assert_eq!(
        drive(&old.pam, "mia", &["-t", "/dev/pts/5"], &[]).code,
        PAM_SUCCESS
    );
    old.daemon.stop();

    let pg = Postgres::start();
    let keys = tempfile::tempdir().unwrap();
    let key = fleet_key(keys.path(), "fleet.key");
    let url = pg.url();
    let args = [
        "--to".as_ref(),
        url.as_ref(),
        "--config-dir".as_ref(),
        old.daemon.config_dir.path().as_os_str(),
        "--state-dir".as_ref(),
        old.daemon.state_dir.path().as_os_str(),
        "--key-file".as_ref(),
        key.as_os_str(),
    ];
    let (ok, said) = migrate(&args);
    assert!(ok, "{said}");
    assert!(
        said.contains(
            "1 TOTP credential(s), 1 security key(s), 0 ssh-agent key(s), 10 recovery code(s)"
        ),
        "{said}"
    );

    let b = Host::start(&policy, &store_section(&url, &key, "host-b"), "");
    // TOTP: the step used on the old host stays used; the next one works.
    assert_ne!(
        drive(&b.pam, "mia", &["-r", "10.0.0.7", "-a", &used], &[]).code,
        PAM_SUCCESS
    );
    let next = next_code(&secret);
    assert_eq!(
        drive(&b.pam, "mia", &["-r", "10.0.0.7", "-a", &next], &[]).code,
        PAM_SUCCESS
    );
    // Recovery: the used code stays used; the others work.
    assert_ne!(
        drive(&b.pam, "mia", &["-r", "10.0.0.7", "-a", &codes[0]], &[]).code,
        PAM_SUCCESS
    );
    assert_eq!(
        drive(&b.pam, "mia", &["-r", "10.0.0.7", "-a", &codes[1]], &[]).code,
        PAM_SUCCESS
    );
    // The security key, with its counter carried over.
    let run = drive(&b.pam, "mia", &["-t", "/dev/pts/5"], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        run.stdout.contains("Touch your security key"),
        "{}",
        run.stdout
    );
    // History came along, under the old host's name.
    let old_host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM history WHERE user_name = 'mia' AND outcome = 'success' AND host = '{}'",
            old_host.trim()
        )),
        "3"
    );

    // Again: mia is there now; refused, nothing changed, unless --force.
    let before = pg.psql("SELECT count(*) FROM history");
    let (ok, said) = migrate(&args);
    assert!(
        !ok && said.contains("already in the shared store: mia"),
        "{said}"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM history"), before);
    let mut forced = args.to_vec();
    forced.push("--force".as_ref());
    let (ok, said) = migrate(&forced);
    assert!(
        ok && said.contains("replaced in the shared store (--force): mia"),
        "{said}"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM credentials WHERE user_name = 'mia'"),
        "1"
    );
}
