//! `~/.google_authenticator`, as written by `google-authenticator(1)` and
//! rewritten by `pam_google_authenticator.so` (google-authenticator-libpam).
//!
//! Layout (from `src/google-authenticator.c` and
//! `src/pam_google_authenticator.c`):
//!
//! ```text
//! BASE32SECRET                 line 1: the shared secret
//! " RATE_LIMIT 3 30 [ts ...]   option lines: double quote, space, NAME, value
//! " WINDOW_SIZE 3
//! " DISALLOW_REUSE [step ...]
//! " TOTP_AUTH                  (HOTP files have " HOTP_COUNTER n instead)
//! 12345678                     scratch codes: eight digits, first one non-zero
//! ```
//!
//! The module looks option lines up anywhere after line 1 (first occurrence
//! wins), inserts new ones right after line 1, and skips option lines while
//! scanning for scratch codes, so options and scratch codes may interleave.

use std::collections::HashMap;
use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::ImportError;
use crate::text::{Redacted, RedactedList, decimal_i64, decimal_u64, numbered_lines, reject_bom};

/// Fewest secret bits stepup accepts (google-authenticator writes 80 bits in
/// old releases, 128 in current ones).
const MIN_SECRET_BITS: usize = 80;

/// A parsed `~/.google_authenticator`.
///
/// `totp` and `hotp_counter` describe what `pam_google_authenticator` would
/// actually verify: exactly one of them is set (`totp == true` or
/// `hotp_counter.is_some()`).
#[derive(Clone)]
pub struct GoogleAuthenticator {
    /// The decoded shared secret (HMAC-SHA1 key), at least 80 bits.
    pub secret: Zeroizing<Vec<u8>>,
    /// Time-based codes (`" TOTP_AUTH`), unless `" HOTP_COUNTER` ≥ 1 is also
    /// present: the module checks HOTP first, so HOTP wins (noted).
    pub totp: bool,
    /// Counter-based codes: the next counter value a code is accepted for
    /// (`" HOTP_COUNTER n`; the module tries `n .. n + window` and stores the
    /// matched counter + 1). `None` for TOTP files.
    pub hotp_counter: Option<u64>,
    /// `" WINDOW_SIZE n` (1..=100); `None` means the module default, 3.
    pub window_size: Option<u32>,
    /// `" STEP_SIZE n` in seconds (1..=60), default 30.
    pub step_size: u64,
    /// `" DISALLOW_REUSE`: each TOTP time step may be used once.
    pub disallow_reuse: bool,
    /// The time steps (unix time / `step_size`, skew included) already used,
    /// listed after `" DISALLOW_REUSE`.
    pub used_steps: Vec<u64>,
    /// `" RATE_LIMIT attempts seconds` (1..=100, 1..=3600). The module's
    /// list of recent attempt timestamps after them is state and is dropped.
    pub rate_limit: Option<(u32, u32)>,
    /// `" TIME_SKEW n`, in time steps (not seconds), added to the current
    /// step before checking.
    pub time_skew: Option<i64>,
    /// Unused emergency scratch codes (eight digits each).
    pub scratch_codes: Vec<Zeroizing<String>>,
    /// Things the import ignored or reinterpreted, one sentence each, for the
    /// admin to read (never containing secrets).
    pub notes: Vec<String>,
}

impl fmt::Debug for GoogleAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleAuthenticator")
            .field("secret", &Redacted)
            .field("totp", &self.totp)
            .field("hotp_counter", &self.hotp_counter)
            .field("window_size", &self.window_size)
            .field("step_size", &self.step_size)
            .field("disallow_reuse", &self.disallow_reuse)
            .field("used_steps", &self.used_steps)
            .field("rate_limit", &self.rate_limit)
            .field("time_skew", &self.time_skew)
            .field("scratch_codes", &RedactedList(self.scratch_codes.len()))
            .field("notes", &self.notes)
            .finish()
    }
}

/// The options the module understands, plus the state lines it writes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    TotpAuth,
    HotpCounter,
    WindowSize,
    StepSize,
    DisallowReuse,
    RateLimit,
    TimeSkew,
    ResettingTimeSkew,
    Last(u8),
}

