//! `parse_google_authenticator` over arbitrary text: Ok or a typed error
//! naming a real line; secrets never in messages or Debug output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_fuzz::{check_debug_redacted, check_import_error, only_secret, secret_like_tokens};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Line 1 is the secret; option lines and scratch codes may be shown.
    let first = text.split('\n').next().unwrap_or_default();
    let rest: Vec<&str> = text.split('\n').skip(1).collect();
    let secrets = only_secret(secret_like_tokens(first), &rest);
    match stepup_import::parse_google_authenticator(text) {
        Ok(parsed) => {
            assert!(
                parsed.totp ^ parsed.hotp_counter.is_some(),
                "exactly one of TOTP / HOTP"
            );
            assert!(
                parsed.secret.len() * 8 >= 80,
                "secret under 80 bits accepted"
            );
            assert!((1..=60).contains(&parsed.step_size));
            check_debug_redacted(&format!("{parsed:?}"), &secrets);
            for note in &parsed.notes {
                check_debug_redacted(note, &secrets);
            }
            for code in &parsed.scratch_codes {
                assert!(code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()));
            }
        }
        Err(e) => check_import_error(text, &e, &secrets),
    }
});
