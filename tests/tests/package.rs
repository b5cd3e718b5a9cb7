//! The Debian package, installed for real, end to end; and the rpm next to it.
//!
//! `make package-test` builds both packages and runs these tests (they are
//! `#[ignore]`d in the plain suite because they need the packages and
//! install one system-wide). The install test:
//!
//! - installs the deb with `dpkg -i` and checks every file it promises;
//! - starts the host's system bus as Debian does (`dbus-daemon --system`,
//!   /usr/share/dbus-1/system.conf), unless one is already running, so the
//!   installed D-Bus policy and activation file are the ones in force and
//!   `stepupd` is started by D-Bus activation from /usr/sbin;
//! - drives `sudo`, `su` and `ssh` (to an `sshd` on 127.0.0.1 with
//!   keyboard-interactive) as unprivileged users under a pseudo-terminal,
//!   each through a TOTP step-up with an `oathtool` code, each refused with
//!   a wrong one; the PAM lines name `pam_stepup.so` bare, so libpam loads
//!   the installed module from the distribution's PAM directory;
//! - loads the sudo approval plugin by its bare name from a saved and
//!   restored /etc/sudo.conf (the package never edits it) and drives sudo
//!   through the installed `/usr/libexec/sudo/stepup_sudo.so`;
//! - removes, then purges, the package and checks what is left.
//!
//! It refuses to run where stepup is already installed, never edits a PAM
//! file in place (sudo uses a drop-in and a `stepup-test-*` service, su's
//! stack is bind-mounted inside `unshare -m`, sshd runs under a symlinked
//! name with its own `/etc/pam.d/stepup-test-*`), and undoes everything on
//! the way out, even on failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stepup_tests::sudo::SUDOERS_PLUGINS;
use stepup_tests::*;

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/security/pam_stepup.so";
const SUDO_PLUGIN: &str = "/usr/libexec/sudo/stepup_sudo.so";
const SUDO_CONF: &str = "/etc/sudo.conf";
const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
const WANTS_LINK: &str = "/etc/systemd/system/multi-user.target.wants/stepupd.service";

/// Every file the deb must install (beyond the docs directory).
const DEB_FILES: &[&str] = &[
    MODULE,
    SUDO_PLUGIN,
    "/usr/sbin/stepupd",
    "/usr/sbin/stepupctl",
    "/etc/stepup/stepup.toml",
    "/usr/share/dbus-1/system.d/org.stepup.Daemon1.conf",
    "/usr/share/dbus-1/system-services/org.stepup.Daemon1.service",
    "/lib/systemd/system/stepupd.service",
    "/usr/share/pam-configs/stepup",
    "/usr/lib/systemd/catalog/stepup.catalog",
    "/usr/share/man/man8/pam_stepup.8.gz",
    "/usr/share/man/man8/stepupd.8.gz",
    "/usr/share/man/man8/stepupctl.8.gz",
    "/usr/share/man/man8/stepup_sudo.8.gz",
    "/usr/share/man/man5/stepup.toml.5.gz",
    "/usr/share/doc/stepup/changelog.Debian.gz",
    "/usr/share/doc/stepup/copyright",
    "/usr/share/doc/stepup/deploy.md",
];

