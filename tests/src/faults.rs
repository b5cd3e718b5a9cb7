//! Harness parts for the fault tests (tests/tests/faults.rs): a dbus-daemon
//! that can be stopped and started again on the same socket, a stepupd run
//! under a wrapper or with extra environment (no capabilities, libfaketime)
//! whose exit status the test sees, a state directory on a small tmpfs, and
//! pamtester driven step by step (answer after something happened).
//!
//! Everything is stopped, unmounted and removed on drop.

use std::ffi::OsString;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{artifact, fixture, name_has_owner, shipped_bus_policy};

fn stop(child: &mut Child, signal: Signal) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().ok()
}

// ---------------------------------------------------------------- a restartable bus

/// A private system-type dbus-daemon with the shipped policy, on a socket
/// path that stays the same across restarts (as the system bus's does).
pub struct FixedBus {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub address: String,
}

impl FixedBus {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-fbus-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("bus");
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <include>{}</include>
  <include>{}</include>
</busconfig>
"#,
            socket.display(),
            fixture("system-bus-defaults.conf").display(),
            shipped_bus_policy().canonicalize().unwrap().display()
        );
        fs::write(dir.path().join("bus.conf"), config).unwrap();
        let mut bus = Self {
            address: format!("unix:path={}", socket.display()),
            dir,
            child: None,
        };
        bus.spawn();
        bus
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("bus")
    }

    /// Start dbus-daemon (again) on the same socket path.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the bus is already running");
        // dbus-daemon does not unlink a stale socket left by a killed one.
        let _ = fs::remove_file(self.socket());
        let child = Command::new("dbus-daemon")
            .arg(format!(
                "--config-file={}",
                self.dir.path().join("bus.conf").display()
            ))
            .args(["--nofork", "--nopidfile", "--nosyslog"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        self.child = Some(child);
        let start = Instant::now();
        while !self.socket().exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dbus-daemon socket did not appear"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop dbus-daemon with `signal` (SIGTERM: as `systemctl restart dbus`).
    pub fn stop(&mut self, signal: Signal) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child, signal);
        }
    }
}

impl Drop for FixedBus {
    fn drop(&mut self) {
        self.stop(Signal::SIGTERM);
    }
}

// ---------------------------------------------------------------- state directories

/// A 0700 state directory, optionally a tmpfs of its own of `size` bytes.
pub struct StateDir {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl StateDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-fstate-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        Self {
            dir,
            mounted: false,
        }
    }

    /// A fresh tmpfs of `size` bytes (mode 0700, root's) as the directory.
    pub fn tmpfs(size: u64) -> Self {
        let mut state = Self::new();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700,uid=0,gid=0"))
            .arg("stepup-faults")
            .arg(state.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs failed (root needed)");
        state.mounted = true;
        state
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("stepup.db")
    }

    /// Fill the file system with `name` until writing fails with ENOSPC.
    /// Returns the bytes written.
    pub fn fill(&self, name: &str) -> u64 {
        let mut file = fs::File::create(self.path().join(name)).unwrap();
        let mut written = 0u64;
        for chunk in [65536usize, 4096, 512, 1] {
            let block = vec![0xA5u8; chunk];
            loop {
                match file.write(&block) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                    Err(e) => panic!("filling the state directory: {e}"),
                }
            }
        }
        // tmpfs has no delayed allocation: the pages are taken by now.
        written
    }

    /// Bytes still free on the directory's file system.
    pub fn free_bytes(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(self.path()).unwrap();
        stat.blocks_available() * stat.fragment_size()
    }
}

impl Default for StateDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Still busy (a daemon that outlived a failed test): detach.
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(self.dir.path())
                    .status();
            }
        }
    }
}

// ---------------------------------------------------------------- stepupd

