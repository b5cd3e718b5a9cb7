//! The databases in use, following their files: geoipupdate (like `mv` and
//! `install`) puts a new file in place by rename, and the daemon must use it
//! without a restart, while a bad new file must not take away the good one.
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::db::{Fingerprint, GeoDatabases, Location, OpenedDatabase, Slot};
use crate::error::GeoError;

/// How often [`LiveGeo::refresh`] looks at the files: on every call. A
/// `stat` of a local path costs ~0.35 µs (benches/lookup.rs), so a decision
/// that refreshes both files and looks an address up stays well under its
/// 5 µs budget, and the first decision after a rename uses the new file (no
/// window in which the old one answers, nothing for tests to wait for).
/// [`LiveGeo::with_check_interval`] spaces the checks out, e.g. for a
/// database on a network file system, where a `stat` can cost a round trip.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::ZERO;

/// Something the daemon should record after a refresh or reload.
#[derive(Debug)]
pub enum GeoEvent {
    /// A replaced file opened and is now in use.
    Reloaded {
        path: PathBuf,
        database_type: String,
    },
    /// A file could not be used (missing, untrusted, empty, truncated,
    /// garbage, wrong type); the previous one stays in use. `refresh`
    /// reports each new file once; `reload` reports on every call.
    Unusable(GeoError),
}

/// What stood at a path when it was last tried and failed: the same file
/// (or the same absence) is not retried or reported again by `refresh`.
type Seen = Result<Fingerprint, io::ErrorKind>;

#[derive(Default)]
struct Failed {
    location: Option<Seen>,
    asn: Option<Seen>,
}

/// The configured databases, re-opened when their files are replaced.
/// Thread-safe: lookups read the current set without locking; one thread at
/// a time checks the files.
pub struct LiveGeo {
    location_path: PathBuf,
    asn_path: Option<PathBuf>,
    current: ArcSwap<GeoDatabases>,
    check_interval: Duration,
    started: Instant,
    /// Milliseconds after `started` before which `refresh` does nothing.
    next_check_ms: AtomicU64,
    failed: Mutex<Failed>,
}

impl LiveGeo {
    /// Opens the files; the first open must succeed (as for
    /// [`GeoDatabases::open`]). `refresh` checks for replacement on every
    /// call ([`DEFAULT_CHECK_INTERVAL`]).
    pub fn open(location_path: &Path, asn_path: Option<&Path>) -> Result<Self, GeoError> {
        let databases = GeoDatabases::open(location_path, asn_path)?;
        Ok(LiveGeo {
            location_path: location_path.to_owned(),
            asn_path: asn_path.map(Path::to_owned),
            current: ArcSwap::from_pointee(databases),
            check_interval: DEFAULT_CHECK_INTERVAL,
            started: Instant::now(),
            next_check_ms: AtomicU64::new(0),
            failed: Mutex::new(Failed::default()),
        })
    }

    /// Sets how often `refresh` looks at the files (zero: on every call).
    pub fn with_check_interval(mut self, interval: Duration) -> Self {
        self.check_interval = interval;
        self
    }

    /// The databases in use now (for `explain`: types, build dates).
    pub fn current(&self) -> Arc<GeoDatabases> {
        self.current.load_full()
    }

    /// Looks `ip` up in the databases in use now (see
    /// [`GeoDatabases::lookup`]). Does not look at the files: call
    /// [`refresh`](Self::refresh) before, e.g. once per decision.
    pub fn lookup(&self, ip: IpAddr) -> Result<Location, GeoError> {
        self.current.load().lookup(ip)
    }

    /// If the check interval has passed, looks whether a file was replaced
    /// (its path now names another file: device, inode, size, mtime or
    /// ctime differ) and opens the new one. A new file that opens replaces
    /// the old one (`Reloaded`); one that does not leaves the old one in use
    /// and is reported once (`Unusable`), not on every later call. Costs a
    /// `stat` per file when due, two atomic reads when not; allocates
    /// nothing when there is nothing to report.
    pub fn refresh(&self) -> Vec<GeoEvent> {
        if !self.check_is_due() {
            return Vec::new();
        }
        self.check_files(false)
    }

    /// For SIGHUP / `Reload`: looks at the files now, whatever the interval,
    /// and reports every file that cannot be used, even one reported before.
    pub fn reload(&self) -> Vec<GeoEvent> {
        self.check_files(true)
    }

    /// True for one caller once the interval has passed.
    fn check_is_due(&self) -> bool {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_check_ms.load(Ordering::Relaxed);
        if now_ms < due {
            return false;
        }
        let interval_ms = u64::try_from(self.check_interval.as_millis()).unwrap_or(u64::MAX);
        let next = now_ms.saturating_add(interval_ms);
        // Only the thread that moves the deadline checks; the others go on
        // with the databases in use.
        self.next_check_ms
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    fn check_files(&self, report_again: bool) -> Vec<GeoEvent> {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = self.current.load_full();
        let mut events = Vec::new();
        let location = follow(
            &self.location_path,
            Slot::Location,
            &in_use.location,
            &mut failed.location,
            report_again,
            &mut events,
        );
        let asn = match (&self.asn_path, &in_use.asn) {
            (Some(path), Some(db)) => Some(follow(
                path,
                Slot::Asn,
                db,
                &mut failed.asn,
                report_again,
                &mut events,
            )),
            _ => in_use.asn.clone(),
        };
        let replaced = !Arc::ptr_eq(&location, &in_use.location)
            || match (&asn, &in_use.asn) {
                (Some(new), Some(old)) => !Arc::ptr_eq(new, old),
                _ => false,
            };
        if replaced {
            self.current.store(Arc::new(GeoDatabases { location, asn }));
        }
        events
    }
}

/// The database to use for one path: `in_use` unless the path now names a
/// new file that opens.
fn follow(
    path: &Path,
    slot: Slot,
    in_use: &Arc<OpenedDatabase>,
    last_failure: &mut Option<Seen>,
    report_again: bool,
    events: &mut Vec<GeoEvent>,
) -> Arc<OpenedDatabase> {
    let seen: Seen = fs::metadata(path)
        .map(|meta| Fingerprint::of(&meta))
        .map_err(|e| e.kind());
    if seen == Ok(in_use.fingerprint()) {
        // Back to (or still) the file in use: a later bad file is news again.
        *last_failure = None;
        return Arc::clone(in_use);
    }
    if !report_again && last_failure.as_ref() == Some(&seen) {
        return Arc::clone(in_use);
    }
    match OpenedDatabase::open(path, slot) {
        Ok(db) => {
            *last_failure = None;
            events.push(GeoEvent::Reloaded {
                path: path.to_owned(),
                database_type: db.database_type().to_owned(),
            });
            Arc::new(db)
        }
        Err(error) => {
            *last_failure = Some(seen);
            events.push(GeoEvent::Unusable(error));
            Arc::clone(in_use)
        }
    }
}
