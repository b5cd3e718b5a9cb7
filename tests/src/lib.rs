//! Harness for stepup's end-to-end tests: real `dbus-daemon` (including the
//! policy file we ship), real `stepupd`, real libpam through `pamtester` and
//! an in-process driver, TOTP codes from `oathtool`.
//!
//! Everything a test starts is stopped, and every file it writes outside its
//! temporary directories (`/etc/pam.d/stepup-test-*`) is removed, on drop.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)] // a failed setup step should fail the test loudly

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub mod faults;
pub mod geo;
pub mod postgres;
pub mod probe;
pub mod ssh;
pub mod sudo;
pub mod syslog;

/// `target/debug` (or whichever profile built this test).
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> → target/debug
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// A binary or library the workspace built; the test fails with advice if missing.
pub fn artifact(name: &str) -> PathBuf {
    let path = build_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`make test` does)",
        path.display()
    );
    path
}

pub fn module_path() -> PathBuf {
    artifact("libpam_stepup.so")
}

/// The in-process PAM driver (tests/driver/pam_drive.c), compiled once.
pub fn pam_drive() -> PathBuf {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("driver/pam_drive.c");
            let out = build_dir().join("pam_drive");
            let tmp = build_dir().join(format!("pam_drive.{}", std::process::id()));
            let status = Command::new("gcc")
                .args(["-Wall", "-O2", "-o"])
                .arg(&tmp)
                .arg(&source)
                .arg("-lpam")
                .status()
                .expect("gcc (apt-get install gcc libpam0g-dev)");
            assert!(status.success(), "compiling {} failed", source.display());
            fs::rename(&tmp, &out).unwrap();
            out
        })
        .clone()
}

pub fn random_suffix() -> String {
    let mut raw = [0u8; 6];
    rand::fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret that cannot turn up anywhere by chance (a PIN, an answer): `what`,
/// a dash and 96 random bits in hex, so a search for it in a log full of
/// random hex (hash chains, session ids) finds only a real leak.
pub fn random_marker(what: &str) -> String {
    format!("{what}-{}{}", random_suffix(), random_suffix())
}

/// Does `text` contain `secret` as a whole token, not run into letters or
/// digits on either side? For secrets that cannot be made long (a 6-digit
/// TOTP code): hex ids, hash chains and timestamps that merely contain those
/// digits do not count, while any way of logging the code itself (`=123456`,
/// `"123456"`, `code 123456.`) does.
pub fn mentions_token(text: &str, secret: &str) -> bool {
    assert!(!secret.is_empty());
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.match_indices(secret).any(|(at, _)| {
        !joins(text[..at].chars().next_back()) && !joins(text[at + secret.len()..].chars().next())
    })
}

/// A fresh random TOTP secret, base32.
pub fn random_secret() -> String {
    let mut raw = [0u8; 20];
    rand::fill(&mut raw);
    data_encoding::BASE32_NOPAD.encode(&raw)
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stop_child(child: &mut Child, signal: Signal) {
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------- the bus

/// Which access rules the private bus enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusPolicy {
    /// A system-bus default policy plus the policy file we ship.
    Shipped,
    /// Anyone may own and call anything: isolates the daemon's own checks,
    /// and lets a non-root process own the daemon's name.
    Open,
}

pub struct Bus {
    dir: tempfile::TempDir,
    child: Child,
    pub address: String,
}

const OPEN_POLICY: &str = r#"
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_type="*"/>
  </policy>"#;

/// Test instrumentation, not part of what is tested: root may read the
/// bus's per-connection statistics (`Bus::match_rules_of`). It touches no
/// rule about the daemon's name.
const STATS_FOR_ROOT: &str = r#"  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>"#;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn shipped_bus_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/dbus/org.stepup.Daemon1.conf")
}

impl Bus {
    pub fn start(policy: BusPolicy) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-bus-")
            .tempdir()
            .unwrap();
        // Unprivileged test callers must reach the socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("bus");
        let rules = match policy {
            BusPolicy::Shipped => format!(
                "  <include>{}</include>\n  <include>{}</include>\n{STATS_FOR_ROOT}",
                fixture("system-bus-defaults.conf").display(),
                shipped_bus_policy().canonicalize().unwrap().display()
            ),
            BusPolicy::Open => OPEN_POLICY.to_owned(),
        };
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
{rules}
</busconfig>
"#,
            socket.display()
        );
        let config_path = dir.path().join("bus.conf");
        fs::write(&config_path, config).unwrap();
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--nopidfile", "--nosyslog"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        wait_until("dbus-daemon socket", Duration::from_secs(10), || {
            socket.exists()
        });
        Self {
            address: format!("unix:path={}", socket.display()),
            dir,
            child,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Is `name` owned on this bus right now?
    pub fn has_owner(&self, name: &str) -> bool {
        name_has_owner(&self.address, name)
    }

    /// How many match rules the owner of `name` has on this bus now (the
    /// bus's own count: `org.freedesktop.DBus.Debug.Stats`).
    pub fn match_rules_of(&self, name: &str) -> u32 {
        zbus::block_on(async move {
            let conn = zbus::connection::Builder::address(self.address.as_str())
                .build()
                .await
                .unwrap();
            let dbus = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
            let owner = dbus
                .get_name_owner(zbus::names::BusName::try_from(name).unwrap())
                .await
                .unwrap();
            let reply = conn
                .call_method(
                    Some("org.freedesktop.DBus"),
                    "/org/freedesktop/DBus",
                    Some("org.freedesktop.DBus.Debug.Stats"),
                    "GetConnectionStats",
                    &(owner.as_str(),),
                )
                .await
                .unwrap();
            let stats: HashMap<String, zbus::OwnedVariant> = reply.body().deserialize().unwrap();
            u32::try_from(&stats["MatchRules"]).unwrap()
        })
    }
}

