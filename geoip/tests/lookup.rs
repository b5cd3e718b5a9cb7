//! Lookups in the generated databases (mapping: tests/geoip/make-test-mmdb.pl).
#![allow(clippy::unwrap_used)]

mod common;

use common::{generate, ip};
use stepup_geoip::{Edition, GeoDatabases, Location, Sighting, distance_km, travel_speed_kmh};

fn paris() -> Location {
    Location {
        country: Some("FR".into()),
        city: Some("Paris".into()),
        coordinates: Some((48.8566, 2.3522)),
        accuracy_radius_km: Some(20),
        asn: None,
        as_org: None,
    }
}

#[test]
fn city_edition_ipv4_ipv6_and_ipv4_mapped() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("city.mmdb"), None).unwrap();
    assert_eq!(geo.location_database().edition(), Edition::City);
    assert_eq!(geo.location_database().database_type(), "GeoLite2-City");
    assert_eq!(geo.location_database().build_epoch(), 1_704_067_200);

    assert_eq!(geo.lookup(ip("192.0.2.1")).unwrap(), paris());
    assert_eq!(geo.lookup(ip("192.0.2.127")).unwrap(), paris());
    // The IPv4-mapped form is the IPv4 address.
    assert_eq!(geo.lookup(ip("::ffff:192.0.2.1")).unwrap(), paris());

    let fuzzy = geo.lookup(ip("192.0.2.200")).unwrap();
    assert_eq!(fuzzy.city.as_deref(), Some("Paris"));
    assert_eq!(fuzzy.coordinates, Some((48.95, 2.9)));
    assert_eq!(fuzzy.accuracy_radius_km, Some(500));

    let sydney = geo.lookup(ip("198.51.100.7")).unwrap();
    assert_eq!(sydney.country.as_deref(), Some("AU"));
    assert_eq!(sydney.city.as_deref(), Some("Sydney"));
    assert_eq!(sydney.coordinates, Some((-33.8688, 151.2093)));

    let new_york = geo.lookup(ip("::ffff:203.0.113.5")).unwrap();
    assert_eq!(new_york.country.as_deref(), Some("US"));
    assert_eq!(new_york.city.as_deref(), Some("New York"));
    assert_eq!(new_york.accuracy_radius_km, Some(50));

    let berlin = geo.lookup(ip("2001:db8::1")).unwrap();
    assert_eq!(berlin.country.as_deref(), Some("DE"));
    assert_eq!(berlin.city.as_deref(), Some("Berlin"));
    assert_eq!(berlin.coordinates, Some((52.52, 13.405)));
    assert_eq!(berlin.accuracy_radius_km, Some(10));
    // A GeoLite2-City file has no AS data.
    assert_eq!((berlin.asn, berlin.as_org), (None, None));
}

#[test]
fn unknown_and_non_public_addresses_give_an_empty_location() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("city.mmdb"), Some(&dbs.path("asn.mmdb"))).unwrap();
    for unknown in [
        "203.0.113.128",
        "203.0.113.255",
        "::ffff:203.0.113.200",
        "2001:db8:8000::1",
        "127.0.0.1",
        "10.0.0.1",
        "::1",
        "fe80::1",
        "8.8.8.8",
    ] {
        assert_eq!(
            geo.lookup(ip(unknown)).unwrap(),
            Location::default(),
            "{unknown}"
        );
    }
}

#[test]
fn country_edition_has_countries_only() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("country.mmdb"), None).unwrap();
    assert_eq!(geo.location_database().edition(), Edition::Country);
    let expected = |country: &str| Location {
        country: Some(country.into()),
        ..Location::default()
    };
    assert_eq!(geo.lookup(ip("192.0.2.1")).unwrap(), expected("FR"));
    assert_eq!(
        geo.lookup(ip("::ffff:198.51.100.1")).unwrap(),
        expected("AU")
    );
    assert_eq!(geo.lookup(ip("2001:db8::5")).unwrap(), expected("DE"));
    assert_eq!(
        geo.lookup(ip("203.0.113.200")).unwrap(),
        Location::default()
    );
}

#[test]
fn asn_database_adds_as_number_and_organisation() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("city.mmdb"), Some(&dbs.path("asn.mmdb"))).unwrap();
    assert_eq!(geo.asn_database().unwrap().edition(), Edition::Asn);
    let at = |a: &str| {
        let l = geo.lookup(ip(a)).unwrap();
        (l.country, l.asn, l.as_org)
    };
    let fr = Some("FR".to_string());
    assert_eq!(
        at("192.0.2.1"),
        (
            fr.clone(),
            Some(64496),
            Some("Example Paris Telecom".into())
        )
    );
    assert_eq!(
        at("::ffff:192.0.2.129"),
        (fr, Some(64497), Some("Example Mobile France".into()))
    );
    assert_eq!(
        at("2001:db8::1"),
        (
            Some("DE".into()),
            Some(64500),
            Some("Example Berlin IPv6".into())
        )
    );
    assert_eq!(at("203.0.113.129"), (None, None, None));
}

#[test]
fn city_file_with_as_data_is_used_when_no_asn_database_is_configured() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("enterprise.mmdb"), None).unwrap();
    assert_eq!(geo.location_database().edition(), Edition::City);
    let sydney = geo.lookup(ip("198.51.100.1")).unwrap();
    assert_eq!(sydney.asn, Some(64498));
    assert_eq!(sydney.as_org.as_deref(), Some("Example Sydney Net"));
    assert_eq!(sydney.city.as_deref(), Some("Sydney"));
}

