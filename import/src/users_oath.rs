//! OATH Toolkit usersfiles (`/etc/users.oath`), as read and rewritten by
//! `parse_usersfile` / `update_usersfile2` in liboath's `usersfile.c`:
//!
//! ```text
//! TYPE  USER  PIN  SECRET  [COUNTER  [LASTOTP  [TIME]]]
//! HOTP/T30  alice  -  3132333435363738393031323334353637383930  57  755224  2025-07-01T09:30:30L
//! ```
//!
//! * Fields are separated by any run of spaces, tabs or CRs. Lines whose
//!   first field does not parse as a TYPE are skipped by liboath, which is
//!   how `#` comments work; the parser skips `#` lines and refuses any other
//!   unknown TYPE.
//! * TYPE (`parse_type`): `HOTP`, `HOTP/E`, `HOTP/E/6|7|8` (event based);
//!   `HOTP/T30`, `HOTP/T60`, each optionally `/6|7|8` (time based, period in
//!   seconds). Digits default to 6. There is no hash suffix: liboath 2.6.9
//!   (and the 2.6.7 library on Debian 12) knows HMAC-SHA1 only.
//! * PIN: `-` none, `+` checked by another module, anything else a literal
//!   password prefixed to the OTP.
//! * SECRET: hex (`oath_hex2bin`, either case), at most 32 bytes (liboath's
//!   buffer); stepup also wants at least 80 bits.
//! * After a successful login liboath rewrites the line tab-separated with
//!   COUNTER = the counter the accepted code was for, LASTOTP = that code
//!   and TIME = local time as `%Y-%m-%dT%H:%M:%SL`.

use std::fmt;

use data_encoding::HEXLOWER_PERMISSIVE;
use zeroize::Zeroizing;

use crate::ImportError;
use crate::text::{Redacted, check_user, decimal_u64, numbered_lines, reject_bom};

const MIN_SECRET_BYTES: usize = 10;
const MAX_SECRET_BYTES: usize = 32;

/// Counter- or time-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OathKind {
    /// Event based (HOTP). `counter` is the next counter value a code may be
    /// accepted for: COUNTER + 1 when LASTOTP records that the code for
    /// COUNTER was used, COUNTER itself when it was not (absent: 0).
    Hotp { counter: u64 },
    /// Time based (TOTP) with this period in seconds (30 or 60).
    Totp { period: u64 },
}

/// One line (one token) of a usersfile. A user may have several lines;
/// pam_oath accepts a code from any of them.
#[derive(Clone)]
pub struct OathEntry {
    pub user: String,
    /// The 1-based line the entry is on.
    pub line: usize,
    pub kind: OathKind,
    /// Code length from TYPE: 6, 7 or 8.
    pub digits: u32,
    /// The HMAC hash: always `"SHA1"` (no usersfile TYPE names another).
    pub algorithm: String,
    /// The decoded key, 10 to 32 bytes.
    pub secret: Zeroizing<Vec<u8>>,
    /// PIN field is a literal password (not `-` or `+`); stepup cannot use
    /// it and does not keep it.
    pub has_pin: bool,
    /// TIME field as written (`YYYY-MM-DDTHH:MM:SSL`, local time, the
    /// trailing `L` literal): when the last code was accepted.
    pub last_otp_time: Option<String>,
}

impl fmt::Debug for OathEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OathEntry")
            .field("user", &self.user)
            .field("line", &self.line)
            .field("kind", &self.kind)
            .field("digits", &self.digits)
            .field("algorithm", &self.algorithm)
            .field("secret", &Redacted)
            .field("has_pin", &self.has_pin)
            .field("last_otp_time", &self.last_otp_time)
            .finish()
    }
}

const LAYOUT: &str = "TYPE USER PIN SECRET [COUNTER [LASTOTP [TIME]]]";