/// Is `name` owned on the bus at `address` right now?
pub fn name_has_owner(address: &str, name: &str) -> bool {
    zbus::block_on(async move {
        let Ok(conn) = zbus::connection::Builder::address(address).build().await else {
            return false;
        };
        let Ok(dbus) = zbus::fdo::DBusProxy::new(&conn).await else {
            return false;
        };
        let owned = dbus
            .name_has_owner(zbus::names::BusName::try_from(name).unwrap())
            .await
            .unwrap_or(false);
        drop(dbus);
        drop(conn);
        owned
    })
}

impl Drop for Bus {
    fn drop(&mut self) {
        stop_child(&mut self.child, Signal::SIGTERM);
    }
}

// ---------------------------------------------------------------- the daemon

pub struct Daemon {
    child: Option<Child>,
    pub config_dir: tempfile::TempDir,
    pub state_dir: tempfile::TempDir,
    pub bus_address: String,
    log: PathBuf,
    /// Run as this uid/gid instead of root (setpriv), for "wrong owner" tests.
    run_as: Option<u32>,
}

impl Daemon {
    /// Start stepupd as root on `bus` with `policy` as its stepup.toml.
    pub fn start(bus: &Bus, policy: &str) -> Self {
        Self::start_as(bus, policy, None)
    }

