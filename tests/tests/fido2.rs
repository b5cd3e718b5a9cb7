//! FIDO2 step-up through real libpam with the software authenticator (no
//! USB key exists on the build machines; the hardware one sits behind the
//! same trait).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use stepup_tests::*;

struct KeyHost {
    _bus: Bus,
    daemon: Daemon,
    pam: PamService,
    _dir: tempfile::TempDir,
    state: PathBuf,
}

fn start(extra: &str) -> KeyHost {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("softkey.json");
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(
        &bus,
        &format!(
            "[fido2]\nauthenticator = \"software:{}\"\ntouch_timeout = \"2s\"\n\n[defaults]\naction = \"step_up\"\nmethods = [\"fido2\", \"totp\"]\n{extra}",
            state.display()
        ),
    );
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    KeyHost {
        _bus: bus,
        daemon,
        pam,
        _dir: dir,
        state,
    }
}

fn set_state(path: &Path, key: &str, value: &str) {
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    json[key] = serde_json::from_str(value).unwrap();
    fs::write(path, serde_json::to_string(&json).unwrap()).unwrap();
}

fn enroll_key(host: &KeyHost, user: &str) -> String {
    let out = host
        .daemon
        .ctl(&["enroll", "key", user, "--label", "blue key"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .find(|w| w.starts_with("key-"))
        .unwrap()
        .to_owned()
}

#[test]
fn local_step_up_with_a_touch_and_the_message_in_the_conversation() {
    let host = start("");
    let id = enroll_key(&host, "kim");
    assert!(
        String::from_utf8_lossy(&host.daemon.ctl(&["list", "kim"]).stdout)
            .contains(&format!("{id}\tfido2\tblue key"))
    );
    let run = drive(&host.pam, "kim", &["-t", "/dev/pts/5"], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("info: Touch your security key (blue key)"),
        "{}",
        run.stdout
    );
    assert_eq!(run.prompts(), 0);
    assert!(
        host.daemon.log().contains("method=fido2"),
        "{}",
        host.daemon.log()
    );
    // Each assertion raised the stored counter: a second step-up works too.
    assert_eq!(
        drive(&host.pam, "kim", &["-t", "/dev/pts/5"], &[]).code,
        PAM_SUCCESS
    );
}

#[test]
fn remote_session_is_offered_totp_instead_of_the_key() {
    let host = start("");
    enroll_key(&host, "lee");
    let secret = random_secret();
    host.daemon.enroll_totp("lee", &secret);
    let run = drive(
        &host.pam,
        "lee",
        &["-r", "198.51.100.9", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        !run.stdout.contains("Touch your security key"),
        "{}",
        run.stdout
    );
    assert_eq!(run.prompts(), 1);
    // A remote user with only a key cannot step up.
    enroll_key(&host, "max");
    let run = drive(&host.pam, "max", &["-t", "ssh"], &[]);
    assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
}

#[test]
fn key_not_touched_falls_back_to_totp_in_the_same_attempt() {
    let host = start("");
    enroll_key(&host, "ned");
    let secret = random_secret();
    host.daemon.enroll_totp("ned", &secret);
    set_state(&host.state, "touch", "\"never\"");
    let run = drive(
        &host.pam,
        "ned",
        &["-t", "/dev/pts/6", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(run.stdout.contains("not touched in time"), "{}", run.stdout);
    assert_eq!(run.prompts(), 1);
}

#[test]
fn a_counter_that_goes_backwards_is_denied_audited_and_disables_the_key() {
    let host = start("");
    enroll_key(&host, "ola");
    let secret = random_secret();
    host.daemon.enroll_totp("ola", &secret);
    for _ in 0..3 {
        assert_eq!(
            drive(&host.pam, "ola", &["-t", "/dev/pts/7"], &[]).code,
            PAM_SUCCESS
        );
    }
    // A clone made earlier: its counter is behind the one stepup saw.
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&host.state).unwrap()).unwrap();
    json["credentials"][0]["sign_count"] = serde_json::json!(1);
    fs::write(&host.state, serde_json::to_string(&json).unwrap()).unwrap();

    let run = drive(&host.pam, "ola", &["-t", "/dev/pts/7"], &[]);
    assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
    assert!(
        run.stdout.contains("counter went backwards"),
        "{}",
        run.stdout
    );
    assert!(
        host.daemon
            .log()
            .lines()
            .any(|l| l.contains("event=key_counter_regression ") && l.contains(" subject=ola ")),
        "{}",
        host.daemon.log()
    );
    // The key is no longer offered: TOTP is asked for instead.
    let run = drive(
        &host.pam,
        "ola",
        &["-t", "/dev/pts/7", "-a", &oathtool_now(&secret)],
        &[],
    );
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        !run.stdout.contains("Touch your security key"),
        "{}",
        run.stdout
    );
}

#[test]
fn user_verification_asks_for_the_key_pin() {
    let host = start("require_uv = true\n");
    enroll_key(&host, "pia");
    // PINs no log can hold by chance, so that finding one means it leaked.
    let pin = random_marker("pin");
    let wrong_pin = random_marker("wrong-pin");
    set_state(&host.state, "pin", &format!("\"{pin}\""));
    let run = drive(&host.pam, "pia", &["-t", "/dev/pts/8", "-a", &pin], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(
        run.stdout.contains("prompt: Security key PIN:"),
        "{}",
        run.stdout
    );
    let wrong = drive(
        &host.pam,
        "pia",
        &["-t", "/dev/pts/8", "-a", &wrong_pin],
        &[],
    );
    assert_ne!(wrong.code, PAM_SUCCESS, "{}", wrong.stdout);
    let log = host.daemon.log();
    for secret in [&pin, &wrong_pin] {
        assert!(
            !log.contains(secret.as_str()),
            "the PIN must never be logged: {log}"
        );
    }
}

/// A key registered with pam_u2f long ago (origin pam://oldhost), as
/// `pamu2fcfg` wrote it: current format (base64 key handle, raw X‖Y key) and
/// the legacy format (web-safe key handle, hex uncompressed point).
#[test]
fn keys_imported_from_pam_u2f_verify_with_their_original_origin() {
    use stepupd::factors::fido2::authenticator::software::SoftwareAuthenticator;
    use stepupd::factors::fido2::authenticator::{Authenticator, MakeCredentialRequest};
    let host = start("");
    // Make the credentials on the software key, for pam_u2f's origin.
    let key = SoftwareAuthenticator::open(&host.state).unwrap();
    let make = |user: &str| {
        key.make_credential(
            &MakeCredentialRequest {
                rp_id: "pam://oldhost".into(),
                user_name: user.into(),
                user_id: user.as_bytes().to_vec(),
                client_data: Vec::new(),
                client_data_hash: [7; 32],
                require_uv: false,
                pin: None,
            },
            std::time::Duration::from_secs(2),
        )
        .unwrap()
    };
    let quinn = make("quinn");
    let rita = make("rita");
    let authfile = format!(
        "quinn:{},{},es256,+presence\nrita:{},{}\n",
        data_encoding::BASE64.encode(&quinn.credential_id),
        data_encoding::BASE64.encode(&quinn.public_key[1..]),
        data_encoding::BASE64URL_NOPAD.encode(&rita.credential_id),
        data_encoding::HEXLOWER.encode(&rita.public_key),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u2f_mappings");
    fs::write(&path, authfile).unwrap();
    let out = host.daemon.ctl(&[
        "import",
        "pam-u2f",
        &path.display().to_string(),
        "--origin",
        "pam://oldhost",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for user in ["quinn", "rita"] {
        let run = drive(&host.pam, user, &["-t", "/dev/pts/9"], &[]);
        assert_eq!(run.code, PAM_SUCCESS, "{user}: {}", run.stdout);
        assert!(
            run.stdout.contains("Touch your security key"),
            "{}",
            run.stdout
        );
    }
}
