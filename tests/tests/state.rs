//! Lockout, unlock and recovery codes through real libpam and the real daemon.
#![allow(clippy::unwrap_used)]

use stepup_tests::*;

fn start(policy: &str) -> (Bus, Daemon, PamService) {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, policy);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    (bus, daemon, pam)
}

const LOCKOUT: &str = r#"
[lockout]
deny = 3
fail_interval = "15m"
unlock_time = "0s"

[defaults]
action = "step_up"
methods = ["totp", "recovery"]
max_tries = 2
"#;

#[test]
fn lockout_engages_across_attempts_survives_restart_and_unlock_lifts_it() {
    let (_bus, mut daemon, pam) = start(LOCKOUT);
    let secret = random_secret();
    daemon.enroll_totp("amy", &secret);
    daemon.enroll_totp("ben", &secret);
    let wrong = wrong_code(&secret);

    // Two wrong codes in one attempt (max_tries), then a third in the next: locked.
    assert_eq!(
        drive(&pam, "amy", &["-a", &wrong, "-a", &wrong], &[]).code,
        PAM_MAXTRIES
    );
    let third = drive(&pam, "amy", &["-a", &wrong], &[]);
    assert_eq!(third.code, PAM_AUTH_ERR, "{}", third.stdout);
    assert!(third.stdout.contains("locked"), "{}", third.stdout);
    assert!(
        daemon
            .log()
            .lines()
            .any(|l| l.contains("event=locked ") && l.contains(" subject=amy "))
    );

    // While locked even the right code is not asked for.
    let locked = drive(&pam, "amy", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(locked.code, PAM_AUTH_ERR);
    assert_eq!(locked.prompts(), 0, "{}", locked.stdout);
    assert!(
        locked.stdout.contains("stepupctl unlock amy"),
        "{}",
        locked.stdout
    );

    // Other users are not affected.
    let other = drive(&pam, "ben", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(other.code, PAM_SUCCESS, "{}", other.stdout);

    // The lock survives a restart.
    daemon.restart();
    assert_eq!(
        drive(&pam, "amy", &["-a", &oathtool_now(&secret)], &[]).prompts(),
        0
    );

    let out = daemon.ctl(&["unlock", "amy"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unlocked amy"));
    // Unlocked, and earlier failures no longer count: one more wrong code does not re-lock.
    assert_eq!(
        drive(&pam, "amy", &["-a", &wrong, "-a", &wrong], &[]).code,
        PAM_MAXTRIES
    );
    let run = drive(&pam, "amy", &["-a", &oathtool_at(&secret, now() + 30)], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
}

#[test]
fn timed_lockout_expires_on_its_own() {
    let (_bus, daemon, pam) = start(
        "[lockout]\ndeny = 1\nfail_interval = \"15m\"\nunlock_time = \"2s\"\n[defaults]\naction = \"step_up\"\nmax_tries = 1\n",
    );
    let secret = random_secret();
    daemon.enroll_totp("cal", &secret);
    let first = drive(&pam, "cal", &["-a", &wrong_code(&secret)], &[]);
    assert!(first.stdout.contains("1 more minute"), "{}", first.stdout);
    assert_eq!(
        drive(&pam, "cal", &["-a", &oathtool_now(&secret)], &[]).prompts(),
        0
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let after = drive(&pam, "cal", &["-a", &oathtool_now(&secret)], &[]);
    assert_eq!(after.code, PAM_SUCCESS, "{}", after.stdout);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn recovery_codes_work_once_and_regenerating_invalidates_the_old_set() {
    let (_bus, daemon, pam) = start(
        "[lockout]\ndeny = 0\n[defaults]\naction = \"step_up\"\nmethods = [\"totp\", \"recovery\"]\nmax_tries = 2\n",
    );
    let codes = daemon.recovery_codes("dan");
    assert_eq!(codes.len(), 10);
    // Stored only as hashes: the codes are in neither the log nor the database file.
    let db = std::fs::read(daemon.state_dir.path().join("stepup.db")).unwrap();
    let log = daemon.log();
    let db = String::from_utf8_lossy(&db);
    for code in &codes {
        // As shown and as the daemon compares it (no dash).
        for form in [code.clone(), drop_dashes(code)] {
            assert!(!log.contains(&form), "{form} logged");
            assert!(!db.contains(&form), "{form} stored");
        }
    }

    // dan has no TOTP: the prompt asks for a recovery code, which works once.
    let run = drive(&pam, "dan", &["-a", &codes[0]], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        run.stdout.contains("prompt: Recovery code:"),
        "{}",
        run.stdout
    );
    let again = drive(&pam, "dan", &["-a", &codes[0], "-a", &codes[0]], &[]);
    assert_ne!(again.code, PAM_SUCCESS, "{}", again.stdout);
    // Case and dashes do not matter.
    let loose = codes[1].replace('-', "").to_uppercase();
    assert_eq!(drive(&pam, "dan", &["-a", &loose], &[]).code, PAM_SUCCESS);

    // A new set invalidates the old one.
    let fresh = daemon.recovery_codes("dan");
    assert_ne!(drop_dashes(&fresh[0]), drop_dashes(&codes[2]));
    let old = drive(&pam, "dan", &["-a", &codes[2], "-a", &codes[3]], &[]);
    assert_ne!(old.code, PAM_SUCCESS, "{}", old.stdout);
    assert_eq!(
        drive(&pam, "dan", &["-a", &fresh[0]], &[]).code,
        PAM_SUCCESS
    );
    assert!(daemon.log().contains("method=recovery"));
}

fn drop_dashes(s: &str) -> String {
    s.replace('-', "")
}

#[test]
fn recovery_codes_are_offered_only_where_policy_lists_them() {
    let (_bus, daemon, pam) = start("[defaults]\naction = \"step_up\"\nmethods = [\"totp\"]\n");
    let secret = random_secret();
    daemon.enroll_totp("eve", &secret);
    let codes = daemon.recovery_codes("eve");
    let run = drive(
        &pam,
        "eve",
        &["-a", &codes[0], "-a", &codes[0], "-a", &codes[0]],
        &[],
    );
    assert_eq!(run.code, PAM_MAXTRIES, "{}", run.stdout);
    assert!(
        run.stdout.contains("prompt: Verification code: "),
        "{}",
        run.stdout
    );
    // With both offered, either works at the same prompt.
    let (_bus2, daemon2, pam2) =
        start("[defaults]\naction = \"step_up\"\nmethods = [\"totp\", \"recovery\"]\n");
    daemon2.enroll_totp("eve", &secret);
    let codes = daemon2.recovery_codes("eve");
    let run = drive(&pam2, "eve", &["-a", &codes[4]], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        run.stdout.contains("(or a recovery code)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        drive(&pam2, "eve", &["-a", &oathtool_now(&secret)], &[]).code,
        PAM_SUCCESS
    );
}

#[test]
fn pinned_totp_parameters_override_every_credential() {
    // A credential enrolled under SHA1/6 digits, then the admin pins SHA256/8.
    let (_bus, daemon, pam) = start("[defaults]\naction = \"step_up\"\n");
    let secret = random_secret();
    daemon.enroll_totp("fay", &secret);
    let sha256_8 = |at: u64| {
        let out = std::process::Command::new("oathtool")
            .args([
                "--totp=sha256",
                "-d",
                "8",
                "-b",
                "-N",
                &format!("@{at}"),
                &secret,
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let main = daemon.config_dir.path().join("stepup.toml");
    std::fs::write(
        &main,
        "[totp]\ndigits = 8\nalgorithm = \"SHA256\"\n[defaults]\naction = \"step_up\"\n",
    )
    .unwrap();
    assert!(daemon.ctl(&["reload"]).status.success());
    let six = drive(&pam, "fay", &["-a", &oathtool_now(&secret)], &[]);
    assert_ne!(
        six.code, PAM_SUCCESS,
        "the credential's own SHA1/6 no longer applies"
    );
    let eight = drive(&pam, "fay", &["-a", &sha256_8(now())], &[]);
    assert_eq!(eight.code, PAM_SUCCESS, "{}", eight.stdout);
    // New enrollments carry the pinned parameters in their URI.
    let out = daemon.ctl(&["enroll", "totp", "gus", "--no-qr"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("algorithm=SHA256&digits=8&period=30"),
        "{text}"
    );
}
