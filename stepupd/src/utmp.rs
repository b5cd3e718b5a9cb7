//! Where a terminal's login session came from, read from utmp.
//!
//! `sudo` and `su` report no PAM_RHOST even inside an ssh session. utmp is
//! written by root-run login services (sshd, login) — unlike
//! `SSH_CONNECTION`, which the user controls — so the daemon looks up the
//! attempt's tty there for the session's source address and start time.
//! The file is trusted only if owned by root and not writable by others
//! (Debian's is root:utmp 0664).
//!
//! Read by hand, not with `utmp-rs` 0.4 (nor `utmp-classic`, which reads
//! OpenBSD's format): `utmp-rs` turns a record whose line, user or host is
//! not UTF-8, or whose type it does not know, into an error that does not say
//! which tty the record was for. A lookup could then neither skip it (an
//! older record for the same tty would pass for the live one) nor use it, and
//! an unusable utmp makes a remote session look local; it also refuses the
//! partly written last record of a file being rewritten. Here a record is
//! four fixed fields, read lossily, and a short tail is ignored.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// glibc's `struct utmp` on Linux (x86_64 and the other 64-bit ABIs that
/// keep 32-bit time fields for utmp compatibility): 384 bytes.
pub const RECORD_SIZE: usize = 384;
const USER_PROCESS: i16 = 7;
const LINE: std::ops::Range<usize> = 8..40;
const USER: std::ops::Range<usize> = 44..76;
const HOST: std::ops::Range<usize> = 76..332;
const TV_SEC: std::ops::Range<usize> = 340..344;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    pub user: String,
    /// Remote host as the login service recorded it; empty for a local login.
    pub host: String,
    /// Unix time the session began.
    pub started: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum UtmpError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("{0}: not trusted ({1})")]
    Untrusted(String, String),
}

fn text(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The live login session on `tty` (`/dev/pts/3`, `pts/3`, `tty1`), if any.
pub fn session_for_tty(path: &Path, tty: &str) -> Result<Option<LoginSession>, UtmpError> {
    let line = tty.strip_prefix("/dev/").unwrap_or(tty);
    if line.is_empty() || line.len() > LINE.len() {
        return Ok(None);
    }
    let shown = path.display().to_string();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(UtmpError::Io(shown, e)),
    };
    if meta.uid() != 0 || meta.mode() & 0o002 != 0 {
        return Err(UtmpError::Untrusted(
            shown,
            format!(
                "owner uid {}, mode {:04o}",
                meta.uid(),
                meta.mode() & 0o7777
            ),
        ));
    }
    let data = fs::read(path).map_err(|e| UtmpError::Io(shown, e))?;
    Ok(find(&data, line))
}

/// The last live USER_PROCESS record for `line` in raw utmp bytes.
pub fn find(data: &[u8], line: &str) -> Option<LoginSession> {
    data.chunks_exact(RECORD_SIZE)
        .rev()
        .find(|r| i16::from_ne_bytes([r[0], r[1]]) == USER_PROCESS && text(&r[LINE]) == line)
        .map(|r| LoginSession {
            user: text(&r[USER]),
            host: text(&r[HOST]),
            started: i64::from(i32::from_ne_bytes([
                r[TV_SEC.start],
                r[TV_SEC.start + 1],
                r[TV_SEC.start + 2],
                r[TV_SEC.start + 3],
            ])),
        })
}

/// A utmp record, for tests and fixtures.
pub fn record(kind: i16, line: &str, user: &str, host: &str, started: i32) -> Vec<u8> {
    let mut r = vec![0u8; RECORD_SIZE];
    r[0..2].copy_from_slice(&kind.to_ne_bytes());
    let put = |r: &mut Vec<u8>, range: std::ops::Range<usize>, s: &str| {
        let n = s.len().min(range.len());
        r[range.start..range.start + n].copy_from_slice(&s.as_bytes()[..n]);
    };
    put(&mut r, LINE, line);
    put(&mut r, USER, user);
    put(&mut r, HOST, host);
    r[TV_SEC].copy_from_slice(&started.to_ne_bytes());
    r
}

/// A host field that names an X display (`:0`, `:0.0`) is a local session.
pub fn is_remote_host(host: &str) -> bool {
    !host.is_empty() && !host.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_live_session_for_a_tty() {
        let mut data = record(
            USER_PROCESS,
            "pts/1",
            "alice",
            "198.51.100.4",
            1_700_000_000,
        );
        data.extend(record(8, "pts/2", "bob", "203.0.113.9", 1_700_000_100)); // DEAD_PROCESS
        data.extend(record(USER_PROCESS, "pts/2", "carol", "", 1_700_000_200));
        let s = find(&data, "pts/1").unwrap();
        assert_eq!(
            (s.user.as_str(), s.host.as_str(), s.started),
            ("alice", "198.51.100.4", 1_700_000_000)
        );
        assert_eq!(find(&data, "pts/2").unwrap().user, "carol");
        assert!(find(&data, "pts/9").is_none());
        // A truncated trailing record is ignored, not misread.
        data.extend_from_slice(&[7, 0, 0]);
        assert!(find(&data, "pts/1").is_some());
    }

    #[test]
    fn untrusted_or_missing_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("utmp");
        assert!(session_for_tty(&path, "/dev/pts/1").unwrap().is_none());
        fs::write(&path, record(USER_PROCESS, "pts/1", "a", "h", 1)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert!(matches!(
                session_for_tty(&path, "/dev/pts/1"),
                Err(UtmpError::Untrusted(..))
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
            assert_eq!(
                session_for_tty(&path, "/dev/pts/1").unwrap().unwrap().host,
                "h"
            );
        }
        assert!(is_remote_host("10.0.0.1") && !is_remote_host(":0") && !is_remote_host(""));
    }
}
