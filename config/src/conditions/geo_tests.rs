//! The location conditions (`country_in`, `country_not_in`, `asn_in`,
//! `asn_not_in`, `new_country`, `impossible_travel`): parsing and
//! validation, evaluation over each kind of place, and one lookup per
//! decision.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::tests::GEOIP;
use super::*;
use crate::Config;
use crate::attempt::{AttemptContext, GeoFacts, Origin, PreviousAttempt, Travel};

const NOW: u64 = 1_767_652_200; // 2026-01-05T22:30:00Z

/// Answers from fixed facts, counting how often each question is asked.
#[derive(Default)]
struct Geo {
    place: Option<Place>,
    country_seen: Option<u64>,
    travel: Option<Travel>,
    places_asked: usize,
    countries_asked: Vec<String>,
    travels_asked: usize,
    fail_place: bool,
}

impl Lookups for Geo {
    fn groups(&mut self, _: &str) -> Result<Option<Vec<String>>, String> {
        Ok(None)
    }
    fn source_last_seen(&mut self, _: &str, _: &str) -> Result<Option<u64>, String> {
        Ok(None)
    }
    fn failures_since(&mut self, _: &str, _: u64) -> Result<u64, String> {
        Ok(0)
    }
    fn last_success(
        &mut self,
        _: &str,
        _: u64,
        _: crate::Scope,
        _: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        Ok(None)
    }
    fn place(&mut self, _: &str) -> Result<Place, String> {
        self.places_asked += 1;
        if self.fail_place {
            return Err("no location database is open".into());
        }
        Ok(self.place.clone().unwrap_or(Place::Unknown))
    }
    fn country_last_seen(&mut self, _: &str, country: &str) -> Result<Option<u64>, String> {
        self.countries_asked.push(country.to_owned());
        Ok(self.country_seen)
    }
    fn travel(&mut self, _: &str, _: &GeoFacts, _: u64) -> Result<Option<Travel>, String> {
        self.travels_asked += 1;
        Ok(self.travel.clone())
    }
}

fn paris() -> GeoFacts {
    GeoFacts {
        country: Some("FR".into()),
        city: Some("Paris".into()),
        coordinates: Some((48.8566, 2.3522)),
        accuracy_radius_km: Some(20),
        asn: Some(64496),
        as_org: Some("Example Paris Telecom".into()),
    }
}

fn travel(speed_kmh: Option<f64>) -> Travel {
    Travel {
        speed_kmh,
        distance_km: 16_920.0,
        previous: PreviousAttempt {
            time: NOW - 600,
            rhost: "198.51.100.7".into(),
            country: Some("AU".into()),
            city: Some("Sydney".into()),
            coordinates: (-33.8688, 151.2093),
            accuracy_radius_km: 20,
        },
    }
}

fn config(rules: &str) -> Result<Config, crate::ConfigError> {
    Config::from_str_named(Path::new("stepup.toml"), &format!("{GEOIP}{rules}"))
}

fn one(key: &str, value: &str) -> Config {
    config(&format!(
        "[[rule]]\nname = \"r\"\naction = \"step_up\"\n{key} = {value}\n"
    ))
    .unwrap_or_else(|e| panic!("{key} = {value}: {e}"))
}

/// Evaluates the single condition of `config` from `rhost` with `geo`'s
/// answers; (holds, detail).
fn eval(config: &Config, rhost: &str, geo: &mut Geo) -> (bool, String) {
    let ctx = AttemptContext {
        service: "sshd".into(),
        user: "alice".into(),
        ..AttemptContext::default()
    };
    let origin = Origin {
        rhost: rhost.into(),
        remote: !rhost.is_empty(),
        ..Origin::default()
    };
    let attempt = Attempt {
        context: &ctx,
        subject: "alice",
        origin: &origin,
        now: jiff::Timestamp::from_second(NOW as i64).unwrap(),
    };
    let facts = Facts::new(&attempt);
    let condition = config.rules[0].when.iter().next().unwrap();
    let eval = condition
        .evaluate(&attempt, &facts, geo, Want::Detail)
        .unwrap();
    (eval.holds, eval.text.unwrap())
}

