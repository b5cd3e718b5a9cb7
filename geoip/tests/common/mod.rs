//! Test databases: written by the generator kept in the repository
//! (tests/geoip/make-test-mmdb.pl, whose header has the mapping table).
#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A temporary directory holding city.mmdb, country.mmdb, asn.mmdb,
/// asn-ipv4.mmdb, enterprise.mmdb, anonymous.mmdb and city-moved.mmdb.
pub struct TestDbs {
    pub dir: TempDir,
}

impl TestDbs {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn generator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/geoip/make-test-mmdb.pl")
}

/// Runs the generator into a new temporary directory. The files must be
/// root-owned to be trusted, so these tests run as root (as the project's
/// test suite does).
pub fn generate() -> TestDbs {
    let dir = tempfile::tempdir().expect("temporary directory");
    let owner = std::fs::metadata(dir.path()).unwrap().uid();
    assert_eq!(
        owner, 0,
        "the geoip tests must run as root: databases are only trusted when root owns them"
    );
    write_into(dir.path());
    TestDbs { dir }
}

pub fn write_into(dir: &Path) {
    let out = match Command::new("perl").arg(generator()).arg(dir).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run perl ({e}): install perl and libmaxmind-db-writer-perl (scripts/install-deps.sh)"
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Can't locate MaxMind/DB/Writer") {
        panic!(
            "the Perl module MaxMind::DB::Writer is missing: apt-get install libmaxmind-db-writer-perl (scripts/install-deps.sh)"
        );
    }
    assert!(
        out.status.success(),
        "make-test-mmdb.pl failed ({}): {stderr}",
        out.status
    );
}

pub fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("test address")
}

/// Puts a copy of `from` at `to` the way geoipupdate does: write a new file
/// beside it, then rename it into place.
pub fn replace_by_rename(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Writes `bytes` as a new file renamed over `to`, mode 0644.
pub fn replace_with_bytes(bytes: &[u8], to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    set_mode(&tmp, 0o644);
    std::fs::rename(&tmp, to).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Not a database: bytes from a fixed pseudo-random sequence.
pub fn garbage(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
