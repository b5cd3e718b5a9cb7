//! The person's own security key through ssh, with real parts: a real sshd
//! on 127.0.0.1, the real ssh client with `-A`, a real `ssh-agent` holding
//! an `ed25519-sk` key of the test-only sk-soft provider (OpenSSH's
//! security-key middleware), real sudo inside the session, real libpam and
//! the real daemon. And the login key as a signal (sshd's SSH_AUTH_INFO_0).
//!
//! The ways to point the module at a socket that is not the person's agent
//! are driven with the in-process PAM driver run like sudo (real uid the
//! user, effective uid root), with SSH_AUTH_SOCK set in its environment.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::Duration;

use stepup_tests::ssh::{SkDevice, Sshd, Utmp, give_login_key};
use stepup_tests::*;

/// sudo, on the test's service, inside an ssh session, steps up with the
/// methods given; sshd's own service allows (its login-key rules are tested
/// below).
fn policy(sudo_service: &str, sshd_service: &str, methods: &str) -> String {
    format!(
        r#"
[fido2]
touch_timeout = "5s"
[lockout]
deny = 0
[defaults]
action = "deny"
[[rule]]
name = "ssh-logins"
service = ["{sshd_service}"]
action = "allow"
[[rule]]
name = "remote-sudo"
service = ["{sudo_service}"]
remote = true
methods = {methods}
action = "step_up"
"#
    )
}

struct World {
    _utmp: Utmp,
    _bus: Bus,
    daemon: Daemon,
    sudo_pam: PamService,
    sshd: Sshd,
    // Declared after `sshd`: the service file goes once sshd has stopped.
    _sshd_pam: PamService,
    user: TestUser,
    login_key: std::path::PathBuf,
    device: SkDevice,
    _sudoers: SudoersDropIn,
}

fn world(methods: &str) -> World {
    let utmp = Utmp::ensure();
    let bus = Bus::start(BusPolicy::Shipped);
    let sudo_pam = PamService::new(&format!("bus={} timeout=10", bus.address));
    let sshd_pam = PamService::with_lines(&format!(
        "auth required {} bus={} timeout=10\naccount required pam_permit.so\nsession required pam_permit.so\n",
        module_path().display(),
        bus.address
    ));
    let daemon = Daemon::start(&bus, &policy(&sudo_pam.name, &sshd_pam.name, methods));
    let sshd = Sshd::start(&sshd_pam, "AllowAgentForwarding yes\n");
    let user = TestUser::create();
    let login_key = give_login_key(&user);
    let mut device = SkDevice::create(&user);
    device.start_agent(&[&device.key.clone()]);
    let sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(root) /usr/bin/id\n",
        u = user.name,
        svc = sudo_pam.name
    ));
    World {
        _utmp: utmp,
        _bus: bus,
        daemon,
        sudo_pam,
        sshd,
        _sshd_pam: sshd_pam,
        user,
        login_key,
        device,
        _sudoers: sudoers,
    }
}

