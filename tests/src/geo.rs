//! Location databases for end-to-end tests: the files the repository's
//! generator writes (tests/geoip/make-test-mmdb.pl, whose header has the
//! mapping: 192.0.2.0/25 Paris, 192.0.2.128/25 Paris with a 500 km radius,
//! 198.51.100.0/24 Sydney, 203.0.113.0/25 New York, 2001:db8::/33 Berlin;
//! 203.0.113.128/25 and 2001:db8:8000::/33 unknown), in a root-owned
//! directory as stepupd requires of a database.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary directory (root's, 0755) holding the generated files:
/// city.mmdb, country.mmdb, asn.mmdb, asn-ipv4.mmdb, enterprise.mmdb,
/// anonymous.mmdb, city-moved.mmdb.
pub struct GeoDbs {
    pub dir: tempfile::TempDir,
}

impl GeoDbs {
    pub fn generate() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-geoip-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let generator =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/geoip/make-test-mmdb.pl");
        let out = Command::new("perl")
            .arg(&generator)
            .arg(dir.path())
            .output()
            .expect("perl");
        assert!(
            out.status.success(),
            "make-test-mmdb.pl failed (apt-get install libmaxmind-db-writer-perl): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `[geoip]` section naming `database` (and `asn_database`) here.
    pub fn section(&self, database: &str, asn_database: Option<&str>) -> String {
        let mut text = format!(
            "[geoip]\ndatabase = \"{}\"\n",
            self.path(database).display()
        );
        if let Some(asn) = asn_database {
            text.push_str(&format!(
                "asn_database = \"{}\"\n",
                self.path(asn).display()
            ));
        }
        text
    }

    /// Puts `bytes` at `name` the way geoipupdate does: a new file (0644)
    /// written beside it, then renamed into place.
    pub fn replace_with(&self, name: &str, bytes: &[u8]) {
        let tmp = self.path(&format!("{name}.new"));
        fs::write(&tmp, bytes).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// The bytes of one of the generated files.
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap()
    }
}
