//! Catch what the module sends to syslog: bind our own datagram socket at
//! /dev/log for the duration of a test, moving any existing one aside and
//! putting it back afterwards. Tests that do this are serialized with a lock
//! file, since /dev/log is one per machine.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

const DEV_LOG: &str = "/dev/log";
const SAVED: &str = "/dev/log.stepup-test-saved";
const LOCK: &str = "/run/stepup-test-syslog.lock";

pub struct SyslogCapture {
    socket: UnixDatagram,
    _lock: nix::fcntl::Flock<fs::File>,
    moved_aside: bool,
}

impl SyslogCapture {
    pub fn start() -> Self {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .unwrap();
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap();
        let dev_log = Path::new(DEV_LOG);
        let moved_aside = dev_log.symlink_metadata().is_ok();
        if moved_aside {
            fs::rename(DEV_LOG, SAVED).unwrap();
        }
        let socket = UnixDatagram::bind(DEV_LOG).unwrap();
        socket.set_nonblocking(true).unwrap();
        Self {
            socket,
            _lock: lock,
            moved_aside,
        }
    }

    /// Every message received within `wait` (returns early once one matches `until`).
    pub fn messages(&self, wait: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        while start.elapsed() < wait {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let done = until(&line);
                    out.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        out
    }
}

impl Drop for SyslogCapture {
    fn drop(&mut self) {
        let _ = fs::remove_file(DEV_LOG);
        if self.moved_aside {
            let _ = fs::rename(SAVED, DEV_LOG);
        }
    }
}
