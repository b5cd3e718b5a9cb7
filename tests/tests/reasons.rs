//! Prompts that say why: before the first prompt of a step-up the person is
//! shown one line of reason (PAM_TEXT_INFO) — the rule's own `reason`, or
//! a sentence from the conditions that held unless `[defaults]
//! show_reason = false`. Through real libpam (pamtester, the in-process
//! driver), the raw bus, and real sudo under a pty.
#![allow(clippy::unwrap_used)]

use stepup_tests::probe::RawClient;
use stepup_tests::*;

fn start(policy: &str) -> (Bus, Daemon, PamService) {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, policy);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    (bus, daemon, pam)
}

/// The lines the in-process driver printed, without its bookkeeping.
fn conversation(run: &Drive) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|l| {
            l.starts_with("info: ") || l.starts_with("prompt: ") || l.starts_with("error: ")
        })
        .collect()
}

/// An hour-long window twelve hours from now (UTC), so "outside" it holds.
fn far_window() -> String {
    let hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        + 12)
        % 24;
    format!("{hour:02}:00-{:02}:00", hour + 1)
}

fn new_source_policy(window: &str) -> String {
    format!(
        r#"
[defaults]
action = "allow"
time_zone = "UTC"

[[rule]]
name = "new-source"
remote = true
new_rhost = "30d"
time_not_in = ["{window}"]
action = "step_up"
"#
    )
}

