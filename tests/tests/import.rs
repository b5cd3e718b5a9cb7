//! `stepupctl import`: the peers' own file formats (fixtures in
//! import/fixtures, made with or checked against the peers' code), and the
//! imported factors working end to end through real libpam.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Output;

use stepup_tests::*;

/// The secret every fixture uses: RFC 6238's "12345678901234567890".
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn fixture_file(kind: &str, name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "import",
        "fixtures",
        kind,
        name,
    ]
    .iter()
    .collect();
    path.display().to_string()
}

fn start() -> (Bus, Daemon, PamService) {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(
        &bus,
        "[defaults]\naction = \"step_up\"\nmethods = [\"totp\", \"recovery\"]\n",
    );
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    (bus, daemon, pam)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn listed(daemon: &Daemon, user: &str) -> String {
    text(&daemon.ctl(&["list", user]))
}

#[test]
fn google_authenticator_file_imports_totp_and_scratch_codes() {
    let (_bus, daemon, pam) = start();
    let out = daemon.ctl(&[
        "import",
        "google-authenticator",
        "gina",
        &fixture_file("google_authenticator", "totp_in_use"),
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("took: totp-") && report.contains("(TOTP SHA1, 6 digits, 30 s)"),
        "{report}"
    );
    assert!(
        report.contains("4 scratch code(s) as recovery codes"),
        "{report}"
    );
    assert!(
        !report.contains(SECRET),
        "the secret must not be echoed: {report}"
    );

    // A code from an independent implementation passes through pamtester.
    let out = pamtester(&pam, "gina", &[&oathtool_now(SECRET)], &[]);
    assert!(out.status.success(), "{}", text(&out));
    // A google-authenticator scratch code works once as a recovery code.
    assert_eq!(
        drive(&pam, "gina", &["-a", "81331361"], &[]).code,
        PAM_SUCCESS
    );
    assert_ne!(
        drive(&pam, "gina", &["-a", "81331361"], &[]).code,
        PAM_SUCCESS
    );
    assert!(
        daemon
            .log()
            .contains("event=imported format=google-authenticator users=gina")
    );
}

#[test]
fn hotp_and_malformed_google_authenticator_files_change_nothing() {
    let (_bus, daemon, _pam) = start();
    let out = daemon.ctl(&[
        "import",
        "google-authenticator",
        "hal",
        &fixture_file("google_authenticator", "hotp_c_w3_e3"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("HOTP"), "{}", text(&out));
    assert!(
        text(&out).contains("nothing was imported"),
        "{}",
        text(&out)
    );
    for bad in [
        "malformed_secret",
        "malformed_scratch_code",
        "malformed_window_size",
    ] {
        let out = daemon.ctl(&[
            "import",
            "google-authenticator",
            "hal",
            &fixture_file("google_authenticator", bad),
        ]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(text(&out).contains("line "), "{bad}: {}", text(&out));
    }
    assert!(listed(&daemon, "hal").contains("no credentials"));
}

#[test]
fn users_oath_imports_totp_lines_and_skips_what_stepup_cannot_use() {
    let (_bus, daemon, pam) = start();
    let out = daemon.ctl(&[
        "import",
        "users-oath",
        &fixture_file("users_oath", "users.oath"),
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("for carol (TOTP SHA1, 6 digits, 30 s)"),
        "{report}"
    );
    assert!(
        report.contains("for frank (TOTP SHA1, 8 digits, 60 s)"),
        "{report}"
    );
    assert!(report.contains("(alice): HOTP"), "{report}");
    assert!(report.contains("(bob): HOTP"), "{report}");

    assert_eq!(
        drive(&pam, "carol", &["-a", &oathtool_now(SECRET)], &[]).code,
        PAM_SUCCESS
    );
    let frank_secret = "3132333435363738393031323334353637383930313233343536373839303132";
    let code = std::process::Command::new("oathtool")
        .args(["--totp", "-s", "60", "-d", "8", frank_secret])
        .output()
        .unwrap();
    let code = String::from_utf8(code.stdout).unwrap().trim().to_owned();
    assert_eq!(drive(&pam, "frank", &["-a", &code], &[]).code, PAM_SUCCESS);
    assert!(listed(&daemon, "alice").contains("no credentials"));
    assert!(listed(&daemon, "bob").contains("no credentials"));

    // A TOTP token with a PIN is skipped (stepup has no OATH PINs), not imported without it.
    let dir = tempfile::tempdir().unwrap();
    let with_pin = dir.path().join("users.oath");
    // A PIN no report can hold by chance (it lists random credential ids).
    let pin = random_marker("pin");
    std::fs::write(
        &with_pin,
        format!("HOTP/T30\tivan\t{pin}\t3132333435363738393031323334353637383930\nHOTP/T30\tjane\t-\t3132333435363738393031323334353637383930\n"),
    )
    .unwrap();
    let out = daemon.ctl(&["import", "users-oath", &with_pin.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("(ivan): the token has a PIN"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(&pin), "the PIN must not be echoed");
    assert!(listed(&daemon, "ivan").contains("no credentials"));

    for bad in ["malformed_odd_hex", "malformed_type"] {
        let out = daemon.ctl(&["import", "users-oath", &fixture_file("users_oath", bad)]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            text(&out).contains("nothing was imported"),
            "{bad}: {}",
            text(&out)
        );
    }
}

#[test]
fn pam_u2f_authfile_imports_keys_with_the_origin_as_rp_id() {
    let (_bus, daemon, _pam) = start();
    let out = daemon.ctl(&[
        "import",
        "pam-u2f",
        &fixture_file("pam_u2f", "u2f_mappings"),
        "--origin",
        "pam://bastion",
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for user in ["alice", "bob", "carol", "dave"] {
        assert!(
            report.contains(&format!(" for {user} (")),
            "{user}: {report}"
        );
        assert!(
            listed(&daemon, user).contains("\tfido2\t"),
            "{user}: {}",
            listed(&daemon, user)
        );
    }
    assert!(report.contains("rpId pam://bastion"), "{report}");
    assert!(report.contains("resident"), "{report}");

    for bad in [
        "malformed_appended_n",
        "malformed_duplicate_user",
        "malformed_es256_length",
        "malformed_option",
        "malformed_rs256",
    ] {
        let before = listed(&daemon, "zed");
        let out = daemon.ctl(&["import", "pam-u2f", &fixture_file("pam_u2f", bad)]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains("nothing was imported"),
            "{bad}: {}",
            text(&out)
        );
        assert_eq!(listed(&daemon, "zed"), before);
    }
}
