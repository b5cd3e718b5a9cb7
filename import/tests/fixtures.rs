//! Parses the files in `import/fixtures/`, which are in each peer's exact
//! on-disk format (see `fixtures/README.md` for how each was made).

use std::fs;
use std::path::PathBuf;

use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER};
use stepup_import::{
    CoseAlgorithm, ImportError, OathKind, parse_google_authenticator, parse_pam_u2f,
    parse_users_oath,
};

/// RFC 6238's SHA-1 seed "12345678901234567890", as base32 and hex.
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SECRET_HEX: &str = "3132333435363738393031323334353637383930";
const SECRET_HEX_32: &str = "3132333435363738393031323334353637383930313233343536373839303132";

fn fixture(path: &str) -> String {
    let full: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fixtures", path]
        .iter()
        .collect();
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Asserts none of `secrets` shows in the error's Display or Debug output and
/// returns (line, reason).
fn line_error(err: ImportError, secrets: &[&str]) -> (usize, String) {
    let shown = format!("{err} | {err:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "secret {secret:?} leaked: {shown}");
    }
    match err {
        ImportError::Line { line, reason } => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

/// The scratch-code lines of a google-authenticator fixture.
fn scratch_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

// ---------------------------------------------------------------- google-authenticator

#[test]
fn ga_totp_as_google_authenticator_writes_it() {
    let text = fixture("google_authenticator/totp_t_d_f_r3_R30_w3");
    let ga = parse_google_authenticator(&text).unwrap();
    assert_eq!(ga.secret.as_slice(), b"12345678901234567890");
    assert!(ga.totp);
    assert_eq!(ga.hotp_counter, None);
    assert_eq!(ga.window_size, Some(3));
    assert_eq!(ga.step_size, 30);
    assert!(ga.disallow_reuse);
    assert!(ga.used_steps.is_empty());
    assert_eq!(ga.rate_limit, Some((3, 30)));
    assert_eq!(ga.time_skew, None);
    let codes: Vec<&str> = ga.scratch_codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, scratch_lines(&text));
    assert_eq!(codes.len(), 5);
    assert!(ga.notes.is_empty(), "{:?}", ga.notes);

    let shown = format!("{ga:?}");
    assert!(!shown.contains(SECRET_B32), "{shown}");
    for code in codes {
        assert!(!shown.contains(code), "{shown}");
    }
}

#[test]
fn ga_totp_after_logins() {
    let text = fixture("google_authenticator/totp_in_use");
    let ga = parse_google_authenticator(&text).unwrap();
    assert!(ga.totp);
    assert!(ga.disallow_reuse);
    assert_eq!(ga.used_steps, vec![58_378_740, 58_378_741]);
    assert_eq!(ga.rate_limit, Some((3, 30)));
    assert_eq!(ga.time_skew, Some(1));
    assert_eq!(ga.window_size, Some(3));
    assert_eq!(ga.scratch_codes.len(), 4);
    assert_eq!(ga.notes.len(), 3, "{:?}", ga.notes);
    assert!(ga.notes[0].starts_with("line 2:") && ga.notes[0].contains("LAST0"));
    assert!(ga.notes[1].starts_with("line 3:") && ga.notes[1].contains("RESETTING_TIME_SKEW"));
    assert!(ga.notes[2].starts_with("line 5:") && ga.notes[2].contains("RATE_LIMIT"));
}

#[test]
fn ga_hotp() {
    let text = fixture("google_authenticator/hotp_c_w3_e3");
    let ga = parse_google_authenticator(&text).unwrap();
    assert!(!ga.totp);
    assert_eq!(ga.hotp_counter, Some(1));
    assert_eq!(ga.window_size, Some(3));
    assert!(!ga.disallow_reuse);
    assert_eq!(ga.rate_limit, None);
    assert_eq!(ga.scratch_codes.len(), 3);
    assert_eq!(HEXLOWER.encode(&ga.secret), SECRET_HEX);
}

#[test]
fn ga_malformed() {
    for (file, line, expect) in [
        ("malformed_scratch_code", 7, "scratch code"),
        ("malformed_secret", 1, "column 17"),
        ("malformed_window_size", 3, "WINDOW_SIZE"),
    ] {
        let text = fixture(&format!("google_authenticator/{file}"));
        let err = parse_google_authenticator(&text).unwrap_err();
        let mut secrets = vec![SECRET_B32, "GEZDGNBV"];
        secrets.extend(scratch_lines(&text));
        secrets.push("1088996");
        let (got, reason) = line_error(err, &secrets);
        assert_eq!(got, line, "{file}: {reason}");
        assert!(reason.contains(expect), "{file}: {reason}");
    }
}

// ---------------------------------------------------------------- pam-u2f

#[test]
fn u2f_mappings() {
    let text = fixture("pam_u2f/u2f_mappings");
    let creds = parse_pam_u2f(&text).unwrap();
    let summary: Vec<_> = creds
        .iter()
        .map(|c| (c.user.as_str(), c.line, c.algorithm, c.resident, c.legacy))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alice", 2, CoseAlgorithm::Es256, false, false),
            ("alice", 2, CoseAlgorithm::EdDsa, false, false),
            ("bob", 3, CoseAlgorithm::Es256, true, false),
            ("carol", 5, CoseAlgorithm::Es256, false, false),
            ("dave", 6, CoseAlgorithm::Es256, false, true),
        ]
    );
    let flags: Vec<_> = creds
        .iter()
        .map(|c| (c.presence, c.verification, c.pin))
        .collect();
    assert_eq!(
        flags,
        vec![
            (true, false, false),
            (true, false, true),
            (true, true, false),
            (false, false, false),
            (true, false, false),
        ]
    );

    // Key material round-trips against the text of the file.
    let line2: Vec<&str> = text.lines().nth(1).unwrap().split([':', ',']).collect();
    assert_eq!(
        creds[0].key_handle,
        BASE64.decode(line2[1].as_bytes()).unwrap()
    );
    let mut point = vec![0x04];
    point.extend(BASE64.decode(line2[2].as_bytes()).unwrap());
    assert_eq!(point.len(), 65);
    assert_eq!(creds[0].public_key, point);
    assert_eq!(
        creds[1].key_handle,
        BASE64.decode(line2[5].as_bytes()).unwrap()
    );
    assert_eq!(
        creds[1].public_key,
        BASE64.decode(line2[6].as_bytes()).unwrap()
    );
    assert_eq!(creds[1].public_key.len(), 32);

    assert!(creds[2].key_handle.is_empty());
    assert_eq!(creds[2].public_key.len(), 65);
    assert_eq!(creds[2].public_key[0], 0x04);

    let dave: Vec<&str> = text.lines().nth(5).unwrap().split([':', ',']).collect();
    assert!(
        dave[1].contains('-') && dave[1].contains('_'),
        "fixture should use web-safe base64"
    );
    assert_eq!(
        creds[4].key_handle,
        BASE64URL_NOPAD.decode(dave[1].as_bytes()).unwrap()
    );
    assert_eq!(creds[4].key_handle.len(), 64);
    assert_eq!(HEXLOWER.encode(&creds[4].public_key), dave[2]);
}

