//! Great-circle distance and travel speed between two sightings of a person.
//!
//! Haversine is written here rather than taken from the `geo` crate: it is
//! eight lines of arithmetic, while `geo` brings a geometry library
//! (geo-types, rstar, robust predicates, …) for one formula. On a sphere of
//! the mean Earth radius it is within 0.5 % of the ellipsoidal distance,
//! far finer than the databases' accuracy radii.
use crate::db::Location;

/// IUGG mean Earth radius.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The shortest time `travel_speed_kmh` divides by. Two sightings seconds
/// apart (or at the same second) are judged as if a minute apart: attempts
/// from two continents within a minute are still impossible travel, but a
/// near-zero divisor cannot turn a few kilometres of rounding into an
/// enormous speed.
pub const MIN_ELAPSED_SECS: u64 = 60;

/// Great-circle distance in kilometres between two (latitude, longitude)
/// points in degrees.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let half_dlat = ((lat2 - lat1) / 2.0).sin();
    let half_dlon = ((lon2 - lon1) / 2.0).sin();
    let h = half_dlat * half_dlat + lat1.cos() * lat2.cos() * half_dlon * half_dlon;
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Where and when a person was seen: a location's coordinates and accuracy
/// radius, and the attempt's time (Unix seconds, as history stores it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    pub coordinates: (f64, f64),
    pub accuracy_radius_km: u16,
    pub at: u64,
}

impl Sighting {
    /// A sighting at `location`, if it has coordinates. A missing accuracy
    /// radius counts as 0 (the databases give one with every coordinate).
    pub fn of(location: &Location, at: u64) -> Option<Sighting> {
        Some(Sighting {
            coordinates: location.coordinates?,
            accuracy_radius_km: location.accuracy_radius_km.unwrap_or(0),
            at,
        })
    }
}

