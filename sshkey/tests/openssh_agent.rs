//! The agent client and the verifier against real OpenSSH: keys made by
//! `ssh-keygen -w` with the sk-soft provider (tests/sk-soft), held by a real
//! `ssh-agent -P <provider>` loaded with `ssh-add -S`.
//!
//! The provider `.so` is built by cargo because this crate names
//! `stepup-sk-soft` as a dev-dependency; it sits in `target/<profile>/deps`
//! beside this test (or set `STEPUP_SK_SOFT_SO`).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stepup_sshkey::{
    AgentError, Challenge, EnrolledSkKey, KeyError, Limits, SshSig, VerifyError, peer_uid,
    request_signature, verify,
};

fn provider() -> PathBuf {
    if let Some(path) = std::env::var_os("STEPUP_SK_SOFT_SO") {
        return PathBuf::from(path);
    }
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    [deps.clone(), deps.parent().unwrap().to_owned()]
        .iter()
        .map(|dir| dir.join("libstepup_sk_soft.so"))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "libstepup_sk_soft.so is in neither {} nor its parent: \
                 `cargo build -p stepup-sk-soft` (or set STEPUP_SK_SOFT_SO)",
                deps.display()
            )
        })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A directory with a device state file, keys, and an agent.
struct World {
    dir: tempfile::TempDir,
    agent: Option<Child>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        // The agent may run as another user (see the peer test).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        World { dir, agent: None }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("device.json")
    }

    fn set_state(&self, json: &str) {
        fs::write(self.state(), json).unwrap();
    }

    fn socket(&self) -> PathBuf {
        self.path("agent.sock")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("STEPUP_SK_SOFT_STATE", self.state())
            .env("SSH_AUTH_SOCK", self.socket())
            .env_remove("SSH_SK_PROVIDER")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, cmd: &mut Command) -> Output {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", text(&out));
        out
    }

    /// A key made by `ssh-keygen` (`-w provider` for sk types).
    fn keygen(&self, key_type: &str, name: &str) -> PathBuf {
        let key = self.path(name);
        let mut cmd = self.command("ssh-keygen");
        cmd.args(["-q", "-t", key_type, "-N", "", "-C", name, "-f"])
            .arg(&key);
        if key_type.starts_with("sk-") || key_type.ends_with("-sk") {
            cmd.arg("-w").arg(provider());
        }
        self.run(&mut cmd);
        key
    }

    fn enrolled(&self, key: &Path) -> EnrolledSkKey {
        let line = fs::read_to_string(key.with_extension("pub")).unwrap();
        EnrolledSkKey::from_openssh_line(&line).unwrap()
    }

    /// `ssh-agent -D -P provider`, as `runas` (a `setpriv` prefix) if given.
    fn start_agent(&mut self, runas: &[&str]) {
        let mut cmd = if runas.is_empty() {
            self.command("ssh-agent")
        } else {
            let mut cmd = self.command(runas[0]);
            cmd.args(&runas[1..]).arg("ssh-agent");
            cmd
        };
        let child = cmd
            .arg("-D")
            .arg("-P")
            .arg(provider())
            .arg("-a")
            .arg(self.socket())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.agent = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        // The socket file appears at bind(), before listen(): wait for a connection.
        while UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `ssh-add [-S provider] [extra…] KEY`.
    fn add(&self, key: &Path, extra: &[&str]) {
        let mut cmd = self.command("ssh-add");
        let sk = fs::read_to_string(key.with_extension("pub"))
            .unwrap()
            .starts_with("sk-");
        if sk {
            cmd.arg("-S").arg(provider());
        }
        cmd.args(extra).arg(key);
        self.run(&mut cmd);
    }

    fn connect(&self) -> UnixStream {
        UnixStream::connect(self.socket()).unwrap()
    }

    /// The device's counter (0 before the state file exists).
    fn counter_or_zero(&self) -> u32 {
        if self.state().exists() {
            self.counter()
        } else {
            0
        }
    }

    fn counter(&self) -> u32 {
        let state: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(self.state()).unwrap()).unwrap();
        u32::try_from(state["counter"].as_u64().unwrap()).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }
}

fn limits() -> Limits {
    Limits {
        list_timeout: Duration::from_secs(5),
        sign_timeout: Duration::from_secs(10),
        ..Limits::default()
    }
}

#[test]
fn a_touch_through_a_real_agent_verifies_and_the_counter_grows() {
    for key_type in ["ed25519-sk", "ecdsa-sk"] {
        let mut world = World::new();
        let key = world.keygen(key_type, "laptop");
        world.start_agent(&[]);
        world.add(&key, &[]);
        let enrolled = world.enrolled(&key);

        let mut last = 0;
        for _ in 0..2 {
            let challenge = Challenge::new("server.example").unwrap();
            let got = request_signature(
                &mut world.connect(),
                std::slice::from_ref(&enrolled),
                &challenge,
                &limits(),
            )
            .unwrap();
            assert_eq!(got.key_index, 0);
            let ok = verify(&enrolled, &challenge, &got.signature, false, last).unwrap();
            assert_eq!(ok.counter, world.counter(), "{key_type}");
            assert!(ok.counter > last);
            assert_eq!(ok.flags, stepup_sshkey::FLAG_UP);
            last = ok.counter;
        }
    }
}

