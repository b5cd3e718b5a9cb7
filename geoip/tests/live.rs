//! A `LiveGeo` in use while its files are replaced the way geoipupdate does
//! it (a new file renamed into place).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{garbage, generate, ip, replace_by_rename, replace_with_bytes};
use stepup_geoip::{GeoError, GeoEvent, LiveGeo};

fn city_of(geo: &LiveGeo, a: &str) -> Option<String> {
    geo.lookup(ip(a)).unwrap().city
}

fn live(path: &Path, asn: Option<&Path>) -> LiveGeo {
    // The default: every refresh looks at the files.
    LiveGeo::open(path, asn).unwrap()
}

fn reloaded(events: &[GeoEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            GeoEvent::Reloaded { database_type, .. } => database_type.clone(),
            GeoEvent::Unusable(err) => panic!("unexpected: {err}"),
        })
        .collect()
}

fn unusable(events: Vec<GeoEvent>) -> GeoError {
    let mut events = events.into_iter();
    match (events.next(), events.next()) {
        (Some(GeoEvent::Unusable(err)), None) => err,
        other => panic!("expected one Unusable event, got {other:?}"),
    }
}

#[test]
fn a_file_renamed_into_place_is_used_without_restart() {
    let dbs = generate();
    let path = dbs.path("GeoLite2-City.mmdb");
    replace_by_rename(&dbs.path("country.mmdb"), &path);
    let geo = live(&path, None);
    assert_eq!(
        city_of(&geo, "192.0.2.1"),
        None,
        "Country edition: no city yet"
    );
    assert!(geo.refresh().is_empty(), "nothing replaced yet");

    replace_by_rename(&dbs.path("city.mmdb"), &path);
    assert_eq!(reloaded(&geo.refresh()), ["GeoLite2-City"]);
    assert_eq!(city_of(&geo, "192.0.2.1").as_deref(), Some("Paris"));
    assert_eq!(
        geo.current().location_database().database_type(),
        "GeoLite2-City"
    );
    assert!(geo.refresh().is_empty(), "reported once");
}

#[test]
fn a_replaced_asn_file_is_followed_too() {
    let dbs = generate();
    let asn = dbs.path("GeoLite2-ASN.mmdb");
    replace_by_rename(&dbs.path("asn-ipv4.mmdb"), &asn);
    let geo = live(&dbs.path("city.mmdb"), Some(&asn));
    assert_eq!(geo.lookup(ip("2001:db8::1")).unwrap().asn, None);
    replace_by_rename(&dbs.path("asn.mmdb"), &asn);
    assert_eq!(reloaded(&geo.refresh()), ["GeoLite2-ASN"]);
    assert_eq!(geo.lookup(ip("2001:db8::1")).unwrap().asn, Some(64500));
    // The City file was not touched and is still the same map.
    assert_eq!(city_of(&geo, "2001:db8::1").as_deref(), Some("Berlin"));
}