/// The speed (km/h) someone must have travelled to be at `prev` and then at
/// `now`:
///
/// - distance: the great-circle distance minus both accuracy radii, floored
///   at 0 — two fuzzy fixes in one metro area are no travel (`Some(0.0)`,
///   whatever the times);
/// - time: `now.at - prev.at`, at least [`MIN_ELAPSED_SECS`];
/// - `None` when `prev` is later than `now` (the clock was set back, or a
///   history row is from the future): how long passed is unknown, and a
///   guess could raise an alarm about a person who did nothing, so the
///   speed is unknown and `impossible_travel` does not hold. Also `None`
///   for coordinates that are not finite numbers.
pub fn travel_speed_kmh(prev: &Sighting, now: &Sighting) -> Option<f64> {
    let finite = |(lat, lon): (f64, f64)| lat.is_finite() && lon.is_finite();
    if !finite(prev.coordinates) || !finite(now.coordinates) {
        return None;
    }
    let raw = distance_km(prev.coordinates, now.coordinates);
    let radii = f64::from(prev.accuracy_radius_km) + f64::from(now.accuracy_radius_km);
    let distance = (raw - radii).max(0.0);
    if distance == 0.0 {
        return Some(0.0);
    }
    let elapsed = now.at.checked_sub(prev.at)?.max(MIN_ELAPSED_SECS);
    Some(distance / (elapsed as f64 / 3600.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARIS: (f64, f64) = (48.8566, 2.3522);
    const SYDNEY: (f64, f64) = (-33.8688, 151.2093);

    fn seen(coordinates: (f64, f64), accuracy_radius_km: u16, at: u64) -> Sighting {
        Sighting {
            coordinates,
            accuracy_radius_km,
            at,
        }
    }

    #[test]
    fn known_distances() {
        let paris_sydney = distance_km(PARIS, SYDNEY);
        assert!((paris_sydney - 16_960.0).abs() < 30.0, "{paris_sydney}");
        // London–New York, ≈ 5 570 km.
        let london_ny = distance_km((51.5074, -0.1278), (40.7128, -74.0060));
        assert!((london_ny - 5_570.0).abs() < 15.0, "{london_ny}");
        assert_eq!(distance_km(PARIS, PARIS), 0.0);
        // Antipodes: half the circumference, no NaN from rounding.
        let half = distance_km((0.0, 0.0), (0.0, 180.0));
        assert!((half - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
        // Symmetric.
        assert_eq!(distance_km(SYDNEY, PARIS), paris_sydney);
    }

    #[test]
    fn paris_to_sydney_in_ten_minutes_is_impossible_in_twenty_hours_it_is_not() {
        let t0 = 1_700_000_000;
        let ten_minutes =
            travel_speed_kmh(&seen(PARIS, 20, t0), &seen(SYDNEY, 20, t0 + 600)).expect("speed");
        assert!(ten_minutes > 100_000.0, "{ten_minutes}");
        let twenty_hours =
            travel_speed_kmh(&seen(PARIS, 20, t0), &seen(SYDNEY, 20, t0 + 20 * 3600))
                .expect("speed");
        assert!(
            twenty_hours < 900.0 && twenty_hours > 800.0,
            "{twenty_hours}"
        );
    }

    #[test]
    fn radii_are_subtracted_from_the_distance() {
        let t0 = 1_700_000_000;
        let meaux = (48.95, 2.9);
        let raw = distance_km(PARIS, meaux);
        assert!(raw > 30.0 && raw < 50.0, "{raw}");
        // Without radii, one minute apart would be well over 900 km/h ...
        let sharp = travel_speed_kmh(&seen(PARIS, 0, t0), &seen(meaux, 0, t0 + 60)).expect("speed");
        assert!(sharp > 900.0, "{sharp}");
        // ... with them it is no travel at all, even at the same second.
        for dt in [0, 1, 60, 86_400] {
            let fuzzy = travel_speed_kmh(&seen(PARIS, 20, t0), &seen(meaux, 500, t0 + dt));
            assert_eq!(fuzzy, Some(0.0), "dt {dt}");
        }
        // Partially overlapping radii: only the rest of the distance counts.
        let part =
            travel_speed_kmh(&seen(PARIS, 10, t0), &seen(meaux, 10, t0 + 3600)).expect("speed");
        assert!((part - (raw - 20.0)).abs() < 1e-9, "{part} vs {raw}");
    }

    #[test]
    fn short_intervals_count_as_a_minute_and_a_clock_set_back_gives_no_speed() {
        let t0 = 1_700_000_000;
        let d = distance_km(PARIS, SYDNEY) - 40.0;
        for dt in [0, 1, 59, 60] {
            let v =
                travel_speed_kmh(&seen(PARIS, 20, t0), &seen(SYDNEY, 20, t0 + dt)).expect("speed");
            assert!((v - d * 60.0).abs() < 1e-6, "dt {dt}: {v}");
        }
        let back = travel_speed_kmh(&seen(PARIS, 20, t0), &seen(SYDNEY, 20, t0 - 3600));
        assert_eq!(back, None);
        // No movement is no movement, whatever the clock did.
        assert_eq!(
            travel_speed_kmh(&seen(PARIS, 20, t0), &seen(PARIS, 20, t0 - 3600)),
            Some(0.0)
        );
    }

    #[test]
    fn non_finite_coordinates_give_no_speed() {
        let t0 = 1_700_000_000;
        let nan = (f64::NAN, 2.0);
        assert_eq!(
            travel_speed_kmh(&seen(nan, 0, t0), &seen(PARIS, 0, t0 + 60)),
            None
        );
    }

    #[test]
    fn a_sighting_needs_coordinates() {
        let mut location = Location {
            country: Some("FR".into()),
            ..Location::default()
        };
        assert_eq!(Sighting::of(&location, 5), None);
        location.coordinates = Some(PARIS);
        assert_eq!(Sighting::of(&location, 5), Some(seen(PARIS, 0, 5)));
        location.accuracy_radius_km = Some(20);
        assert_eq!(Sighting::of(&location, 5), Some(seen(PARIS, 20, 5)));
    }
}
