//! `parse_pam_u2f` over arbitrary text: Ok (with keys of the right size) or a
//! typed error naming a real line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_fuzz::check_import_error;
use stepup_import::CoseAlgorithm;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match stepup_import::parse_pam_u2f(text) {
        Ok(creds) => {
            let lines = text.split('\n').count();
            for c in &creds {
                assert!(c.line >= 1 && c.line <= lines);
                assert!(!c.user.is_empty());
                assert_eq!(
                    c.resident,
                    c.key_handle.is_empty(),
                    "resident iff no key handle"
                );
                match c.algorithm {
                    CoseAlgorithm::Es256 => {
                        assert_eq!(c.public_key.len(), 65);
                        assert_eq!(c.public_key[0], 0x04);
                    }
                    CoseAlgorithm::EdDsa => assert_eq!(c.public_key.len(), 32),
                }
            }
            let _ = format!("{creds:?}");
        }
        Err(e) => check_import_error(text, &e, &[]),
    }
});
