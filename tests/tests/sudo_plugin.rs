//! The sudo approval plugin, `stepup_sudo.so`, in real sudo: an
//! unprivileged user runs sudo under a pseudo-terminal against a real
//! stepupd on a private bus. Every sudo runs in a mount namespace of its own
//! whose /etc/sudo.conf loads the built plugin (`SudoWithPlugin`), so the
//! host's sudo, which other tests use meanwhile, never loads it.
//!
//! Commands are judged by what they leave behind: `mark NAME` and
//! `restart NAME` (scripts the policy names) write `markers/NAME` holding
//! the user they ran as; sudoedit's editor appends a line to the file.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use serde_json::Value;
use stepup_tests::sudo::{SudoWithPlugin, plugin_path};
use stepup_tests::syslog::SyslogCapture;
use stepup_tests::*;

// ---------------------------------------------------------------- the world

/// Scripts with side effects, in a root-owned directory any user can read.
struct Scripts {
    dir: tempfile::TempDir,
}

impl Scripts {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-sudo-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let markers = dir.path().join("markers");
        fs::create_dir(&markers).unwrap();
        // Commands run as root or as nobody write here.
        fs::set_permissions(&markers, fs::Permissions::from_mode(0o1777)).unwrap();
        let m = markers.display();
        let mark =
            format!("#!/bin/sh\n# Proof that the command ran, and as whom.\nid -un > \"{m}/$1\"\n");
        let hold = format!(
            "#!/bin/sh\n# Say who our parent is, then wait to be released (30 s at most).\necho $PPID > \"{m}/$1.held\"\ni=0\nwhile [ ! -e \"{m}/$1.release\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
        );
        let editor = "#!/bin/sh\n# sudoedit's editor: runs as the user, on temporary copies.\nfor f in \"$@\"; do [ \"$f\" = \"--\" ] || echo edited-by-stepup-test >> \"$f\"; done\n";
        for (name, text) in [
            ("mark", mark.as_str()),
            ("restart", mark.as_str()),
            ("hold", hold.as_str()),
            ("editor", editor),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn markers(&self) -> PathBuf {
        self.dir.path().join("markers")
    }

    /// Who the command that left marker `name` ran as, if it ran.
    fn marker(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.markers().join(name))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

/// The policy of most tests: `/usr/bin/id` allowed, shells, su and
/// restarts stepped up, anything else allowed; `extra` rules come first.
fn policy(scripts: &Scripts, extra: &str) -> String {
    format!(
        r#"
[lockout]
deny = 0
[defaults]
action = "allow"
methods = ["totp"]
max_tries = 1
{extra}
[[rule]]
name = "harmless"
command = ["/usr/bin/id", "/usr/bin/id *"]
action = "allow"
[[rule]]
name = "shells"
shell = true
action = "step_up"
[[rule]]
name = "su"
command = ["/usr/bin/su", "/usr/bin/su *"]
action = "step_up"
[[rule]]
name = "restarts"
command = ["/usr/bin/systemctl restart *", "{restart} *"]
action = "step_up"
"#,
        restart = scripts.path("restart")
    )
}

/// sudoers gets out of the way: no password, any command, as anyone.
const NOPASSWD: &str = "Defaults:{u} !lecture\n{u} ALL=(ALL:ALL) NOPASSWD: ALL\n";

struct World {
    journald: Option<Journald>,
    _bus: Bus,
    daemon: Daemon,
    user: TestUser,
    secret: String,
    scripts: Scripts,
    _sudoers: SudoersDropIn,
    sudo: SudoWithPlugin,
}

impl World {
    fn start(extra_rules: &str) -> Self {
        Self::start_with(|s| policy(s, extra_rules), NOPASSWD, false)
    }

    /// `policy` gets the scripts; `sudoers` names the user `{u}`.
    fn start_with(policy: impl Fn(&Scripts) -> String, sudoers: &str, journal: bool) -> Self {
        let journald = journal.then(Journald::start);
        let socket = journald.as_ref().map(|j| j.socket().display().to_string());
        let bus = Bus::start(BusPolicy::Shipped);
        let scripts = Scripts::new();
        let audit = socket
            .as_ref()
            .map(|s| format!("[audit]\njournal_socket = \"{s}\"\n"))
            .unwrap_or_default();
        let daemon = Daemon::start(&bus, &format!("{audit}{}", policy(&scripts)));
        let user = TestUser::create();
        let secret = random_secret();
        daemon.enroll_totp(&user.name, &secret);
        let sudoers = SudoersDropIn::install(&sudoers.replace("{u}", &user.name));
        let journal_option = socket
            .map(|s| format!(" journal_socket={s}"))
            .unwrap_or_default();
        let sudo = SudoWithPlugin::built(&format!("bus={} timeout=5{journal_option}", bus.address));
        Self {
            journald,
            _bus: bus,
            daemon,
            user,
            secret,
            scripts,
            _sudoers: sudoers,
            sudo,
        }
    }

    fn sudo(&self, args: &[&str], answers: &[&str]) -> (String, i32) {
        let mut command = vec!["sudo"];
        command.extend_from_slice(args);
        self.sudo.run(&self.user, &command, answers)
    }

    fn code(&self) -> String {
        oathtool_now(&self.secret)
    }

    fn wrong(&self) -> String {
        wrong_code(&self.secret)
    }

    fn script(&self, name: &str) -> String {
        self.scripts.path(name)
    }
}

fn prompts(transcript: &str) -> usize {
    transcript.matches("Verification code").count()
}

/// `args` is stepped up: a wrong code does not run it (no `marker`), the
/// right one does, as root. Returns the transcripts (wrong, right).
fn assert_stepped_up(w: &World, args: &[&str], marker: &str) -> (String, String) {
    let (wrong, status) = w.sudo(args, &[&w.wrong()]);
    assert_eq!(prompts(&wrong), 1, "{wrong}");
    assert_ne!(status, 0, "{wrong}");
    assert_eq!(
        w.scripts.marker(marker),
        None,
        "ran with a wrong code: {wrong}"
    );
    let (right, status) = w.sudo(args, &[&w.code()]);
    assert_eq!(prompts(&right), 1, "{right}");
    assert_eq!(status, 0, "{right}");
    assert_eq!(
        w.scripts.marker(marker).as_deref(),
        Some("root"),
        "did not run as root with the right code: {right}"
    );
    (wrong, right)
}

// ---------------------------------------------------------------- the library

#[test]
fn the_plugin_exports_only_its_approval_struct() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(plugin_path())
        .output()
        .expect("nm (binutils)");
    let symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    assert_eq!(symbols, ["stepup_approval"]);
}

#[test]
fn sudo_dash_v_shows_the_plugin_version() {
    let sudo = SudoWithPlugin::built("bus=unix:path=/nonexistent");
    let (transcript, status) = sudo.run_as_root(&["sudo", "-V"], &[]);
    assert_eq!(status, 0, "{transcript}");
    assert!(
        transcript.contains(&format!(
            "stepup_sudo approval plugin version {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{transcript}"
    );
}

#[test]
fn a_bare_plugin_name_is_found_in_sudos_plugin_dir() {
    // What the packages rely on (`Plugin stepup_approval stepup_sudo.so`),
    // with sudo's plugin directory moved to one of our own so that nothing
    // is installed: sudoers.so linked in, the built plugin copied in under
    // its installed name.
    let away = Away::new();
    let dir = tempfile::Builder::new()
        .prefix("stepup-plugindir-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(
        "/usr/libexec/sudo/sudoers.so",
        dir.path().join("sudoers.so"),
    )
    .unwrap();
    fs::copy(plugin_path(), dir.path().join("stepup_sudo.so")).unwrap();
    let sudo = SudoWithPlugin::with_conf(&format!(
        "Path plugin_dir {}/\n{}Plugin stepup_approval stepup_sudo.so bus={} timeout=2\n",
        dir.path().display(),
        stepup_tests::sudo::SUDOERS_PLUGINS,
        away.bus.address
    ));
    let (transcript, status, _) = away.mark(&sudo, "bare");
    // Loaded and asked: nobody serves the bus, so it fails closed.
    assert_eq!(status, 1, "{transcript}");
    assert!(
        transcript.contains("Step-up authentication is unavailable."),
        "{transcript}"
    );
    assert_eq!(away.scripts.marker("bare"), None);
}

// ---------------------------------------------------------------- per-command policy

#[test]
fn an_allowed_command_runs_without_a_prompt() {
    let w = World::start("");
    let (transcript, status) = w.sudo(&["/usr/bin/id", "-u"], &[]);
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(prompts(&transcript), 0, "{transcript}");
    assert!(transcript.lines().any(|l| l.trim() == "0"), "{transcript}");
    let log = w.daemon.log();
    assert!(log.contains("rule=harmless verdict=allow"), "{log}");
}

#[test]
fn a_login_shell_is_stepped_up() {
    let w = World::start("");
    assert_stepped_up(&w, &["-i", &w.script("mark"), "login"], "login");
}

#[test]
fn a_shell_is_stepped_up() {
    let w = World::start("");
    assert_stepped_up(&w, &["-s", &w.script("mark"), "shell"], "shell");
}

#[test]
fn sudo_su_is_stepped_up() {
    let w = World::start("");
    let command = format!("{} su", w.script("mark"));
    assert_stepped_up(&w, &["/usr/bin/su", "-c", &command], "su");
}

#[test]
fn a_restart_is_stepped_up_and_says_why() {
    let w = World::start("");
    let (wrong, _) = assert_stepped_up(&w, &[&w.script("restart"), "web"], "web");
    assert!(wrong.contains("(rule \"restarts\")"), "{wrong}");

    // The real systemctl: the reason line names the command, and with the
    // right code systemctl runs (and says it finds no systemd here).
    let systemctl = ["/usr/bin/systemctl", "restart", "x"];
    let ran = "System has not been booted with systemd";
    let (transcript, _) = w.sudo(&systemctl, &[&w.wrong()]);
    assert!(
        transcript.contains("\"systemctl restart x\" as root"),
        "{transcript}"
    );
    assert!(transcript.contains("(rule \"restarts\")"), "{transcript}");
    assert!(
        !transcript.contains(ran),
        "ran with a wrong code: {transcript}"
    );
    // A fresh code: the one above was used by the script.
    let (next, _) = code_for_next_step(&w.secret);
    let (transcript, _) = w.sudo(&systemctl, &[&next]);
    assert_eq!(prompts(&transcript), 1, "{transcript}");
    assert!(transcript.contains(ran), "{transcript}");
}

/// A code for the step after the last one used (the daemon accepts a step
/// either side of now and refuses to go back), with the time it is for.
fn code_for_next_step(secret: &str) -> (String, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (oathtool_at(secret, now + 30), now + 30)
}

/// sudo's timestamp file of a user, removed on drop.
struct Timestamp(String);

impl Drop for Timestamp {
    fn drop(&mut self) {
        let _ = fs::remove_file(format!("/run/sudo/ts/{}", self.0));
    }
}

#[test]
fn a_second_command_inside_sudos_timestamp_is_still_stepped_up() {
    let password = format!("pw-{}", random_suffix());
    // sudo's own PAM stack (pam_unix) asks for a password once; its
    // timestamp (shared across terminals) then spares the second sudo.
    let sudoers = "Defaults:{u} !lecture, timestamp_type=global, timestamp_timeout=5\n{u} ALL=(ALL:ALL) ALL\n";
    let w = World::start_with(|s| policy(s, ""), sudoers, false);
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}:{password}\n", w.user.name).as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());

    let _timestamp = Timestamp(w.user.name.clone());
    let (first, status) = w.sudo(&["/usr/bin/id", "-u"], &[&password]);
    assert_eq!(status, 0, "{first}");
    assert!(first.contains("password for"), "{first}");
    assert_eq!(prompts(&first), 0, "{first}");

    let (second, status) = w.sudo(&[&w.script("restart"), "inside"], &[&w.code()]);
    assert!(
        !second.contains("password for"),
        "sudo asked again: {second}"
    );
    assert_eq!(prompts(&second), 1, "{second}");
    assert_eq!(status, 0, "{second}");
    assert_eq!(w.scripts.marker("inside").as_deref(), Some("root"));
}

#[test]
fn a_rules_grace_covers_the_next_matching_command() {
    let w = World::start_with(
        |s| {
            policy(
                s,
                &format!(
                    "[[rule]]\nname = \"restarts-graced\"\ncommand = [\"{} *\"]\naction = \"step_up\"\ngrace = \"5m\"\ngrace_scope = \"user\"\n",
                    s.path("restart")
                ),
            )
        },
        NOPASSWD,
        false,
    );
    let (first, status) = w.sudo(&[&w.script("restart"), "one"], &[&w.code()]);
    assert_eq!(status, 0, "{first}");
    assert_eq!(prompts(&first), 1, "{first}");
    let (second, status) = w.sudo(&[&w.script("restart"), "two"], &[]);
    assert_eq!(status, 0, "{second}");
    assert_eq!(prompts(&second), 0, "grace did not cover it: {second}");
    assert_eq!(w.scripts.marker("two").as_deref(), Some("root"));
    // Grace belongs to that rule: a shell is still asked for.
    let (shell, _) = w.sudo(&["-s", "true"], &[&w.wrong()]);
    assert_eq!(prompts(&shell), 1, "{shell}");
}

#[test]
fn runas_user_root_is_stepped_up_and_nobody_is_not() {
    let w = World::start_with(
        |s| {
            policy(
                s,
                &format!(
                    "[[rule]]\nname = \"as-root\"\ncommand = [\"{} *\"]\nrunas_user = [\"root\"]\naction = \"step_up\"\n",
                    s.path("mark")
                ),
            )
        },
        NOPASSWD,
        false,
    );
    let (transcript, status) = w.sudo(&["-u", "nobody", &w.script("mark"), "nob"], &[]);
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(prompts(&transcript), 0, "{transcript}");
    assert_eq!(w.scripts.marker("nob").as_deref(), Some("nobody"));
    assert_stepped_up(&w, &[&w.script("mark"), "asroot"], "asroot");
}

#[test]
fn sudoedit_is_stepped_up_as_sudoedit_and_its_files() {
    let w = World::start_with(
        |s| {
            policy(
                s,
                &format!(
                    "[[rule]]\nname = \"edits\"\ncommand = [\"sudoedit {}/*\"]\naction = \"step_up\"\n",
                    s.dir.path().display()
                ),
            )
        },
        NOPASSWD,
        false,
    );
    let file = w.scripts.dir.path().join("edit-me");
    fs::write(&file, "original\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let editor = format!("EDITOR={}", w.script("editor"));
    let file_arg = file.display().to_string();
    let command = ["env", &editor, "sudoedit", &file_arg];

    let (transcript, status) = w.sudo.run(&w.user, &command, &[&w.wrong()]);
    assert_eq!(prompts(&transcript), 1, "{transcript}");
    assert_ne!(status, 0, "{transcript}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "original\n");

    let (transcript, status) = w.sudo.run(&w.user, &command, &[&w.code()]);
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "original\nedited-by-stepup-test\n",
        "{transcript}"
    );
}

#[test]
fn pam_module_and_plugin_both_wired_ask_once() {
    let bus = Bus::start(BusPolicy::Shipped);
    let scripts = Scripts::new();
    let daemon = Daemon::start(
        &bus,
        "[lockout]\ndeny = 0\n[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\n",
    );
    let user = TestUser::create();
    let secret = random_secret();
    daemon.enroll_totp(&user.name, &secret);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let _sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(ALL:ALL) ALL\n",
        u = user.name,
        svc = pam.name
    ));
    let sudo = SudoWithPlugin::built(&format!("bus={} timeout=5", bus.address));
    let code = oathtool_now(&secret);
    let (transcript, status) = sudo.run(
        &user,
        &["sudo", &scripts.path("mark"), "both"],
        &[&code, &code],
    );
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(
        prompts(&transcript),
        1,
        "asked more than once: {transcript}"
    );
    assert_eq!(scripts.marker("both").as_deref(), Some("root"));
}

#[test]
fn without_a_terminal_a_step_up_fails_closed() {
    let w = World::start("");
    // setsid: no controlling terminal to fall back on.
    let script = format!(
        "mount --bind \"$0\" /etc/sudo.conf && cd / && exec setpriv --reuid={u} --regid={u} --init-groups --reset-env sudo {restart} notty",
        u = w.user.name,
        restart = w.script("restart")
    );
    let out = Command::new("setsid")
        .args([
            "-w",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg(&script)
        .arg(w.sudo.conf())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert_eq!(w.scripts.marker("notty"), None, "{said}");
    assert!(said.contains("stepup: no answer"), "{said}");
}

// ---------------------------------------------------------------- hostile commands

#[test]
fn hostile_arguments_stay_one_escaped_field_and_forge_nothing() {
    let w = World::start_with(|s| policy(s, ""), NOPASSWD, true);
    let mark = w.script("mark");
    let hostile = ["a\nb", "it's \"quoted\"", "x=y", "rule=x verdict=allow"];
    let mut command = vec![
        "bash",
        "-c",
        "exec sudo \"$@\" $'\\xff\\xfe'",
        "bash",
        &mark,
        "hostile",
    ];
    command.extend_from_slice(&hostile);
    let (transcript, status) = w.sudo.run(&w.user, &command, &[]);
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(w.scripts.marker("hostile").as_deref(), Some("root"));

    let journald = w.journald.as_ref().unwrap();
    let events: Vec<Value> = journald
        .stepupd_json(1)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // journald gives a field that occurs twice in an entry as an array, and
    // a value that is not UTF-8 as bytes: every field is one string.
    for event in &events {
        for (key, value) in event.as_object().unwrap() {
            assert!(value.is_string(), "{key} is not one string: {event:#}");
            if key.starts_with("STEPUP_") {
                assert!(!value.as_str().unwrap().contains('\n'), "{event:#}");
            }
        }
    }
    let decision = events
        .iter()
        .find(|e| {
            e["STEPUP_EVENT"] == "decision"
                && e["STEPUP_COMMAND"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(&mark))
        })
        .unwrap_or_else(|| panic!("no decision naming {mark}: {events:#?}"));
    assert_ne!(decision["STEPUP_RULE"], "x", "{decision:#}");
    let line = [&decision["STEPUP_COMMAND"], &decision["STEPUP_ARGV"]]
        .iter()
        .filter_map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for escaped in [
        "a\\x0ab",
        "it's\\x20\"quoted\"",
        "x=y",
        "rule=x\\x20verdict=allow",
        "\\xff\\xfe",
    ] {
        assert!(line.contains(escaped), "{escaped} not in {decision:#}");
    }
}

#[test]
fn a_huge_command_line_is_refused_clearly_and_nothing_runs() {
    let w = World::start("");
    let mark = w.script("mark");
    // 1 MiB of arguments (16 × 64 KiB; one argument may be at most 128 KiB).
    let chunk = "A".repeat(64 * 1024);
    let mut args = vec![mark.as_str(), "huge"];
    args.extend(std::iter::repeat_n(chunk.as_str(), 16));
    let (transcript, status) = w.sudo(&args, &[]);
    assert_eq!(status, 1, "{transcript}");
    assert_eq!(prompts(&transcript), 0, "{transcript}");
    assert!(
        transcript.contains("stepupd refused to judge this command"),
        "{transcript}"
    );
    assert_eq!(w.scripts.marker("huge"), None);
    // The daemon is still there, and judges the next command.
    let (transcript, status) = w.sudo(&[&mark, "after"], &[]);
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(w.scripts.marker("after").as_deref(), Some("root"));
}

// ---------------------------------------------------------------- the daemon away

/// A plugin pointed at a bus where nobody owns the daemon's name.
struct Away {
    bus: Bus,
    scripts: Scripts,
    user: TestUser,
    journald: Journald,
    _sudoers: SudoersDropIn,
}

impl Away {
    fn new() -> Self {
        let user = TestUser::create();
        let sudoers = SudoersDropIn::install(&NOPASSWD.replace("{u}", &user.name));
        Self {
            bus: Bus::start(BusPolicy::Shipped),
            scripts: Scripts::new(),
            user,
            journald: Journald::start(),
            _sudoers: sudoers,
        }
    }

    fn plugin(&self, failmode: &str, timeout: u64) -> SudoWithPlugin {
        SudoWithPlugin::built(&format!(
            "bus={} timeout={timeout} failmode={failmode} journal_socket={}",
            self.bus.address,
            self.journald.socket().display()
        ))
    }

    fn mark(&self, sudo: &SudoWithPlugin, name: &str) -> (String, i32, Duration) {
        let start = Instant::now();
        let (transcript, status) =
            sudo.run(&self.user, &["sudo", &self.scripts.path("mark"), name], &[]);
        (transcript, status, start.elapsed())
    }
}

/// failmode=secure: not run, and said. failmode=safe: run, with a
/// `FAIL-SAFE PASS` line (LOG_AUTHPRIV|LOG_ALERT, ident stepup_sudo) and a
/// `failsafe_pass` event naming the command.
fn secure_denies_and_safe_passes_loudly(away: &Away, timeout: u64) {
    let (transcript, status, elapsed) = away.mark(&away.plugin("secure", timeout), "secure");
    assert_eq!(status, 1, "{transcript}");
    assert!(
        transcript.contains("Step-up authentication is unavailable."),
        "{transcript}"
    );
    assert_eq!(away.scripts.marker("secure"), None, "{transcript}");
    // Connecting and each call are bounded by timeout= (sudo's own start
    // and the pty add a little).
    assert!(
        elapsed < Duration::from_secs(timeout + 8),
        "took {elapsed:?} with timeout={timeout}"
    );

    let capture = SyslogCapture::start();
    let (transcript, status, _) = away.mark(&away.plugin("safe", timeout), "safe");
    assert_eq!(status, 0, "{transcript}");
    assert_eq!(away.scripts.marker("safe").as_deref(), Some("root"));
    let lines = capture.messages(Duration::from_secs(5), |l| l.contains("FAIL-SAFE PASS"));
    let line = lines
        .iter()
        .find(|l| l.contains("FAIL-SAFE PASS"))
        .expect("a FAIL-SAFE PASS line");
    assert!(line.starts_with("<81>stepup_sudo["), "{line}");
    assert!(line.contains(&format!("user {}", away.user.name)), "{line}");
    drop(capture);

    let start = Instant::now();
    loop {
        let events: Vec<Value> = away
            .journald
            .json(&["stepup_sudo"], 1)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if let Some(event) = events.iter().find(|e| e["STEPUP_EVENT"] == "failsafe_pass") {
            assert_eq!(event["STEPUP_CALLER"], "sudo_plugin", "{event:#}");
            assert_eq!(event["STEPUP_COMMAND"], away.scripts.path("mark").as_str());
            assert_eq!(event["STEPUP_ARGV"], "safe", "{event:#}");
            assert_eq!(event["STEPUP_USER"], away.user.name.as_str());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no failsafe_pass event: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn daemon_down_secure_denies_and_safe_passes_loudly() {
    let away = Away::new();
    secure_denies_and_safe_passes_loudly(&away, 3);
}

#[test]
fn daemon_frozen_secure_denies_within_the_timeout_and_safe_passes_loudly() {
    let away = Away::new();
    let daemon = Daemon::start(&away.bus, "[defaults]\naction = \"allow\"\n");
    kill(daemon.pid(), Signal::SIGSTOP).unwrap();
    let timeout = 2;
    let start = Instant::now();
    secure_denies_and_safe_passes_loudly(&away, timeout);
    // Two sudos, each waiting out the frozen daemon.
    assert!(start.elapsed() >= Duration::from_secs(2 * timeout));
    kill(daemon.pid(), Signal::SIGCONT).unwrap();
}

// ---------------------------------------------------------------- nothing left behind

/// What a process holds: its threads, and its fds by number and kind.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    threads: usize,
    fds: Vec<(u32, String)>,
}

/// An fd's target without the parts that differ from run to run.
fn fd_kind(target: &Path) -> String {
    let target = target.display().to_string();
    if let Some(pts) = target.strip_prefix("/dev/pts/")
        && pts.chars().all(|c| c.is_ascii_digit())
    {
        return "/dev/pts/N".to_owned();
    }
    match target.split_once(":[") {
        Some((kind, _)) => kind.to_owned(),
        None => target,
    }
}

fn held(pid: i32) -> Held {
    let threads = fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    let mut fds: Vec<(u32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            Some((fd, fd_kind(&fs::read_link(e.path()).ok()?)))
        })
        .collect();
    fds.sort();
    Held { threads, fds }
}

fn stat_field(pid: i32, index: usize) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After "pid (comm) ": state, ppid, …
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    rest.split_whitespace().nth(index).unwrap_or("").to_owned()
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// What `look` sees once two looks 100 ms apart agree (sudo opens and
/// closes pipes of its own for a moment after starting the command).
fn settled(look: impl Fn() -> Vec<Held>) -> Vec<Held> {
    let mut last = look();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = look();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("sudo's fds never settled: {last:#?}");
}

/// Run `sudo hold NAME` and, while the command waits, look at every sudo
/// process above it (sudo and its monitor).
fn sudo_processes_while_running(
    sudo: &SudoWithPlugin,
    user: &TestUser,
    scripts: &Scripts,
    name: &str,
) -> Vec<Held> {
    std::thread::scope(|s| {
        let run = s.spawn(|| sudo.run(user, &["sudo", &scripts.path("hold"), name], &[]));
        let held_file = scripts.markers().join(format!("{name}.held"));
        let start = Instant::now();
        let parent: i32 = loop {
            if let Some(pid) = fs::read_to_string(&held_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            assert!(
                !run.is_finished() && start.elapsed() < Duration::from_secs(30),
                "the command never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let seen = settled(|| {
            let mut seen = Vec::new();
            let mut pid = parent;
            while comm(pid) == "sudo" {
                seen.push(held(pid));
                pid = stat_field(pid, 1).parse().unwrap();
            }
            seen
        });
        fs::write(scripts.markers().join(format!("{name}.release")), "").unwrap();
        let (transcript, status) = run.join().unwrap();
        assert_eq!(status, 0, "{transcript}");
        assert!(!seen.is_empty(), "no sudo process above the command");
        seen
    })
}

fn assert_nothing_left(with_plugin: &SudoWithPlugin, user: &TestUser, scripts: &Scripts) {
    let baseline =
        sudo_processes_while_running(&SudoWithPlugin::without_plugin(), user, scripts, "baseline");
    let seen = sudo_processes_while_running(with_plugin, user, scripts, "plugin");
    for process in &seen {
        assert_eq!(process.threads, 1, "{seen:#?}");
    }
    assert_eq!(seen, baseline, "the plugin left something in sudo");
}

#[test]
fn no_thread_or_fd_is_left_in_sudo_after_a_fail_safe_pass() {
    let away = Away::new();
    assert_nothing_left(&away.plugin("safe", 3), &away.user, &away.scripts);
}

#[test]
fn no_thread_or_fd_is_left_in_sudo_after_an_allowed_check() {
    let w = World::start("");
    assert_nothing_left(&w.sudo, &w.user, &w.scripts);
    let log = w.daemon.log();
    assert!(
        log.contains("event=decision"),
        "the daemon was not asked: {log}"
    );
}
