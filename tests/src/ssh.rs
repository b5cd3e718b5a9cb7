//! Real OpenSSH for the tests: an `sshd` on 127.0.0.1 whose PAM service is
//! a throwaway one (sshd names its service after `argv[0]`, so it runs
//! through a symlink of that name), login keys for a test user, and a
//! software security key (the test-only sk-soft provider of tests/sk-soft)
//! held by a real `ssh-agent -P` running as the user.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{PamService, TestUser, stop_child};

fn run_ok(command: &mut Command) -> Output {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An sshd on 127.0.0.1 (a free port) using `service`'s PAM file.
pub struct Sshd {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// `extra` is appended to the sshd_config (e.g. `AllowAgentForwarding yes`).
    pub fn start(service: &PamService, extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-sshd-")
            .tempdir()
            .expect("tempdir");
        let host_key = dir.path().join("host_ed25519");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key),
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {dir}/sshd.pid\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n\
                 AuthorizedKeysFile .ssh/authorized_keys\nPermitRootLogin no\n{extra}\n",
                key = host_key.display(),
                dir = dir.path().display()
            ),
        )
        .expect("write sshd_config");
        fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let link = dir.path().join(&service.name);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &link).expect("symlink sshd");
        let log = fs::File::create(dir.path().join("sshd.log")).expect("log");
        let child = Command::new(&link)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen: {}",
                fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        stop_child(&mut self.child, nix::sys::signal::Signal::SIGKILL);
    }
}

/// `~user/.ssh`, made and owned by the user.
pub fn ssh_dir(user: &TestUser) -> PathBuf {
    let ssh = PathBuf::from(format!("/home/{}/.ssh", user.name));
    fs::create_dir_all(&ssh).expect("~/.ssh");
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).expect("chmod ~/.ssh");
    chown(&ssh, user);
    ssh
}

fn chown(path: &Path, user: &TestUser) {
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{0}:{0}", user.name))
            .arg(path),
    );
}

/// A plain ed25519 login key for `user`, authorized for ssh logins.
pub fn give_login_key(user: &TestUser) -> PathBuf {
    let ssh = ssh_dir(user);
    let key = ssh.join("id_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    let public = fs::read_to_string(key.with_extension("pub")).expect("pub");
    let authorized = ssh.join("authorized_keys");
    let mut text = fs::read_to_string(&authorized).unwrap_or_default();
    text.push_str(&public);
    fs::write(&authorized, text).expect("authorized_keys");
    chown(&ssh, user);
    key
}

/// The test-only sk-soft provider, built beside the test binaries (this
/// crate names stepup-sk-soft as a dev-dependency), or `STEPUP_SK_SOFT_SO`.
pub fn sk_provider() -> PathBuf {
    if let Some(path) = std::env::var_os("STEPUP_SK_SOFT_SO") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary");
    let deps = exe.parent().expect("deps dir").to_owned();
    [deps.clone(), deps.parent().expect("profile dir").to_owned()]
        .iter()
        .map(|dir| dir.join("libstepup_sk_soft.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("libstepup_sk_soft.so not found near {}", deps.display()))
}

/// A software security key (sk-soft) with its device state, and a real
/// `ssh-agent -P` holding it, all running as `user` in a directory of
/// theirs. The provider must be readable by the user: it is copied there.
pub struct SkDevice {
    pub dir: PathBuf,
    pub key: PathBuf,
    agent: Option<Child>,
    user: String,
}

impl SkDevice {
    /// A new `ed25519-sk` key for `user` (application `ssh:`).
    pub fn create(user: &TestUser) -> Self {
        let dir = ssh_dir(user).join(format!("sk-{}", crate::random_suffix()));
        fs::create_dir_all(&dir).expect("device dir");
        fs::copy(sk_provider(), dir.join("sk.so")).expect("copy provider");
        chown(&dir, user);
        let device = Self {
            key: dir.join("id_ed25519_sk"),
            dir,
            agent: None,
            user: user.name.clone(),
        };
        let mut keygen = device.as_user("ssh-keygen");
        keygen.args([
            "-q",
            "-t",
            "ed25519-sk",
            "-N",
            "",
            "-C",
            "stepup-test-key",
            "-w",
        ]);
        run_ok(keygen.arg(device.provider()).arg("-f").arg(&device.key));
        device
    }

    pub fn provider(&self) -> PathBuf {
        self.dir.join("sk.so")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("device.json")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// The public key line (`sk-ssh-ed25519@openssh.com AAAA… comment`).
    pub fn public_key(&self) -> String {
        fs::read_to_string(self.key.with_extension("pub")).expect("pub")
    }

    /// Write the device state (`{"counter": 7, "touch": "never"}`…).
    pub fn set_state(&self, json: &str) {
        fs::write(self.state(), json).expect("state");
        let _ = Command::new("chown")
            .arg(&self.user)
            .arg(self.state())
            .status();
    }

    /// The device's signature counter (0 before its first signature).
    pub fn counter(&self) -> u64 {
        fs::read_to_string(self.state())
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["counter"].as_u64())
            .unwrap_or(0)
    }

    fn as_user(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.user))
            .arg(format!("--regid={}", self.user))
            .args(["--init-groups", "--reset-env"])
            .arg("env")
            .arg(format!("STEPUP_SK_SOFT_STATE={}", self.state().display()))
            .arg(format!("SSH_AUTH_SOCK={}", self.socket().display()))
            .arg(program)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        cmd
    }

    /// Start the agent (as the user) and load `keys` into it (`-S` for sk).
    pub fn start_agent(&mut self, keys: &[&Path]) {
        let mut agent = self.as_user("ssh-agent");
        agent
            .arg("-D")
            .arg("-P")
            .arg(self.provider())
            .arg("-a")
            .arg(self.socket());
        self.agent = Some(
            agent
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("ssh-agent"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        for key in keys {
            let mut add = self.as_user("ssh-add");
            if fs::read_to_string(key.with_extension("pub")).is_ok_and(|p| p.starts_with("sk-")) {
                add.arg("-S").arg(self.provider());
            }
            run_ok(add.arg(key));
        }
    }
}

impl Drop for SkDevice {
    fn drop(&mut self) {
        if let Some(child) = &mut self.agent {
            stop_child(child, nix::sys::signal::Signal::SIGTERM);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `/var/run/utmp`, where sshd records sessions (so a sudo inside one is
/// known to be remote). These machines have none: it is created for the
/// test (root:utmp, 0664) and removed again if it was not there.
/// Tests that use it take a lock, so one does not remove it under another.
pub struct Utmp {
    created: bool,
    _lock: nix::fcntl::Flock<fs::File>,
}

impl Utmp {
    pub fn ensure() -> Self {
        let lock_file = fs::File::create("/run/lock/stepup-test-utmp.lock").expect("lock file");
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("lock utmp");
        let path = Path::new("/var/run/utmp");
        if path.exists() {
            return Self {
                created: false,
                _lock: lock,
            };
        }
        fs::write(path, b"").expect("create utmp");
        let _ = Command::new("chgrp")
            .args(["utmp", "/var/run/utmp"])
            .status();
        fs::set_permissions(path, fs::Permissions::from_mode(0o664)).expect("chmod utmp");
        Self {
            created: true,
            _lock: lock,
        }
    }
}

impl Drop for Utmp {
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_file("/var/run/utmp");
        }
    }
}
