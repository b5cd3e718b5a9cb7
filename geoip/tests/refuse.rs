//! Files stepup must not use: each is refused with an error naming the file
//! and the reason, and nothing panics.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{TestDbs, garbage, generate, ip, set_mode};
use stepup_geoip::{GeoDatabases, GeoError};

fn open_err(path: &Path) -> GeoError {
    GeoDatabases::open(path, None).expect_err("must be refused")
}

fn assert_untrusted(err: GeoError, path: &Path, because: &str) {
    assert!(matches!(err, GeoError::Untrusted { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(text.contains(because), "{text}");
}

#[test]
fn empty_file() {
    let dbs = generate();
    let path = dbs.path("empty.mmdb");
    std::fs::write(&path, b"").unwrap();
    let err = open_err(&path);
    assert!(matches!(err, GeoError::Empty { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: empty file, not a MaxMind DB database", path.display())
    );
}

#[test]
fn truncated_files_at_several_lengths() {
    let dbs = generate();
    let whole = std::fs::read(dbs.path("city.mmdb")).unwrap();
    let path = dbs.path("truncated.mmdb");
    // Cut inside the search tree, the data section, the metadata marker and
    // the metadata itself.
    for keep in [
        1,
        100,
        whole.len() / 2,
        whole.len() - 200,
        whole.len() - 30,
        whole.len() - 1,
    ] {
        std::fs::write(&path, &whole[..keep]).unwrap();
        let err = open_err(&path);
        assert!(
            matches!(err, GeoError::Invalid { .. }),
            "keep {keep}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "{}: not a usable MaxMind DB database",
                path.display()
            )),
            "{text}"
        );
    }
}

#[test]
fn garbage_file() {
    let dbs = generate();
    let path = dbs.path("garbage.mmdb");
    for len in [1, 16, 4096, 100_000] {
        std::fs::write(&path, garbage(len)).unwrap();
        let err = open_err(&path);
        assert!(
            matches!(err, GeoError::Invalid { .. }),
            "len {len}: {err:?}"
        );
    }
    std::fs::write(&path, b"# not a database\n").unwrap();
    assert!(matches!(open_err(&path), GeoError::Invalid { .. }));
}

#[test]
fn damaged_data_behind_intact_metadata_fails_the_lookup_not_the_process() {
    let dbs = generate();
    let mut bytes = std::fs::read(dbs.path("city.mmdb")).unwrap();
    // The search tree (node_count * 6 bytes at record size 24) comes first:
    // point its records past the end of the data section.
    for b in &mut bytes[..600] {
        *b = 0xff;
    }
    let path = dbs.path("damaged.mmdb");
    std::fs::write(&path, &bytes).unwrap();
    let geo = GeoDatabases::open(&path, None).expect("metadata is intact, so it opens");
    let err = geo.verify().expect_err("verify walks the tree");
    assert!(matches!(err, GeoError::Invalid { .. }), "{err:?}");
    let err = geo
        .lookup(ip("192.0.2.1"))
        .expect_err("the record is unreachable");
    assert!(matches!(err, GeoError::Lookup { .. }), "{err:?}");
    assert!(err.to_string().contains("the database is damaged"), "{err}");
}

#[test]
fn missing_file() {
    let dbs = generate();
    let path = dbs.path("no-such.mmdb");
    let err = open_err(&path);
    assert!(
        matches!(&err, GeoError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(err.to_string().starts_with(&path.display().to_string()));
}

#[test]
fn wrong_database_types() {
    let dbs = generate();
    let err = open_err(&dbs.path("anonymous.mmdb"));
    assert!(matches!(err, GeoError::WrongType { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: database type \"GeoIP2-Anonymous-IP\" is not a City or Country edition (e.g. GeoLite2-City, GeoLite2-Country)",
            dbs.path("anonymous.mmdb").display()
        )
    );
    // An ASN file where the City/Country one belongs, and the reverse.
    let err = open_err(&dbs.path("asn.mmdb"));
    assert!(
        err.to_string()
            .contains("\"GeoLite2-ASN\" is not a City or Country"),
        "{err}"
    );
    let err =
        GeoDatabases::open(&dbs.path("city.mmdb"), Some(&dbs.path("country.mmdb"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: database type \"GeoLite2-Country\" is not an ASN database (e.g. GeoLite2-ASN)",
            dbs.path("country.mmdb").display()
        )
    );
}

#[test]
fn file_writable_by_group_or_others() {
    let dbs = generate();
    let path = dbs.path("city.mmdb");
    for mode in [0o664, 0o646, 0o666] {
        set_mode(&path, mode);
        assert_untrusted(
            open_err(&path),
            &path,
            &format!("mode {mode:04o} is writable by group or others"),
        );
    }
    set_mode(&path, 0o444);
    GeoDatabases::open(&path, None).expect("read-only root file is fine");
}

#[test]
fn file_not_owned_by_root() {
    let dbs = generate();
    let path = dbs.path("city.mmdb");
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    assert_untrusted(open_err(&path), &path, "owned by uid 65534, not root");
}

#[test]
fn symlink_to_a_file_others_can_write_is_refused() {
    let dbs = generate();
    let target = dbs.path("city.mmdb");
    let link = dbs.path("GeoLite2-City.mmdb");
    symlink(&target, &link).unwrap();
    GeoDatabases::open(&link, None).expect("a symlink to a trusted file is fine");
    set_mode(&target, 0o646);
    assert_untrusted(
        open_err(&link),
        &link,
        "mode 0646 is writable by group or others",
    );
    set_mode(&target, 0o644);
    std::os::unix::fs::chown(&target, Some(65534), None).unwrap();
    assert_untrusted(open_err(&link), &link, "owned by uid 65534");
}

/// A root-owned file in a directory others can write (and no sticky bit)
/// could be replaced by them: refused, whether reached directly or through a
/// symlink, and a symlink in such a directory is refused too.
#[test]
fn directories_others_can_write_are_refused() {
    let dbs = generate();
    let open_dir = dbs.path("open");
    std::fs::create_dir(&open_dir).unwrap();
    let inside = open_dir.join("city.mmdb");
    std::fs::copy(dbs.path("city.mmdb"), &inside).unwrap();
    GeoDatabases::open(&inside, None).expect("trusted while the directory is 0755");
    set_mode(&open_dir, 0o777);
    let because = format!(
        "directory {} (mode 0777) is writable by group or others",
        open_dir.display()
    );
    assert_untrusted(open_err(&inside), &inside, &because);

    let link = dbs.path("link.mmdb");
    symlink(&inside, &link).unwrap();
    assert_untrusted(open_err(&link), &link, &because);

    // The symlink itself in the open directory, pointing at a good file.
    let link_inside = open_dir.join("link.mmdb");
    symlink(dbs.path("city.mmdb"), &link_inside).unwrap();
    assert_untrusted(open_err(&link_inside), &link_inside, &because);

    // Sticky, like /tmp: others cannot replace root's entries.
    set_mode(&open_dir, 0o1777);
    GeoDatabases::open(&inside, None).expect("sticky directory is fine");
}

#[test]
fn directory_owned_by_another_user_is_refused() {
    let dbs = generate();
    let theirs = dbs.path("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let inside = theirs.join("city.mmdb");
    std::fs::copy(dbs.path("city.mmdb"), &inside).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
    let because = format!(
        "directory {} is owned by uid 65534, not root",
        theirs.display()
    );
    assert_untrusted(open_err(&inside), &inside, &because);
}

#[test]
fn not_a_regular_file() {
    let dbs: TestDbs = generate();
    let err = open_err(dbs.dir.path());
    assert_untrusted(err, dbs.dir.path(), "a directory, not a regular file");
    let fifo = dbs.path("fifo.mmdb");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Refused without opening (which would block).
    assert_untrusted(open_err(&fifo), &fifo, "a FIFO, not a regular file");
    let dev_null = Path::new("/dev/null");
    assert_untrusted(open_err(dev_null), dev_null, "not a regular file");
}

#[test]
fn a_bad_asn_file_refuses_the_pair() {
    let dbs = generate();
    let asn = dbs.path("asn.mmdb");
    set_mode(&asn, 0o666);
    let err = GeoDatabases::open(&dbs.path("city.mmdb"), Some(&asn)).unwrap_err();
    assert_untrusted(err, &asn, "mode 0666");
}