fn package_file(var: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run `make package-test`"));
    assert!(path.is_file(), "{var}={} does not exist", path.display());
    path
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn package_status() -> String {
    let out = run("dpkg-query", &["-W", "-f=${Status}", "stepup"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The contents of every file under /etc/pam.d: the package must never
/// change one.
fn pam_d_snapshot() -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir("/etc/pam.d")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            // Other tests' throwaway services come and go meanwhile.
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("stepup-test-")
        })
        .filter(|p| p.is_file())
        .map(|p| {
            let content = fs::read(&p).unwrap();
            (p, content)
        })
        .collect()
}

/// /etc/sudo.conf replaced for a while, put back as it was on drop (also
/// on panic); absent before, absent after.
struct SudoConfReplaced {
    saved: Option<Vec<u8>>,
}

impl SudoConfReplaced {
    fn write(text: &str) -> Self {
        let guard = Self {
            saved: fs::read(SUDO_CONF).ok(),
        };
        fs::write(SUDO_CONF, text).unwrap();
        guard
    }
}

impl Drop for SudoConfReplaced {
    fn drop(&mut self) {
        match &self.saved {
            Some(saved) => {
                let _ = fs::write(SUDO_CONF, saved);
            }
            None => {
                let _ = fs::remove_file(SUDO_CONF);
            }
        }
    }
}

/// Purges the package and whatever the test created, even on panic.
struct Installed;

impl Installed {
    fn install(deb: &Path) -> Self {
        let status = package_status();
        assert!(
            !status.contains("installed") && !status.contains("config-files"),
            "refusing to run: the stepup package is already on this machine ({status})"
        );
        for dir in ["/etc/stepup", "/var/lib/stepup"] {
            assert!(
                !Path::new(dir).exists(),
                "refusing to run: {dir} exists (a stepup installation of someone's?)"
            );
        }
        let guard = Installed;
        run_ok("dpkg", &["-i", deb.to_str().unwrap()]);
        guard
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["-P", "stepup"]);
        let _ = fs::remove_dir_all("/var/lib/stepup");
        let _ = fs::remove_dir_all("/etc/stepup");
    }
}

/// The host's system bus, started the way Debian starts it unless one runs
/// already. Stops it (and the stepupd it activated) on drop if it is ours.
struct SystemBus {
    child: Option<Child>,
}

