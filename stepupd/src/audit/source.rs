//! Where `stepupctl audit verify` and `audit report` read events from: the
//! journal (through `journalctl -o json`) or a `journalctl -o json` export,
//! with `--since` / `--until` applied to either.

use std::path::Path;
use std::process::Command;

use jiff::{SignedDuration, Timestamp, Zoned};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("running journalctl: {0}")]
    Journalctl(String),
    #[error(
        "{flag} {value:?}: expected a time such as \"2026-11-01\", \"2026-11-01 08:00\", an RFC 3339 timestamp, \"-7d\", \"-7 days\", \"-12h\", \"today\" or \"yesterday\""
    )]
    BadTime { flag: &'static str, value: String },
}

/// What to read.
pub struct Selection<'a> {
    pub file: Option<&'a Path>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

/// The events as `journalctl -o json` lines, oldest first: stepupd's and,
/// with `with_module`, pam_stepup's.
pub fn read(selection: &Selection<'_>, with_module: bool) -> Result<Vec<String>, SourceError> {
    // Parse both bounds first: a typo is refused before anything is read.
    let since = selection
        .since
        .map(|s| parse_time("--since", s))
        .transpose()?;
    let until = selection
        .until
        .map(|u| parse_time("--until", u))
        .transpose()?;
    let text = match selection.file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| SourceError::Read {
            path: path.display().to_string(),
            source,
        })?,
        None => journalctl(selection.namespace, since, until, with_module)?,
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| within(l, since, until))
        .map(str::to_owned)
        .collect())
}

fn journalctl(
    namespace: Option<&str>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    with_module: bool,
) -> Result<String, SourceError> {
    let mut command = Command::new("journalctl");
    command.args(["-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=stepupd"]);
    if with_module {
        // Two matches on one field are alternatives.
        command.arg("SYSLOG_IDENTIFIER=pam_stepup");
    }
    if let Some(namespace) = namespace {
        command.arg(format!("--namespace={namespace}"));
    }
    // `@SECONDS` is systemd.time(7)'s form of an absolute time.
    if let Some(since) = since {
        command.arg(format!("--since=@{}", since.as_second()));
    }
    if let Some(until) = until {
        command.arg(format!("--until=@{}", until.as_second() + 1));
    }
    let out = command
        .output()
        .map_err(|e| SourceError::Journalctl(e.to_string()))?;
    if !out.status.success() {
        return Err(SourceError::Journalctl(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Is the entry on this line inside the bounds (`__REALTIME_TIMESTAMP`,
/// microseconds)? A line without one is kept: the chain check judges it.
fn within(line: &str, since: Option<Timestamp>, until: Option<Timestamp>) -> bool {
    if since.is_none() && until.is_none() {
        return true;
    }
    let Some(at) = realtime(line) else {
        return true;
    };
    since.is_none_or(|s| at >= s) && until.is_none_or(|u| at <= u)
}

fn realtime(line: &str) -> Option<Timestamp> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let micros: i64 = value.get("__REALTIME_TIMESTAMP")?.as_str()?.parse().ok()?;
    Timestamp::from_microsecond(micros).ok()
}

/// A bound as journalctl takes most of them: an absolute time (local zone
/// unless it says otherwise), `today` / `yesterday` / `now`, or a relative
/// `-7d`, `-12h`, `-30m` before now.
pub fn parse_time(flag: &'static str, value: &str) -> Result<Timestamp, SourceError> {
    let bad = || SourceError::BadTime {
        flag,
        value: value.to_owned(),
    };
    let now = Zoned::now();
    let text = value.trim();
    let midnight = |z: Zoned| z.start_of_day().map(|d| d.timestamp()).map_err(|_| bad());
    match text {
        "now" => return Ok(now.timestamp()),
        "today" => return midnight(now),
        "yesterday" => return midnight(now.yesterday().map_err(|_| bad())?),
        _ => {}
    }
    if let Some(ago) = text.strip_prefix('-') {
        // jiff's friendly format: "7d", "7 days", "1h30m", "12 hours".
        let span: jiff::Span = ago.trim().parse().map_err(|_| bad())?;
        let span: SignedDuration = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|_| bad())?;
        return now.timestamp().checked_sub(span).map_err(|_| bad());
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let civil: jiff::civil::DateTime = text
        .parse()
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| bad())?;
    civil
        .to_zoned(now.time_zone().clone())
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_journalctl_would_take_them() {
        let now = Timestamp::now();
        let week = parse_time("--since", "-7d").expect("relative");
        let diff = now.duration_since(week).as_secs();
        assert!((7 * 86_400 - 5..=7 * 86_400 + 5).contains(&diff), "{diff}");
        assert!(parse_time("--since", "-12h").is_ok());
        let spelled = parse_time("--since", "-7 days").expect("spelled out");
        assert!(spelled.duration_since(week).as_secs().abs() <= 5);
        assert!(parse_time("--since", "2026-11-01").is_ok());
        assert!(parse_time("--since", "2026-11-01 08:30").is_ok());
        assert_eq!(
            parse_time("--since", "2026-11-01T08:30:00Z").expect("rfc3339"),
            "2026-11-01T08:30:00Z".parse::<Timestamp>().expect("ts")
        );
        assert!(
            parse_time("--since", "yesterday").expect("y")
                < parse_time("--since", "today").expect("t")
        );
        for bad in ["last week", "-7 fortnights", "2026-13-01", ""] {
            let err = parse_time("--until", bad).expect_err(bad).to_string();
            assert!(err.starts_with("--until"), "{err}");
        }
    }

    #[test]
    fn bounds_keep_entries_inside_and_lines_without_a_time() {
        let line = |micros: i64| format!(r#"{{"__REALTIME_TIMESTAMP":"{micros}","MESSAGE":"x"}}"#);
        let t = |s: i64| Timestamp::from_second(s).expect("ts");
        assert!(within(&line(1_500_000_000), Some(t(1000)), Some(t(2000))));
        assert!(!within(&line(999_000_000), Some(t(1000)), None));
        assert!(!within(&line(2_001_000_000), None, Some(t(2000))));
        assert!(within("{\"MESSAGE\":\"no time\"}", Some(t(1000)), None));
    }
}