/// Parses an OATH Toolkit usersfile into its entries, in file order.
///
/// # Errors
///
/// [`ImportError::Line`] for the first malformed line: unknown TYPE (hash
/// suffixes included), missing USER/PIN/SECRET, a secret that is not hex or
/// is outside 10..=32 bytes, a COUNTER that is not a whole number, a LASTOTP
/// that is not digits or disagrees with TYPE's digit count, a TIME not in
/// liboath's format, or extra fields.
pub fn parse_users_oath(text: &str) -> Result<Vec<OathEntry>, ImportError> {
    reject_bom(text, "usersfile")?;
    let mut entries = Vec::new();
    for (no, line) in numbered_lines(text) {
        if let Some(entry) = parse_line(no, line)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// One line: an entry, or `None` for a blank or `#` line.
fn parse_line(no: usize, line: &str) -> Result<Option<OathEntry>, ImportError> {
    let mut fields = line.split([' ', '\t', '\r']).filter(|f| !f.is_empty());
    let Some(token_type) = fields.next() else {
        return Ok(None);
    };
    if token_type.starts_with('#') {
        return Ok(None);
    }
    let bad = |reason: &str| ImportError::at(no, reason.to_owned());
    let (period, digits) = parse_type(token_type).ok_or_else(|| {
        bad(
            "unknown TYPE; expected HOTP, HOTP/E, HOTP/E/6|7|8, HOTP/T30[/6|7|8] or \
             HOTP/T60[/6|7|8] (liboath has no hash suffix such as /SHA256)",
        )
    })?;
    let user = fields
        .next()
        .ok_or_else(|| ImportError::at(no, format!("missing USER; expected {LAYOUT}")))?;
    check_user(user).map_err(bad)?;
    let pin = fields.next().ok_or_else(|| {
        ImportError::at(no, format!("missing PIN ('-' for none); expected {LAYOUT}"))
    })?;
    let secret_hex = fields
        .next()
        .ok_or_else(|| ImportError::at(no, format!("missing SECRET; expected {LAYOUT}")))?;
    let secret = decode_secret(secret_hex).map_err(|reason| ImportError::at(no, reason))?;
    let state = parse_state(no, fields, digits)?;
    let kind = match period {
        Some(period) => OathKind::Totp { period },
        None => OathKind::Hotp {
            counter: next_counter(&state)
                .ok_or_else(|| bad("COUNTER is at its maximum; the token is exhausted"))?,
        },
    };
    Ok(Some(OathEntry {
        user: user.to_owned(),
        line: no,
        kind,
        digits,
        algorithm: "SHA1".to_owned(),
        secret,
        has_pin: pin != "-" && pin != "+",
        last_otp_time: state.last_otp_time,
    }))
}

/// What liboath wrote after the last accepted code: COUNTER, LASTOTP, TIME.
struct TokenState {
    counter: Option<u64>,
    has_last_otp: bool,
    last_otp_time: Option<String>,
}

/// The optional fields after SECRET; nothing may follow TIME.
fn parse_state<'a>(
    no: usize,
    mut fields: impl Iterator<Item = &'a str>,
    digits: u32,
) -> Result<TokenState, ImportError> {
    let bad = |reason: &str| ImportError::at(no, reason.to_owned());
    let counter = fields
        .next()
        .map(|f| decimal_u64(f).ok_or_else(|| bad("COUNTER must be a non-negative whole number")))
        .transpose()?;
    let last_otp = fields.next();
    if let Some(otp) = last_otp {
        check_last_otp(no, otp, digits)?;
    }
    let last_otp_time = fields
        .next()
        .map(|time| {
            if valid_time(time) {
                Ok(time.to_owned())
            } else {
                Err(bad(
                    "TIME must look like 2025-07-01T09:30:30L (liboath's %Y-%m-%dT%H:%M:%SL)",
                ))
            }
        })
        .transpose()?;
    if fields.next().is_some() {
        return Err(ImportError::at(
            no,
            format!("unexpected field after TIME; expected {LAYOUT}"),
        ));
    }
    Ok(TokenState {
        counter,
        has_last_otp: last_otp.is_some(),
        last_otp_time,
    })
}

/// LASTOTP: the digits of the last accepted code, as many as TYPE says.
fn check_last_otp(no: usize, otp: &str, digits: u32) -> Result<(), ImportError> {
    if otp.is_empty() || !otp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ImportError::at(
            no,
            "LASTOTP must be the digits of the last accepted code",
        ));
    }
    if otp.len() != digits as usize {
        return Err(ImportError::at(
            no,
            format!(
                "LASTOTP has {} digits but TYPE says {digits}; pam_oath checks codes at \
                 the length typed, so correct TYPE to the token's real length",
                otp.len()
            ),
        ));
    }
    Ok(())
}

