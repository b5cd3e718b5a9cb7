//! Real `sudo` and `su`, run by an unprivileged user under a pseudo-terminal,
//! through pam_stepup.so to a real stepupd.
//!
//! sudo is pointed at a throwaway PAM service with its `pam_service` option
//! (a sudoers drop-in); su's fixed /etc/pam.d/su is replaced only inside a
//! private mount namespace (`unshare -m` + bind mount), so no real PAM file
//! is ever changed.
#![allow(clippy::unwrap_used)]

use stepup_tests::*;

const STEP_UP_EVERYONE: &str = "[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\n";

/// `policy` gets (PAM service name, user name).
fn sudo_setup(
    policy: impl Fn(&str, &str) -> String,
) -> (Bus, Daemon, PamService, TestUser, SudoersDropIn) {
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let user = TestUser::create();
    let daemon = Daemon::start(&bus, &policy(&pam.name, &user.name));
    let sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(root) /usr/bin/id\n",
        u = user.name,
        svc = pam.name
    ));
    (bus, daemon, pam, user, sudoers)
}

fn sudo_id(user: &TestUser, answers: &[&str]) -> (String, i32) {
    under_pty(
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
        answers,
        &[],
    )
}

#[test]
fn sudo_steps_up_with_totp_and_refuses_a_replay() {
    let (_bus, daemon, _pam, user, _sudoers) = sudo_setup(|_, _| STEP_UP_EVERYONE.to_owned());
    let secret = random_secret();
    daemon.enroll_totp(&user.name, &secret);

    let code = oathtool_now(&secret);
    let (transcript, status) = sudo_id(&user, &[&code]);
    assert_eq!(status, 0, "{transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(
        transcript.lines().any(|l| l.trim() == "0"),
        "id -u did not run as root: {transcript}"
    );
    // sudo reports PAM_TTY and PAM_RUSER; the daemon saw them.
    let log = daemon.log();
    let decision = log.lines().find(|l| l.contains("event=decision")).unwrap();
    assert!(decision.contains("tty=/dev/pts/"), "{decision}");

    let (transcript, status) = sudo_id(&user, &[&code, &code, &code]);
    assert_ne!(status, 0, "replayed code let sudo through: {transcript}");
    assert!(transcript.contains("already used"), "{transcript}");
}

#[test]
fn sudo_allow_rule_runs_without_a_prompt() {
    let (_bus, daemon, _pam, user, _sudoers) = sudo_setup(|service, user| {
        format!(
            "[defaults]\naction = \"deny\"\n[[rule]]\nname = \"trusted\"\nservice = [\"{service}\"]\nuser = [\"{user}\"]\nremote = false\naction = \"allow\"\n"
        )
    });
    let (transcript, status) = sudo_id(&user, &[]);
    assert_eq!(status, 0, "{transcript}");
    assert!(!transcript.contains("Verification code"), "{transcript}");
    assert!(transcript.lines().any(|l| l.trim() == "0"), "{transcript}");
    assert!(
        daemon.log().contains("rule=trusted verdict=allow"),
        "{}",
        daemon.log()
    );
}

#[test]
fn sudo_deny_by_default_refuses_without_a_prompt() {
    let (_bus, _daemon, _pam, user, _sudoers) =
        sudo_setup(|_, _| "[defaults]\naction = \"deny\"\n".to_owned());
    let (transcript, status) = sudo_id(&user, &[]);
    assert_ne!(status, 0, "{transcript}");
    assert!(!transcript.contains("Verification code"), "{transcript}");
    assert!(
        transcript.contains("Access denied by policy"),
        "{transcript}"
    );
}

#[test]
fn su_asks_the_caller_for_their_own_factor_and_ignores_their_bus_address() {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, STEP_UP_EVERYONE);
    // A bus of the caller's own where every attempt is allowed.
    let attacker_bus = Bus::start(BusPolicy::Open);
    let attacker = Daemon::start(&attacker_bus, "[defaults]\naction = \"allow\"\n");
    let caller = TestUser::create();
    let secret = random_secret();
    daemon.enroll_totp(&caller.name, &secret);

    let stack = std::env::temp_dir().join(format!("stepup-su-{}", random_suffix()));
    std::fs::write(
        &stack,
        format!(
            "auth required {} bus={} timeout=5\naccount required pam_permit.so\nsession required pam_permit.so\n",
            module_path().display(),
            bus.address
        ),
    )
    .unwrap();
    let script = format!(
        "mount --bind {stack} /etc/pam.d/su && exec setpriv --reuid={u} --regid={u} --init-groups su -c '/usr/bin/id -u' root",
        stack = stack.display(),
        u = caller.name
    );
    let code = oathtool_now(&secret);
    // su keeps the caller's environment: the variable reaches the module.
    let (transcript, status) = under_pty(
        &["unshare", "-m", "sh", "-c", &script],
        &[&code],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &attacker_bus.address)],
    );
    let _ = std::fs::remove_file(&stack);
    assert_eq!(status, 0, "{transcript}");
    assert!(transcript.contains("Verification code"), "{transcript}");
    assert!(transcript.lines().any(|l| l.trim() == "0"), "{transcript}");
    // The target was root, the factor was the caller's.
    let log = daemon.log();
    assert!(
        log.contains(&format!(
            "user=root ruser={u} subject={u} service=su",
            u = caller.name
        )),
        "{log}"
    );
    assert!(
        !attacker.log().contains("event=decision"),
        "{}",
        attacker.log()
    );
}
