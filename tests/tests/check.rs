//! `stepupctl check`: precise messages for broken configs (fixtures in
//! tests/fixtures/broken), warnings for configs that load but cannot work.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use stepup_tests::*;

fn check(dir: &Path) -> Output {
    Command::new(artifact("stepupctl"))
        .args(["check", "--config-dir"])
        .arg(dir)
        .output()
        .unwrap()
}

/// Copy a fixture into a root-owned private temp dir with safe modes (a
/// checkout may have any umask; the loader refuses group-writable files).
fn install(fixture: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for entry in walk(fixture) {
        let rel = entry.strip_prefix(fixture).unwrap();
        let target = dir.path().join(rel);
        if entry.is_dir() {
            fs::create_dir_all(&target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            fs::copy(&entry, &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    dir
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.is_dir() {
            out.extend(walk(&path));
        }
    }
    out.sort();
    out
}

#[test]
fn every_broken_fixture_gets_its_precise_message() {
    let root = fixture("broken");
    let mut cases = 0;
    for case in walk(&root)
        .into_iter()
        .filter(|p| p.is_dir() && p.parent() == Some(root.as_path()))
    {
        let expected = fs::read_to_string(case.join("expected")).unwrap();
        let mut lines = expected.lines();
        let (location, message) = (lines.next().unwrap(), lines.next().unwrap());
        let dir = install(&case);
        let out = check(dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", case.display());
        // `{dir}` in a message stands for the config directory, `{rule_keys}`
        // for every key a rule takes (the list grows with each condition).
        let rule_keys: Vec<String> = stepup_config::rule_keys()
            .iter()
            .map(|k| format!("`{k}`"))
            .collect();
        let message = message
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{rule_keys}", &rule_keys.join(", "));
        let want = format!("stepupctl: {}/{location}: {message}", dir.path().display());
        assert_eq!(stderr.trim_end(), want, "{}", case.display());
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} fixtures");
}

fn config_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let main = dir.path().join("stepup.toml");
    fs::write(&main, text).unwrap();
    fs::set_permissions(&main, fs::Permissions::from_mode(0o644)).unwrap();
    dir
}

#[test]
fn shadowed_rule_and_deny_everyone_are_warned_about() {
    let dir = config_dir(
        r#"
[defaults]
action = "deny"

[[rule]]
name = "all-sudo"
service = ["sudo"]
action = "deny"

[[rule]]
name = "ops-sudo"
service = ["sudo"]
user = ["alice"]
action = "deny"
"#,
    );
    let out = check(dir.path());
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#"warning: rule "ops-sudo" can never match: rule "all-sudo""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("every attempt through pam_stepup is refused"),
        "{stdout}"
    );

    // A narrower rule first, then a broader one: no warning.
    let dir = config_dir(
        "[[rule]]\nname = \"a\"\nservice = [\"sudo\"]\nuser = [\"alice\"]\naction = \"allow\"\n\n[[rule]]\nname = \"b\"\nservice = [\"sudo\"]\naction = \"step_up\"\n",
    );
    let out = check(dir.path());
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"));
}

#[test]
fn shipped_default_and_demo_configs_pass_check() {
    for file in ["../config/defaults/stepup.toml", "../demo/stepup.toml"] {
        let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let dir = config_dir(&text);
        let out = check(dir.path());
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("warning"),
            "{file}"
        );
    }
}

#[test]
fn every_toml_example_in_the_docs_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The examples name the usual GeoIP paths; check opens and reads the
    // files, so they become the generated test databases here.
    let dbs = stepup_tests::geo::GeoDbs::generate();
    let geoip_paths = [
        ("/var/lib/GeoIP/GeoLite2-City.mmdb", dbs.path("city.mmdb")),
        (
            "/var/lib/GeoIP/GeoLite2-Country.mmdb",
            dbs.path("country.mmdb"),
        ),
        ("/var/lib/GeoIP/GeoLite2-ASN.mmdb", dbs.path("asn.mmdb")),
    ];
    let mut examples = 0;
    for doc in ["docs/policy.md", "README.md"] {
        let text = fs::read_to_string(root.join(doc)).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let example = block.split("```").next().unwrap();
            let example = geoip_paths
                .iter()
                .fold(example.to_owned(), |text, (usual, test)| {
                    text.replace(usual, &test.display().to_string())
                });
            let dir = config_dir(&example);
            let out = check(dir.path());
            assert!(
                out.status.success(),
                "{doc} example fails check:\n{example}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            examples += 1;
        }
    }
    assert!(examples >= 10, "{examples}");
}

#[test]
fn a_software_security_key_is_flagged_loudly() {
    let dir = config_dir("[fido2]\nauthenticator = \"software:/var/lib/stepup/softkey.json\"\n");
    let out = check(dir.path());
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("SOFTWARE key") && stdout.contains("tests and demos only"),
        "{stdout}"
    );
    let dir = config_dir("[fido2]\nauthenticator = \"usb\"\n");
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected \"hardware\""));
}