#[test]
fn as_numbers_come_from_an_asn_file_or_an_enterprise_city_file() {
    let dbs = generate();
    let open = |city: &str, asn: Option<&str>| {
        GeoDatabases::open(&dbs.path(city), asn.map(|a| dbs.path(a)).as_deref()).unwrap()
    };
    assert!(!open("city.mmdb", None).carries_asn());
    assert!(!open("country.mmdb", None).carries_asn());
    assert!(open("city.mmdb", Some("asn.mmdb")).carries_asn());
    assert!(open("country.mmdb", Some("asn.mmdb")).carries_asn());
    assert!(open("enterprise.mmdb", None).carries_asn());
}

#[test]
fn ipv4_only_asn_file_knows_nothing_about_ipv6() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("city.mmdb"), Some(&dbs.path("asn-ipv4.mmdb"))).unwrap();
    assert_eq!(geo.lookup(ip("192.0.2.1")).unwrap().asn, Some(64496));
    // Mapped addresses are IPv4 addresses there too.
    assert_eq!(geo.lookup(ip("::ffff:192.0.2.1")).unwrap().asn, Some(64496));
    let berlin = geo.lookup(ip("2001:db8::1")).unwrap();
    assert_eq!(berlin.city.as_deref(), Some("Berlin"));
    assert_eq!(berlin.asn, None);
}

#[test]
fn travel_between_looked_up_places() {
    let dbs = generate();
    let geo = GeoDatabases::open(&dbs.path("city.mmdb"), None).unwrap();
    let t0 = 1_700_000_000;
    let seen = |a: &str, at: u64| Sighting::of(&geo.lookup(ip(a)).unwrap(), at).unwrap();

    let paris = seen("192.0.2.10", t0);
    let d = distance_km(paris.coordinates, seen("198.51.100.10", t0).coordinates);
    assert!((d - 16_960.0).abs() < 30.0, "Paris–Sydney {d} km");

    let ten_minutes = travel_speed_kmh(&paris, &seen("198.51.100.10", t0 + 600)).unwrap();
    assert!(ten_minutes > 900.0, "{ten_minutes}");
    let twenty_hours = travel_speed_kmh(&paris, &seen("198.51.100.10", t0 + 20 * 3600)).unwrap();
    assert!(twenty_hours < 900.0, "{twenty_hours}");

    // Two Paris addresses, one with a 500 km radius: ~41 km apart, which in
    // one minute would be ~2 500 km/h without the radii.
    let fuzzy = seen("192.0.2.200", t0 + 60);
    let raw = distance_km(paris.coordinates, fuzzy.coordinates);
    assert!(raw / (1.0 / 60.0) > 900.0, "{raw}");
    assert_eq!(travel_speed_kmh(&paris, &fuzzy), Some(0.0));

    // An address with no coordinates (unknown) gives no sighting.
    assert_eq!(
        Sighting::of(&geo.lookup(ip("203.0.113.200")).unwrap(), t0),
        None
    );
}

#[test]
fn the_next_edition_moves_one_block_only() {
    let dbs = generate();
    let before = GeoDatabases::open(&dbs.path("city.mmdb"), None).unwrap();
    let after = GeoDatabases::open(&dbs.path("city-moved.mmdb"), None).unwrap();
    let moved = after.lookup(ip("192.0.2.10")).unwrap();
    assert_eq!(moved.country.as_deref(), Some("DE"));
    assert_eq!(moved.city.as_deref(), Some("Berlin"));
    assert_eq!(
        before.lookup(ip("192.0.2.10")).unwrap().country.as_deref(),
        Some("FR")
    );
    for same in [
        "192.0.2.200",
        "198.51.100.7",
        "203.0.113.1",
        "2001:db8::1",
        "203.0.113.200",
    ] {
        assert_eq!(
            before.lookup(ip(same)).unwrap(),
            after.lookup(ip(same)).unwrap(),
            "{same}"
        );
    }
    assert!(after.location_database().build_epoch() > before.location_database().build_epoch());
}

#[test]
fn generator_is_deterministic() {
    let a = generate();
    let b = generate();
    for name in [
        "city.mmdb",
        "country.mmdb",
        "asn.mmdb",
        "asn-ipv4.mmdb",
        "enterprise.mmdb",
        "anonymous.mmdb",
        "city-moved.mmdb",
    ] {
        let x = std::fs::read(a.path(name)).unwrap();
        let y = std::fs::read(b.path(name)).unwrap();
        assert!(x == y, "{name} differs between two runs");
    }
}

#[test]
fn every_generated_file_verifies() {
    let dbs = generate();
    let geo =
        GeoDatabases::open(&dbs.path("enterprise.mmdb"), Some(&dbs.path("asn.mmdb"))).unwrap();
    geo.verify().unwrap();
    GeoDatabases::open(&dbs.path("country.mmdb"), Some(&dbs.path("asn-ipv4.mmdb")))
        .unwrap()
        .verify()
        .unwrap();
}

#[test]
fn generated_files_alias_ipv4_mapped_addresses_themselves() {
    // Readers that do not convert ::ffff:a.b.c.d first (other tools reading
    // these files) find the IPv4 record too: the generator sets
    // alias_ipv6_to_ipv4, as MaxMind's own files do.
    let dbs = generate();
    let reader = maxminddb::Reader::open_readfile(dbs.path("city.mmdb")).unwrap();
    let found = reader.lookup(ip("::ffff:198.51.100.1")).unwrap();
    assert!(found.has_data());
    let country: Option<String> = found
        .decode_path(&maxminddb::path!["country", "iso_code"])
        .unwrap();
    assert_eq!(country.as_deref(), Some("AU"));
}
