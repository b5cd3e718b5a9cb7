use std::fs::Metadata;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::Reader;
use memmap2::Mmap;
use serde::Deserialize;

use crate::addr::normalize;
use crate::error::GeoError;
use crate::map::map_read_only;
use crate::trust::open_trusted;

/// What an address is known to be, as far as the databases say. Every field
/// is `None` for an address no database knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    /// ISO 3166-1 alpha-2, as the database writes it (`"FR"`): the country
    /// the address is located in (not the one it is registered to).
    pub country: Option<String>,
    /// The city's English name (`names.en`), City editions only.
    pub city: Option<String>,
    /// (latitude, longitude) in degrees, City editions only.
    pub coordinates: Option<(f64, f64)>,
    /// How far from `coordinates` the address may really be (the database's
    /// `location.accuracy_radius`).
    pub accuracy_radius_km: Option<u16>,
    /// The AS number: from the ASN database if one is configured, else from
    /// the City file's `traits` (GeoIP2 Enterprise / DB-IP Location+ISP).
    pub asn: Option<u32>,
    pub as_org: Option<String>,
}

/// The kinds of file stepup reads, told apart by the metadata's
/// `database_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// Country, city, coordinates (GeoLite2-City, GeoIP2-City*,
    /// GeoIP2-Enterprise, DBIP-City-Lite, "DBIP-Location (compat=City)" …).
    City,
    /// Country only (GeoLite2-Country, GeoIP2-Country, DBIP-Country-Lite …).
    Country,
    /// AS number and organisation (GeoLite2-ASN, GeoIP2-ISP,
    /// "DBIP-ASN-Lite (compat=GeoLite2-ASN)" …).
    Asn,
}

/// Which `Edition`s a configured slot accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// `[geoip] database`: City or Country.
    Location,
    /// `[geoip] asn_database`.
    Asn,
}

impl Slot {
    fn wanted(self) -> &'static str {
        match self {
            Slot::Location => "a City or Country edition (e.g. GeoLite2-City, GeoLite2-Country)",
            Slot::Asn => "an ASN database (e.g. GeoLite2-ASN)",
        }
    }
}

impl Edition {
    /// Classifies a `database_type` by its words (split at `-`, space,
    /// parentheses and `=`), as MaxMind and DB-IP name their files; an
    /// in-house file is accepted if its type is named the same way.
    fn of(database_type: &str, slot: Slot) -> Option<Edition> {
        let has = |word: &str| type_has_word(database_type, word);
        match slot {
            Slot::Location if has("City") || has("Enterprise") => Some(Edition::City),
            Slot::Location if has("Country") => Some(Edition::Country),
            Slot::Asn if has("ASN") || has("ISP") => Some(Edition::Asn),
            _ => None,
        }
    }
}

/// Does a `database_type` have this word (split at `-`, space, parentheses
/// and `=`)?
fn type_has_word(database_type: &str, word: &str) -> bool {
    database_type
        .split(['-', ' ', '(', ')', '='])
        .any(|w| w == word)
}

/// Identifies the file behind a path: a replaced file (a new inode), one
/// rewritten in place (size, mtime) and a changed owner or mode (ctime) all
/// differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    pub(crate) fn of(meta: &Metadata) -> Self {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One database file, checked, mapped and with valid metadata.
pub struct OpenedDatabase {
    path: PathBuf,
    edition: Edition,
    fingerprint: Fingerprint,
    reader: Reader<Mmap>,
}

impl std::fmt::Debug for OpenedDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedDatabase")
            .field("path", &self.path)
            .field("edition", &self.edition)
            .field("database_type", &self.database_type())
            .finish_non_exhaustive()
    }
}