impl SystemBus {
    fn start() -> Self {
        if Path::new(SYSTEM_BUS_SOCKET).exists()
            && name_has_owner(&system_address(), "org.freedesktop.DBus")
        {
            // Someone's system bus: have it read the new policy file.
            run_ok(
                "dbus-send",
                &[
                    "--system",
                    "--type=method_call",
                    "--dest=org.freedesktop.DBus",
                    "/",
                    "org.freedesktop.DBus.ReloadConfig",
                ],
            );
            return Self { child: None };
        }
        let _ = fs::remove_file(SYSTEM_BUS_SOCKET);
        fs::create_dir_all("/run/dbus").unwrap();
        let child = Command::new("dbus-daemon")
            .args(["--system", "--nofork", "--nopidfile"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        let start = Instant::now();
        while !name_has_owner(&system_address(), "org.freedesktop.DBus") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no system bus after 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child: Some(child) }
    }

    /// The pid of the process owning stepupd's name, if any.
    fn daemon_pid(&self) -> Option<u32> {
        let out = run(
            "dbus-send",
            &[
                "--system",
                "--print-reply=literal",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.GetConnectionUnixProcessID",
                &format!("string:{}", stepup_common::BUS_NAME),
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .last()
            .and_then(|s| s.parse().ok())
    }

    /// Stop the activated stepupd (SIGTERM: a clean stop).
    fn stop_daemon(&self) {
        let Some(pid) = self.daemon_pid() else { return };
        let _ = run("kill", &["-TERM", &pid.to_string()]);
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        self.stop_daemon();
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(SYSTEM_BUS_SOCKET);
        }
    }
}

fn system_address() -> String {
    format!("unix:path={SYSTEM_BUS_SOCKET}")
}

fn stepupctl(args: &[&str]) -> Output {
    run("/usr/sbin/stepupctl", args)
}

/// Run `command` as `user` (a fresh login environment) under a pty.
fn as_user(user: &TestUser, command: &[&str], answers: &[&str]) -> (String, i32) {
    let mut argv = vec![
        "setpriv".to_owned(),
        format!("--reuid={}", user.name),
        format!("--regid={}", user.name),
        "--init-groups".to_owned(),
        "--reset-env".to_owned(),
    ];
    argv.extend(command.iter().map(|s| (*s).to_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    under_pty(&argv, answers, &[])
}

fn enroll(user: &TestUser) -> String {
    let secret = random_secret();
    let out = stepupctl(&["enroll", "totp", &user.name, "--secret", &secret, "--no-qr"]);
    assert!(
        out.status.success(),
        "stepupctl enroll (over the system bus, activating stepupd): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secret
}

/// Three wrong codes, one per try of the attempt.
fn wrong_codes(secret: &str) -> [String; 3] {
    let wrong = wrong_code(secret);
    [wrong.clone(), wrong.clone(), wrong]
}

/// An `sshd` on 127.0.0.1 whose PAM service is a `stepup-test-*` file: sshd
/// names its service after `argv[0]`, so it runs through a symlink of that
/// name.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start(service: &PamService) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-sshd-")
            .tempdir()
            .unwrap();
        let host_key = dir.path().join("host_ed25519");
        run_ok(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                host_key.to_str().unwrap(),
            ],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {dir}/sshd.pid\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n\
                 AuthorizedKeysFile .ssh/authorized_keys\nPermitRootLogin no\n",
                key = host_key.display(),
                dir = dir.path().display()
            ),
        )
        .unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let link = dir.path().join(&service.name);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &link).unwrap();
        let child = Command::new(&link)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
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

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key pair for `user`, authorized for ssh logins.
fn give_ssh_key(user: &TestUser) -> String {
    let home = PathBuf::from(format!("/home/{}", user.name));
    let ssh = home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    run_ok(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    fs::copy(ssh.join("id_ed25519.pub"), ssh.join("authorized_keys")).unwrap();
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).unwrap();
    run_ok(
        "chown",
        &["-R", &format!("{0}:{0}", user.name), ssh.to_str().unwrap()],
    );
    key.display().to_string()
}

fn ssh(user: &TestUser, sshd: &Sshd, key: &str, methods: &str, answers: &[&str]) -> (String, i32) {
    as_user(
        user,
        &[
            "ssh",
            "-v",
            "-p",
            &sshd.port.to_string(),
            "-i",
            key,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            &format!("PreferredAuthentications={methods}"),
            "-o",
            "NumberOfPasswordPrompts=1",
            &format!("{}@127.0.0.1", user.name),
            "id",
            "-u",
        ],
        answers,
    )
}

fn ran_as(transcript: &str, uid: u32) -> bool {
    transcript.lines().any(|l| l.trim() == uid.to_string())
}

#[test]
#[ignore = "needs the built packages and installs one system-wide: make package-test"]
fn the_installed_deb_steps_up_sudo_su_and_ssh_and_removes_cleanly() {
    let deb = package_file("STEPUP_DEB");
    let pam_before = pam_d_snapshot();
    let sudo_conf_before = fs::read(SUDO_CONF).ok();
    let installed = Installed::install(&deb);

    // Every promised file, the conffile registered as one, and a default
    // policy that is valid and report-only.
    for file in DEB_FILES {
        assert!(
            Path::new(file).is_file(),
            "the package did not install {file}"
        );
    }
    let conffiles = run_ok("dpkg-query", &["-W", "-f=${Conffiles}", "stepup"]);
    assert!(conffiles.contains("/etc/stepup/stepup.toml"), "{conffiles}");
    let check = stepupctl(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let default_policy = fs::read_to_string("/etc/stepup/stepup.toml").unwrap();
    assert!(
        default_policy
            .lines()
            .any(|l| l.split('#').next().unwrap().replace(' ', "") == "report_only=true"),
        "the shipped policy is not report-only:\n{default_policy}"
    );
    assert_eq!(
        fs::metadata("/var/lib/stepup")
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(
        pam_d_snapshot(),
        pam_before,
        "installing changed /etc/pam.d"
    );
    assert_eq!(
        fs::read(SUDO_CONF).ok(),
        sudo_conf_before,
        "installing changed /etc/sudo.conf"
    );
    // sudo loads a plugin only if root owns it and nobody else may write it.
    let plugin = fs::metadata(SUDO_PLUGIN).unwrap();
    assert_eq!((plugin.uid(), plugin.permissions().mode() & 0o022), (0, 0));
    // Enabled at boot (the module needs a running daemon).
    assert_eq!(
        fs::read_link(WANTS_LINK).unwrap(),
        Path::new("/lib/systemd/system/stepupd.service")
    );

    // The journald catalog is installed and in journald's database.
    let attempt_ended = stepup_common::events::kind("attempt_ended")
        .unwrap()
        .message_id;
    assert!(
        run_ok("journalctl", &["--list-catalog"]).contains(attempt_ended),
        "the package did not update journald's catalog"
    );

    // An enforcing policy in place of the shipped one (the purge at the end
    // removes it with the conffile), its events to a journald of our own.
    let journald = Journald::start();
    fs::write(
        "/etc/stepup/stepup.toml",
        format!(
            "[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\n[audit]\njournal_socket = \"{}\"\n",
            journald.socket().display()
        ),
    )
    .unwrap();
    // Installing again (what an upgrade runs) is idempotent and keeps the
    // administrator's edit of the conffile.
    run_ok("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(
        fs::read_to_string("/etc/stepup/stepup.toml")
            .unwrap()
            .starts_with("[defaults]\naction = \"step_up\""),
        "reinstalling replaced the edited policy"
    );
    let bus = SystemBus::start();
    let sudo_user = TestUser::create();
    let su_user = TestUser::create();
    let ssh_user = TestUser::create();
    // The first call activates stepupd through D-Bus (the installed
    // activation file): it is the installed binary that answers.
    let sudo_secret = enroll(&sudo_user);
    let pid = bus
        .daemon_pid()
        .expect("nobody owns org.stepup.Daemon1 after enroll");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        Path::new("/usr/sbin/stepupd")
    );
    let su_secret = enroll(&su_user);
    let ssh_secret = enroll(&ssh_user);

    // The module by its bare name: libpam finds the installed one.
    let stack = "auth required pam_stepup.so timeout=10\naccount required pam_permit.so\nsession required pam_permit.so\n";

    // sudo, through a sudoers drop-in naming a throwaway PAM service.
    let sudo_service = PamService::with_lines(stack);
    let _sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(root) /usr/bin/id\n",
        u = sudo_user.name,
        svc = sudo_service.name
    ));
    let sudo = ["sudo", "-k", "/usr/bin/id", "-u"];
    // A stopped daemon is started by the module itself (D-Bus activation),
    // so the first sudo after a crash or a boot without the unit works.
    bus.stop_daemon();
    assert_eq!(bus.daemon_pid(), None, "stepupd did not stop");
    let (transcript, status) = as_user(&sudo_user, &sudo, &[&oathtool_now(&sudo_secret)]);
    assert_eq!(status, 0, "sudo with the right code: {transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(
        ran_as(&transcript, 0),
        "id did not run as root: {transcript}"
    );
    assert!(bus.daemon_pid().is_some(), "sudo did not activate stepupd");
    let wrong = wrong_codes(&sudo_secret);
    let (transcript, status) = as_user(&sudo_user, &sudo, &[&wrong[0], &wrong[1], &wrong[2]]);
    assert_ne!(status, 0, "sudo let a wrong code through: {transcript}");
    assert!(!ran_as(&transcript, 0), "{transcript}");
    // `journalctl -x` explains a real event from the installed catalog.
    let explained = journald.explained(attempt_ended);
    assert!(
        explained.contains("did that attempt get in?") && explained.contains("ended: max_tries"),
        "journalctl -x did not explain attempt_ended:\n{explained}"
    );

    // su, with its fixed /etc/pam.d/su replaced inside a private mount
    // namespace only. The factor asked is the caller's.
    let su_stack = std::env::temp_dir().join(format!("stepup-su-{}", random_suffix()));
    fs::write(&su_stack, stack).unwrap();
    let su = |answers: &[&str]| {
        under_pty(
            &[
                "unshare",
                "-m",
                "sh",
                "-c",
                &format!(
                    "mount --bind {} /etc/pam.d/su && exec setpriv --reuid={u} --regid={u} --init-groups su -c '/usr/bin/id -u' root",
                    su_stack.display(),
                    u = su_user.name
                ),
            ],
            answers,
            &[],
        )
    };
    let (transcript, status) = su(&[&oathtool_now(&su_secret)]);
    assert_eq!(status, 0, "su with the right code: {transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(ran_as(&transcript, 0), "{transcript}");
    let wrong = wrong_codes(&su_secret);
    let (transcript, status) = su(&[&wrong[0], &wrong[1], &wrong[2]]);
    assert_ne!(status, 0, "su let a wrong code through: {transcript}");
    assert!(!ran_as(&transcript, 0), "{transcript}");
    let _ = fs::remove_file(&su_stack);

    // ssh: a user with an authorized key still gets the TOTP step-up,
    // because sshd requires publickey *then* keyboard-interactive, and
    // keyboard-interactive is what runs the PAM auth stack.
    let sshd_service = PamService::with_lines(stack);
    let sshd = Sshd::start(&sshd_service);
    let key = give_ssh_key(&ssh_user);
    let (transcript, status) = ssh(
        &ssh_user,
        &sshd,
        &key,
        "publickey,keyboard-interactive",
        &[&oathtool_now(&ssh_secret)],
    );
    assert_eq!(
        status,
        0,
        "ssh with key and code: {transcript}\n{}",
        sshd.log()
    );
    assert!(
        transcript.contains("Authenticated using \"publickey\" with partial success"),
        "the key was not accepted first: {transcript}"
    );
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(ran_as(&transcript, ssh_user.uid), "{transcript}");
    // The key alone is not enough.
    let (transcript, status) = ssh(&ssh_user, &sshd, &key, "publickey", &[]);
    assert_ne!(status, 0, "ssh with the key alone got in: {transcript}");
    assert!(!ran_as(&transcript, ssh_user.uid), "{transcript}");
    // The key and a wrong code are not either.
    let wrong = wrong_codes(&ssh_secret);
    let (transcript, status) = ssh(
        &ssh_user,
        &sshd,
        &key,
        "publickey,keyboard-interactive",
        &[&wrong[0], &wrong[1], &wrong[2]],
    );
    assert_ne!(status, 0, "ssh let a wrong code through: {transcript}");
    assert!(!ran_as(&transcript, ssh_user.uid), "{transcript}");
    drop(sshd);

    // The daemon saw an ssh attempt as remote, from 127.0.0.1.
    let explain = stepupctl(&["status"]);
    assert!(
        explain.status.success(),
        "{}",
        String::from_utf8_lossy(&explain.stderr)
    );

    sudo_plugin_through_the_installed_files(&journald);

    // The pam-auth-update profile: off after install (common-auth was
    // unchanged above); an administrator turning it on puts the module in
    // common-auth, and removing the package takes it out again before the
    // module goes.
    run_ok("pam-auth-update", &["--package", "--enable", "stepup"]);
    let common_auth = fs::read_to_string("/etc/pam.d/common-auth").unwrap();
    assert!(common_auth.contains("pam_stepup.so"), "{common_auth}");

    // Remove: programs gone, configuration and state kept, and a warning
    // names the PAM files still wired to the module by hand.
    bus.stop_daemon();
    let removal = run("dpkg", &["-r", "stepup"]);
    let removal_output = format!(
        "{}{}",
        String::from_utf8_lossy(&removal.stdout),
        String::from_utf8_lossy(&removal.stderr)
    );
    assert!(removal.status.success(), "dpkg -r: {removal_output}");
    assert!(
        removal_output.contains(&format!("/etc/pam.d/{}", sudo_service.name)),
        "no warning about a stack still naming the module: {removal_output}"
    );
    let common_auth = fs::read_to_string("/etc/pam.d/common-auth").unwrap();
    assert!(
        !common_auth.contains("pam_stepup.so"),
        "dpkg -r left the profile on:\n{common_auth}"
    );
    assert!(
        package_status().contains("config-files"),
        "{}",
        package_status()
    );
    for gone in [
        MODULE,
        SUDO_PLUGIN,
        "/usr/sbin/stepupd",
        "/usr/sbin/stepupctl",
        "/lib/systemd/system/stepupd.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} survived dpkg -r");
    }
    assert!(
        Path::new("/etc/stepup/stepup.toml").is_file(),
        "dpkg -r removed the configuration"
    );
    assert!(
        Path::new("/var/lib/stepup/stepup.db").is_file(),
        "dpkg -r removed the state"
    );

    // Purge: configuration and state gone too; dpkg forgets the package.
    run_ok("dpkg", &["-P", "stepup"]);
    assert!(
        package_status().is_empty() || package_status().contains("not-installed"),
        "{}",
        package_status()
    );
    for gone in ["/etc/stepup", "/var/lib/stepup"] {
        assert!(!Path::new(gone).exists(), "{gone} survived dpkg -P");
    }
    for file in DEB_FILES {
        assert!(!Path::new(file).exists(), "{file} survived dpkg -P");
    }
    assert_eq!(
        fs::read(SUDO_CONF).ok(),
        sudo_conf_before,
        "the package changed /etc/sudo.conf"
    );
    assert!(
        !run_ok("journalctl", &["--list-catalog"]).contains(attempt_ended),
        "the purged package left its entries in journald's catalog"
    );
    for link in [WANTS_LINK, "/etc/systemd/system/stepupd.service"] {
        assert!(
            fs::symlink_metadata(link).is_err(),
            "{link} survived dpkg -P"
        );
    }
    assert_eq!(
        pam_d_snapshot(),
        pam_before,
        "the package changed /etc/pam.d"
    );
    drop(bus);
    drop(installed);
}

/// The approval plugin named bare in /etc/sudo.conf (sudo finds it in its
/// plugin directory, /usr/libexec/sudo), against the activated stepupd on
/// the system bus: a policy by command lets `/usr/bin/id` through without a
/// prompt and steps a shell up. sudoers asks for nothing (NOPASSWD), so
/// every prompt is the plugin's.
fn sudo_plugin_through_the_installed_files(journald: &Journald) {
    let user = TestUser::create();
    let secret = enroll(&user);
    let _sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} !lecture\n{u} ALL=(ALL:ALL) NOPASSWD: ALL\n",
        u = user.name
    ));
    // What the defaults would do (deny) is not what the rules do.
    fs::write(
        "/etc/stepup/stepup.toml",
        format!(
            r#"[defaults]
action = "deny"
methods = ["totp"]
max_tries = 1
[audit]
journal_socket = "{}"
[[rule]]
name = "harmless"
command = ["/usr/bin/id", "/usr/bin/id *"]
action = "allow"
[[rule]]
name = "shells"
shell = true
action = "step_up"
"#,
            journald.socket().display()
        ),
    )
    .unwrap();
    let reload = stepupctl(&["reload"]);
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );

    let sudo_conf = SudoConfReplaced::write(&format!(
        "{SUDOERS_PLUGINS}Plugin stepup_approval stepup_sudo.so timeout=10\n"
    ));
    let (transcript, status) = as_user(&user, &["sudo", "/usr/bin/id", "-u"], &[]);
    assert_eq!(status, 0, "sudo /usr/bin/id with the plugin: {transcript}");
    assert!(!transcript.contains("Verification code"), "{transcript}");
    assert!(ran_as(&transcript, 0), "{transcript}");

    let shell = ["sudo", "-s", "/usr/bin/id", "-u"];
    let wrong = wrong_codes(&secret);
    let (transcript, status) = as_user(&user, &shell, &[&wrong[0]]);
    assert_ne!(status, 0, "a shell with a wrong code: {transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(!ran_as(&transcript, 0), "{transcript}");
    let (transcript, status) = as_user(&user, &shell, &[&oathtool_now(&secret)]);
    assert_eq!(status, 0, "a shell with the right code: {transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(ran_as(&transcript, 0), "{transcript}");
    drop(sudo_conf);
}

#[test]
#[ignore = "needs the built deb: make package-test"]
fn lintian_finds_no_errors_in_the_deb() {
    let deb = package_file("STEPUP_DEB");
    let out = run(
        "lintian",
        &[
            "--fail-on",
            "error",
            "--tag-display-limit",
            "0",
            deb.to_str().unwrap(),
        ],
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "lintian:\n{report}");
    assert!(
        !report.lines().any(|l| l.starts_with("E:")),
        "lintian:\n{report}"
    );
}

/// A deb path as the rpm spells it (the distributions differ in where PAM
/// modules and units live; the rpm has no copyright file and carries the
/// changelog as plain text), or None for Debian-only files.
fn as_rpm_path(deb_path: &str) -> Option<String> {
    if deb_path.starts_with("/usr/share/pam-configs/")
        || deb_path == "/usr/share/doc/stepup/copyright"
    {
        return None;
    }
    if deb_path == "/usr/share/doc/stepup/changelog.Debian.gz" {
        return Some("/usr/share/doc/stepup/changelog".to_owned());
    }
    Some(
        deb_path
            .replace(
                "/usr/lib/x86_64-linux-gnu/security/",
                "/usr/lib64/security/",
            )
            .replacen("/lib/systemd/system/", "/usr/lib/systemd/system/", 1),
    )
}

#[test]
#[ignore = "needs the built packages: make package-test"]
fn the_rpm_ships_the_same_files_as_the_deb() {
    let deb = package_file("STEPUP_DEB");
    let rpm = package_file("STEPUP_RPM");
    let deb_files: std::collections::BTreeSet<String> =
        run_ok("dpkg-deb", &["-c", deb.to_str().unwrap()])
            .lines()
            .filter(|l| !l.starts_with('d'))
            .filter_map(|l| l.split_whitespace().last())
            .map(|p| p.trim_start_matches('.').to_owned())
            .filter_map(|p| as_rpm_path(&p))
            .collect();
    let rpm_files: std::collections::BTreeSet<String> =
        run_ok("rpm", &["-qpl", rpm.to_str().unwrap()])
            .lines()
            .map(str::to_owned)
            .collect();
    assert_eq!(deb_files, rpm_files, "deb (mapped to rpm paths) vs rpm");
    for file in [
        "/usr/lib64/security/pam_stepup.so",
        SUDO_PLUGIN,
        "/usr/share/man/man8/stepup_sudo.8.gz",
    ] {
        assert!(rpm_files.contains(file), "{file} not in {rpm_files:?}");
    }

    let config = run_ok("rpm", &["-qpc", rpm.to_str().unwrap()]);
    assert_eq!(config.trim(), "/etc/stepup/stepup.toml");

    // The same lifecycle as the deb's scripts: state made and the unit
    // enabled on install, the daemon stopped on erase and restarted on
    // upgrade, nothing in /etc/pam.d edited.
    let scripts = run_ok("rpm", &["-qp", "--scripts", rpm.to_str().unwrap()]);
    for scriptlet in [
        "postinstall scriptlet",
        "preuninstall scriptlet",
        "postuninstall scriptlet",
    ] {
        assert!(scripts.contains(scriptlet), "no {scriptlet}:\n{scripts}");
    }
    assert!(
        scripts.contains("install -d -m 0700 -o root -g root /var/lib/stepup"),
        "{scripts}"
    );
    assert!(
        scripts.contains("systemctl enable stepupd.service"),
        "{scripts}"
    );
    assert!(
        scripts.contains("systemctl stop stepupd.service"),
        "{scripts}"
    );
    assert!(
        scripts.contains("systemctl try-restart stepupd.service"),
        "{scripts}"
    );
    for line in scripts.lines() {
        let code = line.split('#').next().unwrap();
        let writes_pam = code.contains("/etc/pam.d") && !code.contains("grep -l");
        assert!(!writes_pam, "an rpm scriptlet touches /etc/pam.d: {line}");
    }
}
