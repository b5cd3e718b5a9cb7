//! Small helpers shared by the parsers.

use std::fmt;

use crate::ImportError;

/// Lines of `text` with their 1-based numbers. Lines end at `\n`; one `\r`
/// before it (CRLF files) is dropped.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').enumerate().map(|(index, line)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        (index + 1, line)
    })
}

/// Refuses inputs no peer module reads the way a human would expect.
pub(crate) fn reject_bom(text: &str, what: &str) -> Result<(), ImportError> {
    if text.starts_with('\u{feff}') {
        return Err(ImportError::Format(format!(
            "the {what} starts with a UTF-8 byte-order mark, which the peer module \
             does not skip; remove it first"
        )));
    }
    Ok(())
}

/// A non-negative decimal integer made of ASCII digits only (no sign, no
/// spaces), as the peers write them.
pub(crate) fn decimal_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal integer with an optional leading `-` or `+`.
pub(crate) fn decimal_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Checks a login name: non-empty, no whitespace, no control characters.
/// Returns the reason on failure (never quoting the name).
pub(crate) fn check_user(user: &str) -> Result<(), &'static str> {
    if user.is_empty() {
        return Err("the user name is empty");
    }
    if user.chars().any(char::is_control) {
        return Err("the user name contains a control character");
    }
    if user.chars().any(char::is_whitespace) {
        return Err("the user name contains whitespace");
    }
    Ok(())
}

/// Prints `<redacted>` in `Debug` output.
#[derive(Clone, Copy)]
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Prints a list of `n` secrets as `[<redacted>, ...]` (the count is kept:
/// it is not secret and helps when comparing with the source file).
pub(crate) struct RedactedList(pub(crate) usize);

impl fmt::Debug for RedactedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(std::iter::repeat_n(Redacted, self.0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_lines_counts_from_one_and_strips_cr() {
        let lines: Vec<_> = numbered_lines("a\r\nb\n\nc").collect();
        assert_eq!(lines, vec![(1, "a"), (2, "b"), (3, ""), (4, "c")]);
    }

    #[test]
    fn decimal_parsers_are_strict() {
        assert_eq!(decimal_u64("0"), Some(0));
        assert_eq!(decimal_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-1", " 1", "1 ", "1a", "18446744073709551616"] {
            assert_eq!(decimal_u64(bad), None, "{bad:?}");
        }
        assert_eq!(decimal_i64("-3"), Some(-3));
        assert_eq!(decimal_i64("+3"), Some(3));
        assert_eq!(decimal_i64("3"), Some(3));
        for bad in ["", "-", "+", "--1", "1-", " 1"] {
            assert_eq!(decimal_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn user_names() {
        assert!(check_user("alice").is_ok());
        assert!(check_user("user.name-1@REALM").is_ok());
        assert!(check_user("").is_err());
        assert!(check_user("al ice").is_err());
        assert!(check_user("al\u{7}ice").is_err());
    }

    #[test]
    fn redacted_list() {
        assert_eq!(format!("{:?}", RedactedList(2)), "[<redacted>, <redacted>]");
        assert_eq!(format!("{:?}", RedactedList(0)), "[]");
    }
}