#[test]
fn openssh_and_this_crate_agree_on_the_sshsig() {
    let mut world = World::new();
    let key = world.keygen("ed25519-sk", "laptop");
    world.start_agent(&[]);
    world.add(&key, &[]);
    let enrolled = world.enrolled(&key);
    let challenge = Challenge::new("server.example").unwrap();
    let message = world.path("nonce");
    fs::write(&message, challenge.nonce()).unwrap();
    let signers = world.path("allowed_signers");
    fs::write(&signers, format!("alice {}", enrolled.to_openssh_line())).unwrap();

    // Made through the agent here, verified by `ssh-keygen -Y verify`.
    let got = request_signature(
        &mut world.connect(),
        std::slice::from_ref(&enrolled),
        &challenge,
        &limits(),
    )
    .unwrap();
    let armored = world.path("nonce.sig");
    fs::write(
        &armored,
        got.signature.to_pem(ssh_key::LineEnding::LF).unwrap(),
    )
    .unwrap();
    let out = world.run(
        world
            .command("ssh-keygen")
            .args([
                "-Y",
                "verify",
                "-n",
                challenge.namespace(),
                "-I",
                "alice",
                "-f",
            ])
            .arg(&signers)
            .arg("-s")
            .arg(&armored)
            .stdin(fs::File::open(&message).unwrap()),
    );
    assert!(text(&out).starts_with("Good \"stepup@server.example\""));

    // Made by `ssh-keygen -Y sign` through the agent, verified here.
    fs::remove_file(&armored).unwrap();
    world.run(
        world
            .command("ssh-keygen")
            .args(["-Y", "sign", "-n", challenge.namespace(), "-f"])
            .arg(key.with_extension("pub"))
            .arg(&message),
    );
    let sig = SshSig::from_pem(fs::read(&armored).unwrap()).unwrap();
    let ok = verify(&enrolled, &challenge, &sig, false, 1).unwrap();
    assert_eq!(ok.counter, 2);
    // …and not for another host's namespace.
    let elsewhere = Challenge::with_nonce("other.example", *challenge.nonce()).unwrap();
    assert!(matches!(
        verify(&enrolled, &elsewhere, &sig, false, 1),
        Err(VerifyError::WrongNamespace { .. })
    ));
}

