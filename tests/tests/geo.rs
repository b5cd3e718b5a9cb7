//! Where an attempt comes from (issue 17), through real libpam (the
//! in-process driver, pamtester, real sudo over a synthetic utmp) to the
//! real daemon, with MaxMind DB files written by the repository's generator
//! (tests/geoip/make-test-mmdb.pl; the mapping is in its header): country
//! and AS rules over IPv4, IPv6 and IPv4-mapped addresses, addresses with
//! no place, new countries, impossible travel (the daemon's clock moved by
//! libfaketime), a database replaced while the daemon runs, and databases
//! refused by `stepupctl check` and at start.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use stepup_tests::faults::{FakeClock, Started, StateDir, Stepupd};
use stepup_tests::geo::GeoDbs;
use stepup_tests::*;

fn start(policy: &str) -> (Bus, Daemon, PamService) {
    let bus = Bus::start(BusPolicy::Shipped);
    let daemon = Daemon::start(&bus, policy);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    (bus, daemon, pam)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The daemon's `decision` line for the attempt from `rhost`.
fn decision_from(log: &str, rhost: &str) -> String {
    log.lines()
        .rev()
        .find(|l| l.contains("event=decision ") && l.contains(&format!(" rhost={rhost} ")))
        .unwrap_or_else(|| panic!("no decision from {rhost}:\n{log}"))
        .to_owned()
}

fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn country_rules_hold_for_ipv4_ipv6_and_ipv4_mapped_sources() {
    let dbs = GeoDbs::generate();
    let (_bus, daemon, pam) = start(&format!(
        r#"{}
[defaults]
action = "step_up"
methods = ["recovery"]

[[rule]]
name = "from-france"
country_in = ["FR"]
action = "allow"

[[rule]]
name = "from-germany"
country_in = ["DE"]
action = "deny"
message = "Not from Germany."
"#,
        dbs.section("city.mmdb", Some("asn.mmdb"))
    ));
    let paris = pamtester(&pam, "olga", &[], &["rhost=192.0.2.10"]);
    assert!(paris.status.success(), "{}", text(&paris));
    // Dual-stack sshd reports IPv4 clients IPv4-mapped.
    let mapped = drive(&pam, "olga", &["-r", "::ffff:192.0.2.10"], &[]);
    assert_eq!(mapped.code, PAM_SUCCESS, "{}", mapped.stdout);
    assert_eq!(mapped.prompts(), 0);
    let berlin = drive(&pam, "olga", &["-r", "2001:db8::5"], &[]);
    assert_eq!(berlin.code, PAM_AUTH_ERR, "{}", berlin.stdout);
    assert_eq!(berlin.errors(), ["Not from Germany."]);
    // Sydney, IPv4-mapped: neither rule; the default steps up.
    daemon.recovery_codes("olga");
    let sydney = drive(&pam, "olga", &["-r", "::ffff:198.51.100.7"], &[]);
    assert_eq!(sydney.prompts(), 1, "{}", sydney.stdout);
    assert_ne!(sydney.code, PAM_SUCCESS);

    let log = daemon.log();
    let line = decision_from(&log, "192.0.2.10");
    assert!(
        line.contains(" country=FR asn=64496 rule=from-france verdict=allow "),
        "{line}"
    );
    let line = decision_from(&log, "2001:db8::5");
    assert!(
        line.contains(" country=DE asn=64500 rule=from-germany "),
        "{line}"
    );
    let line = decision_from(&log, "::ffff:198.51.100.7");
    assert!(
        line.contains(" country=AU asn=64498 rule=(default) "),
        "{line}"
    );
    // Every event of the attempt carries them, to its end.
    assert!(
        log.lines().any(|l| l.contains("event=attempt_ended ")
            && l.contains(" rhost=::ffff:198.51.100.7 ")
            && l.contains(" country=AU asn=64498 ")),
        "{log}"
    );
    assert!(
        !log.contains("speed_kmh="),
        "no travel rule, no speed: {log}"
    );
}

#[test]
fn unknown_private_local_and_named_sources_satisfy_no_location_rule() {
    let dbs = GeoDbs::generate();
    let (_bus, daemon, pam) = start(&format!(
        r#"{}
[defaults]
action = "allow"

[[rule]]
name = "abroad"
country_not_in = ["FR"]
action = "deny"
message = "Not from abroad."

[[rule]]
name = "other-networks"
asn_not_in = [64496, 64497]
action = "deny"
message = "Not from that network."
"#,
        dbs.section("city.mmdb", Some("asn.mmdb"))
    ));
    let allowed = [
        "192.0.2.10",         // Paris, AS64496: neither rule
        "203.0.113.200",      // not in the database
        "2001:db8:8000::1",   // not in the database (IPv6)
        "10.1.2.3",           // private
        "127.0.0.1",          // loopback
        "::ffff:192.168.1.5", // private, IPv4-mapped
        "100.64.0.1",         // carrier-grade NAT
        "fe80::1",            // link-local
        "bastion.example.com",
    ];
    for rhost in allowed {
        let run = drive(&pam, "petra", &["-r", rhost], &[]);
        assert_eq!(run.code, PAM_SUCCESS, "{rhost}: {}", run.stdout);
        assert_eq!(run.prompts(), 0, "{rhost}");
    }
    let local = drive(&pam, "petra", &["-t", "/dev/tty3"], &[]);
    assert_eq!(local.code, PAM_SUCCESS, "{}", local.stdout);
    // A known place abroad is refused: the rules are live.
    let sydney = drive(&pam, "petra", &["-r", "198.51.100.7"], &[]);
    assert_eq!(sydney.errors(), ["Not from abroad."], "{}", sydney.stdout);
    let new_york = drive(&pam, "petra", &["-r", "203.0.113.5"], &[]);
    assert_eq!(
        new_york.errors(),
        ["Not from abroad."],
        "{}",
        new_york.stdout
    );

    let log = daemon.log();
    for rhost in &allowed[1..] {
        let line = decision_from(&log, rhost);
        assert!(line.contains(" rule=(default) "), "{line}");
        assert!(!line.contains("country="), "no place, no country: {line}");
    }
}

#[test]
fn new_country_steps_up_until_the_person_is_let_in_from_it() {
    let dbs = GeoDbs::generate();
    let (_bus, daemon, pam) = start(&format!(
        r#"{}
[defaults]
action = "allow"

[[rule]]
name = "new-country"
new_country = "90d"
action = "step_up"
methods = ["recovery"]
"#,
        dbs.section("city.mmdb", None)
    ));
    let codes = daemon.recovery_codes("quentin");
    let first = drive(&pam, "quentin", &["-r", "192.0.2.10", "-a", &codes[0]], &[]);
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.stdout);
    assert_eq!(
        first.prompts(),
        1,
        "a first country is new: {}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("needs a second factor: from a new country (FR, 192.0.2.10)"),
        "{}",
        first.stdout
    );
    // Another address in the same country: known.
    let same_country = drive(&pam, "quentin", &["-r", "192.0.2.20"], &[]);
    assert_eq!(same_country.code, PAM_SUCCESS, "{}", same_country.stdout);
    assert_eq!(same_country.prompts(), 0);
    // Sydney is new; a step-up that is not answered lets nobody in and
    // makes nothing known.
    let unanswered = drive(&pam, "quentin", &["-r", "198.51.100.7"], &[]);
    assert_eq!(unanswered.prompts(), 1, "{}", unanswered.stdout);
    assert_ne!(unanswered.code, PAM_SUCCESS);
    let answered = drive(
        &pam,
        "quentin",
        &["-r", "198.51.100.7", "-a", &codes[1]],
        &[],
    );
    assert_eq!(answered.prompts(), 1, "still new: {}", answered.stdout);
    assert_eq!(answered.code, PAM_SUCCESS, "{}", answered.stdout);
    let sydney_again = drive(&pam, "quentin", &["-r", "198.51.100.99"], &[]);
    assert_eq!(sydney_again.prompts(), 0, "{}", sydney_again.stdout);
    // An unknown address is never a new country.
    let unknown = drive(&pam, "quentin", &["-r", "203.0.113.200"], &[]);
    assert_eq!(unknown.prompts(), 0, "{}", unknown.stdout);
    // Countries are per person.
    daemon.recovery_codes("rosa");
    let other = drive(&pam, "rosa", &["-r", "192.0.2.10"], &[]);
    assert_eq!(other.prompts(), 1, "{}", other.stdout);
}