/// The next HOTP counter a code may be accepted for: COUNTER + 1 once the
/// code for COUNTER was used (LASTOTP), else COUNTER; `None` on overflow.
fn next_counter(state: &TokenState) -> Option<u64> {
    let counter = state.counter.unwrap_or(0);
    if state.has_last_otp {
        counter.checked_add(1)
    } else {
        Some(counter)
    }
}

/// liboath's `parse_type`: (TOTP period, digits).
fn parse_type(s: &str) -> Option<(Option<u64>, u32)> {
    let (period, rest) = if let Some(rest) = s.strip_prefix("HOTP/T30") {
        (Some(30), rest)
    } else if let Some(rest) = s.strip_prefix("HOTP/T60") {
        (Some(60), rest)
    } else if let Some(rest) = s.strip_prefix("HOTP/E") {
        (None, rest)
    } else if s == "HOTP" {
        return Some((None, 6));
    } else {
        return None;
    };
    let digits = match rest {
        "" | "/6" => 6,
        "/7" => 7,
        "/8" => 8,
        _ => return None,
    };
    Some((period, digits))
}

fn decode_secret(hex: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("SECRET must be hexadecimal (0-9, a-f)".into());
    }
    if hex.len() % 2 == 1 {
        return Err("SECRET has an odd number of hex digits".into());
    }
    let bytes = hex.len() / 2;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes) {
        return Err(format!(
            "SECRET is {bytes} bytes; expected {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes \
             ({} to {} hex digits)",
            MIN_SECRET_BYTES * 2,
            MAX_SECRET_BYTES * 2
        ));
    }
    let mut out = Zeroizing::new(vec![0_u8; bytes]);
    HEXLOWER_PERMISSIVE
        .decode_mut(hex.as_bytes(), &mut out)
        .map_err(|_| "SECRET must be hexadecimal (0-9, a-f)".to_owned())?;
    Ok(out)
}