#[test]
fn fingerprints_match_ssh_keygen() {
    let world = World::new();
    for key_type in ["ed25519-sk", "ecdsa-sk"] {
        let key = world.keygen(key_type, key_type);
        let out = world.run(
            world
                .command("ssh-keygen")
                .arg("-lf")
                .arg(key.with_extension("pub")),
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        let fingerprint = printed.split_whitespace().nth(1).unwrap();
        assert_eq!(world.enrolled(&key).fingerprint(), fingerprint);
        assert_eq!(world.enrolled(&key).application(), "ssh:");
        assert_eq!(world.enrolled(&key).comment(), key_type);
    }
}

#[test]
fn no_touch_is_refused_by_the_agent_and_uses_no_counter() {
    let mut world = World::new();
    let key = world.keygen("ed25519-sk", "laptop");
    world.start_agent(&[]);
    world.add(&key, &[]);
    world.set_state(r#"{"counter": 4, "touch": "never", "touch_timeout_ms": 200}"#);
    let err = request_signature(
        &mut world.connect(),
        &[world.enrolled(&key)],
        &Challenge::new("server.example").unwrap(),
        &limits(),
    )
    .unwrap_err();
    assert!(matches!(err, AgentError::SignRefused), "{err}");
    assert_eq!(world.counter(), 4);
}

#[test]
fn a_touch_slower_than_the_limit_times_out() {
    let mut world = World::new();
    let key = world.keygen("ed25519-sk", "laptop");
    world.start_agent(&[]);
    world.add(&key, &[]);
    world.set_state(r#"{"touch": "never", "touch_timeout_ms": 60000}"#);
    let impatient = Limits {
        sign_timeout: Duration::from_millis(300),
        ..limits()
    };
    let err = request_signature(
        &mut world.connect(),
        &[world.enrolled(&key)],
        &Challenge::new("server.example").unwrap(),
        &impatient,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::Timeout {
                stage: stepup_sshkey::Stage::Signing
            }
        ),
        "{err}"
    );
    // Let the agent's helper finish instead of waiting a minute.
    world.set_state(r#"{"touch": "auto"}"#);
}

#[test]
fn a_counter_set_back_in_the_device_is_a_regression() {
    let mut world = World::new();
    let key = world.keygen("ecdsa-sk", "laptop");
    world.start_agent(&[]);
    world.add(&key, &[]);
    let enrolled = world.enrolled(&key);
    world.set_state(r#"{"counter": 40}"#);
    let sign = |world: &World| {
        let challenge = Challenge::new("server.example").unwrap();
        let got = request_signature(
            &mut world.connect(),
            std::slice::from_ref(&enrolled),
            &challenge,
            &limits(),
        )
        .unwrap();
        (challenge, got.signature)
    };
    let (challenge, sig) = sign(&world);
    let stored = verify(&enrolled, &challenge, &sig, false, 0)
        .unwrap()
        .counter;
    assert_eq!(stored, 41);

    // The clone's counter lags behind the original's.
    world.set_state(r#"{"counter": 10}"#);
    let (challenge, sig) = sign(&world);
    assert_eq!(
        verify(&enrolled, &challenge, &sig, false, stored),
        Err(VerifyError::CounterRegression {
            stored: 41,
            got: 11
        })
    );
}

#[test]
fn user_verification_is_reported_by_a_key_that_verifies_by_itself() {
    let mut world = World::new();
    let key = world.keygen("ed25519-sk", "laptop");
    world.start_agent(&[]);
    world.add(&key, &[]);
    let enrolled = world.enrolled(&key);
    let challenge = Challenge::new("server.example").unwrap();
    let got = request_signature(
        &mut world.connect(),
        std::slice::from_ref(&enrolled),
        &challenge,
        &limits(),
    )
    .unwrap();
    assert_eq!(
        verify(&enrolled, &challenge, &got.signature, true, 0),
        Err(VerifyError::UserNotVerified)
    );

    world.set_state(r#"{"counter": 1, "uv": true}"#);
    let challenge = Challenge::new("server.example").unwrap();
    let got = request_signature(
        &mut world.connect(),
        std::slice::from_ref(&enrolled),
        &challenge,
        &limits(),
    )
    .unwrap();
    let ok = verify(&enrolled, &challenge, &got.signature, true, 1).unwrap();
    assert!(ok.user_verified());
}

#[test]
fn a_plain_key_in_the_agent_is_neither_enrollable_nor_used() {
    let mut world = World::new();
    let plain = world.keygen("ed25519", "plain");
    let sk = world.keygen("ed25519-sk", "laptop");
    world.start_agent(&[]);
    world.add(&plain, &[]);

    let line = fs::read_to_string(plain.with_extension("pub")).unwrap();
    assert_eq!(
        EnrolledSkKey::from_openssh_line(&line),
        Err(KeyError::NotSecurityKey {
            key_type: "ssh-ed25519".into()
        })
    );
    let err = request_signature(
        &mut world.connect(),
        &[world.enrolled(&sk)],
        &Challenge::new("server.example").unwrap(),
        &limits(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::NotInAgent {
                enrolled: 1,
                in_agent: 1
            }
        ),
        "{err}"
    );
    assert_eq!(
        world.counter_or_zero(),
        0,
        "the security key was never asked"
    );
}

#[test]
fn an_empty_agent_or_another_security_key_is_not_in_the_agent() {
    let mut world = World::new();
    let mine = world.keygen("ed25519-sk", "mine");
    let theirs = world.keygen("ed25519-sk", "theirs");
    world.start_agent(&[]);
    let ask = |world: &World| {
        request_signature(
            &mut world.connect(),
            &[world.enrolled(&mine)],
            &Challenge::new("server.example").unwrap(),
            &limits(),
        )
        .unwrap_err()
    };
    assert!(matches!(
        ask(&world),
        AgentError::NotInAgent {
            enrolled: 1,
            in_agent: 0
        }
    ));
    world.add(&theirs, &[]);
    assert!(matches!(
        ask(&world),
        AgentError::NotInAgent {
            enrolled: 1,
            in_agent: 1
        }
    ));
}

#[test]
fn a_destination_constrained_key_will_not_sign_a_challenge() {
    let mut world = World::new();
    let key = world.keygen("ed25519-sk", "laptop");
    let host_key = world.keygen("ed25519", "hostkey");
    let known_hosts = world.path("known_hosts");
    fs::write(
        &known_hosts,
        format!(
            "server.example {}",
            fs::read_to_string(host_key.with_extension("pub")).unwrap()
        ),
    )
    .unwrap();
    world.start_agent(&[]);
    let hosts = known_hosts.to_string_lossy().into_owned();
    world.add(&key, &["-H", &hosts, "-h", "server.example"]);
    let before = world.counter_or_zero();
    let err = request_signature(
        &mut world.connect(),
        &[world.enrolled(&key)],
        &Challenge::new("server.example").unwrap(),
        &limits(),
    )
    .unwrap_err();
    assert!(matches!(err, AgentError::SignRefused), "{err}");
    assert_eq!(world.counter_or_zero(), before);
}

#[test]
fn the_agent_sockets_peer_is_the_user_running_the_agent() {
    assert_eq!(
        effective_uid(),
        0,
        "this test starts an agent as nobody: run it as root"
    );
    let mut world = World::new();
    world.start_agent(&[]);
    assert_eq!(peer_uid(world.connect()), Ok(0));
    drop(world);

    let mut world = World::new();
    // nobody needs to create the socket in the directory.
    fs::set_permissions(world.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    world.start_agent(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]);
    assert_eq!(peer_uid(world.connect()), Ok(65534));
}

/// Our effective uid (the owner of /proc/self).
fn effective_uid() -> u32 {
    std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap())
}
