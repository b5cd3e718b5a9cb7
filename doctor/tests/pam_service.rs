//! `check_pam_service` on real files: the fixtures under `fixtures/pam` are
//! copied into a temporary directory laid out like `/etc/pam.d`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use stepup_doctor::{Finding, Severity, check_pam_service, has_errors};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pam")
}

/// A temporary `pam.d` with every file of `fixtures/pam/common`, plus
/// `fixtures/pam/sudo/<variant>` as `sudo` (if `variant` is given).
fn pam_dir(variant: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixtures().join("common")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    if let Some(variant) = variant {
        fs::copy(
            fixtures().join("sudo").join(variant),
            dir.path().join("sudo"),
        )
        .unwrap();
    }
    dir
}

fn run(variant: &str) -> (tempfile::TempDir, Vec<Finding>) {
    let dir = pam_dir(Some(variant));
    let findings = check_pam_service(dir.path(), "sudo");
    for f in &findings {
        println!("{variant}: {f}");
    }
    (dir, findings)
}

fn at(dir: &tempfile::TempDir, file: &str, line: usize) -> String {
    format!("{}:{line}", dir.path().join(file).display())
}

#[test]
fn debian_sudo_with_stepup_after_common_auth_is_clean() {
    let (_dir, f) = run("good");
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn stepup_before_the_password_is_clean() {
    let (_dir, f) = run("before");
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn bracket_list_with_default_die_is_clean() {
    let (_dir, f) = run("bracket-die");
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn sufficient_pam_unix_before_stepup() {
    let (dir, f) = run("sufficient");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].to_string(),
        format!(
            "error: {}: pam_stepup.so is after `auth sufficient pam_unix.so` (line 2): a successful password skips step-up",
            at(&dir, "sudo", 3)
        )
    );
}

#[test]
fn optional_stepup() {
    let (dir, f) = run("optional");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Error);
    assert_eq!(f[0].location, at(&dir, "sudo", 10));
    assert!(f[0].message.contains("`optional`"));
}

#[test]
fn default_ignore_on_stepup() {
    let (dir, f) = run("default-ignore");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Error);
    assert_eq!(f[0].location, at(&dir, "sudo", 10));
    assert!(
        f[0].message.contains("`[default=ignore success=ok]`"),
        "{}",
        f[0].message
    );
}

#[test]
fn stepup_missing() {
    let (dir, f) = run("missing");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].to_string(),
        format!(
            "error: {}: sudo: pam_stepup.so is not in the auth stack: step-up never runs",
            dir.path().join("sudo").display()
        )
    );
}

#[test]
fn dash_auth_on_stepup() {
    let (dir, f) = run("dash");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].location, at(&dir, "sudo", 10));
}

#[test]
fn include_loop_terminates_and_is_reported() {
    let (dir, f) = run("loop");
    assert!(!has_errors(&f), "{f:#?}");
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(f[0].location, at(&dir, "loop-b", 1));
    assert!(f[0].message.contains("include loop"));
    // libpam ends the loop with a line that always fails.
    assert!(f[1].message.contains("can never succeed"));
}

#[test]
fn success_2_jumps_over_stepup() {
    let (dir, f) = run("jump");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].location, at(&dir, "common-auth-jump", 3));
    assert!(
        f[0].message
            .starts_with("pam_stepup.so is jumped over by `auth [success=2 default=ignore] pam_unix.so nullok` (line 2)"),
        "{}",
        f[0].message
    );
}

#[test]
fn rhel_include_vs_substack() {
    let (dir, f) = run("include-rhel");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].location, at(&dir, "sudo", 3));
    assert!(
        f[0].message
            .contains(&format!("({})", at(&dir, "system-auth", 4))),
        "{}",
        f[0].message
    );
    let (_dir, f) = run("substack-rhel");
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn missing_service_falls_back_to_other() {
    let dir = pam_dir(None);
    let f = check_pam_service(dir.path(), "sudo");
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].message.contains("not in the auth stack"));
    assert_eq!(f[1].severity, Severity::Warning);
    assert!(f[1].message.contains("other"));
}

#[test]
fn nothing_at_all_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = check_pam_service(dir.path(), "sudo");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].is_error());
}

#[test]
fn absolute_include_paths_are_followed() {
    let dir = pam_dir(None);
    let common = dir.path().join("common-auth");
    fs::write(
        dir.path().join("sudo"),
        format!(
            "auth include {}\nauth required pam_stepup.so\n",
            common.display()
        ),
    )
    .unwrap();
    let f = check_pam_service(dir.path(), "sudo");
    assert!(f.is_empty(), "{f:#?}");
}