/// stepupd as a child of the test, with an optional wrapper command
/// (`setpriv …`) and extra environment (libfaketime), and an exit status
/// the test can look at.
pub struct Stepupd {
    child: Option<Child>,
    pub config_dir: tempfile::TempDir,
    pub state_dir: PathBuf,
    pub bus_address: String,
    log: PathBuf,
    wrapper: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

/// How a start ended.
#[derive(Debug)]
pub enum Started {
    /// It owns its bus name.
    Serving,
    /// It exited first.
    Exited(ExitStatus),
}

impl Stepupd {
    /// Set up (not start) stepupd on `bus_address` with `policy` as its
    /// stepup.toml and `state_dir` for state.
    pub fn new(bus_address: &str, policy: &str, state_dir: &Path) -> Self {
        let config_dir = crate::policy_dir("stepup-fcfg-", policy);
        let log = config_dir.path().join("stepupd.log");
        Self {
            child: None,
            config_dir,
            state_dir: state_dir.to_owned(),
            bus_address: bus_address.to_owned(),
            log,
            wrapper: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Run under this command (its arguments, then stepupd's path and args).
    pub fn wrapper(mut self, command: &[&str]) -> Self {
        self.wrapper = command.iter().map(OsString::from).collect();
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Start and wait until it owns its name or exits (at most 10 s).
    pub fn try_start(&mut self) -> Started {
        assert!(self.child.is_none(), "stepupd is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = match self.wrapper.split_first() {
            None => Command::new(artifact("stepupd")),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(artifact("stepupd"));
                c
            }
        };
        let child = command
            .arg("--config-dir")
            .arg(self.config_dir.path())
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--bus-address")
            .arg(&self.bus_address)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        match crate::wait_until_serving(self.child.as_mut().unwrap(), &self.bus_address, &self.log)
        {
            None => Started::Serving,
            Some(status) => {
                self.child = None;
                Started::Exited(status)
            }
        }
    }

    /// Start; the test fails if it does not serve.
    pub fn start(&mut self) {
        match self.try_start() {
            Started::Serving => {}
            Started::Exited(status) => {
                panic!("stepupd exited ({status}) at start:\n{}", self.log())
            }
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("stepupd is not running").id() as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Wait up to `limit` for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM (SIGKILL after 5 s) and reap; the exit status if it ran.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // A stopped (SIGSTOP) process would not act on SIGTERM.
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
        stop(&mut child, Signal::SIGTERM)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        crate::stepupctl_on(&self.bus_address, args)
    }

    pub fn enroll_totp(&self, user: &str, secret: &str) {
        crate::enroll_totp_on(&self.bus_address, user, secret);
    }
}

impl Drop for Stepupd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until nobody owns the daemon's name on `address`.
pub fn wait_name_released(address: &str) {
    let start = Instant::now();
    while name_has_owner(address, stepup_common::BUS_NAME) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} still owned 10 s later",
            stepup_common::BUS_NAME
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------- a paused PAM conversation

/// `pamtester SERVICE USER authenticate` whose prompts are answered one at
/// a time, so a test can act between the prompt and the answer.
pub struct PamtesterSession {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Everything pamtester printed so far (stdout and stderr; misc_conv
    /// prints prompts and errors on stderr).
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a pamtester run ended.
#[derive(Debug)]
pub struct PamtesterEnd {
    pub success: bool,
    pub output: String,
    /// From the answer (or `finish`) to pamtester's exit.
    pub elapsed: Duration,
}

impl PamtesterEnd {
    /// The PAM result as pamtester names it (pam_strerror).
    pub fn is_auth_err(&self) -> bool {
        self.output.contains("Authentication failure")
    }
    pub fn is_authinfo_unavail(&self) -> bool {
        self.output
            .contains("Authentication service cannot retrieve authentication info")
    }
}

impl PamtesterSession {
    pub fn start(service: &str, user: &str) -> Self {
        let mut child = Command::new("pamtester")
            .args(["-v", service, user, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pamtester (apt-get install pamtester)");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let pipes: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut pipe in pipes {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        Self {
            stdin: child.stdin.take(),
            child,
            output,
            readers,
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Wait until the output contains `text` (at most `limit`).
    pub fn wait_for(&mut self, text: &str, limit: Duration) {
        let start = Instant::now();
        while !self.output().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                panic!(
                    "pamtester exited ({status}) before printing {text:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                start.elapsed() < limit,
                "no {text:?} from pamtester within {limit:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Type `answer` and Enter; then wait (at most `limit`) for pamtester
    /// to end.
    pub fn answer_and_wait(mut self, answer: &str, limit: Duration) -> PamtesterEnd {
        let start = Instant::now();
        {
            let stdin = self.stdin.as_mut().unwrap();
            // pamtester may already be gone; then the write fails, which is fine.
            let _ = stdin.write_all(format!("{answer}\n").as_bytes());
            let _ = stdin.flush();
        }
        self.stdin = None;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() >= limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "pamtester still ran {limit:?} after the answer:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = start.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        PamtesterEnd {
            success: status.success(),
            output: self.output(),
            elapsed,
        }
    }
}

impl Drop for PamtesterSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------- libfaketime

/// The libfaketime preload library (package faketime / libfaketime).
pub fn libfaketime() -> PathBuf {
    for candidate in [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/lib64/faketime/libfaketimeMT.so.1",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("libfaketimeMT.so.1 not found: apt-get install faketime (scripts/install-deps.sh)");
}

/// A wall clock a test moves while the process runs: libfaketime reads the
/// offset from a file on every call (FAKETIME_NO_CACHE). Only the real-time
/// clock moves, as when an administrator or NTP steps it; monotonic clocks
/// (timers, session deadlines) are left alone.
pub struct FakeClock {
    dir: tempfile::TempDir,
}

impl FakeClock {
    pub fn new() -> Self {
        let clock = Self {
            dir: tempfile::Builder::new()
                .prefix("stepup-clock-")
                .tempdir()
                .unwrap(),
        };
        clock.set_offset(0);
        clock
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("faketime")
    }

    /// Move the clock to real time plus `seconds` (negative: backwards).
    pub fn set_offset(&self, seconds: i64) {
        let tmp = self.dir.path().join("faketime.tmp");
        fs::write(&tmp, format!("{seconds:+}\n")).unwrap();
        fs::rename(&tmp, self.file()).unwrap();
    }

    /// The environment that puts a process on this clock.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("LD_PRELOAD", libfaketime().into_os_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file().into_os_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("FAKETIME_DONT_RESET", "1".into()),
        ]
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}
