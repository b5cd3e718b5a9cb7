//! What a geo lookup adds to a decision (goal: under 5 µs), and what a
//! `stat` of a database path costs (`LiveGeo` stats both files on every
//! `refresh` by default).
//!
//! `cargo bench -p stepup-geoip --bench lookup` measures the small test
//! files. Set STEPUP_GEOIP_BENCH_DB and STEPUP_GEOIP_BENCH_ASN to a City and
//! an ASN file of realistic size to measure those: a real GeoLite2 pair, or
//! the made-up ones `tests/geoip/make-bench-mmdb.pl DIR` writes (~60 MB,
//! GeoLite2-City's full record layout). The `spread` group looks up 1024
//! addresses taken across the whole file in turn, so the search tree is not
//! all in the CPU cache, as in a daemon that does other work between
//! decisions.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use stepup_geoip::{GeoDatabases, LiveGeo, Sighting, is_non_public, travel_speed_kmh};

fn databases() -> (Option<common::TestDbs>, PathBuf, PathBuf) {
    match (
        std::env::var_os("STEPUP_GEOIP_BENCH_DB"),
        std::env::var_os("STEPUP_GEOIP_BENCH_ASN"),
    ) {
        (Some(city), Some(asn)) => (None, city.into(), asn.into()),
        _ => {
            let dbs = common::generate();
            let (city, asn) = (dbs.path("city.mmdb"), dbs.path("asn.mmdb"));
            (Some(dbs), city, asn)
        }
    }
}

fn lookups(c: &mut Criterion) {
    let (_keep, city, asn) = databases();
    let geo = GeoDatabases::open(&city, Some(&asn)).unwrap();
    let addresses = [
        ("ipv4", common::ip("192.0.2.1")),
        ("ipv4_mapped", common::ip("::ffff:198.51.100.1")),
        ("ipv6", common::ip("2001:db8::1")),
        ("unknown", common::ip("203.0.113.200")),
    ];
    let mut group = c.benchmark_group("lookup_city_and_asn");
    for (name, ip) in addresses {
        group.bench_function(name, |b| b.iter(|| geo.lookup(black_box(ip)).unwrap()));
    }
    group.finish();

    let spread = addresses_across(&city, 1024);
    let mut next = spread.iter().cycle();
    c.bench_function("lookup_city_and_asn/spread_1024_known_addresses", |b| {
        b.iter(|| geo.lookup(black_box(*next.next().unwrap())).unwrap())
    });

    // What a decision pays: the refresh, the non-public test and the lookup.
    let by_default = LiveGeo::open(&city, Some(&asn)).unwrap();
    c.bench_function("decision/default(stat_both_files)+lookup_spread", |b| {
        b.iter(|| decide(&by_default, *next.next().unwrap()))
    });
    let once_a_second = LiveGeo::open(&city, Some(&asn))
        .unwrap()
        .with_check_interval(Duration::from_secs(1));
    c.bench_function("decision/checked_once_a_second+lookup_spread", |b| {
        b.iter(|| decide(&once_a_second, *next.next().unwrap()))
    });
    c.bench_function("stat/one_database_path", |b| {
        b.iter(|| std::fs::metadata(black_box(&city)).unwrap())
    });
    c.bench_function("open/city_and_asn", |b| {
        b.iter(|| GeoDatabases::open(black_box(&city), Some(&asn)).unwrap())
    });
}

fn decide(live: &LiveGeo, ip: IpAddr) {
    black_box(live.refresh());
    let ip = black_box(ip);
    if !is_non_public(ip) {
        black_box(live.lookup(ip).unwrap());
    }
}

/// `n` addresses the file has data for, evenly spread over its networks.
fn addresses_across(path: &std::path::Path, n: usize) -> Vec<IpAddr> {
    let reader = maxminddb::Reader::open_readfile(path).unwrap();
    let networks: Vec<IpAddr> = reader
        .networks(Default::default())
        .unwrap()
        .map(|found| found.unwrap().network().unwrap().ip())
        .collect();
    let step = (networks.len() / n).max(1);
    networks.into_iter().step_by(step).take(n).collect()
}

fn travel(c: &mut Criterion) {
    let prev = Sighting {
        coordinates: (48.8566, 2.3522),
        accuracy_radius_km: 20,
        at: 1_700_000_000,
    };
    let now = Sighting {
        coordinates: (-33.8688, 151.2093),
        accuracy_radius_km: 20,
        at: 1_700_000_600,
    };
    c.bench_function("travel_speed_kmh", |b| {
        b.iter(|| travel_speed_kmh(black_box(&prev), black_box(&now)))
    });
}

criterion_group!(benches, lookups, travel);
criterion_main!(benches);
