//! The location databases in the daemon (`[geoip]`, docs/deploy.md): opened
//! at start and by `stepupctl check` with the configuration's positions in
//! their errors, followed when geoipupdate replaces a file (each lookup
//! first looks at the files, a `stat` each), re-read on reload, and turned
//! into the [`Place`] that location conditions read. Everything that goes
//! wrong with a file at run time is an audit event, never a failed attempt:
//! the previous database stays in use, an address whose lookup fails is an
//! unknown place.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use stepup_config::attempt::{GeoFacts, Place, PreviousAttempt, Travel};
use stepup_config::conditions::{needs_asn, needs_location};
use stepup_config::{Config, ConfigError, GeoipSettings};
use stepup_geoip::{GeoError, GeoEvent, LiveGeo, Location, Sighting, distance_km, is_non_public};

use crate::audit;

/// The configured databases, as the daemon uses them.
pub struct Geo {
    live: LiveGeo,
    settings: GeoipSettings,
    /// A lookup error was reported for the databases in use: a damaged
    /// file fails every lookup that reaches the damage, and one event per
    /// file says it (reset when a file is replaced).
    lookup_error_reported: AtomicBool,
}

impl Geo {
    /// Opens (checks and maps) the configured files. An error names the
    /// file and where the configuration names it.
    pub fn open(settings: &GeoipSettings) -> Result<Self, ConfigError> {
        let live = LiveGeo::open(&settings.database, settings.asn_database.as_deref())
            .map_err(|e| config_error(settings, &e))?;
        Ok(Self {
            live,
            settings: settings.clone(),
            lookup_error_reported: AtomicBool::new(false),
        })
    }

    /// Walks every record of every file (`stepupctl check`; the daemon
    /// does not, a 60 MB file takes a while).
    pub fn verify(&self) -> Result<(), ConfigError> {
        self.live
            .current()
            .verify()
            .map_err(|e| config_error(&self.settings, &e))
    }

    /// Refuses `asn_in` / `asn_not_in` when lookups cannot give AS numbers
    /// (no `asn_database`, and a City file whose type does not carry them).
    pub fn check_asn(&self, config: &Config) -> Result<(), ConfigError> {
        let databases = self.live.current();
        let Some((rule, key)) = config.first_rule_with(needs_asn) else {
            return Ok(());
        };
        if databases.carries_asn() {
            return Ok(());
        }
        let city = databases.location_database();
        Err(ConfigError::Invalid {
            location: rule.location(),
            message: format!(
                "rule {:?}: {key} needs AS numbers, and {} ({}) has none: set [geoip] asn_database (e.g. GeoLite2-ASN), or use a City file that carries them (GeoIP2-Enterprise)",
                rule.name,
                city.path().display(),
                city.database_type()
            ),
        })
    }

    /// Are these the files `settings` names?
    pub fn same_files(&self, settings: &GeoipSettings) -> bool {
        self.settings.database == settings.database
            && self.settings.asn_database == settings.asn_database
    }

    /// `/var/lib/GeoIP/GeoLite2-City.mmdb (GeoLite2-City, built
    /// 2024-01-01); …`: for `stepupctl status`.
    pub fn summary(&self) -> String {
        let databases = self.live.current();
        let shown: Vec<String> = [
            Some(databases.location_database()),
            databases.asn_database(),
        ]
        .into_iter()
        .flatten()
        .map(|db| {
            format!(
                "{} ({}, built {})",
                db.path().display(),
                db.database_type(),
                built(db)
            )
        })
        .collect();
        shown.join("; ")
    }

    /// One `geoip_loaded` event per file in use (start, a new `[geoip]`).
    fn announce(&self) {
        let databases = self.live.current();
        for db in [
            Some(databases.location_database()),
            databases.asn_database(),
        ]
        .into_iter()
        .flatten()
        {
            audit::event(
                "geoip_loaded",
                &[
                    ("path", &db.path().display().to_string()),
                    ("database_type", db.database_type()),
                    ("built", &built(db)),
                ],
            );
        }
    }

    /// Where `rhost` is. Looks at the files first (a replaced file is used
    /// from this lookup on); no answer is an error.
    pub fn place(&self, rhost: &str) -> Place {
        if rhost.is_empty() {
            return Place::Local;
        }
        self.report(self.live.refresh());
        let Ok(ip) = rhost.parse::<IpAddr>() else {
            return Place::HostName;
        };
        if is_non_public(ip) {
            return Place::NonPublic;
        }
        match self.live.lookup(ip) {
            Ok(location) => place_of(location),
            Err(e) => {
                if !self.lookup_error_reported.swap(true, Ordering::Relaxed) {
                    unusable(&e, "lookups that fail count as unknown addresses");
                }
                Place::Unknown
            }
        }
    }