    pub fn start_as(bus: &Bus, policy: &str, uid: Option<u32>) -> Self {
        let config_dir = policy_dir("stepup-cfg-", policy);
        let state_dir = tempfile::Builder::new()
            .prefix("stepup-state-")
            .tempdir()
            .unwrap();
        fs::set_permissions(state_dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        if let Some(uid) = uid {
            nix::unistd::chown(state_dir.path(), Some(uid.into()), Some(uid.into())).unwrap();
        }
        let log = config_dir.path().join("stepupd.log");
        let mut daemon = Self {
            child: None,
            config_dir,
            state_dir,
            bus_address: bus.address.clone(),
            log,
            run_as: uid,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = match self.run_as {
            None => Command::new(artifact("stepupd")),
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(artifact("stepupd"));
                c
            }
        };
        let child = command
            .arg("--config-dir")
            .arg(self.config_dir.path())
            .arg("--state-dir")
            .arg(self.state_dir.path())
            .arg("--bus-address")
            .arg(&self.bus_address)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        if let Some(status) =
            wait_until_serving(self.child.as_mut().unwrap(), &self.bus_address, &self.log)
        {
            panic!(
                "stepupd exited ({status}) before owning its name:\n{}",
                self.log()
            );
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, Signal::SIGTERM);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Everything the daemon wrote to stderr (its audit lines).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run stepupctl against this daemon's bus.
    pub fn ctl(&self, args: &[&str]) -> Output {
        stepupctl_on(&self.bus_address, args)
    }

    /// `stepupctl recovery-codes USER`: the codes it printed.
    pub fn recovery_codes(&self, user: &str) -> Vec<String> {
        let out = self.ctl(&["recovery-codes", user]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| l.len() == 11 && l.as_bytes()[5] == b'-')
            .map(str::to_owned)
            .collect()
    }

    pub fn enroll_totp(&self, user: &str, secret: &str) {
        enroll_totp_on(&self.bus_address, user, secret);
    }
}

/// Wait until the stepupd `child` owns its name on `bus_address` (None) or
/// exits first (its status); the test fails after 10 s of neither, showing
/// the daemon's `log`.
pub fn wait_until_serving(
    child: &mut Child,
    bus_address: &str,
    log: &Path,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if name_has_owner(bus_address, stepup_common::BUS_NAME) {
            return None;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stepupd neither served nor exited in 10 s:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh configuration directory (0755) holding `policy` as its
/// stepup.toml (0644), as stepupd requires of /etc/stepup.
pub fn policy_dir(prefix: &str, policy: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let main = dir.path().join("stepup.toml");
    fs::write(&main, policy).unwrap();
    fs::set_permissions(&main, fs::Permissions::from_mode(0o644)).unwrap();
    dir
}

/// Run the built stepupctl against the daemon on the bus at `bus_address`.
pub fn stepupctl_on(bus_address: &str, args: &[&str]) -> Output {
    Command::new(artifact("stepupctl"))
        .arg("--bus-address")
        .arg(bus_address)
        .args(args)
        .output()
        .unwrap()
}

/// Enroll `secret` as `user`'s TOTP with the daemon on `bus_address`.
pub fn enroll_totp_on(bus_address: &str, user: &str, secret: &str) {
    let out = stepupctl_on(
        bus_address,
        &["enroll", "totp", user, "--secret", secret, "--no-qr"],
    );
    assert!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------- PAM

/// A throwaway `/etc/pam.d/stepup-test-<random>` naming the built module.
pub struct PamService {
    pub name: String,
    path: PathBuf,
}

impl PamService {
    /// `auth required <built module> <module_args>`.
    pub fn new(module_args: &str) -> Self {
        Self::with_lines(&format!(
            "auth required {} {module_args}\naccount required pam_permit.so\n",
            module_path().display()
        ))
    }

    pub fn with_lines(lines: &str) -> Self {
        let name = format!("stepup-test-{}", random_suffix());
        let path = Path::new("/etc/pam.d").join(&name);
        fs::write(&path, lines).unwrap();
        Self { name, path }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The result of one in-process authentication.
#[derive(Debug)]
pub struct Drive {
    /// PAM return code of pam_authenticate.
    pub code: i32,
    pub stdout: String,
    pub elapsed: Duration,
}

impl Drive {
    pub fn prompts(&self) -> usize {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("prompt: "))
            .count()
    }
    pub fn errors(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .collect()
    }
    /// (threads, fds) before and after, when run with `-c`.
    pub fn resources(&self) -> ((u32, u32), (u32, u32)) {
        let parse = |prefix: &str| {
            let line = self
                .stdout
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} line in {}", self.stdout));
            let nums: Vec<u32> = line
                .split_whitespace()
                .filter_map(|w| w.split_once('=').map(|(_, v)| v.parse().unwrap()))
                .collect();
            (nums[0], nums[1])
        };
        (parse("before "), parse("after "))
    }
}

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_CONV_ERR: i32 = 19;

/// Drive real libpam in-process: `extra` are pam_drive flags (`-a CODE`, `-c`, `-t TTY`…).
pub fn drive(service: &PamService, user: &str, extra: &[&str], env: &[(&str, &str)]) -> Drive {
    let start = Instant::now();
    let out = Command::new(pam_drive())
        .args(extra)
        .arg(&service.name)
        .arg(user)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("result="))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "pam_drive printed no result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Drive {
        code,
        stdout,
        elapsed,
    }
}

/// Run `pamtester SERVICE USER authenticate`, feeding `answers` (one per line).
pub fn pamtester(service: &PamService, user: &str, answers: &[&str], items: &[&str]) -> Output {
    use std::io::Write as _;
    let mut command = Command::new("pamtester");
    command.arg("-v");
    for item in items {
        command.arg("-I").arg(item);
    }
    let mut child = command
        .arg(&service.name)
        .arg(user)
        .arg("authenticate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pamtester (apt-get install pamtester)");
    let mut input = String::new();
    for answer in answers {
        input.push_str(answer);
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

// ---------------------------------------------------------------- TOTP

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code an independent implementation (oathtool) gives for `secret` at `time`.
pub fn oathtool_at(secret: &str, time: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{time}"), secret])
        .output()
        .expect("oathtool (apt-get install oathtool)");
    assert!(out.status.success(), "oathtool failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The current code, from oathtool.
pub fn oathtool_now(secret: &str) -> String {
    oathtool_at(secret, unix_now())
}

/// A six-digit code that is valid nowhere near now (±2 steps).
pub fn wrong_code(secret: &str) -> String {
    let now = unix_now();
    let valid: Vec<String> = (0..5)
        .map(|i| oathtool_at(secret, now + i * 30 - 60))
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

// ---------------------------------------------------------------- real programs

/// A throwaway local user, removed (with its home) on drop.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
}

impl TestUser {
    pub fn create() -> Self {
        let name = format!("stt{}", &random_suffix()[..8]);
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", &name])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name} failed");
        let uid = nix::unistd::User::from_name(&name)
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        Self { name, uid }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let _ = Command::new("userdel")
            .args(["--remove", &self.name])
            .output();
    }
}

/// A sudoers drop-in, validated with `visudo -cf` before it is installed.
pub struct SudoersDropIn {
    path: PathBuf,
}

impl SudoersDropIn {
    pub fn install(content: &str) -> Self {
        let path = Path::new("/etc/sudoers.d").join(format!("stepup-test-{}", random_suffix()));
        let staged = std::env::temp_dir().join(format!("sudoers-{}", random_suffix()));
        fs::write(&staged, content).unwrap();
        let check = Command::new("visudo")
            .arg("-cf")
            .arg(&staged)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "invalid sudoers: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o440)).unwrap();
        fs::copy(&staged, &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
        let _ = fs::remove_file(&staged);
        Self { path }
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Run `command` under a pseudo-terminal (pexpect), typing `answers` at its
/// prompts. Returns (transcript, exit status).
pub fn under_pty(command: &[&str], answers: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("driver/pty_run.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(helper);
    for answer in answers {
        c.arg("--answer").arg(answer);
    }
    let out = c
        .arg("--")
        .args(command)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pty_run failed: {transcript}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = transcript
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("exit="))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    (transcript, status)
}

// ---------------------------------------------------------------- journald

/// A real `systemd-journald`, started by hand in a journal namespace of its
/// own (`/run/systemd/journal.NS/socket`), so tests neither touch nor see the
/// host's journal and can run side by side.
pub struct Journald {
    child: Child,
    pub namespace: String,
}

impl Journald {
    pub fn start() -> Self {
        let namespace = format!("stepuptest{}", random_suffix());
        let child = Command::new("/lib/systemd/systemd-journald")
            .arg(&namespace)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-journald (package systemd)");
        let journald = Self { child, namespace };
        let socket = journald.socket();
        wait_until("journald socket", Duration::from_secs(10), || {
            socket.exists()
        });
        journald
    }

    pub fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}/socket", self.namespace))
    }

    /// stepupd's entries as `journalctl -o json` lines, waiting until at
    /// least `min` are there.
    pub fn stepupd_json(&self, min: usize) -> Vec<String> {
        self.json(&["stepupd"], min)
    }

    /// The entries of these programs (`SYSLOG_IDENTIFIER`s) as `journalctl
    /// -o json` lines, waiting until at least `min` are there (10 s at most).
    pub fn json(&self, identifiers: &[&str], min: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let out = Command::new("journalctl")
                .args(["-o", "json", "--no-pager"])
                .args(identifiers.iter().map(|i| format!("SYSLOG_IDENTIFIER={i}")))
                .arg(format!("--namespace={}", self.namespace))
                .output()
                .unwrap();
            let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            if lines.len() >= min || start.elapsed() > Duration::from_secs(10) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Journald {
    /// `journalctl -x` of the entries with this MESSAGE_ID (the catalog's
    /// explanation under each), waiting up to 10 s for one.
    pub fn explained(&self, message_id: &str) -> String {
        let start = Instant::now();
        loop {
            let out = Command::new("journalctl")
                .args(["-x", "--no-pager"])
                .arg(format!("--namespace={}", self.namespace))
                .arg(format!("MESSAGE_ID={message_id}"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let found = !text.trim().is_empty() && !text.contains("-- No entries --");
            if found || start.elapsed() > Duration::from_secs(10) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        stop_child(&mut self.child, Signal::SIGTERM);
        let _ = fs::remove_dir_all(format!("/run/systemd/journal.{}", self.namespace));
        for dir in ["/run/log/journal", "/var/log/journal"] {
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry
                        .file_name()
                        .to_string_lossy()
                        .ends_with(&format!(".{}", self.namespace))
                    {
                        let _ = fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_counts_only_when_not_part_of_a_longer_one() {
        for logged in [
            "code=123456",
            "\"123456\"",
            "123456",
            "code 123456.",
            "a-123456-b",
        ] {
            assert!(mentions_token(logged, "123456"), "{logged}");
        }
        for chance in [
            "chain=0a123456f",
            "t=1712345678",
            "1234567",
            "x123456",
            "123456y",
        ] {
            assert!(!mentions_token(chance, "123456"), "{chance}");
        }
        let marker = random_marker("pin");
        assert!(marker.starts_with("pin-") && marker.len() == 4 + 24);
        assert_ne!(marker, random_marker("pin"));
    }
}