impl Key {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "TOTP_AUTH" => Self::TotpAuth,
            "HOTP_COUNTER" => Self::HotpCounter,
            "WINDOW_SIZE" => Self::WindowSize,
            "STEP_SIZE" => Self::StepSize,
            "DISALLOW_REUSE" => Self::DisallowReuse,
            "RATE_LIMIT" => Self::RateLimit,
            "TIME_SKEW" => Self::TimeSkew,
            "RESETTING_TIME_SKEW" => Self::ResettingTimeSkew,
            _ => {
                let digit = name.strip_prefix("LAST")?;
                match digit.as_bytes() {
                    [d @ b'0'..=b'9'] => Self::Last(d - b'0'),
                    _ => return None,
                }
            }
        })
    }
}

/// Parses a `~/.google_authenticator` file.
///
/// # Errors
///
/// [`ImportError::Line`] for the first malformed line (bad base32 secret,
/// secret under 80 bits, option value out of the module's range, repeated
/// option, line that is neither an option nor an 8-digit scratch code);
/// [`ImportError::Format`] for an empty file or one from which the module
/// would accept only scratch codes (neither `" TOTP_AUTH` nor
/// `" HOTP_COUNTER` ≥ 1).
pub fn parse_google_authenticator(text: &str) -> Result<GoogleAuthenticator, ImportError> {
    reject_bom(text, "google-authenticator file")?;
    if text.is_empty() {
        return Err(ImportError::Format(
            "the google-authenticator file is empty; expected the base32 secret on line 1".into(),
        ));
    }
    let mut lines = numbered_lines(text);
    let mut notes = Vec::new();

    let (first_no, first) = lines
        .next()
        .ok_or_else(|| ImportError::Format("the google-authenticator file is empty".into()))?;
    let secret = read_secret(first_no, first, &mut notes)?;

    let mut options = Options::default();
    let mut scratch_codes = Vec::new();
    for (no, line) in lines {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('"') {
            scratch_codes.push(scratch_code(line).map_err(|reason| ImportError::at(no, reason))?);
            continue;
        }
        options.read_line(no, line, &mut notes)?;
    }
    let (totp, hotp_counter) = options.mode(&mut notes)?;

    Ok(GoogleAuthenticator {
        secret,
        totp,
        hotp_counter,
        window_size: options.window_size,
        step_size: options.step_size,
        disallow_reuse: options.disallow_reuse,
        used_steps: options.used_steps,
        rate_limit: options.rate_limit,
        time_skew: options.time_skew,
        scratch_codes,
        notes,
    })
}

/// Line 1: the secret, at least [`MIN_SECRET_BITS`] long.
fn read_secret(
    no: usize,
    line: &str,
    notes: &mut Vec<String>,
) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    let (secret, mapped) = decode_secret(line).map_err(|reason| ImportError::at(no, reason))?;
    if secret.len() * 8 < MIN_SECRET_BITS {
        return Err(ImportError::at(
            no,
            format!(
                "the secret is {} bits long; stepup needs at least {MIN_SECRET_BITS} bits",
                secret.len() * 8
            ),
        ));
    }
    if mapped {
        notes.push(format!(
            "line {no}: the secret contains 0, 1 or 8, which are not base32; they were \
             read as O, L and B, as pam_google_authenticator does"
        ));
    }
    Ok(secret)
}

/// The option lines read so far.
struct Options {
    /// The line each option was first seen on (a repeat is refused).
    seen: HashMap<Key, usize>,
    totp_auth: bool,
    /// `" HOTP_COUNTER n` with its line.
    hotp_counter: Option<(usize, u64)>,
    window_size: Option<u32>,
    step_size: u64,
    disallow_reuse: bool,
    used_steps: Vec<u64>,
    rate_limit: Option<(u32, u32)>,
    time_skew: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seen: HashMap::new(),
            totp_auth: false,
            hotp_counter: None,
            window_size: None,
            // The module's default.
            step_size: 30,
            disallow_reuse: false,
            used_steps: Vec::new(),
            rate_limit: None,
            time_skew: None,
        }
    }
}

/// One option line: `" NAME value`, on line `no`.
struct OptionLine<'a> {
    no: usize,
    name: &'a str,
    value: &'a str,
}

impl OptionLine<'_> {
    /// The error for this option's value.
    fn bad(&self, reason: &str) -> ImportError {
        ImportError::at(self.no, format!("option {}: {reason}", self.name))
    }
}

