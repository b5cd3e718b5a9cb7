//! `parse_users_oath` over arbitrary text: Ok or a typed error naming a real
//! line; secrets never in messages or Debug output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_fuzz::{check_debug_redacted, check_import_error, only_secret, secret_like_tokens};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The SECRET field (the fourth) of each line is key material; the other
    // fields (user, PIN, counters, time) may be shown.
    let mut secret_fields = Vec::new();
    let mut public_fields = Vec::new();
    for line in text.lines() {
        for (i, field) in line
            .split([' ', '\t', '\r'])
            .filter(|f| !f.is_empty())
            .enumerate()
        {
            if i == 3 {
                secret_fields.push(field)
            } else {
                public_fields.push(field)
            }
        }
    }
    let secrets = only_secret(
        secret_fields
            .into_iter()
            .flat_map(secret_like_tokens)
            .collect(),
        &public_fields,
    );
    match stepup_import::parse_users_oath(text) {
        Ok(entries) => {
            let lines = text.split('\n').count();
            for e in &entries {
                assert!(e.line >= 1 && e.line <= lines);
                assert!((6..=8).contains(&e.digits));
                assert!(
                    (10..=32).contains(&e.secret.len()),
                    "key of {} bytes",
                    e.secret.len()
                );
                assert!(!e.user.is_empty());
            }
            check_debug_redacted(&format!("{entries:?}"), &secrets);
        }
        Err(e) => check_import_error(text, &e, &secrets),
    }
});
