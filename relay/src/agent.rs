//! The person's ssh-agent, for the `ssh_agent_key` method: the socket named
//! by `SSH_AUTH_SOCK`, connected with the calling user's rights.
//!
//! `SSH_AUTH_SOCK` comes from the caller's environment, which the user
//! controls, and a relay runs as root inside sudo or su. Connecting as root
//! to a path the user names would make us a confused deputy (root's rights
//! to reach another user's agent, or a root-only socket). So the connect
//! runs with the filesystem identity of the real (calling) user — their
//! uid and gid for permission checks, as `setfsuid`/`setfsgid` set them for
//! this thread — and then returns to root. The daemon then checks who runs
//! the listening end (`SO_PEERCRED`) before it sends anything.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::{Gid, Uid, getgid, getuid, setfsgid, setfsuid};

use crate::flow::AgentSource;

/// `SSH_AUTH_SOCK` of this process, connected as the calling user.
pub struct CallerAgent;

impl AgentSource for CallerAgent {
    fn connect(&mut self) -> Option<OwnedFd> {
        let path = auth_sock()?;
        connect_as_caller(Path::new(&path)).ok().map(OwnedFd::from)
    }
}

/// `SSH_AUTH_SOCK` as the program was started with it. sudo clears its own
/// environment before PAM runs, so the value is read from the environment
/// block the process was exec'ed with (`/proc/self/environ`) when `getenv`
/// has none. Either way it is the caller's word: the connect and the
/// daemon's peer check are what make it safe to use.
fn auth_sock() -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    if let Some(path) = std::env::var_os("SSH_AUTH_SOCK") {
        return Some(path);
    }
    let initial = std::fs::read("/proc/self/environ").ok()?;
    initial
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"SSH_AUTH_SOCK="))
        .filter(|value| !value.is_empty())
        .map(|value| std::ffi::OsString::from_vec(value.to_vec()))
}

/// Connect to `path` with the real uid/gid as the filesystem identity, then
/// restore the previous one (the calling thread only; a relay's thread).
pub fn connect_as_caller(path: &Path) -> std::io::Result<UnixStream> {
    let (uid, gid) = (getuid(), getgid());
    // Group first: once the fsuid is not root, the fsgid cannot change.
    let old_gid = setfsgid(gid);
    let old_uid = setfsuid(uid);
    let connected = UnixStream::connect(path);
    setfsuid(old_uid);
    setfsgid(old_gid);
    // setfsuid reports failure only by not changing; an invalid id asks
    // for the current values without changing them.
    let (now_uid, now_gid) = (
        setfsuid(Uid::from_raw(u32::MAX)),
        setfsgid(Gid::from_raw(u32::MAX)),
    );
    if now_uid != old_uid || now_gid != old_gid {
        return Err(std::io::Error::other(
            "could not restore the filesystem identity",
        ));
    }
    connected
}