impl Options {
    /// A line starting with `"`: an option, or something the module ignores
    /// (noted).
    fn read_line(
        &mut self,
        no: usize,
        line: &str,
        notes: &mut Vec<String>,
    ) -> Result<(), ImportError> {
        let Some(rest) = line.strip_prefix("\" ") else {
            notes.push(format!(
                "line {no}: a line starting with '\"' but not '\" ' is not an option; ignored, \
                 as pam_google_authenticator does"
            ));
            return Ok(());
        };
        let (name, value) = match rest.find([' ', '\t']) {
            Some(at) => (&rest[..at], rest[at..].trim_matches([' ', '\t'])),
            None => (rest, ""),
        };
        let Some(key) = Key::from_name(name) else {
            notes.push(unknown_option_note(no));
            return Ok(());
        };
        if let Some(first_line) = self.seen.insert(key, no) {
            return Err(ImportError::at(
                no,
                format!("option {name} appears again (first on line {first_line}); keep one"),
            ));
        }
        self.set(key, &OptionLine { no, name, value }, notes)
    }

    /// Takes the value of option `key`.
    fn set(
        &mut self,
        key: Key,
        line: &OptionLine<'_>,
        notes: &mut Vec<String>,
    ) -> Result<(), ImportError> {
        let (no, value) = (line.no, line.value);
        match key {
            Key::TotpAuth => {
                if !value.is_empty() {
                    return Err(line.bad("expected no value"));
                }
                self.totp_auth = true;
            }
            Key::HotpCounter => {
                let n = decimal_u64(value)
                    .ok_or_else(|| line.bad("expected the counter, a non-negative whole number"))?;
                self.hotp_counter = Some((no, n));
            }
            Key::WindowSize => {
                self.window_size = Some(
                    ranged(value, 1, 100)
                        .ok_or_else(|| line.bad("expected a whole number from 1 to 100"))?,
                );
            }
            Key::StepSize => {
                self.step_size =
                    u64::from(ranged(value, 1, 60).ok_or_else(|| {
                        line.bad("expected a whole number of seconds from 1 to 60")
                    })?);
            }
            Key::DisallowReuse => {
                self.disallow_reuse = true;
                self.used_steps.extend(used_steps(line)?);
            }
            Key::RateLimit => self.rate_limit = Some(rate_limit(line, notes)?),
            Key::TimeSkew => {
                self.time_skew =
                    Some(decimal_i64(value).ok_or_else(|| {
                        line.bad("expected a whole number of time steps, e.g. -1")
                    })?);
            }
            Key::ResettingTimeSkew => notes.push(format!(
                "line {no}: RESETTING_TIME_SKEW (an unfinished time-skew reset) is not imported"
            )),
            Key::Last(n) => notes.push(format!(
                "line {no}: LAST{n} (grace-period login record) is not imported"
            )),
        }
        Ok(())
    }

    /// What the module would verify: `(totp, hotp_counter)`.
    ///
    /// pam_google_authenticator: scratch codes first; then HOTP if
    /// HOTP_COUNTER >= 1 (strtol), else TOTP if the file contains
    /// `" TOTP_AUTH`, else nothing.
    fn mode(&self, notes: &mut Vec<String>) -> Result<(bool, Option<u64>), ImportError> {
        match self.hotp_counter {
            Some((no, counter)) if counter >= 1 => {
                if self.totp_auth {
                    notes.push(format!(
                        "line {no}: the file has both TOTP_AUTH and HOTP_COUNTER; \
                         pam_google_authenticator uses counter-based (HOTP) codes, so this was \
                         imported as HOTP"
                    ));
                }
                Ok((false, Some(counter)))
            }
            zero => {
                if !self.totp_auth {
                    return Err(ImportError::Format(
                        "neither '\" TOTP_AUTH' nor '\" HOTP_COUNTER n' (n >= 1) is present: \
                         pam_google_authenticator would accept only scratch codes from this file"
                            .into(),
                    ));
                }
                if let Some((no, _)) = zero {
                    notes.push(format!(
                        "line {no}: HOTP_COUNTER 0 disables counter-based codes; imported as TOTP"
                    ));
                }
                Ok((true, None))
            }
        }
    }
}

/// `" DISALLOW_REUSE [step ...]`: the time steps already used.
fn used_steps(line: &OptionLine<'_>) -> Result<Vec<u64>, ImportError> {
    line.value
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(|word| {
            decimal_u64(word).ok_or_else(|| {
                line.bad("expected used time steps (whole numbers) separated by spaces")
            })
        })
        .collect()
}