const TRAVEL: &str = r#"
[defaults]
action = "allow"

[[rule]]
name = "travel"
impossible_travel = "900km/h"
action = "step_up"
methods = ["recovery"]
"#;

#[test]
fn paris_then_sydney_ten_minutes_later_steps_up_twenty_hours_later_does_not() {
    let dbs = GeoDbs::generate();
    let bus = Bus::start(BusPolicy::Shipped);
    let state = StateDir::new();
    // The daemon's wall clock is moved by libfaketime: each allowed attempt
    // is recorded by the real let-in path at the time the daemon reads.
    let clock = FakeClock::new();
    let policy = format!("{}{TRAVEL}", dbs.section("city.mmdb", Some("asn.mmdb")));
    let mut daemon = Stepupd::new(&bus.address, &policy, state.path());
    for (key, value) in clock.env() {
        daemon = daemon.env(key, value);
    }
    daemon.start();
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));

    for (user, hours_before) in [("sven", 0), ("tove", 20)] {
        let codes = daemon.ctl(&["recovery-codes", user]);
        assert!(codes.status.success(), "{}", text(&codes));
        let offset = if hours_before == 0 {
            600
        } else {
            hours_before * 3600
        };
        clock.set_offset(-offset);
        let paris = drive(&pam, user, &["-r", "192.0.2.10"], &[]);
        assert_eq!(paris.code, PAM_SUCCESS, "{}", paris.stdout);
        assert_eq!(paris.prompts(), 0, "nothing to compare with yet");
        clock.set_offset(0);
        let sydney = drive(&pam, user, &["-r", "198.51.100.7"], &[]);
        if hours_before == 0 {
            assert_eq!(sydney.prompts(), 1, "{}", sydney.stdout);
            assert_ne!(sydney.code, PAM_SUCCESS);
            assert!(
                sydney
                    .stdout
                    .contains("an impossible journey from Paris, FR (192.0.2.10) 6"),
                "{}",
                sydney.stdout
            );
        } else {
            assert_eq!(sydney.code, PAM_SUCCESS, "{}", sydney.stdout);
            assert_eq!(sydney.prompts(), 0, "{}", sydney.stdout);
        }
    }
    // The speeds, in the events: ~16 920 km (net of the radii) in ten
    // minutes, and in twenty hours (a flight).
    let log = daemon.log();
    let speeds: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("event=decision ") && l.contains(" rhost=198.51.100.7 "))
        .map(|l| {
            let v = l
                .split(" speed_kmh=")
                .nth(1)
                .unwrap_or_else(|| panic!("{l}"));
            v.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(speeds.len(), 2, "{log}");
    assert!(speeds[0] > 95_000.0 && speeds[0] < 102_000.0, "{speeds:?}");
    assert!(speeds[1] > 830.0 && speeds[1] < 860.0, "{speeds:?}");
    assert!(
        decision_from(&log, "198.51.100.7").contains(" country=AU asn=64498 speed_kmh="),
        "{log}"
    );

    // explain: the place, and the journey with the attempt it compared with.
    let out = daemon.ctl(&[
        "explain",
        "--user",
        "sven",
        "--service",
        "sshd",
        "--rhost",
        "198.51.100.7",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(
            "Location: 198.51.100.7: AU, Sydney (-33.8688, 151.2093, within 20 km), AS64498 Example Sydney Net"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("[yes] impossible_travel: 198.51.100.7: AU, Sydney")
            && shown.contains("previous allowed attempt from Paris, FR (192.0.2.10) at 20")
            && shown.contains("km/h; rule limit 900km/h"),
        "{shown}"
    );
}

#[test]
fn two_fuzzy_addresses_in_one_city_are_no_journey() {
    let dbs = GeoDbs::generate();
    let (_bus, daemon, pam) = start(&format!("{}{TRAVEL}", dbs.section("city.mmdb", None)));
    daemon.recovery_codes("ulla");
    // Paris (20 km radius), then seconds later an address the database
    // puts 41 km away with a 500 km radius: 2 500 km/h on the raw distance,
    // none net of the radii.
    for rhost in ["192.0.2.10", "192.0.2.200", "192.0.2.10"] {
        let run = drive(&pam, "ulla", &["-r", rhost], &[]);
        assert_eq!(run.code, PAM_SUCCESS, "{rhost}: {}", run.stdout);
        assert_eq!(run.prompts(), 0, "{rhost}: {}", run.stdout);
    }
    let log = daemon.log();
    assert!(
        decision_from(&log, "192.0.2.200").contains(" speed_kmh=0 rule=(default) "),
        "{log}"
    );
    // Sydney seconds later is a journey: the rule is live.
    let sydney = drive(&pam, "ulla", &["-r", "198.51.100.7"], &[]);
    assert_eq!(sydney.prompts(), 1, "{}", sydney.stdout);
}

/// `count` utmp records, pts/0 … pts/{count-1}, each a login of `user`
/// from `host`, so whichever pty a test gets looks like an ssh session.
fn utmp_of_every_pty(path: &Path, user: &str, host: &str) {
    let started = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600) as i32;
    let records: Vec<u8> = (0..512)
        .flat_map(|n| stepupd::utmp::record(7, &format!("pts/{n}"), user, host, started))
        .collect();
    let tmp = path.with_extension("new");
    fs::write(&tmp, records).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn sudo_in_a_session_from_abroad_is_refused_via_utmp() {
    let dbs = GeoDbs::generate();
    let utmp = tempfile::tempdir().unwrap();
    let utmp_path = utmp.path().join("utmp");
    let bus = Bus::start(BusPolicy::Shipped);
    let pam = PamService::new(&format!("bus={} timeout=5", bus.address));
    let user = TestUser::create();
    utmp_of_every_pty(&utmp_path, &user.name, "198.51.100.7");
    let daemon = Daemon::start(
        &bus,
        &format!(
            r#"{}
[daemon]
utmp = "{}"

[defaults]
action = "allow"

[[rule]]
name = "sudo-from-abroad"
service = ["{}"]
country_not_in = ["FR"]
action = "deny"
message = "No sudo from abroad."
"#,
            dbs.section("city.mmdb", None),
            utmp_path.display(),
            pam.name
        ),
    );
    let _sudoers = SudoersDropIn::install(&format!(
        "Defaults:{u} pam_service={svc}, timestamp_timeout=0, !lecture\n{u} ALL=(root) /usr/bin/id\n",
        u = user.name,
        svc = pam.name
    ));
    let sudo_id = || {
        under_pty(
            &[
                "setpriv",
                &format!("--reuid={}", user.name),
                &format!("--regid={}", user.name),
                "--init-groups",
                "--reset-env",
                "sudo",
                "-k",
                "/usr/bin/id",
                "-u",
            ],
            &[],
            &[],
        )
    };
    let (transcript, status) = sudo_id();
    assert_ne!(status, 0, "{transcript}");
    assert!(transcript.contains("No sudo from abroad."), "{transcript}");
    let line = decision_from(&daemon.log(), "198.51.100.7");
    assert!(line.contains(" tty=/dev/pts/"), "{line}");
    assert!(
        line.contains(" country=AU rule=sudo-from-abroad verdict=deny "),
        "{line}"
    );

    // The same session seen from Paris: sudo runs.
    utmp_of_every_pty(&utmp_path, &user.name, "192.0.2.10");
    let (transcript, status) = sudo_id();
    assert_eq!(status, 0, "{transcript}");
    assert!(transcript.lines().any(|l| l.trim() == "0"), "{transcript}");
    let line = decision_from(&daemon.log(), "192.0.2.10");
    assert!(
        line.contains(" country=FR rule=(default) verdict=allow "),
        "{line}"
    );
}

#[test]
fn a_replaced_database_is_used_at_once_and_a_broken_one_keeps_the_old() {
    let dbs = GeoDbs::generate();
    let city = dbs.bytes("city.mmdb");
    let policy = |database: &str| {
        format!(
            "{}\n[defaults]\naction = \"deny\"\n\n[[rule]]\nname = \"from-france\"\ncountry_in = [\"FR\"]\naction = \"allow\"\n",
            dbs.section(database, None)
        )
    };
    let (_bus, daemon, pam) = start(&policy("city.mmdb"));
    let pid = daemon.pid();
    let paris = || drive(&pam, "vilma", &["-r", "192.0.2.10"], &[]).code;
    assert_eq!(paris(), PAM_SUCCESS);

    // geoipupdate renames the next edition into place: 192.0.2.0/25 is now
    // in Berlin, from the next attempt on, without a restart or reload.
    dbs.replace_with("city.mmdb", &dbs.bytes("city-moved.mmdb"));
    assert_eq!(paris(), PAM_AUTH_ERR);
    let log = daemon.log();
    assert!(
        log.lines().any(|l| l.contains("event=geoip_loaded ")
            && l.contains("database_type=GeoLite2-City replaced=true")),
        "{log}"
    );
    assert_eq!(count(&log, "event=geoip_unusable"), 0, "{log}");

    // A download cut short: refused once, the edition in use stays (its
    // 192.0.2.200 is still in France, 192.0.2.10 still in Germany).
    dbs.replace_with("city.mmdb", &city[..city.len() / 2]);
    assert_eq!(paris(), PAM_AUTH_ERR);
    assert_eq!(paris(), PAM_AUTH_ERR);
    let fuzzy_paris = drive(&pam, "vilma", &["-r", "192.0.2.200"], &[]);
    assert_eq!(fuzzy_paris.code, PAM_SUCCESS, "{}", fuzzy_paris.stdout);
    let log = daemon.log();
    let unusable: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=geoip_unusable"))
        .collect();
    assert_eq!(unusable.len(), 1, "reported once: {log}");
    assert!(
        unusable[0].contains(&dbs.path("city.mmdb").display().to_string())
            && unusable[0].contains("not a usable MaxMind DB database")
            && unusable[0].contains("kept=\"the database in use before\""),
        "{}",
        unusable[0]
    );
    // A reload looks again and reports it again.
    let out = daemon.ctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count(&daemon.log(), "event=geoip_unusable"), 2);
    assert_eq!(paris(), PAM_AUTH_ERR);

    // The good file again: used at once.
    dbs.replace_with("city.mmdb", &city);
    assert_eq!(paris(), PAM_SUCCESS);

    // A reload naming another file opens it: the next edition, by path.
    let main = daemon.config_dir.path().join("stepup.toml");
    fs::write(&main, policy("city-moved.mmdb")).unwrap();
    let out = daemon.ctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(paris(), PAM_AUTH_ERR);
    // A reload naming a file that is not there, with a rule needing it:
    // refused, the policy and database in force stay.
    fs::write(&main, policy("missing.mmdb")).unwrap();
    let out = daemon.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("stepup.toml:2:12: [geoip] database: ")
            && shown.contains(&dbs.path("missing.mmdb").display().to_string()),
        "{shown}"
    );
    assert_eq!(paris(), PAM_AUTH_ERR);
    let status = text(&daemon.ctl(&["status"]));
    assert!(
        status.contains("city-moved.mmdb (GeoLite2-City, built 2024-02-01)"),
        "{status}"
    );
    assert_eq!(daemon.pid(), pid, "never restarted");
}

/// The ways a database file can be unusable, each as `city.mmdb` in its own
/// directory, with the reason the refusal must give.
fn bad_databases(dbs: &GeoDbs) -> Vec<(&'static str, tempfile::TempDir, &'static str)> {
    let city = dbs.bytes("city.mmdb");
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    };
    let file = |bytes: &[u8]| {
        let dir = fresh();
        fs::write(dir.path().join("city.mmdb"), bytes).unwrap();
        fs::set_permissions(
            dir.path().join("city.mmdb"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        dir
    };
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut cases = vec![
        (
            "truncated",
            file(&city[..city.len() / 3]),
            "not a usable MaxMind DB database",
        ),
        ("empty", file(b""), "empty file"),
        (
            "garbage",
            file(&garbage),
            "not a usable MaxMind DB database",
        ),
        (
            "another type",
            file(&dbs.bytes("anonymous.mmdb")),
            "database type \"GeoIP2-Anonymous-IP\" is not a City or Country edition",
        ),
    ];
    // A symlink to a file another user owns, and to one anyone may write.
    for (what, owner, mode, why) in [
        (
            "symlink to a user's file",
            65534,
            0o644,
            "refused: owned by uid 65534, not root",
        ),
        (
            "symlink to a world-writable file",
            0,
            0o666,
            "refused: mode 0666 is writable by group or others",
        ),
    ] {
        let dir = fresh();
        let target = dir.path().join("elsewhere.mmdb");
        fs::write(&target, &city).unwrap();
        nix::unistd::chown(&target, Some(owner.into()), None).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        symlink(&target, dir.path().join("city.mmdb")).unwrap();
        cases.push((what, dir, why));
    }
    cases
}

fn check(config: &Path) -> std::process::Output {
    std::process::Command::new(artifact("stepupctl"))
        .args(["check", "--config-dir"])
        .arg(config)
        .output()
        .unwrap()
}

const NEEDS_COUNTRY: &str =
    "\n[[rule]]\nname = \"from-france\"\ncountry_in = [\"FR\"]\naction = \"allow\"\n";

#[test]
fn unusable_databases_are_refused_by_check_and_at_start() {
    let dbs = GeoDbs::generate();
    let bus = Bus::start(BusPolicy::Shipped);
    for (what, dir, why) in bad_databases(&dbs) {
        let database = dir.path().join("city.mmdb");
        let policy = format!(
            "[geoip]\ndatabase = \"{}\"\n{NEEDS_COUNTRY}",
            database.display()
        );
        let config = policy_dir("stepup-geocheck-", &policy);
        let out = check(config.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        let want = format!(
            "stepupctl: {}/stepup.toml:2:12: [geoip] database: {}: ",
            config.path().display(),
            database.display()
        );
        assert!(stderr.starts_with(&want), "{what}: {stderr}");
        assert!(stderr.contains(why), "{what}: {stderr}");

        // The daemon refuses to start on it, as on a bad configuration.
        let state = StateDir::new();
        let mut daemon = Stepupd::new(&bus.address, &policy, state.path());
        match daemon.try_start() {
            Started::Exited(status) => assert!(!status.success(), "{what}"),
            Started::Serving => panic!("{what}: stepupd started on it:\n{}", daemon.log()),
        }
        let log = daemon.log();
        assert!(
            log.contains("[geoip] database: ") && log.contains(why),
            "{what}: {log}"
        );
    }
    // The good file passes, every record read.
    let policy = format!("{}{NEEDS_COUNTRY}", dbs.section("city.mmdb", None));
    let config = policy_dir("stepup-geocheck-", &policy);
    let out = check(config.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("GeoLite2-City, built 2024-01-01): every record reads"),
        "{}",
        text(&out)
    );
}

#[test]
fn as_rules_need_a_file_that_gives_as_numbers() {
    let dbs = GeoDbs::generate();
    let rule = "\n[[rule]]\nname = \"home-isp\"\nasn_in = [64496]\naction = \"allow\"\n";
    // A City file without AS data, and no asn_database.
    let config = policy_dir(
        "stepup-geocheck-",
        &format!("{}{rule}", dbs.section("city.mmdb", None)),
    );
    let out = check(config.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "stepupctl: {}/stepup.toml:4:1: rule \"home-isp\": asn_in needs AS numbers",
            config.path().display()
        )) && stderr.contains("(GeoLite2-City) has none: set [geoip] asn_database"),
        "{stderr}"
    );
    for section in [
        dbs.section("city.mmdb", Some("asn.mmdb")),
        dbs.section("country.mmdb", Some("asn-ipv4.mmdb")),
        dbs.section("enterprise.mmdb", None),
    ] {
        let config = policy_dir("stepup-geocheck-", &format!("{section}{rule}"));
        let out = check(config.path());
        assert!(out.status.success(), "{section}: {}", text(&out));
    }
    // A broken ASN file is named as such (line 3: asn_database).
    let broken = tempfile::tempdir().unwrap();
    fs::set_permissions(broken.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(broken.path().join("asn.mmdb"), b"").unwrap();
    fs::set_permissions(
        broken.path().join("asn.mmdb"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let config = policy_dir(
        "stepup-geocheck-",
        &format!(
            "[geoip]\ndatabase = \"{}\"\nasn_database = \"{}\"\n{rule}",
            dbs.path("city.mmdb").display(),
            broken.path().join("asn.mmdb").display()
        ),
    );
    let out = check(config.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/stepup.toml:3:16: [geoip] asn_database: ")
            && stderr.contains("empty file"),
        "{stderr}"
    );
}

#[test]
fn without_location_rules_a_missing_database_does_not_stop_the_daemon() {
    let dbs = GeoDbs::generate();
    let later = dbs.path("later.mmdb");
    let (_bus, daemon, pam) = start(&format!(
        "[geoip]\ndatabase = \"{}\"\n\n[defaults]\naction = \"allow\"\n",
        later.display()
    ));
    let log = daemon.log();
    assert!(
        log.lines().any(|l| l.contains("event=geoip_unusable")
            && l.contains("later.mmdb")
            && l.contains("locations are not recorded until a reload opens it")),
        "{log}"
    );
    assert!(text(&daemon.ctl(&["status"])).contains("geoip: none"));
    let run = drive(&pam, "wanda", &["-r", "192.0.2.10"], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(!decision_from(&daemon.log(), "192.0.2.10").contains("country="));

    // The file arrives; a reload opens it.
    fs::copy(dbs.path("city.mmdb"), &later).unwrap();
    let out = daemon.ctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = text(&daemon.ctl(&["status"]));
    assert!(
        status.contains("later.mmdb (GeoLite2-City, built 2024-01-01)"),
        "{status}"
    );
    let run = drive(&pam, "wanda", &["-r", "192.0.2.20"], &[]);
    assert_eq!(run.code, PAM_SUCCESS, "{}", run.stdout);
    assert!(decision_from(&daemon.log(), "192.0.2.20").contains(" country=FR "));
}

#[test]
fn a_damaged_record_is_an_unknown_place_reported_once() {
    let dbs = GeoDbs::generate();
    // Metadata intact, search tree pointing past the data: the file opens
    // (the daemon does not read every record at start), lookups fail.
    let mut bytes = dbs.bytes("city.mmdb");
    bytes[..600].fill(0xff);
    dbs.replace_with("damaged.mmdb", &bytes);
    let policy = format!(
        "{}\n[defaults]\naction = \"deny\"\n\n[[rule]]\nname = \"from-france\"\ncountry_in = [\"FR\"]\naction = \"allow\"\n",
        dbs.section("damaged.mmdb", None)
    );
    // check reads every record: refused.
    let config = policy_dir("stepup-geocheck-", &policy);
    let out = check(config.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not a usable MaxMind DB database"),
        "{}",
        text(&out)
    );

    let (_bus, daemon, pam) = start(&policy);
    for _ in 0..2 {
        // Unknown, so not in France: the default decides (fail closed).
        let run = drive(&pam, "xavier", &["-r", "192.0.2.10"], &[]);
        assert_eq!(run.code, PAM_AUTH_ERR, "{}", run.stdout);
    }
    let log = daemon.log();
    let unusable: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=geoip_unusable"))
        .collect();
    assert_eq!(unusable.len(), 1, "{log}");
    assert!(
        unusable[0].contains("the database is damaged")
            && unusable[0].contains("kept=\"lookups that fail count as unknown addresses\""),
        "{}",
        unusable[0]
    );
    let line = decision_from(&log, "192.0.2.10");
    assert!(
        line.contains(" rule=(default) ") && !line.contains("country="),
        "{line}"
    );
}
