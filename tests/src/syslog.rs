//! Catch what the module sends to syslog: bind our own datagram socket at
//! /dev/log for the duration of a test, moving any existing one aside and
//! putting it back afterwards. Tests that do this are serialized with a lock
//! file, since /dev/log is one per machine.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEV_LOG: &str = "/dev/log";
const SAVED: &str = "/dev/log.stepup-test-saved";
const LOCK: &str = "/run/stepup-test-syslog.lock";

pub struct SyslogCapture {
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
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
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        // Drain continuously: every daemon of every test running meanwhile
        // logs here too, and a full queue would drop the lines under test.
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16384];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                        received.lock().unwrap().push(line);
                    }
                }
            })
        };
        Self {
            received,
            stop,
            reader: Some(reader),
            _lock: lock,
            moved_aside,
        }
    }

    /// Stop reading: the queue fills up, as with a stuck syslog daemon.
    pub fn stall(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Every message received within `wait` (returns early once one matches `until`).
    pub fn messages(&self, wait: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let seen = self.received.lock().unwrap().clone();
            if seen.iter().any(|l| until(l)) || start.elapsed() >= wait {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SyslogCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let _ = fs::remove_file(DEV_LOG);
        if self.moved_aside {
            let _ = fs::rename(SAVED, DEV_LOG);
        }
    }
}