impl OpenedDatabase {
    pub(crate) fn open(path: &Path, slot: Slot) -> Result<Self, GeoError> {
        let (file, meta) = open_trusted(path)?;
        if meta.len() == 0 {
            return Err(GeoError::Empty {
                path: path.to_owned(),
            });
        }
        let map = map_read_only(&file).map_err(|source| GeoError::Io {
            path: path.to_owned(),
            source,
        })?;
        let reader = Reader::from_source(map).map_err(|source| GeoError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        let database_type = &reader.metadata().database_type;
        let edition = Edition::of(database_type, slot).ok_or_else(|| GeoError::WrongType {
            path: path.to_owned(),
            found: database_type.clone(),
            wanted: slot.wanted(),
        })?;
        Ok(OpenedDatabase {
            path: path.to_owned(),
            edition,
            fingerprint: Fingerprint::of(&meta),
            reader,
        })
    }

    /// The path it was opened by (as configured, before symlinks).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn edition(&self) -> Edition {
        self.edition
    }

    /// The metadata's `database_type`, e.g. `"GeoLite2-City"`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built (Unix seconds), to show its age.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Walks the whole file (search tree, every record): for `check`, which
    /// can afford it. Opening only reads the metadata; a damaged record is
    /// otherwise found by the lookup that reaches it.
    pub fn verify(&self) -> Result<(), GeoError> {
        self.reader.verify().map_err(|source| GeoError::Invalid {
            path: self.path.clone(),
            source,
        })
    }

    /// The record for `ip`, `None` if the file has none (an IPv6 address in
    /// an IPv4-only file has none).
    fn record(&self, ip: IpAddr) -> Result<Option<Record<'_>>, GeoError> {
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let lookup_error = |source| GeoError::Lookup {
            path: self.path.clone(),
            source,
        };
        self.reader
            .lookup(ip)
            .and_then(|found| found.decode::<Record<'_>>())
            .map_err(lookup_error)
    }
}

/// The fields stepup reads from a record, borrowed from the map: decoding
/// allocates nothing; only the strings kept in `Location` are copied. One
/// shape covers all editions (GeoIP2/GeoLite2 City and Country, Enterprise,
/// ASN and ISP): absent parts stay `None`, unknown keys are skipped.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
    #[serde(borrow, default)]
    city: Option<City<'a>>,
    #[serde(default)]
    location: Option<Coordinates>,
    #[serde(borrow, default)]
    traits: Option<AutonomousSystem<'a>>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct City<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Coordinates {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize)]
struct AutonomousSystem<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

impl Record<'_> {
    /// AS number and organisation, top-level (ASN/ISP files) or in `traits`
    /// (Enterprise-style files).
    fn autonomous_system(&self) -> (Option<u32>, Option<&str>) {
        match (&self.autonomous_system_number, &self.traits) {
            (Some(n), _) => (Some(*n), self.autonomous_system_organization),
            (None, Some(t)) => (t.autonomous_system_number, t.autonomous_system_organization),
            (None, None) => (None, None),
        }
    }
}

/// The configured databases: a City or Country edition, and optionally an
/// ASN file. Cheap to clone (the maps are shared).
#[derive(Debug, Clone)]
pub struct GeoDatabases {
    pub(crate) location: Arc<OpenedDatabase>,
    pub(crate) asn: Option<Arc<OpenedDatabase>>,
}

impl GeoDatabases {
    /// Opens (checks and maps) the City/Country file and the optional ASN
    /// file. A file that is untrusted, empty, truncated, garbage or of
    /// another type is refused with an error naming it.
    pub fn open(location_path: &Path, asn_path: Option<&Path>) -> Result<Self, GeoError> {
        let location = Arc::new(OpenedDatabase::open(location_path, Slot::Location)?);
        let asn = match asn_path {
            Some(path) => Some(Arc::new(OpenedDatabase::open(path, Slot::Asn)?)),
            None => None,
        };
        Ok(GeoDatabases { location, asn })
    }

    /// The City or Country file.
    pub fn location_database(&self) -> &OpenedDatabase {
        &self.location
    }