const ALL: [(&str, &str); 6] = [
    ("country_in", r#"["FR", "DE"]"#),
    ("country_not_in", r#"["FR", "DE"]"#),
    ("asn_in", "[64496]"),
    ("asn_not_in", "[64496]"),
    ("new_country", r#""90d""#),
    ("impossible_travel", r#""900km/h""#),
];

#[test]
fn no_place_satisfies_any_location_condition_not_even_the_negated_ones() {
    let cases = [
        ("", Place::Local, "local attempt"),
        ("bastion.example.com", Place::HostName, "host name"),
        ("10.1.2.3", Place::NonPublic, "private"),
        (
            "203.0.113.200",
            Place::Unknown,
            "not in the location database",
        ),
    ];
    for (key, value) in ALL {
        let config = one(key, value);
        for (rhost, place, said) in &cases {
            let mut geo = Geo {
                place: Some(place.clone()),
                country_seen: None,
                travel: Some(travel(Some(1e6))),
                ..Geo::default()
            };
            let (holds, detail) = eval(&config, rhost, &mut geo);
            assert!(!holds, "{key} held for {place:?}");
            assert!(detail.contains(said), "{key} {place:?}: {detail}");
            // Nothing further is asked about a source with no place.
            assert!(geo.countries_asked.is_empty() && geo.travels_asked == 0);
            // A local attempt is not even looked up.
            assert_eq!(geo.places_asked, usize::from(!rhost.is_empty()), "{key}");
        }
    }
}

#[test]
fn country_lists_hold_for_a_known_country_only() {
    let geo = || Geo {
        place: Some(Place::Known(paris())),
        ..Geo::default()
    };
    let check = |key, value, want: bool| {
        let (holds, detail) = eval(&one(key, value), "192.0.2.10", &mut geo());
        assert_eq!(holds, want, "{key} = {value}: {detail}");
        detail
    };
    let detail = check("country_in", r#"["FR", "DE"]"#, true);
    assert_eq!(
        detail,
        "192.0.2.10: FR, Paris (48.8566, 2.3522, within 20 km), AS64496 Example Paris Telecom; FR is in [FR, DE]"
    );
    check("country_in", r#"["DE"]"#, false);
    check("country_not_in", r#"["FR"]"#, false);
    let detail = check("country_not_in", r#"["DE", "BE"]"#, true);
    assert!(detail.ends_with("FR is not in [DE, BE]"), "{detail}");

    // An address the ASN file knows but the City file does not: no country.
    let asn_only = GeoFacts {
        asn: Some(64496),
        ..GeoFacts::default()
    };
    for key in ["country_in", "country_not_in"] {
        let mut geo = Geo {
            place: Some(Place::Known(asn_only.clone())),
            ..Geo::default()
        };
        let (holds, detail) = eval(&one(key, r#"["FR"]"#), "192.0.2.10", &mut geo);
        assert!(!holds, "{key}");
        assert!(detail.contains("no country known"), "{detail}");
    }
}

#[test]
fn asn_lists_hold_for_a_known_as_number_only() {
    let check = |key, value, facts: GeoFacts, want: bool| {
        let mut geo = Geo {
            place: Some(Place::Known(facts)),
            ..Geo::default()
        };
        let (holds, detail) = eval(&one(key, value), "192.0.2.10", &mut geo);
        assert_eq!(holds, want, "{key} = {value}: {detail}");
        detail
    };
    check("asn_in", "[64496, 64497]", paris(), true);
    check("asn_in", "[64497]", paris(), false);
    check("asn_not_in", "[64496]", paris(), false);
    let detail = check("asn_not_in", "[64497]", paris(), true);
    assert!(detail.ends_with("AS64496 is not in [64497]"), "{detail}");
    // A City file without AS data: the AS number is unknown.
    let no_asn = GeoFacts {
        asn: None,
        as_org: None,
        ..paris()
    };
    let detail = check("asn_in", "[64496]", no_asn.clone(), false);
    assert!(detail.contains("no AS number known"), "{detail}");
    check("asn_not_in", "[64496]", no_asn, false);
}

#[test]
fn new_country_holds_until_the_person_is_let_in_from_that_country() {
    let config = one("new_country", r#""90d""#);
    let day = 86_400;
    for (seen, want) in [
        (None, true),
        (Some(NOW - 91 * day), true),
        (Some(NOW - 89 * day), false),
        (Some(NOW - 1), false),
        // Later than now (the clock went back): known, not new.
        (Some(NOW + 3600), false),
    ] {
        let mut geo = Geo {
            place: Some(Place::Known(paris())),
            country_seen: seen,
            ..Geo::default()
        };
        let (holds, detail) = eval(&config, "192.0.2.10", &mut geo);
        assert_eq!(holds, want, "{seen:?}: {detail}");
        assert_eq!(geo.countries_asked, ["FR"]);
    }
    let mut geo = Geo {
        place: Some(Place::Known(paris())),
        ..Geo::default()
    };
    let (_, detail) = eval(&config, "192.0.2.10", &mut geo);
    assert!(detail.ends_with("alice never let in from FR"), "{detail}");
}

#[test]
fn impossible_travel_holds_above_the_speed_only() {
    let config = one("impossible_travel", r#""900km/h""#);
    for (travel, want) in [
        (Some(travel(Some(101_000.0))), true),
        (Some(travel(Some(900.5))), true),
        (Some(travel(Some(900.0))), false),
        (Some(travel(Some(0.0))), false),
        // The previous attempt is later than now: speed unknown.
        (Some(travel(None)), false),
        // A first attempt: nothing to compare with.
        (None, false),
    ] {
        let mut geo = Geo {
            place: Some(Place::Known(paris())),
            travel: travel.clone(),
            ..Geo::default()
        };
        let (holds, detail) = eval(&config, "192.0.2.10", &mut geo);
        assert_eq!(holds, want, "{travel:?}: {detail}");
        assert_eq!(geo.travels_asked, 1);
    }
    let mut geo = Geo {
        place: Some(Place::Known(paris())),
        travel: Some(travel(Some(101_000.0))),
        ..Geo::default()
    };
    let (_, detail) = eval(&config, "192.0.2.10", &mut geo);
    assert!(
        detail.ends_with(
            "previous allowed attempt from Sydney, AU (198.51.100.7) at 2026-01-05T22:20:00Z, 600s ago: 16920 km apart net of accuracy radii, 101000 km/h; rule limit 900km/h"
        ),
        "{detail}"
    );
    // A Country edition gives no coordinates: no journey, nothing asked.
    let mut geo = Geo {
        place: Some(Place::Known(GeoFacts {
            coordinates: None,
            ..paris()
        })),
        travel: Some(travel(Some(1e6))),
        ..Geo::default()
    };
    let (holds, detail) = eval(&config, "192.0.2.10", &mut geo);
    assert!(!holds && detail.contains("no coordinates"), "{detail}");
    assert_eq!(geo.travels_asked, 0);
}

#[test]
fn the_place_is_looked_up_once_per_decision_and_its_errors_fail_it() {
    let config = config(
        "[[rule]]\nname = \"a\"\naction = \"allow\"\ncountry_in = [\"DE\"]\n\
         [[rule]]\nname = \"b\"\naction = \"allow\"\nasn_in = [1]\n\
         [[rule]]\nname = \"c\"\naction = \"deny\"\ncountry_not_in = [\"US\"]\nnew_country = \"1d\"\nimpossible_travel = \"900km/h\"\n",
    )
    .unwrap();
    let ctx = AttemptContext::default();
    let origin = Origin {
        rhost: "192.0.2.10".into(),
        ..Origin::default()
    };
    let attempt = Attempt {
        context: &ctx,
        subject: "alice",
        origin: &origin,
        now: jiff::Timestamp::from_second(NOW as i64).unwrap(),
    };
    let mut geo = Geo {
        place: Some(Place::Known(paris())),
        travel: Some(travel(Some(2000.0))),
        ..Geo::default()
    };
    let facts = Facts::new(&attempt);
    let mut held = Vec::new();
    for rule in &config.rules {
        for condition in rule.when.iter() {
            let eval = condition
                .evaluate(&attempt, &facts, &mut geo, Want::Verdict)
                .unwrap();
            held.push((condition.key(), eval.holds));
        }
    }
    assert_eq!(
        held,
        [
            ("country_in", false),
            ("asn_in", false),
            ("country_not_in", true),
            ("new_country", true),
            ("impossible_travel", true)
        ]
    );
    assert_eq!(geo.places_asked, 1, "one lookup for the whole decision");

    let mut failing = Geo {
        fail_place: true,
        ..Geo::default()
    };
    let facts = Facts::new(&attempt);
    let condition = config.rules[0].when.iter().next().unwrap();
    let err = condition
        .evaluate(&attempt, &facts, &mut failing, Want::Verdict)
        .unwrap_err();
    assert!(err.contains("no location database"), "{err}");
}

#[test]
fn values_are_validated_with_their_position() {
    let refused = |rule: &str| {
        config(&format!(
            "[[rule]]\nname = \"r\"\naction = \"allow\"\n{rule}\n"
        ))
        .unwrap_err()
        .to_string()
    };
    // The [geoip] header takes lines 1-2, the rule 3-5; values start at 6.
    let err = refused("country_in = [\"FR\", \"fr\"]");
    assert!(err.starts_with("stepup.toml:6:21:"), "{err}");
    assert!(err.contains("upper case (\"FR\")"), "{err}");
    let err = refused("country_not_in = [\"UK\"]");
    assert!(err.contains("\"GB\""), "{err}");
    let err = refused("country_in = []");
    assert!(err.contains("needs at least one country code"), "{err}");
    let err = refused("asn_in = [0]");
    assert!(err.contains("AS 0 is reserved"), "{err}");
    let err = refused("asn_in = [-1]");
    assert!(err.starts_with("stepup.toml:6:"), "{err}");
    let err = refused("asn_not_in = [4294967296]");
    assert!(err.starts_with("stepup.toml:6:"), "{err}");
    let err = refused("asn_in = [\"AS64496\"]");
    assert!(err.starts_with("stepup.toml:6:"), "{err}");
    let err = refused("new_country = \"0s\"");
    assert!(err.contains("longer than 0s"), "{err}");
    let err = refused("new_country = \"90 days\"");
    assert!(err.contains("invalid duration"), "{err}");
    let err = refused("impossible_travel = \"560mph\"");
    assert!(err.starts_with("stepup.toml:6:21:"), "{err}");
    assert!(err.contains("only km/h"), "{err}");
    let err = refused("impossible_travel = 900");
    assert!(err.starts_with("stepup.toml:6:21:"), "{err}");
}

#[test]
fn location_conditions_need_a_geoip_section_and_it_is_strict() {
    for (key, value) in ALL {
        let text = format!("\n[[rule]]\nname = \"geo\"\naction = \"step_up\"\n{key} = {value}\n");
        let err = Config::from_str_named(Path::new("stepup.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("stepup.toml:2:1: rule \"geo\": "), "{err}");
        assert!(
            err.contains(&format!(
                "{key} needs a location database: add [geoip] database"
            )),
            "{err}"
        );
    }
    let parse = |text: &str| Config::from_str_named(Path::new("stepup.toml"), text);
    let settings = parse("[geoip]\ndatabase = \"/var/lib/GeoIP/GeoLite2-City.mmdb\"\nasn_database = \"/var/lib/GeoIP/GeoLite2-ASN.mmdb\"\n")
        .unwrap()
        .geoip
        .unwrap();
    assert_eq!(
        settings.database,
        Path::new("/var/lib/GeoIP/GeoLite2-City.mmdb")
    );
    assert_eq!(settings.database_at.to_string(), "stepup.toml:2:12");
    assert_eq!(
        settings.asn_database_at.map(|a| a.to_string()).as_deref(),
        Some("stepup.toml:3:16")
    );
    let err = parse("[geoip]\ndatabase = \"GeoLite2-City.mmdb\"\n").unwrap_err();
    assert!(
        err.to_string().starts_with(
            "stepup.toml:2:12: [geoip] database = \"GeoLite2-City.mmdb\": the path must be absolute"
        ),
        "{err}"
    );
    let err = parse("[geoip]\ndatabase = \"/a.mmdb\"\nasn_database = \"b.mmdb\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("stepup.toml:3:16: [geoip] asn_database"),
        "{err}"
    );
    let err = parse("[geoip]\nasn_database = \"/b.mmdb\"\n").unwrap_err();
    assert!(
        err.to_string().contains("missing field `database`"),
        "{err}"
    );
    let err = parse("[geoip]\ndatabase = \"/a.mmdb\"\ncity_database = \"/c.mmdb\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("stepup.toml:3:1:"), "{text}");
    assert!(
        text.contains("`database`") && text.contains("`asn_database`"),
        "{text}"
    );
    // Without location conditions a [geoip] section is fine (locations
    // are then only recorded), and no [geoip] at all is the default.
    assert!(parse("[geoip]\ndatabase = \"/a.mmdb\"\n").is_ok());
    assert!(parse("").unwrap().geoip.is_none());
}

#[test]
fn shadowing_knows_list_and_speed_order() {
    let two = |first: &str, second: &str| {
        let config = config(&format!(
            "[[rule]]\nname = \"a\"\naction = \"deny\"\n{first}\n[[rule]]\nname = \"b\"\naction = \"deny\"\n{second}\n"
        ))
        .unwrap();
        config.rules[0].when.shadow(&config.rules[1].when)
    };
    assert!(two(
        "country_in = [\"FR\", \"DE\"]",
        "country_in = [\"FR\"]"
    ));
    assert!(!two(
        "country_in = [\"FR\"]",
        "country_in = [\"FR\", \"DE\"]"
    ));
    assert!(two(
        "country_not_in = [\"FR\"]",
        "country_not_in = [\"FR\", \"DE\"]"
    ));
    assert!(!two(
        "country_not_in = [\"FR\", \"DE\"]",
        "country_not_in = [\"FR\"]"
    ));
    assert!(!two("country_in = [\"FR\"]", "country_not_in = [\"DE\"]"));
    assert!(two("asn_in = [1, 2]", "asn_in = [2]"));
    assert!(two(
        "impossible_travel = \"500km/h\"",
        "impossible_travel = \"900km/h\""
    ));
    assert!(!two(
        "impossible_travel = \"900km/h\"",
        "impossible_travel = \"500km/h\""
    ));
    assert!(two("new_country = \"30d\"", "new_country = \"30d\""));
    assert!(!two("new_country = \"30d\"", "new_country = \"31d\""));
}