#[test]
fn u2f_malformed() {
    for (file, line, expect) in [
        ("malformed_appended_n", 2, "no user name"),
        ("malformed_duplicate_user", 3, "line 1"),
        ("malformed_rs256", 2, "credential 2: CoseType rs256"),
        ("malformed_es256_length", 2, "63 bytes"),
        ("malformed_option", 1, "Options"),
    ] {
        let text = fixture(&format!("pam_u2f/{file}"));
        let err = parse_pam_u2f(&text).unwrap_err();
        let (got, reason) = line_error(err, &[]);
        assert_eq!(got, line, "{file}: {reason}");
        assert!(reason.contains(expect), "{file}: {reason}");
    }
}

// ---------------------------------------------------------------- pam_oath

#[test]
fn users_oath() {
    let text = fixture("users_oath/users.oath");
    let entries = parse_users_oath(&text).unwrap();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.user.as_str(), e.line, e.kind, e.digits, e.has_pin))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alice", 3, OathKind::Hotp { counter: 0 }, 6, false),
            // Counter 5 was used (LASTOTP recorded): 6 is next.
            ("bob", 4, OathKind::Hotp { counter: 6 }, 8, true),
            ("carol", 5, OathKind::Totp { period: 30 }, 6, false),
            ("erin", 7, OathKind::Totp { period: 30 }, 6, false),
            ("frank", 8, OathKind::Totp { period: 60 }, 8, false),
            ("alice", 10, OathKind::Hotp { counter: 3 }, 6, false),
        ]
    );
    for e in &entries {
        assert_eq!(e.algorithm, "SHA1");
        let want = if e.user == "frank" || e.line == 10 {
            SECRET_HEX_32
        } else {
            SECRET_HEX
        };
        assert_eq!(HEXLOWER.encode(&e.secret), want, "line {}", e.line);
        let shown = format!("{e:?}");
        assert!(
            !shown.contains(SECRET_HEX) && !shown.contains("4711"),
            "{shown}"
        );
    }
    assert_eq!(
        entries[1].last_otp_time.as_deref(),
        Some("2025-07-01T09:29:02L")
    );
    assert_eq!(
        entries[3].last_otp_time.as_deref(),
        Some("2025-07-01T09:30:30L")
    );
    assert_eq!(entries[0].last_otp_time, None);
}

#[test]
fn users_oath_malformed() {
    for (file, line, expect) in [
        ("malformed_odd_hex", 5, "odd number"),
        ("malformed_type", 7, "unknown TYPE"),
    ] {
        let text = fixture(&format!("users_oath/{file}"));
        let err = parse_users_oath(&text).unwrap_err();
        let (got, reason) = line_error(err, &[SECRET_HEX, "31323334", "4711"]);
        assert_eq!(got, line, "{file}: {reason}");
        assert!(reason.contains(expect), "{file}: {reason}");
    }
}

#[test]
fn the_same_key_in_every_format() {
    let ga =
        parse_google_authenticator(&fixture("google_authenticator/totp_t_d_f_r3_R30_w3")).unwrap();
    let oath = parse_users_oath(&fixture("users_oath/users.oath")).unwrap();
    assert_eq!(ga.secret, oath[0].secret);
}