#[test]
fn bad_replacements_keep_the_previous_data_and_are_reported_once_each() {
    let dbs = generate();
    let path = dbs.path("GeoLite2-City.mmdb");
    replace_by_rename(&dbs.path("city.mmdb"), &path);
    let geo = live(&path, None);
    let whole = std::fs::read(dbs.path("city.mmdb")).unwrap();

    let bad: [(&str, Vec<u8>); 3] = [
        ("truncated", whole[..whole.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", garbage(5000)),
    ];
    for (what, bytes) in bad {
        replace_with_bytes(&bytes, &path);
        let err = unusable(geo.refresh());
        assert_eq!(err.path(), path, "{what}");
        match what {
            "empty" => assert!(matches!(err, GeoError::Empty { .. }), "{err:?}"),
            _ => assert!(matches!(err, GeoError::Invalid { .. }), "{what}: {err:?}"),
        }
        // The previous database answers, and the same bad file is not
        // reported again however often the daemon looks.
        for _ in 0..3 {
            assert_eq!(
                city_of(&geo, "198.51.100.1").as_deref(),
                Some("Sydney"),
                "{what}"
            );
            assert!(geo.refresh().is_empty(), "{what} reported twice");
        }
    }
    // A good file again is taken.
    replace_by_rename(&dbs.path("enterprise.mmdb"), &path);
    assert_eq!(reloaded(&geo.refresh()), ["GeoIP2-Enterprise"]);
    assert_eq!(geo.lookup(ip("198.51.100.1")).unwrap().asn, Some(64498));
}

#[test]
fn wrong_type_untrusted_and_removed_replacements_are_reported_once() {
    let dbs = generate();
    let path = dbs.path("GeoLite2-City.mmdb");
    replace_by_rename(&dbs.path("city.mmdb"), &path);
    let geo = live(&path, None);

    replace_by_rename(&dbs.path("anonymous.mmdb"), &path);
    assert!(matches!(
        unusable(geo.refresh()),
        GeoError::WrongType { .. }
    ));
    assert!(geo.refresh().is_empty());

    replace_by_rename(&dbs.path("city.mmdb"), &path);
    common::set_mode(&path, 0o666);
    assert!(matches!(
        unusable(geo.refresh()),
        GeoError::Untrusted { .. }
    ));
    assert!(geo.refresh().is_empty());

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(unusable(geo.refresh()), GeoError::Io { .. }));
    assert!(geo.refresh().is_empty());
    assert_eq!(
        city_of(&geo, "192.0.2.1").as_deref(),
        Some("Paris"),
        "still the first file"
    );
}

#[test]
fn reload_reports_an_unusable_file_every_time() {
    let dbs = generate();
    let path = dbs.path("GeoLite2-City.mmdb");
    replace_by_rename(&dbs.path("city.mmdb"), &path);
    let geo = live(&path, None);
    assert!(geo.reload().is_empty(), "unchanged file: nothing to do");
    replace_with_bytes(&garbage(100), &path);
    assert!(matches!(unusable(geo.refresh()), GeoError::Invalid { .. }));
    assert!(geo.refresh().is_empty());
    // An admin's explicit reload says again why the file is not used.
    assert!(matches!(unusable(geo.reload()), GeoError::Invalid { .. }));
    assert!(matches!(unusable(geo.reload()), GeoError::Invalid { .. }));
    assert_eq!(city_of(&geo, "192.0.2.1").as_deref(), Some("Paris"));
}

#[test]
fn refresh_looks_at_most_once_per_interval_and_reload_at_once() {
    let dbs = generate();
    let path = dbs.path("GeoLite2-City.mmdb");
    replace_by_rename(&dbs.path("country.mmdb"), &path);
    let geo = LiveGeo::open(&path, None)
        .unwrap()
        .with_check_interval(Duration::from_secs(3600));
    assert!(
        geo.refresh().is_empty(),
        "the first refresh looks (nothing new)"
    );
    replace_by_rename(&dbs.path("city.mmdb"), &path);
    assert!(
        geo.refresh().is_empty(),
        "within the interval: not looked at"
    );
    assert_eq!(city_of(&geo, "192.0.2.1"), None);
    assert_eq!(reloaded(&geo.reload()), ["GeoLite2-City"]);
    assert_eq!(city_of(&geo, "192.0.2.1").as_deref(), Some("Paris"));
}

#[test]
fn a_symlink_repointed_to_another_file_is_followed() {
    let dbs = generate();
    let link = dbs.path("current.mmdb");
    std::os::unix::fs::symlink(dbs.path("country.mmdb"), &link).unwrap();
    let geo = live(&link, None);
    assert_eq!(city_of(&geo, "192.0.2.1"), None);
    let tmp = dbs.path("current.new");
    std::os::unix::fs::symlink(dbs.path("city.mmdb"), &tmp).unwrap();
    std::fs::rename(&tmp, &link).unwrap();
    assert_eq!(reloaded(&geo.refresh()), ["GeoLite2-City"]);
    assert_eq!(city_of(&geo, "192.0.2.1").as_deref(), Some("Paris"));
}

/// Lookups from several threads go on while the file is replaced many
/// times: every answer is one of the two files' (never an error), and the
/// replacements are all seen.
#[test]
fn lookups_from_many_threads_during_replacements() {
    let dbs = generate();
    let path = dbs.path("GeoLite2-City.mmdb");
    replace_by_rename(&dbs.path("city.mmdb"), &path);
    let geo = Arc::new(live(&path, None));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (geo, stop) = (Arc::clone(&geo), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    geo.refresh();
                    let found = geo.lookup(ip("::ffff:198.51.100.9")).unwrap();
                    assert_eq!(found.country.as_deref(), Some("AU"));
                    assert!(matches!(found.city.as_deref(), Some("Sydney") | None));
                    n += 1;
                }
                n
            })
        })
        .collect();
    for round in 0..20 {
        let from = if round % 2 == 0 {
            "country.mmdb"
        } else {
            "city.mmdb"
        };
        replace_by_rename(&dbs.path(from), &path);
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(total > 0);
    // The last file renamed in was city.mmdb.
    geo.refresh();
    assert_eq!(city_of(&geo, "198.51.100.9").as_deref(), Some("Sydney"));
}