/// `" RATE_LIMIT attempts seconds [timestamp ...]`: the limit; the
/// timestamps are the module's state, checked and dropped (noted).
fn rate_limit(line: &OptionLine<'_>, notes: &mut Vec<String>) -> Result<(u32, u32), ImportError> {
    let mut words = line.value.split([' ', '\t']).filter(|w| !w.is_empty());
    let attempts = words.next().and_then(|w| ranged(w, 1, 100));
    let seconds = words.next().and_then(|w| ranged(w, 1, 3600));
    let (Some(attempts), Some(seconds)) = (attempts, seconds) else {
        return Err(line.bad(
            "expected attempts (1 to 100) and seconds (1 to 3600), then optional \
             timestamps",
        ));
    };
    let mut history = 0_usize;
    for word in words {
        decimal_u64(word).ok_or_else(|| {
            line.bad("expected timestamps (whole numbers) after attempts and seconds")
        })?;
        history += 1;
    }
    if history > 0 {
        notes.push(format!(
            "line {}: the {history} recent login attempt timestamp(s) kept for \
             RATE_LIMIT are not imported",
            line.no
        ));
    }
    Ok((attempts, seconds))
}

/// A whole number within `min..=max`.
fn ranged(s: &str, min: u32, max: u32) -> Option<u32> {
    let n = u32::try_from(decimal_u64(s)?).ok()?;
    (min..=max).contains(&n).then_some(n)
}

/// Unknown option names are not quoted: a hand-edited file could hold
/// anything on a quoted line, and notes must never carry secrets.
fn unknown_option_note(no: usize) -> String {
    format!("line {no}: unknown option ignored, as pam_google_authenticator does")
}

/// A scratch code line: exactly eight ASCII digits, the first non-zero (the
/// module accepts 10000000..=99999999 and stops reading scratch codes at the
/// first line that is not one).
fn scratch_code(line: &str) -> Result<Zeroizing<String>, &'static str> {
    let bytes = line.as_bytes();
    if bytes.len() == 8 && bytes.iter().all(u8::is_ascii_digit) && bytes[0] != b'0' {
        Ok(Zeroizing::new(line.to_owned()))
    } else {
        Err(
            "expected an option line ('\" NAME value') or an 8-digit scratch code \
             (10000000 to 99999999) alone on the line",
        )
    }
}