#[test]
fn the_generated_reason_comes_before_the_prompt_and_names_what_held() {
    let window = far_window();
    let (_bus, daemon, pam) = start(&new_source_policy(&window));
    let secret = random_secret();
    daemon.enroll_totp("rita", &secret);
    let run = drive(
        &pam,
        "rita",
        &["-r", "203.0.113.5", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    let said = conversation(&run);
    assert_eq!(
        said,
        [
            format!(
                "info: {} needs a second factor: from a remote session; outside {window} UTC; from a new address (203.0.113.5) (rule \"new-source\").",
                pam.name
            ),
            "prompt: Verification code: ".to_owned()
        ],
        "{}",
        run.stdout
    );
    // The address is known now: the rule no longer holds, nothing is said.
    let again = drive(&pam, "rita", &["-r", "203.0.113.5"], &[]);
    assert_eq!(again.code, PAM_SUCCESS, "{}", again.stdout);
    assert!(conversation(&again).is_empty(), "{}", again.stdout);
}

/// pamtester prints informational messages on stdout and prompts on
/// stderr, so only the in-process driver and the pty show their order.
#[test]
fn pamtester_shows_the_reason_as_an_informational_message() {
    let (_bus, daemon, pam) = start(&new_source_policy(&far_window()));
    let secret = random_secret();
    daemon.enroll_totp("rosa", &secret);
    let out = pamtester(
        &pam,
        "rosa",
        &[&oathtool_now(&secret)],
        &["rhost=198.51.100.23"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("needs a second factor: from a remote session;")
            && stdout.contains("from a new address (198.51.100.23) (rule \"new-source\")."),
        "{stdout}"
    );
    assert!(stderr.contains("Verification code"), "{stderr}");
}

#[test]
fn show_reason_false_hides_the_sentence_but_never_the_admins_reason() {
    let (_bus, daemon, pam) = start(
        r#"
[defaults]
action = "allow"
show_reason = false

[[rule]]
name = "explained"
user = ["ada"]
action = "step_up"
reason = "Production access needs a second factor; see https://wiki.example/stepup"

[[rule]]
name = "silent"
user = ["ben"]
action = "step_up"
"#,
    );
    let (ada, ben) = (random_secret(), random_secret());
    daemon.enroll_totp("ada", &ada);
    daemon.enroll_totp("ben", &ben);

    let run = drive(&pam, "ada", &["-a", &oathtool_now(&ada)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(
        conversation(&run),
        [
            "info: Production access needs a second factor; see https://wiki.example/stepup",
            "prompt: Verification code: "
        ],
        "{}",
        run.stdout
    );

    let run = drive(&pam, "ben", &["-a", &oathtool_now(&ben)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert_eq!(
        conversation(&run),
        ["prompt: Verification code: "],
        "{}",
        run.stdout
    );
}

#[test]
fn on_the_bus_the_reason_is_an_info_step_and_an_empty_answer_gets_the_prompt() {
    let (bus, daemon, _pam) = start(
        r#"
[[rule]]
name = "after-failures"
recent_failures = { at_least = 1, within = "1h" }
action = "step_up"
"#,
    );
    let secret = random_secret();
    daemon.enroll_totp("cleo", &secret);
    let client = RawClient::connect(&bus.address);
    let ctx = [("service", "sudo"), ("user", "cleo"), ("tty", "/dev/pts/4")];

    // No failure yet: the fallback (step_up by default) decides.
    let (session, kind, text) = client.begin(&ctx).unwrap();
    assert_eq!(kind, "info");
    assert_eq!(text, "sudo needs a second factor (rule \"(default)\").");
    // A code typed where the reason was shown is not checked: the prompt comes.
    let (kind, text) = client.respond(&session, &wrong_code(&secret)).unwrap();
    assert_eq!(
        (kind.as_str(), text.as_str()),
        ("prompt_secret", "Verification code: ")
    );
    let (kind, _) = client.respond(&session, &wrong_code(&secret)).unwrap();
    assert_eq!(kind, "error");
    client.cancel(&session).unwrap();

    let (session, kind, text) = client.begin(&ctx).unwrap();
    assert_eq!(kind, "info");
    assert_eq!(
        text,
        "sudo needs a second factor: 1 failed step-up in the last 1h (rule \"after-failures\")."
    );
    let (kind, _) = client.respond(&session, "").unwrap();
    assert_eq!(kind, "prompt_secret");
    let (kind, _) = client.respond(&session, &oathtool_now(&secret)).unwrap();
    assert_eq!(kind, "allow");
}

#[test]
fn sudo_shows_the_reason_then_asks_for_the_code() {
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let user = TestUser::create();
    let daemon = Daemon::start(
        &bus,
        &format!(
            "[defaults]\naction = \"allow\"\n[[rule]]\nname = \"sudo-needs-a-key\"\nservice = [\"{}\"]\nuser = [\"{}\"]\naction = \"step_up\"\nreason = \"Root on this host needs a second factor.\"\n",
            pam.name, user.name
        ),
    );
    let _sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(root) /usr/bin/id\n",
        u = user.name,
        svc = pam.name
    ));
    let secret = random_secret();
    daemon.enroll_totp(&user.name, &secret);
    let (transcript, status) = under_pty(
        &[
            "setpriv",
            &format!("--reuid={}", user.name),
            &format!("--regid={}", user.name),
            "--init-groups",
            "--reset-env",
            "sudo",
            "-k",
            "/usr/bin/id",
            "-u",
        ],
        &[&oathtool_now(&secret)],
        &[],
    );
    assert_eq!(status, 0, "{transcript}");
    let reason = transcript
        .find("Root on this host needs a second factor.")
        .unwrap_or_else(|| panic!("no reason shown: {transcript}"));
    let prompt = transcript.find("Verification code").expect("prompt");
    assert!(reason < prompt, "{transcript}");
    assert!(transcript.lines().any(|l| l.trim() == "0"), "{transcript}");
}

#[test]
fn explain_shows_the_line_a_step_up_would_show() {
    let (_bus, daemon, _pam) = start(&new_source_policy(&far_window()));
    daemon.enroll_totp("hugo", &random_secret());
    let args = [
        "explain",
        "--user",
        "hugo",
        "--service",
        "sudo",
        "--rhost",
        "192.0.2.77",
    ];
    let out = daemon.ctl(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "Shown before the prompt: sudo needs a second factor: from a remote session;"
        ) && text.contains("from a new address (192.0.2.77) (rule \"new-source\")."),
        "{text}"
    );
    let json = daemon.ctl(&[&args[..], &["--json"]].concat());
    let json = String::from_utf8_lossy(&json.stdout).into_owned();
    assert!(
        json.contains(r#""reason":"sudo needs a second factor: "#),
        "{json}"
    );
    // An allow has nothing to show.
    let local = daemon.ctl(&["explain", "--user", "hugo", "--service", "sudo", "--json"]);
    let local = String::from_utf8_lossy(&local.stdout).into_owned();
    assert!(local.contains(r#""reason":null"#), "{local}");
}
