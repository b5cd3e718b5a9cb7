//! Helpers shared by the fuzz targets.

use stepup_import::ImportError;

/// Tokens of the input that look like key material (long runs of base32 or
/// hex): they must never show up in an error message or a `Debug` dump.
pub fn secret_like_tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 20)
        .filter(|t| {
            t.bytes().all(|b| b.is_ascii_hexdigit())
                || t.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
        })
        .collect()
}

/// Drop candidate secrets that also occur inside a field that is not secret
/// (a user name, say), which may legitimately be shown.
pub fn only_secret<'a>(candidates: Vec<&'a str>, public: &[&str]) -> Vec<&'a str> {
    candidates
        .into_iter()
        .filter(|s| !public.iter().any(|p| p.contains(s)))
        .collect()
}

/// What every importer promises about a refusal: a typed error whose line
/// (if any) is a line of the file, and whose message quotes no secret.
pub fn check_import_error(text: &str, err: &ImportError, secrets: &[&str]) {
    let message = err.to_string();
    let debug = format!("{err:?}");
    if let Some(line) = err.line() {
        let lines = text.split('\n').count();
        assert!(
            line >= 1 && line <= lines,
            "error names line {line} of a {lines}-line file: {message}"
        );
    }
    for s in secrets {
        assert!(!message.contains(s), "error message quotes key material: {message}");
        assert!(!debug.contains(s), "error Debug quotes key material: {debug}");
    }
}

/// `Debug` of a parsed result must not contain key material either.
pub fn check_debug_redacted(debug: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!debug.contains(s), "Debug output contains key material: {debug}");
    }
}
