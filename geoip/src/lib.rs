//! Where an address is: MaxMind DB lookups for stepup's location conditions.
//!
//! - [`GeoDatabases`]: a City or Country edition file (GeoLite2, GeoIP2,
//!   DB-IP lite, or an in-house file with the same layout) and an optional
//!   ASN file, each mapped once; [`GeoDatabases::lookup`] gives a
//!   [`Location`] (country, city, coordinates, accuracy radius, AS number
//!   and organisation).
//! - [`LiveGeo`]: the databases in use by the daemon, re-opened when a file
//!   is replaced (geoipupdate renames a new file into place) or on reload; a
//!   replacement that does not open leaves the previous one in use and is
//!   reported once.
//! - [`is_non_public`]: addresses that never count as a place (loopback,
//!   private, link-local, unspecified, CGNAT).
//! - [`distance_km`] and [`travel_speed_kmh`]: great-circle distance and the
//!   speed between two sightings, net of both accuracy radii.
//!
//! Files are trusted like stepup's configuration: see [`trust`].
// Mapping a file is the one `unsafe` operation (memmap2's `Mmap::map`); it
// lives in `map.rs` with the argument for its soundness. Everything else is
// safe Rust.
#![deny(unsafe_code)]

mod addr;
mod db;
mod error;
mod live;
#[allow(unsafe_code)]
mod map;
mod travel;
pub mod trust;

pub use addr::{is_non_public, normalize};
pub use db::{Edition, GeoDatabases, Location, OpenedDatabase};
pub use error::GeoError;
pub use live::{DEFAULT_CHECK_INTERVAL, GeoEvent, LiveGeo};
pub use travel::{MIN_ELAPSED_SECS, Sighting, distance_km, travel_speed_kmh};