    pub fn asn_database(&self) -> Option<&OpenedDatabase> {
        self.asn.as_deref()
    }

    /// Do lookups give AS numbers? With an ASN file, yes. Without one, only
    /// if the City file is of a kind that carries them under `traits`: its
    /// type has the word `Enterprise` or `ISP` (GeoIP2-Enterprise, DB-IP's
    /// Location+ISP files). GeoLite2-City and GeoIP2-City do not: known
    /// from the type, not from the records, which may simply lack them.
    pub fn carries_asn(&self) -> bool {
        let city_type = self.location.database_type();
        self.asn.is_some()
            || type_has_word(city_type, "Enterprise")
            || type_has_word(city_type, "ISP")
    }

    /// Verifies every file completely (see [`OpenedDatabase::verify`]).
    pub fn verify(&self) -> Result<(), GeoError> {
        self.location.verify()?;
        self.asn.as_ref().map_or(Ok(()), |asn| asn.verify())
    }

    /// Looks `ip` up (an IPv4-mapped IPv6 address as its IPv4 address). An
    /// address no file knows gives an empty `Location`; an error means a
    /// file is damaged. Does not apply [`crate::is_non_public`]: callers do.
    pub fn lookup(&self, ip: IpAddr) -> Result<Location, GeoError> {
        let ip = normalize(ip);
        let mut found = Location::default();
        if let Some(record) = self.location.record(ip)? {
            found.country = record
                .country
                .as_ref()
                .and_then(|c| c.iso_code)
                .map(str::to_owned);
            found.city = record
                .city
                .as_ref()
                .and_then(|c| c.names.as_ref())
                .and_then(|n| n.en)
                .map(str::to_owned);
            if let Some(loc) = &record.location {
                found.coordinates = loc.latitude.zip(loc.longitude);
                found.accuracy_radius_km = loc.accuracy_radius;
            }
            let (asn, org) = record.autonomous_system();
            found.asn = asn;
            found.as_org = org.map(str::to_owned);
        }
        if let Some(asn_db) = &self.asn {
            let (asn, org) = match asn_db.record(ip)? {
                Some(record) => {
                    let (n, o) = record.autonomous_system();
                    (n, o.map(str::to_owned))
                }
                None => (None, None),
            };
            // The ASN file is authoritative for AS data when configured.
            found.asn = asn;
            found.as_org = org;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_are_told_apart_by_the_words_of_their_type() {
        let loc = |t| Edition::of(t, Slot::Location);
        let asn = |t| Edition::of(t, Slot::Asn);
        assert_eq!(loc("GeoLite2-City"), Some(Edition::City));
        assert_eq!(loc("GeoIP2-City-Europe"), Some(Edition::City));
        assert_eq!(loc("GeoIP2-Enterprise"), Some(Edition::City));
        assert_eq!(loc("DBIP-City-Lite"), Some(Edition::City));
        assert_eq!(loc("DBIP-Location (compat=City)"), Some(Edition::City));
        assert_eq!(loc("GeoLite2-Country"), Some(Edition::Country));
        assert_eq!(loc("DBIP-Country-Lite"), Some(Edition::Country));
        assert_eq!(asn("GeoLite2-ASN"), Some(Edition::Asn));
        assert_eq!(asn("GeoIP2-ISP"), Some(Edition::Asn));
        assert_eq!(
            asn("DBIP-ASN-Lite (compat=GeoLite2-ASN)"),
            Some(Edition::Asn)
        );
        for other in [
            "GeoIP2-Anonymous-IP",
            "GeoIP2-Connection-Type",
            "GeoIP2-Domain",
            "Cityscape",
            "",
        ] {
            assert_eq!(loc(other), None, "{other}");
            assert_eq!(asn(other), None, "{other}");
        }
        // Each slot takes only its own kind.
        assert_eq!(loc("GeoLite2-ASN"), None);
        assert_eq!(asn("GeoLite2-City"), None);
    }
}