    /// SIGHUP / `stepupctl reload` with the same files: look at them now
    /// and report every file that cannot be used, even one reported before.
    pub fn reload(&self) {
        self.report(self.live.reload());
    }

    fn report(&self, events: Vec<GeoEvent>) {
        for event in events {
            match event {
                GeoEvent::Reloaded {
                    path,
                    database_type,
                } => {
                    self.lookup_error_reported.store(false, Ordering::Relaxed);
                    audit::event(
                        "geoip_loaded",
                        &[
                            ("path", &path.display().to_string()),
                            ("database_type", &database_type),
                            ("replaced", "true"),
                        ],
                    );
                }
                GeoEvent::Unusable(error) => unusable(&error, "the database in use before"),
            }
        }
    }
}

/// The databases for a configuration being put in force (start, reload):
/// none without `[geoip]`. A file that cannot be used is refused when a
/// rule needs it; otherwise (locations would only be recorded) the daemon
/// goes on without location data and says so (`geoip_unusable`), rather
/// than refuse every attempt for want of a file no rule reads.
pub fn open_for(config: &Config) -> Result<Option<Geo>, ConfigError> {
    let Some(settings) = &config.geoip else {
        return Ok(None);
    };
    match Geo::open(settings) {
        Ok(geo) => {
            geo.check_asn(config)?;
            geo.announce();
            Ok(Some(geo))
        }
        Err(e) if config.first_rule_with(needs_location).is_none() => {
            audit::event(
                "geoip_unusable",
                &[
                    ("error", &e.to_string()),
                    (
                        "kept",
                        "none: no rule needs it; locations are not recorded until a reload opens it",
                    ),
                ],
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A journey from `previous` to `here` at `now`: great-circle distance net
/// of both accuracy radii, and the speed (stepup-geoip does the arithmetic).
pub fn travel(previous: PreviousAttempt, here: &GeoFacts, now: u64) -> Option<Travel> {
    let here = Sighting {
        coordinates: here.coordinates?,
        accuracy_radius_km: here.accuracy_radius_km.unwrap_or(0),
        at: now,
    };
    let before = Sighting {
        coordinates: previous.coordinates,
        accuracy_radius_km: previous.accuracy_radius_km,
        at: previous.time,
    };
    let radii = f64::from(here.accuracy_radius_km) + f64::from(before.accuracy_radius_km);
    let distance = (distance_km(before.coordinates, here.coordinates) - radii).max(0.0);
    Some(Travel {
        speed_kmh: stepup_geoip::travel_speed_kmh(&before, &here),
        distance_km: if distance.is_finite() { distance } else { 0.0 },
        previous,
    })
}

/// When a file was built (its metadata), as a date.
fn built(db: &stepup_geoip::OpenedDatabase) -> String {
    i64::try_from(db.build_epoch())
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| "?".to_owned(), |t| t.strftime("%Y-%m-%d").to_string())
}

fn place_of(location: Location) -> Place {
    if location == Location::default() {
        return Place::Unknown;
    }
    Place::Known(GeoFacts {
        country: location.country,
        city: location.city,
        coordinates: location.coordinates,
        accuracy_radius_km: location.accuracy_radius_km,
        asn: location.asn,
        as_org: location.as_org,
    })
}

/// `geoip_unusable`: what failed, which file, and what is used instead.
fn unusable(error: &GeoError, kept: &str) {
    audit::event(
        "geoip_unusable",
        &[
            ("path", &error.path().display().to_string()),
            ("error", &error.to_string()),
            ("kept", kept),
        ],
    );
}

/// A database error as a configuration error at the line naming the file.
/// An error about a directory does not say which file it was on the way
/// to: when the ASN file is configured, the City file alone is tried again
/// to tell.
fn config_error(settings: &GeoipSettings, error: &GeoError) -> ConfigError {
    let asn_at = settings
        .asn_database
        .as_deref()
        .zip(settings.asn_database_at.as_ref());
    let asn_failed = asn_at.filter(|(asn, _)| {
        error.path() == *asn
            || (error.path() != settings.database
                && stepup_geoip::GeoDatabases::open(&settings.database, None).is_ok())
    });
    let (key, location) = match asn_failed {
        Some((_, at)) => ("asn_database", at.clone()),
        None => ("database", settings.database_at.clone()),
    };
    ConfigError::Invalid {
        location,
        message: format!("[geoip] {key}: {error}"),
    }
}