impl World {
    fn enroll_device(&self) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.pub");
        fs::write(&file, self.device.public_key()).unwrap();
        let out = self.daemon.ctl(&[
            "enroll",
            "ssh-key",
            &self.user.name,
            "--pubkey",
            file.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.split_whitespace().nth(1).unwrap().to_owned()
    }

    /// `ssh [-A] user@127.0.0.1 sudo -k /usr/bin/id -u` under a pty, as the
    /// user, their agent in SSH_AUTH_SOCK.
    fn ssh_sudo(&self, forward: bool, answers: &[&str]) -> (String, i32) {
        let port = self.sshd.port.to_string();
        let key = self.login_key.display().to_string();
        let sock = format!("SSH_AUTH_SOCK={}", self.device.socket().display());
        let mut argv = vec![
            "setpriv",
            "--reuid",
            &self.user.name,
            "--regid",
            &self.user.name,
            "--init-groups",
            "--reset-env",
            "env",
            &sock,
            "ssh",
            "-tt",
            "-p",
            &port,
            "-i",
            &key,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
        ];
        argv.push(if forward { "-A" } else { "-a" });
        let target = format!("{}@127.0.0.1", self.user.name);
        argv.extend([target.as_str(), "sudo", "-k", "/usr/bin/id", "-u"]);
        under_pty(&argv, answers, &[])
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ran_as_root(transcript: &str) -> bool {
    transcript.lines().any(|l| l.trim() == "0")
}

const TOUCH: &str = "Touch your security key (on the computer you connected from)";

#[test]
fn sudo_in_an_ssh_session_steps_up_with_a_touch_of_the_persons_own_key() {
    let w = world(r#"["ssh_agent_key", "totp"]"#);
    let id = w.enroll_device();
    let (transcript, status) = w.ssh_sudo(true, &[]);
    assert_eq!(
        status,
        0,
        "{transcript}\n{}\n{}",
        w.daemon.log(),
        w.sshd.log()
    );
    assert!(transcript.contains(TOUCH), "{transcript}");
    assert!(!transcript.contains("Verification code"), "{transcript}");
    assert!(ran_as_root(&transcript), "{transcript}");
    assert_eq!(w.device.counter(), 1, "one signature");
    let log = w.daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("event=factor_succeeded") && l.contains("method=ssh_agent_key")),
        "{log}"
    );
    // The key's counter is stored: the same counter again is a clone.
    w.device.set_state(r#"{"counter": 0}"#);
    let secret = random_secret();
    w.daemon.enroll_totp(&w.user.name, &secret);
    let (transcript, status) = w.ssh_sudo(true, &[]);
    assert_ne!(status, 0, "a cloned key let sudo through: {transcript}");
    assert!(
        transcript.contains("counter went backwards"),
        "{transcript}"
    );
    assert!(
        w.daemon
            .log()
            .lines()
            .any(|l| l.contains("event=key_counter_regression") && l.contains(&id)),
        "{}",
        w.daemon.log()
    );
    // The key is disabled: only TOTP is asked now.
    let code = oathtool_now(&secret);
    let (transcript, status) = w.ssh_sudo(true, &[&code]);
    assert_eq!(status, 0, "{transcript}");
    assert!(!transcript.contains(TOUCH), "{transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
}

#[test]
fn no_touch_or_no_forwarded_agent_falls_back_to_totp_or_denies() {
    let w = world(r#"["ssh_agent_key", "totp"]"#);
    w.enroll_device();
    let secret = random_secret();
    w.daemon.enroll_totp(&w.user.name, &secret);

    // Not touched: the next method is asked in the same attempt.
    w.device
        .set_state(r#"{"counter": 0, "touch": "never", "touch_timeout_ms": 500}"#);
    let code = oathtool_now(&secret);
    let (transcript, status) = w.ssh_sudo(true, &[&code]);
    assert_eq!(status, 0, "{transcript}");
    assert!(transcript.contains(TOUCH), "{transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");

    // No forwarded agent (`ssh -a`): TOTP in the same attempt. (The next
    // time step's code: the daemon accepts one step either side, and the
    // code above is used.)
    w.device.set_state(r#"{"counter": 0}"#);
    let next = oathtool_at(&secret, unix_now() + 30);
    let (transcript, status) = w.ssh_sudo(false, &[&next]);
    assert_eq!(status, 0, "{transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert_eq!(w.device.counter(), 0, "the key was asked without an agent");
    assert!(
        w.daemon.log().contains("no forwarded ssh-agent"),
        "{}",
        w.daemon.log()
    );
}

#[test]
fn the_key_as_the_only_method_without_a_touch_denies() {
    let w = world(r#"["ssh_agent_key"]"#);
    w.enroll_device();
    w.device
        .set_state(r#"{"counter": 0, "touch": "never", "touch_timeout_ms": 500}"#);
    let (transcript, status) = w.ssh_sudo(true, &[]);
    assert_ne!(status, 0, "{transcript}");
    assert!(!ran_as_root(&transcript), "{transcript}");
}

/// The PAM driver run like sudo (real uid the user, effective uid root),
/// remote (PAM_RHOST set), with SSH_AUTH_SOCK = `socket`.
fn drive_as(w: &World, socket: &str, answers: &[&str]) -> String {
    let uid = w.user.uid.to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--ruid",
        &uid,
        "--euid",
        "0",
        "--rgid",
        &uid,
        "--egid",
        "0",
        "--clear-groups",
    ])
    .arg(pam_drive())
    .args(["-r", "198.51.100.9"]);
    for a in answers {
        cmd.args(["-a", a]);
    }
    let out = cmd
        .arg(&w.sudo_pam.name)
        .arg(&w.user.name)
        .env("SSH_AUTH_SOCK", socket)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_socket_that_is_not_the_persons_agent_gets_nothing_and_the_next_method_is_asked() {
    let w = world(r#"["ssh_agent_key", "totp"]"#);
    w.enroll_device();
    let secret = random_secret();
    w.daemon.enroll_totp(&w.user.name, &secret);

    // Another user's agent: the module connects with the caller's rights,
    // which cannot reach it.
    let other = TestUser::create();
    let mut other_device = SkDevice::create(&other);
    other_device.start_agent(&[&other_device.key.clone()]);
    let out = drive_as(
        &w,
        other_device.socket().to_str().unwrap(),
        &[&oathtool_now(&secret)],
    );
    assert!(out.contains("result=0"), "{out}");
    assert!(out.contains("prompt: Verification code"), "{out}");
    assert_eq!(other_device.counter(), 0, "the other user's key was asked");

    // A root-owned service socket anyone may connect to: the daemon sees
    // who listens (root, not the person) and sends nothing.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("service.sock");
    let listener = UnixListener::bind(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let out = drive_as(&w, path.to_str().unwrap(), &[&oathtool_now(&secret)]);
    assert!(out.contains("prompt: Verification code"), "{out}");
    let (mut conn, _) = listener.accept().expect("the module connected");
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "the daemon wrote {} bytes to a root service",
        got.len()
    );
    assert!(
        w.daemon.log().contains("not their agent"),
        "{}",
        w.daemon.log()
    );

    // A regular file, and nothing at all.
    let file = dir.path().join("plain");
    fs::write(&file, b"not a socket").unwrap();
    for socket in [file.to_str().unwrap(), "/nonexistent/agent"] {
        std::thread::sleep(Duration::from_secs(1));
        let out = drive_as(&w, socket, &[&oathtool_now(&secret)]);
        assert!(out.contains("prompt: Verification code"), "{socket}: {out}");
    }
    assert_eq!(w.device.counter(), 0);
}

#[test]
fn only_security_keys_enroll_and_a_plain_key_in_the_agent_is_not_used() {
    let w = world(r#"["ssh_agent_key", "totp"]"#);
    // A plain ed25519 key is refused at enrollment, by name.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pub");
    fs::copy(w.login_key.with_extension("pub"), &plain).unwrap();
    let out = w.daemon.ctl(&[
        "enroll",
        "ssh-key",
        &w.user.name,
        "--pubkey",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ssh-ed25519"),
        "{out:?}"
    );

    // authorized_keys import: sk keys taken, others skipped and named.
    let authorized = dir.path().join("authorized_keys");
    fs::write(
        &authorized,
        format!(
            "{}no-touch-required {}{}",
            fs::read_to_string(w.login_key.with_extension("pub")).unwrap(),
            w.device.public_key(),
            w.device.public_key()
        ),
    )
    .unwrap();
    let out = w.daemon.ctl(&[
        "import",
        "authorized-keys",
        &w.user.name,
        authorized.to_str().unwrap(),
    ]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("skipped: line 1: ssh-ed25519 is not a security key"),
        "{report}"
    );
    assert!(
        report.contains("skipped: line 2") && report.contains("no-touch-required"),
        "{report}"
    );
    assert!(
        report.contains("took: sshkey-") && report.contains("from line 3"),
        "{report}"
    );
    let list = String::from_utf8_lossy(&w.daemon.ctl(&["list", &w.user.name]).stdout).into_owned();
    assert!(list.contains("ssh_agent_key"), "{list}");

    // An agent holding only a plain key: nothing to sign with, TOTP asked.
    let secret = random_secret();
    w.daemon.enroll_totp(&w.user.name, &secret);
    let mut plain_agent = SkDevice::create(&w.user);
    plain_agent.start_agent(&[&w.login_key]);
    let out = drive_as(
        &w,
        plain_agent.socket().to_str().unwrap(),
        &[&oathtool_now(&secret)],
    );
    assert!(
        out.contains("result=0") && out.contains("prompt: Verification code"),
        "{out}"
    );
    assert!(
        w.daemon.log().contains("in the agent"),
        "{}",
        w.daemon.log()
    );
}

/// An agent that alters the signature, or replays an earlier one: the
/// daemon's verification refuses it (it counts as a wrong answer) and the
/// next method is asked; the key's stored counter does not move.
#[test]
fn an_altered_or_replayed_signature_is_refused() {
    let w = world(r#"["ssh_agent_key", "totp"]"#);
    w.enroll_device();
    for (mode, attempts) in [("alter", 1_u64), ("replay", 2)] {
        // A TOTP credential of its own per mode: each attempt below ends
        // with an unused code (this step's, then the next step's).
        let secret = random_secret();
        w.daemon.enroll_totp(&w.user.name, &secret);
        let listen = w.device.dir.join(format!("lying-{mode}.sock"));
        let mut liar = Command::new("setpriv")
            .args([
                "--reuid",
                &w.user.name,
                "--regid",
                &w.user.name,
                "--init-groups",
            ])
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("driver/lying_agent.py"))
            .arg(&listen)
            .arg(w.device.socket())
            .arg(mode)
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(&listen).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the lying agent did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut last = String::new();
        for n in 0..attempts {
            // One code per attempt: the next steps' codes, all unused.
            let code = oathtool_at(&secret, unix_now() + 30 * n);
            last = drive_as(&w, listen.to_str().unwrap(), &[&code]);
            assert!(last.contains("result=0"), "{mode}: {last}");
        }
        assert!(last.contains("did not verify"), "{mode}: {last}");
        assert!(last.contains("prompt: Verification code"), "{mode}: {last}");
        let _ = liar.kill();
        let _ = liar.wait();
    }
    assert!(
        w.daemon
            .log()
            .lines()
            .any(|l| l.contains("reason=bad_signature") && l.contains("method=ssh_agent_key")),
        "{}",
        w.daemon.log()
    );
}

/// sshd tells PAM which key a login used: login_key_type lets a security
/// key in, new_login_key steps up a key not seen before, and the value is
/// never taken from a user-set SSH_AUTH_INFO_0 in sudo.
#[test]
fn the_login_key_is_a_signal_only_sshd_can_give() {
    let _utmp = Utmp::ensure();
    let bus = Bus::start(BusPolicy::Shipped);
    let sshd_pam = PamService::with_lines(&format!(
        "auth required {} bus={} timeout=10\naccount required pam_permit.so\nsession required pam_permit.so\n",
        module_path().display(),
        bus.address
    ));
    let sudo_pam = PamService::new(&format!("bus={} timeout=10", bus.address));
    let daemon = Daemon::start(
        &bus,
        &format!(
            r#"
[defaults]
action = "deny"
[[rule]]
name = "security-key-login"
login_key_type = ["sk-*"]
action = "allow"
[[rule]]
name = "new-device"
service = ["{sshd}"]
new_login_key = "30d"
action = "step_up"
[[rule]]
name = "known-device"
service = ["{sshd}"]
action = "allow"
[[rule]]
name = "sudo"
service = ["{sudo}"]
action = "step_up"
"#,
            sshd = sshd_pam.name,
            sudo = sudo_pam.name
        ),
    );
    let sshd = Sshd::start(&sshd_pam, "");
    let user = TestUser::create();
    let login_key = give_login_key(&user);
    let secret = random_secret();
    daemon.enroll_totp(&user.name, &secret);
    let ssh = |key: &str, env: &[&str], answers: &[&str]| {
        let port = sshd.port.to_string();
        let mut argv = vec![
            "setpriv",
            "--reuid",
            &user.name,
            "--regid",
            &user.name,
            "--init-groups",
            "--reset-env",
            "env",
        ];
        argv.extend_from_slice(env);
        let target = format!("{}@127.0.0.1", user.name);
        argv.extend([
            "ssh",
            "-p",
            &port,
            "-i",
            key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
            &target,
            "/usr/bin/id",
            "-u",
        ]);
        under_pty(&argv, answers, &[])
    };
    let key = login_key.display().to_string();
    // A new device: stepped up.
    let (transcript, status) = ssh(&key, &[], &[&oathtool_now(&secret)]);
    assert_eq!(status, 0, "{transcript}\n{}", daemon.log());
    assert!(transcript.contains("Verification code"), "{transcript}");
    // Known now: no prompt.
    let (transcript, status) = ssh(&key, &[], &[]);
    assert_eq!(status, 0, "{transcript}\n{}", daemon.log());
    assert!(!transcript.contains("Verification code"), "{transcript}");
    // A security key login: the touch was the step-up.
    let mut device = SkDevice::create(&user);
    device.start_agent(&[&device.key.clone()]);
    let authorized = format!("/home/{}/.ssh/authorized_keys", user.name);
    let mut text = fs::read_to_string(&authorized).unwrap();
    text.push_str(&device.public_key());
    fs::write(&authorized, text).unwrap();
    // The agent signs the login (ssh's own sk helper would not see the test
    // device's state file).
    let sock = format!("SSH_AUTH_SOCK={}", device.socket().display());
    let public = device.key.with_extension("pub");
    let (transcript, status) = ssh(public.to_str().unwrap(), &[&sock], &[]);
    assert_eq!(status, 0, "{transcript}\n{}\n{}", daemon.log(), sshd.log());
    assert!(!transcript.contains("Verification code"), "{transcript}");
    assert!(
        daemon
            .log()
            .lines()
            .any(|l| l.contains("rule=security-key-login") && l.contains("login_key=SHA256:")),
        "{}",
        daemon.log()
    );

    // sudo with a user-set SSH_AUTH_INFO_0 naming a security key: ignored.
    let _sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(root) /usr/bin/id\n",
        u = user.name,
        svc = sudo_pam.name
    ));
    let forged = format!("SSH_AUTH_INFO_0=publickey {}", device.public_key().trim());
    let (transcript, status) = under_pty(
        &[
            "setpriv",
            "--reuid",
            &user.name,
            "--regid",
            &user.name,
            "--init-groups",
            "--reset-env",
            "env",
            &forged,
            "sudo",
            "-k",
            "/usr/bin/id",
            "-u",
        ],
        &[],
        &[],
    );
    assert_ne!(
        status, 0,
        "a forged login key let sudo through: {transcript}"
    );
    let sudo_decision = daemon
        .log()
        .lines()
        .find(|l| l.contains("event=decision") && l.contains(&format!("service={}", sudo_pam.name)))
        .unwrap()
        .to_owned();
    assert!(
        sudo_decision.contains("rule=sudo") && !sudo_decision.contains("login_key="),
        "{sudo_decision}"
    );
}
