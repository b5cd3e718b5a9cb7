//! The provider under real OpenSSH: `ssh-keygen -w` makes keys with it,
//! `ssh-keygen -Y sign/verify` and `ssh-agent -P` + `ssh-add -S` use them.
//!
//! The provider is the `libstepup_sk_soft.so` that `cargo test -p
//! stepup-sk-soft` builds before running these tests (in `target/<profile>/
//! deps`, beside the test binary), else `target/<profile>/` (`cargo build`),
//! or `$STEPUP_SK_SOFT_SO`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn provider() -> PathBuf {
    if let Some(path) = std::env::var_os("STEPUP_SK_SOFT_SO") {
        return PathBuf::from(path);
    }
    // `cargo test` leaves the library it built for this run in deps/ (the
    // test's own directory); `cargo build` copies it up to target/<profile>.
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let candidates = [deps.clone(), deps.parent().unwrap().to_owned()];
    candidates
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

/// A temporary directory with a device state file and keys.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
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

    fn counter(&self) -> u64 {
        let state: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(self.state()).unwrap()).unwrap();
        state["counter"].as_u64().unwrap()
    }

    /// An OpenSSH command with the device's state file and no agent.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("STEPUP_SK_SOFT_STATE", self.state())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSH_SK_PROVIDER")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// `ssh-keygen -t TYPE -w provider`; returns the private key path.
    fn keygen(&self, key_type: &str, name: &str, options: &[&str]) -> PathBuf {
        let key = self.path(name);
        let mut cmd = self.command("ssh-keygen");
        cmd.args(["-q", "-t", key_type, "-N", "", "-C", name, "-w"])
            .arg(provider())
            .arg("-f")
            .arg(&key);
        for option in options {
            cmd.args(["-O", option]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "ssh-keygen: {}", text(&out));
        key
    }

    fn message(&self) -> PathBuf {
        let path = self.path("message");
        fs::write(&path, b"a message to sign\n").unwrap();
        path
    }

    /// `ssh-keygen -Y sign` with the key file and `SSH_SK_PROVIDER`.
    fn sign_direct(&self, key: &Path, message: &Path) -> Output {
        let _ = fs::remove_file(sig_path(message));
        self.command("ssh-keygen")
            .env("SSH_SK_PROVIDER", provider())
            .args(["-Y", "sign", "-n", "test@example", "-f"])
            .arg(key)
            .arg(message)
            .output()
            .unwrap()
    }

    /// `ssh-keygen -vv -Y verify`: the counter and flags OpenSSH read from a
    /// good signature, or `None` when it does not verify.
    fn verify(&self, key: &Path, message: &Path, namespace: &str) -> Option<(u32, u8)> {
        let pubkey = fs::read_to_string(key.with_extension("pub")).unwrap();
        let signers = self.path("allowed_signers");
        fs::write(&signers, format!("tester {pubkey}")).unwrap();
        let out = self
            .command("ssh-keygen")
            .args(["-vv", "-Y", "verify", "-n", namespace, "-I", "tester", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(sig_path(message))
            .stdin(fs::File::open(message).unwrap())
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("Good \"test@example\""));
        details(&String::from_utf8_lossy(&out.stderr))
    }
}

fn sig_path(message: &Path) -> PathBuf {
    let mut path = message.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parse `signature details: counter = N, flags = 0xFF` from `ssh-keygen -vv`.
fn details(stderr: &str) -> Option<(u32, u8)> {
    let line = stderr.lines().find(|l| l.contains("signature details:"))?;
    let counter = line.split("counter = ").nth(1)?.split(',').next()?;
    let flags = line.split("flags = 0x").nth(1)?.trim();
    Some((counter.parse().ok()?, u8::from_str_radix(flags, 16).ok()?))
}

/// `ssh-agent -D` on a socket in the world's directory, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(world: &World, allowed_providers: &str) -> Agent {
        let socket = world.path("agent.sock");
        let child = world
            .command("ssh-agent")
            .args(["-D", "-P", allowed_providers, "-a"])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The socket file appears at bind(), before listen(): wait for a connection.
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { child, socket }
    }

    fn command(&self, world: &World, program: &str) -> Command {
        let mut cmd = world.command(program);
        cmd.env("SSH_AUTH_SOCK", &self.socket);
        cmd
    }

    fn add(&self, world: &World, key: &Path) -> Output {
        self.command(world, "ssh-add")
            .arg("-S")
            .arg(provider())
            .arg(key)
            .output()
            .unwrap()
    }

    /// `ssh-keygen -Y sign -f KEY.pub`: the agent makes the signature.
    fn sign(&self, world: &World, key: &Path, message: &Path) -> Output {
        let _ = fs::remove_file(sig_path(message));
        self.command(world, "ssh-keygen")
            .args(["-Y", "sign", "-n", "test@example", "-f"])
            .arg(key.with_extension("pub"))
            .arg(message)
            .output()
            .unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn exports_exactly_the_sk_api() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(provider())
        .output()
        .expect("nm (binutils)");
    let mut symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    symbols.sort();
    assert_eq!(
        symbols,
        [
            "sk_api_version",
            "sk_enroll",
            "sk_load_resident_keys",
            "sk_sign"
        ]
    );
}

#[test]
fn both_key_types_sign_and_ssh_keygen_verifies() {
    for (key_type, prefix) in [
        ("ed25519-sk", "sk-ssh-ed25519@openssh.com "),
        ("ecdsa-sk", "sk-ecdsa-sha2-nistp256@openssh.com "),
    ] {
        let world = World::new();
        let key = world.keygen(key_type, "key", &[]);
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        assert!(public.starts_with(prefix), "{public}");

        let message = world.message();
        let out = world.sign_direct(&key, &message);
        assert!(out.status.success(), "{key_type}: {}", text(&out));
        assert_eq!(
            world.verify(&key, &message, "test@example"),
            Some((1, 0x01))
        );
        // The check is real: another namespace or an altered message fails.
        assert_eq!(world.verify(&key, &message, "other@example"), None);
        fs::write(&message, b"an altered message\n").unwrap();
        assert_eq!(world.verify(&key, &message, "test@example"), None);
    }
}

#[test]
fn the_counter_grows_with_every_signature_and_can_be_set_back() {
    let world = World::new();
    let key = world.keygen("ed25519-sk", "key", &[]);
    let message = world.message();
    let mut seen = Vec::new();
    for _ in 0..3 {
        assert!(world.sign_direct(&key, &message).status.success());
        seen.push(world.verify(&key, &message, "test@example").unwrap().0);
    }
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(world.counter(), 3);

    // A "cloned" key: its counter lags behind.
    world.set_state(r#"{"counter": 1}"#);
    assert!(world.sign_direct(&key, &message).status.success());
    assert_eq!(
        world.verify(&key, &message, "test@example"),
        Some((2, 0x01))
    );
}

#[test]
fn not_touched_fails_like_a_real_key_and_uses_no_counter() {
    let world = World::new();
    let key = world.keygen("ecdsa-sk", "key", &[]);
    world.set_state(r#"{"counter": 10, "touch": "never", "touch_timeout_ms": 200}"#);
    let message = world.message();
    let out = world.sign_direct(&key, &message);
    assert!(!out.status.success());
    // SSH_SK_ERR_GENERAL, which ssh-sk.c maps to SSH_ERR_INVALID_FORMAT.
    assert!(
        text(&out).contains("nobody touched the key"),
        "{}",
        text(&out)
    );
    assert!(!sig_path(&message).exists());
    assert_eq!(world.counter(), 10);
}

#[test]
fn no_touch_required_keys_sign_without_the_up_flag() {
    let world = World::new();
    let key = world.keygen("ed25519-sk", "key", &["no-touch-required"]);
    world.set_state(r#"{"touch": "never", "touch_timeout_ms": 5000}"#);
    let message = world.message();
    let started = Instant::now();
    assert!(world.sign_direct(&key, &message).status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it waited for a touch"
    );
    assert_eq!(
        world.verify(&key, &message, "test@example"),
        Some((1, 0x00))
    );
}

#[test]
fn user_verification_by_pin_or_by_the_key_itself() {
    let world = World::new();
    world.set_state(r#"{"pin": "pin-5f1c2e9d"}"#);
    let out = world
        .command("sh")
        .arg("-c")
        .arg("echo pin-5f1c2e9d | ssh-keygen -q -t ed25519-sk -N '' -O verify-required -w \"$0\" -f key")
        .arg(provider())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let key = world.path("key");
    let message = world.message();

    // No PIN on stdin: OpenSSH asks, gets nothing, and the key refuses.
    assert!(!world.sign_direct(&key, &message).status.success());
    let out = world
        .command("sh")
        .arg("-c")
        .arg("echo pin-5f1c2e9d | ssh-keygen -Y sign -n test@example -f key message")
        .env("SSH_SK_PROVIDER", provider())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        world.verify(&key, &message, "test@example"),
        Some((1, 0x05))
    );

    // Built-in verification (a fingerprint reader): no PIN needed.
    world.set_state(r#"{"counter": 1, "uv": true}"#);
    assert!(world.sign_direct(&key, &message).status.success());
    assert_eq!(
        world.verify(&key, &message, "test@example"),
        Some((2, 0x05))
    );
}

#[test]
fn no_state_file_means_no_device() {
    let world = World::new();
    let out = world
        .command("ssh-keygen")
        .env_remove("STEPUP_SK_SOFT_STATE")
        .args(["-q", "-t", "ed25519-sk", "-N", "", "-w"])
        .arg(provider())
        .arg("-f")
        .arg(world.path("key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("device not found"), "{}", text(&out));
}

#[test]
fn an_agent_allowing_the_provider_signs_with_it() {
    let world = World::new();
    let key = world.keygen("ed25519-sk", "key", &[]);
    let agent = Agent::start(&world, &provider().to_string_lossy());
    let out = agent.add(&world, &key);
    assert!(out.status.success(), "ssh-add: {}", text(&out));
    let list = agent.command(&world, "ssh-add").arg("-l").output().unwrap();
    assert!(text(&list).contains("(ED25519-SK)"), "{}", text(&list));

    let message = world.message();
    let out = agent.sign(&world, &key, &message);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        world.verify(&key, &message, "test@example"),
        Some((1, 0x01))
    );

    // Nobody touches: the agent answers SSH_AGENT_FAILURE.
    world.set_state(r#"{"counter": 1, "touch": "never", "touch_timeout_ms": 200}"#);
    let out = agent.sign(&world, &key, &message);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("agent refused operation"),
        "{}",
        text(&out)
    );
    assert_eq!(world.counter(), 1);
}

#[test]
fn an_agent_refuses_a_provider_outside_its_allow_list() {
    let world = World::new();
    let key = world.keygen("ed25519-sk", "key", &[]);
    let agent = Agent::start(&world, "/nonexistent/*");
    let out = agent.add(&world, &key);
    assert!(!out.status.success(), "ssh-add: {}", text(&out));
    let list = agent.command(&world, "ssh-add").arg("-l").output().unwrap();
    assert!(text(&list).contains("no identities"), "{}", text(&list));
}
