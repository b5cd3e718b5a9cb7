//! `read_sudoers` on real files: each `fixtures/sudoers/<case>` tree is
//! copied into a temporary directory, with `/etc/sudoers.d` pointed there.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use stepup_doctor::{Severity, SudoFacts, check_sudo, check_sudo_timestamp, read_sudoers};

fn copy_tree(from: &Path, to: &Path, root: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, root);
        } else {
            let text = fs::read_to_string(entry.path()).unwrap();
            let text = text.replace(
                "/etc/sudoers.d",
                &root.join("sudoers.d").display().to_string(),
            );
            fs::write(target, text).unwrap();
        }
    }
}

fn load(case: &str) -> (tempfile::TempDir, SudoFacts) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sudoers")
        .join(case);
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture, dir.path(), dir.path());
    let facts = read_sudoers(&dir.path().join("sudoers")).unwrap();
    for f in check_sudo(&facts, false) {
        println!("{case}: {f}");
    }
    (dir, facts)
}

fn path(dir: &tempfile::TempDir, rel: &str) -> PathBuf {
    dir.path().join(rel)
}

#[test]
fn debian_default_is_15_minutes() {
    let (dir, facts) = load("default15");
    assert_eq!(facts.timestamp_timeout_minutes, None);
    assert_eq!(facts.files.len(), 2, "{:?}", facts.files);
    let f = check_sudo_timestamp(&facts, false);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Error);
    assert_eq!(f[0].location, path(&dir, "sudoers").display().to_string());
    assert!(f[0].message.contains("15 minutes"));
    assert!(f[0].message.contains("sudo does not call PAM"));
    assert!(f[0].message.contains("Defaults timestamp_timeout=0"));
    assert!(check_sudo_timestamp(&facts, true).is_empty());
    assert!(check_sudo(&facts, true).is_empty());
}

#[test]
fn drop_in_sets_zero() {
    let (dir, facts) = load("global0");
    assert_eq!(facts.timestamp_timeout_minutes, Some(0.0));
    assert_eq!(
        facts.locations.timestamp_timeout,
        Some(format!("{}:2", path(&dir, "sudoers.d/stepup").display()))
    );
    assert!(check_sudo(&facts, false).is_empty());
}

#[test]
fn per_user_settings_are_warnings() {
    let (dir, facts) = load("per-user");
    assert_eq!(facts.timestamp_timeout_minutes, Some(0.0));
    assert_eq!(
        facts.per_user_timestamp,
        vec![
            ("Defaults:alice".to_owned(), 30.0),
            ("Defaults@buildhost,testhost".to_owned(), 2.5),
            ("Defaults>root".to_owned(), 0.0),
        ]
    );
    let f = check_sudo_timestamp(&facts, false);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(f.iter().all(|f| f.severity == Severity::Warning));
    assert_eq!(
        f[0].location,
        format!("{}:1", path(&dir, "sudoers.d/ops").display())
    );
    assert_eq!(
        f[1].location,
        format!("{}:2", path(&dir, "sudoers.d/ops").display())
    );
    assert!(f[1].message.contains("2.5 minutes"));
}

#[test]
fn a_later_drop_in_overrides_the_main_file() {
    let (dir, facts) = load("includedir-override");
    assert_eq!(facts.timestamp_timeout_minutes, Some(20.0));
    // 60-fix.conf and 70-fix~ are not read.
    assert_eq!(facts.files.len(), 3, "{:?}", facts.files);
    let f = check_sudo_timestamp(&facts, false);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].location,
        format!("{}:2", path(&dir, "sudoers.d/50-local").display())
    );
    assert!(f[0].message.contains("20 minutes"));
}

#[test]
fn negative_never_expires() {
    let (_dir, facts) = load("negative");
    assert_eq!(facts.timestamp_timeout_minutes, Some(-1.0));
    for grace in [false, true] {
        let f = check_sudo_timestamp(&facts, grace);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("never expires"));
    }
}

#[test]
fn relative_includes_with_quotes() {
    let (dir, facts) = load("relative");
    assert_eq!(facts.timestamp_timeout_minutes, Some(0.0));
    assert_eq!(
        facts.files.last().map(String::as_str),
        Some(path(&dir, "conf/extra file").to_str().unwrap())
    );
    let f = check_sudo(&facts, false);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.contains("NOPASSWD"));
}

#[test]
fn unreadable_top_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_sudoers(&dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}