/// Decodes the secret the way `base32_decode` in google-authenticator-libpam
/// does: case-insensitive, spaces, tabs, CR and '-' skipped, '0' '1' '8' read
/// as 'O' 'L' 'B', trailing bits that do not fill a byte dropped. Trailing
/// '=' padding (which the module itself rejects) is accepted as well.
/// Returns whether a 0/1/8 was remapped.
fn decode_secret(line: &str) -> Result<(Zeroizing<Vec<u8>>, bool), String> {
    let mut out = Zeroizing::new(Vec::with_capacity(line.len() * 5 / 8 + 1));
    let mut buffer: u32 = 0;
    let mut bits = 0_u32;
    let mut mapped = false;
    let mut padding = false;
    let mut result = Ok(());
    for (column, ch) in line.chars().enumerate() {
        let column = column + 1;
        let value = match ch {
            ' ' | '\t' | '\r' | '-' => continue,
            '=' => {
                padding = true;
                continue;
            }
            _ if padding => {
                result = Err(format!(
                    "column {column}: base32 padding '=' may only end the secret"
                ));
                break;
            }
            'A'..='Z' => u32::from(ch) - u32::from('A'),
            'a'..='z' => u32::from(ch) - u32::from('a'),
            '2'..='7' => u32::from(ch) - u32::from('2') + 26,
            '0' | '1' | '8' => {
                mapped = true;
                match ch {
                    '0' => u32::from('O') - u32::from('A'),
                    '1' => u32::from('L') - u32::from('A'),
                    _ => u32::from('B') - u32::from('A'),
                }
            }
            _ => {
                result = Err(format!(
                    "column {column}: expected the base32 secret (letters A-Z and digits 2-7) \
                     on the first line"
                ));
                break;
            }
        };
        buffer = ((buffer << 5) | value) & 0xFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            // Truncation intended: the byte that just filled up.
            out.push(((buffer >> bits) & 0xFF) as u8);
        }
    }
    buffer.zeroize();
    result?;
    if out.is_empty() {
        return Err("expected the base32 secret on the first line".into());
    }
    Ok((out, mapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 seed "12345678901234567890".
    const B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const RAW: &[u8] = b"12345678901234567890";

    fn parse(text: &str) -> GoogleAuthenticator {
        parse_google_authenticator(text).unwrap()
    }

    fn err(text: &str) -> ImportError {
        let e = parse_google_authenticator(text).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(B32), "secret leaked: {shown}");
        assert!(!shown.contains("GEZDGNBV"), "secret leaked: {shown}");
        assert!(!shown.contains("87654321"), "scratch code leaked: {shown}");
        e
    }

    fn err_line(text: &str) -> (usize, String) {
        match err(text) {
            ImportError::Line { line, reason } => (line, reason),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_totp() {
        let ga = parse(&format!("{B32}\n\" TOTP_AUTH\n"));
        assert_eq!(ga.secret.as_slice(), RAW);
        assert!(ga.totp);
        assert_eq!(ga.hotp_counter, None);
        assert_eq!(ga.window_size, None);
        assert_eq!(ga.step_size, 30);
        assert!(!ga.disallow_reuse);
        assert!(ga.used_steps.is_empty());
        assert_eq!(ga.rate_limit, None);
        assert_eq!(ga.time_skew, None);
        assert!(ga.scratch_codes.is_empty());
        assert!(ga.notes.is_empty());
    }

    #[test]
    fn every_option() {
        let ga = parse(&format!(
            "{B32}\n\" TIME_SKEW -2\n\" RATE_LIMIT 3 30 1751362201 1751362230\n\
             \" WINDOW_SIZE 17\n\" DISALLOW_REUSE 58378740 58378741\n\" STEP_SIZE 60\n\
             \" TOTP_AUTH\n87654321\n12345678\n"
        ));
        assert!(ga.totp);
        assert_eq!(ga.window_size, Some(17));
        assert_eq!(ga.step_size, 60);
        assert!(ga.disallow_reuse);
        assert_eq!(ga.used_steps, vec![58_378_740, 58_378_741]);
        assert_eq!(ga.rate_limit, Some((3, 30)));
        assert_eq!(ga.time_skew, Some(-2));
        let codes: Vec<&str> = ga.scratch_codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, vec!["87654321", "12345678"]);
        assert_eq!(ga.notes.len(), 1, "{:?}", ga.notes);
        assert!(ga.notes[0].contains("line 3") && ga.notes[0].contains("RATE_LIMIT"));
    }

    #[test]
    fn hotp_file() {
        let ga = parse(&format!(
            "{B32}\n\" WINDOW_SIZE 3\n\" HOTP_COUNTER 7\n87654321\n"
        ));
        assert!(!ga.totp);
        assert_eq!(ga.hotp_counter, Some(7));
        assert_eq!(ga.window_size, Some(3));
        assert_eq!(ga.scratch_codes.len(), 1);
    }

    #[test]
    fn hotp_counter_wins_over_totp_auth() {
        let ga = parse(&format!("{B32}\n\" TOTP_AUTH\n\" HOTP_COUNTER 2\n"));
        assert!(!ga.totp);
        assert_eq!(ga.hotp_counter, Some(2));
        assert!(
            ga.notes
                .iter()
                .any(|n| n.contains("line 3") && n.contains("HOTP"))
        );
    }

    #[test]
    fn hotp_counter_zero_with_totp_is_totp() {
        let ga = parse(&format!("{B32}\n\" HOTP_COUNTER 0\n\" TOTP_AUTH\n"));
        assert!(ga.totp);
        assert_eq!(ga.hotp_counter, None);
        assert!(ga.notes.iter().any(|n| n.contains("line 2")));
    }

    #[test]
    fn disallow_reuse_without_steps() {
        let ga = parse(&format!("{B32}\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n"));
        assert!(ga.disallow_reuse);
        assert!(ga.used_steps.is_empty());
        // The module writes an empty value as '" NAME ' (trailing space).
        let ga = parse(&format!("{B32}\n\" DISALLOW_REUSE \n\" TOTP_AUTH\n"));
        assert!(ga.disallow_reuse);
        assert!(ga.used_steps.is_empty());
    }

    #[test]
    fn rate_limit_without_history_has_no_note() {
        let ga = parse(&format!("{B32}\n\" RATE_LIMIT 100 3600\n\" TOTP_AUTH\n"));
        assert_eq!(ga.rate_limit, Some((100, 3600)));
        assert!(ga.notes.is_empty());
    }

    #[test]
    fn time_skew_forms() {
        for (text, want) in [("0", 0), ("5", 5), ("+5", 5), ("-30", -30)] {
            let ga = parse(&format!("{B32}\n\" TIME_SKEW {text}\n\" TOTP_AUTH\n"));
            assert_eq!(ga.time_skew, Some(want));
        }
    }

    #[test]
    fn state_and_unknown_options_are_noted() {
        let ga = parse(&format!(
            "{B32}\n\" RESETTING_TIME_SKEW 58378740+1 58378741+1\n\" LAST3 192.0.2.1 1751362230\n\
             \" FROBNICATE yes\n\"TOTP_AUTH\n\" TOTP_AUTH\n\" weird$name\n"
        ));
        assert!(ga.totp);
        assert_eq!(ga.notes.len(), 5, "{:?}", ga.notes);
        assert!(ga.notes[0].starts_with("line 2:") && ga.notes[0].contains("RESETTING_TIME_SKEW"));
        assert!(ga.notes[1].starts_with("line 3:") && ga.notes[1].contains("LAST3"));
        assert!(ga.notes[2].starts_with("line 4:") && !ga.notes[2].contains("FROBNICATE"));
        assert!(ga.notes[3].starts_with("line 5:"));
        assert!(ga.notes[4].starts_with("line 7:") && !ga.notes[4].contains('$'));
    }

    #[test]
    fn lenient_secret_decoding_like_the_module() {
        for line in [
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\r",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====",
        ] {
            let ga = parse(&format!("{line}\n\" TOTP_AUTH\n"));
            assert_eq!(ga.secret.as_slice(), RAW, "{line:?}");
            assert!(ga.notes.is_empty());
        }
        // CRLF file.
        let ga = parse(&format!("{B32}\r\n\" TOTP_AUTH\r\n87654321\r\n"));
        assert_eq!(ga.secret.as_slice(), RAW);
        assert_eq!(ga.scratch_codes.len(), 1);
    }

    #[test]
    fn zero_one_eight_are_read_as_o_l_b() {
        let ga = parse("GEZDGNBVGY3TQ0JQGEZDGNBVGY3TQOJQ\n\" TOTP_AUTH\n");
        assert_eq!(ga.secret.as_slice(), RAW);
        assert_eq!(ga.notes.len(), 1);
        assert!(ga.notes[0].starts_with("line 1:"));
        let a = parse("1LLLLLLLLLLLLLL8\n\" TOTP_AUTH\n");
        let b = parse("LLLLLLLLLLLLLLLB\n\" TOTP_AUTH\n");
        assert_eq!(a.secret, b.secret);
    }

    #[test]
    fn sixteen_and_twenty_six_character_secrets() {
        // 16 chars = 80 bits (old google-authenticator); 26 chars = 130 bits,
        // of which the module keeps 16 bytes.
        assert_eq!(parse("GEZDGNBVGY3TQOJQ\n\" TOTP_AUTH\n").secret.len(), 10);
        assert_eq!(
            parse("QRZKSMR7NES4AKKELBVJMERZ5Q\n\" TOTP_AUTH\n")
                .secret
                .len(),
            16
        );
    }

    #[test]
    fn short_secret_is_refused() {
        let (line, reason) = err_line("GEZDGNBVGY3TQOJ\n\" TOTP_AUTH\n");
        assert_eq!(line, 1);
        assert!(reason.contains("72 bits"), "{reason}");
    }

    #[test]
    fn bad_secret_character() {
        let (line, reason) = err_line("GEZDGNBVGY3T!OJQGEZDGNBVGY3TQOJQ\n\" TOTP_AUTH\n");
        assert_eq!(line, 1);
        assert!(reason.contains("column 13"), "{reason}");
        let (line, reason) = err_line("GEZDGNBVGY3TQOJQ=GEZDGNBVGY3TQOJQ\n\" TOTP_AUTH\n");
        assert_eq!(line, 1);
        assert!(reason.contains("column 18"), "{reason}");
    }

    #[test]
    fn empty_inputs() {
        assert!(matches!(err(""), ImportError::Format(_)));
        assert_eq!(err_line("\n\" TOTP_AUTH\n").0, 1);
        assert_eq!(err_line("   \n\" TOTP_AUTH\n").0, 1);
        assert!(matches!(
            err("\u{feff}GEZDGNBVGY3TQOJQ\n"),
            ImportError::Format(_)
        ));
    }

    #[test]
    fn no_usable_mode() {
        for text in [
            format!("{B32}\n87654321\n"),
            format!("{B32}\n\" HOTP_COUNTER 0\n"),
            format!("{B32}\n\" WINDOW_SIZE 3\n"),
        ] {
            let e = err(&text);
            assert!(matches!(e, ImportError::Format(_)), "{e:?}");
            assert!(e.to_string().contains("scratch codes"));
        }
    }

    #[test]
    fn option_value_errors_name_the_line() {
        let cases = [
            ("\" STEP_SIZE 0", "STEP_SIZE"),
            ("\" STEP_SIZE 61", "STEP_SIZE"),
            ("\" STEP_SIZE", "STEP_SIZE"),
            ("\" STEP_SIZE 30s", "STEP_SIZE"),
            ("\" WINDOW_SIZE 0", "WINDOW_SIZE"),
            ("\" WINDOW_SIZE 101", "WINDOW_SIZE"),
            ("\" WINDOW_SIZE -3", "WINDOW_SIZE"),
            ("\" HOTP_COUNTER", "HOTP_COUNTER"),
            ("\" HOTP_COUNTER -1", "HOTP_COUNTER"),
            ("\" HOTP_COUNTER 1 2", "HOTP_COUNTER"),
            ("\" DISALLOW_REUSE 1 x 3", "DISALLOW_REUSE"),
            ("\" RATE_LIMIT 3", "RATE_LIMIT"),
            ("\" RATE_LIMIT 0 30", "RATE_LIMIT"),
            ("\" RATE_LIMIT 101 30", "RATE_LIMIT"),
            ("\" RATE_LIMIT 3 3601", "RATE_LIMIT"),
            ("\" RATE_LIMIT 3 30 17x", "RATE_LIMIT"),
            ("\" TIME_SKEW", "TIME_SKEW"),
            ("\" TIME_SKEW 1.5", "TIME_SKEW"),
            ("\" TOTP_AUTH yes", "TOTP_AUTH"),
        ];
        for (option, name) in cases {
            let text = format!("{B32}\n\" TOTP_AUTH_X\n{option}\n87654321\n");
            let (line, reason) = err_line(&text);
            assert_eq!(line, 3, "{option}");
            assert!(reason.contains(name), "{option}: {reason}");
        }
    }

    #[test]
    fn repeated_option() {
        let (line, reason) = err_line(&format!(
            "{B32}\n\" WINDOW_SIZE 3\n\" TOTP_AUTH\n\" WINDOW_SIZE 17\n"
        ));
        assert_eq!(line, 4);
        assert!(reason.contains("line 2"), "{reason}");
    }

    #[test]
    fn bad_scratch_codes() {
        for bad in [
            "1234567",
            "123456789",
            "01234567",
            " 12345678",
            "12345678 ",
            "1234 5678",
            "abcdefgh",
            "# comment",
            "   ",
        ] {
            let text = format!("{B32}\n\" TOTP_AUTH\n87654321\n\n{bad}\n");
            let (line, reason) = err_line(&text);
            assert_eq!(line, 5, "{bad:?}");
            assert!(reason.contains("scratch code"), "{reason}");
            // Nothing of the refused line (perhaps a mistyped code) is quoted.
            for token in bad.split_whitespace() {
                assert!(!reason.contains(token), "{bad:?}: {reason}");
            }
        }
    }

    #[test]
    fn interleaved_options_and_scratch_codes() {
        let ga = parse(&format!(
            "{B32}\n87654321\n\" TOTP_AUTH\n\n12345678\n\" WINDOW_SIZE 5\n"
        ));
        assert_eq!(ga.scratch_codes.len(), 2);
        assert_eq!(ga.window_size, Some(5));
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let ga = parse(&format!("{B32}\n\" TOTP_AUTH\n87654321\n12345678\n"));
        let shown = format!("{ga:?}");
        assert!(!shown.contains(B32));
        assert!(!shown.contains("87654321"));
        assert!(!shown.contains("12345678"));
        // The raw secret bytes as Vec<u8> Debug would print them.
        assert!(!shown.contains("49, 50, 51"));
        assert!(shown.contains("secret: <redacted>"), "{shown}");
        assert!(
            shown.contains("scratch_codes: [<redacted>, <redacted>]"),
            "{shown}"
        );
        let cloned = ga.clone();
        assert_eq!(cloned.secret, ga.secret);
    }
}