/// `YYYY-MM-DDTHH:MM:SSL` with plausible ranges.
fn valid_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 20 {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:ddL";
    if !b.iter().zip(shape).all(|(c, s)| {
        if *s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        }
    }) {
        return false;
    }
    let num = |from: usize, to: usize| -> u32 {
        b[from..to]
            .iter()
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
    };
    (1..=12).contains(&num(5, 7))
        && (1..=31).contains(&num(8, 10))
        && num(11, 13) <= 23
        && num(14, 16) <= 59
        && num(17, 19) <= 60
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226's key "12345678901234567890".
    const HEX: &str = "3132333435363738393031323334353637383930";
    const RAW: &[u8] = b"12345678901234567890";

    fn one(line: &str) -> OathEntry {
        let mut entries = parse_users_oath(line).unwrap();
        assert_eq!(entries.len(), 1);
        entries.remove(0)
    }

    fn err_line(text: &str) -> (usize, String) {
        let e = parse_users_oath(text).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains(HEX) && !shown.contains("31323334"),
            "secret leaked: {shown}"
        );
        assert!(!shown.contains("s3cr3t"), "PIN leaked: {shown}");
        match e {
            ImportError::Line { line, reason } => (line, reason),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_hotp() {
        let e = one(&format!("HOTP alice - {HEX}"));
        assert_eq!(e.user, "alice");
        assert_eq!(e.line, 1);
        assert_eq!(e.kind, OathKind::Hotp { counter: 0 });
        assert_eq!(e.digits, 6);
        assert_eq!(e.algorithm, "SHA1");
        assert_eq!(e.secret.as_slice(), RAW);
        assert!(!e.has_pin);
        assert_eq!(e.last_otp_time, None);
    }

    #[test]
    fn every_type() {
        for (ty, kind, digits) in [
            ("HOTP", OathKind::Hotp { counter: 0 }, 6),
            ("HOTP/E", OathKind::Hotp { counter: 0 }, 6),
            ("HOTP/E/6", OathKind::Hotp { counter: 0 }, 6),
            ("HOTP/E/7", OathKind::Hotp { counter: 0 }, 7),
            ("HOTP/E/8", OathKind::Hotp { counter: 0 }, 8),
            ("HOTP/T30", OathKind::Totp { period: 30 }, 6),
            ("HOTP/T30/6", OathKind::Totp { period: 30 }, 6),
            ("HOTP/T30/7", OathKind::Totp { period: 30 }, 7),
            ("HOTP/T30/8", OathKind::Totp { period: 30 }, 8),
            ("HOTP/T60", OathKind::Totp { period: 60 }, 6),
            ("HOTP/T60/6", OathKind::Totp { period: 60 }, 6),
            ("HOTP/T60/7", OathKind::Totp { period: 60 }, 7),
            ("HOTP/T60/8", OathKind::Totp { period: 60 }, 8),
        ] {
            let e = one(&format!("{ty}\tbob\t-\t{HEX}\n"));
            assert_eq!((e.kind, e.digits), (kind, digits), "{ty}");
        }
    }

    #[test]
    fn pin_field() {
        assert!(!one(&format!("HOTP a - {HEX}")).has_pin);
        assert!(!one(&format!("HOTP a + {HEX}")).has_pin);
        let e = one(&format!("HOTP a s3cr3t {HEX}"));
        assert!(e.has_pin);
        assert!(!format!("{e:?}").contains("s3cr3t"));
    }

    #[test]
    fn counter_semantics() {
        // Set by the admin, no code used yet: that counter is next.
        assert_eq!(
            one(&format!("HOTP a - {HEX} 10")).kind,
            OathKind::Hotp { counter: 10 }
        );
        // Rewritten by liboath after accepting the code for counter 5.
        let e = one(&format!(
            "HOTP/E/8\ta\t-\t{HEX}\t5\t12345678\t2025-07-01T09:30:30L\n"
        ));
        assert_eq!(e.kind, OathKind::Hotp { counter: 6 });
        assert_eq!(e.last_otp_time.as_deref(), Some("2025-07-01T09:30:30L"));
        // LASTOTP without TIME is accepted (liboath reads fields positionally).
        assert_eq!(
            one(&format!("HOTP a - {HEX} 0 755224")).kind,
            OathKind::Hotp { counter: 1 }
        );
        // Time-based lines carry a counter too; it is not used.
        let e = one(&format!(
            "HOTP/T30 a - {HEX} 58378741 755224 2025-07-01T09:30:30L"
        ));
        assert_eq!(e.kind, OathKind::Totp { period: 30 });
    }

    #[test]
    fn secret_bounds_and_case() {
        let upper = HEX.to_uppercase();
        assert_eq!(one(&format!("HOTP a - {upper}")).secret.as_slice(), RAW);
        assert_eq!(
            one(&format!("HOTP a - {}", "ab".repeat(10))).secret.len(),
            10
        );
        assert_eq!(
            one(&format!("HOTP a - {}", "ab".repeat(32))).secret.len(),
            32
        );
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let text = format!(
            "# comment\n #indented\n\n \t \nHOTP\talice\t-\t{HEX}\r\n#HOTP nobody - 00\n  HOTP/T30   bob   -   {HEX}   \nHOTP alice - {HEX}\n"
        );
        let entries = parse_users_oath(&text).unwrap();
        let got: Vec<_> = entries.iter().map(|e| (e.user.as_str(), e.line)).collect();
        assert_eq!(got, vec![("alice", 5), ("bob", 7), ("alice", 8)]);
        assert!(parse_users_oath("").unwrap().is_empty());
    }

    #[test]
    fn line_errors() {
        let t = "2025-07-01T09:30:30L";
        let cases: Vec<(String, &str)> = vec![
            (format!("TOTP a - {HEX}"), "unknown TYPE"),
            (format!("HOTP/T45 a - {HEX}"), "unknown TYPE"),
            (format!("HOTP/T30/6/SHA256 a - {HEX}"), "unknown TYPE"),
            (format!("HOTP/E/9 a - {HEX}"), "unknown TYPE"),
            (format!("hotp a - {HEX}"), "unknown TYPE"),
            ("HOTP".into(), "missing USER"),
            ("HOTP a".into(), "missing PIN"),
            ("HOTP a -".into(), "missing SECRET"),
            ("HOTP a s3cr3t".into(), "missing SECRET"),
            (format!("HOTP a\u{1} - {HEX}"), "control"),
            (format!("HOTP a - {HEX}0"), "odd number"),
            (format!("HOTP a - {}zz", &HEX[2..]), "hexadecimal"),
            ("HOTP a - 00".into(), "1 bytes"),
            (format!("HOTP a - {}", "ab".repeat(9)), "9 bytes"),
            (format!("HOTP a - {}", "ab".repeat(33)), "33 bytes"),
            (format!("HOTP a - {HEX} -1"), "COUNTER"),
            (format!("HOTP a - {HEX} x"), "COUNTER"),
            (format!("HOTP a - {HEX} 1 12a456"), "LASTOTP"),
            (
                format!("HOTP a - {HEX} 1 1234567"),
                "LASTOTP has 7 digits but TYPE says 6",
            ),
            (
                format!("HOTP/E/8 a - {HEX} 1 123456"),
                "LASTOTP has 6 digits but TYPE says 8",
            ),
            (
                format!("HOTP a - {HEX} 1 123456 2025-07-01T09:30:30"),
                "TIME",
            ),
            (
                format!("HOTP a - {HEX} 1 123456 2025-13-01T09:30:30L"),
                "TIME",
            ),
            (
                format!("HOTP a - {HEX} 1 123456 2025-07-01 09:30:30L"),
                "TIME",
            ),
            (
                format!("HOTP a - {HEX} 1 123456 {t} extra"),
                "unexpected field",
            ),
            (
                format!("HOTP a - {HEX} 1 123456 {t} # comment"),
                "unexpected field",
            ),
            (format!("HOTP a - {HEX} {} 123456", u64::MAX), "maximum"),
        ];
        for (bad, expect) in cases {
            let text = format!("# users\nHOTP ok - {HEX}\n{bad}\nHOTP ok2 - {HEX}\n");
            let (line, reason) = err_line(&text);
            assert_eq!(line, 3, "{bad}");
            assert!(reason.contains(expect), "{bad}: {reason}");
        }
    }

    #[test]
    fn time_validation() {
        assert!(valid_time("2006-12-07T00:00:00L"));
        assert!(valid_time("2025-07-01T23:59:60L"));
        for bad in [
            "2006-12-07T00:00:00",
            "2006-12-07T00:00:00Z",
            "2006-00-07T00:00:00L",
            "2006-12-32T00:00:00L",
            "2006-12-07T24:00:00L",
            "2006-12-07T00:60:00L",
            "06-12-07T00:00:00L",
            "2006/12/07T00:00:00L",
        ] {
            assert!(!valid_time(bad), "{bad}");
        }
    }

    #[test]
    fn debug_output_redacts_secret() {
        let e = one(&format!("HOTP/T30 alice - {HEX}"));
        let shown = format!("{e:?}");
        assert!(!shown.contains(HEX));
        assert!(!shown.contains("49, 50, 51"));
        assert!(shown.contains("secret: <redacted>"), "{shown}");
        assert!(shown.contains("alice"));
    }
}
