//! The packaging files that ship: the systemd unit is hardened (as scored
//! by `systemd-analyze security`), D-Bus activation names the unit, and the
//! pam-auth-update profile is off by default.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn packaging(file: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "packaging", file]
        .iter()
        .collect()
}

#[test]
fn the_unit_is_hardened() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(packaging("systemd/stepupd.service"))
        .output()
        .expect("systemd-analyze (package systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for stepupd.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(
        score <= 2.0,
        "exposure {score} (want <= 2.0, \"OK\"):\n{text}"
    );
    let unit = std::fs::read_to_string(packaging("systemd/stepupd.service")).unwrap();
    for line in [
        "BusName=org.stepup.Daemon1",
        "StateDirectory=stepup",
        "StateDirectoryMode=0700",
        "DeviceAllow=char-hidraw rw",
        "PrivateNetwork=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line}");
    }
}

#[test]
fn dbus_activation_names_the_unit_and_the_policy_is_root_only() {
    let activation = std::fs::read_to_string(packaging("dbus/org.stepup.Daemon1.service")).unwrap();
    assert!(activation.contains(&format!("Name={}", stepup_common::BUS_NAME)));
    assert!(activation.contains("SystemdService=stepupd.service"));
    let policy = std::fs::read_to_string(packaging("dbus/org.stepup.Daemon1.conf")).unwrap();
    assert!(
        policy.contains(r#"<policy user="root">"#)
            && policy.contains(r#"<deny send_destination="org.stepup.Daemon1"/>"#)
    );
}

#[test]
fn the_pam_auth_update_profile_is_off_by_default() {
    let profile = std::fs::read_to_string(packaging("pam-configs/stepup")).unwrap();
    assert!(profile.lines().any(|l| l == "Default: no"), "{profile}");
    assert!(profile.contains("Auth-Type: Additional"));
    assert!(
        profile
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["required", "pam_stepup.so"])
    );
}
