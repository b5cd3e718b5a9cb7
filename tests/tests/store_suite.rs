//! The store's contract, run against both backends: the embedded SQLite
//! store and the shared PostgreSQL store (a private cluster per test).
//! Each case is a generic function over `dyn Store`; `both!` makes a test
//! of it for each backend.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use stepup_config::StoreSettings;
use stepup_config::attempt::{GeoFacts, PreviousAttempt};
use stepup_tests::postgres::{Postgres, fleet_key};
use stepupd::store::{
    Fido2Credential, HistoryColumn, HistoryEntry, ImportBatch, PgStore, SqliteStore,
    SshKeyCredential, Store, TotpCredential,
};
use zeroize::Zeroizing;

/// What keeps a store's backing alive (a directory, a server).
#[allow(dead_code)] // held for its Drop
enum Backing {
    Dir(tempfile::TempDir),
    Server(Postgres, tempfile::TempDir),
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn sqlite() -> (Backing, Box<dyn Store>) {
    let dir = private_dir();
    let store = SqliteStore::open(dir.path()).unwrap();
    (Backing::Dir(dir), Box::new(store))
}

fn postgres() -> (Backing, Box<dyn Store>) {
    let pg = Postgres::start();
    let keys = private_dir();
    let settings = StoreSettings {
        url: Some(pg.url()),
        key_file: Some(fleet_key(keys.path(), "fleet.key")),
        ..StoreSettings::default()
    };
    let store = PgStore::open(&settings, Box::new(|_| {})).unwrap();
    (Backing::Server(pg, keys), Box::new(store))
}

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { let (_b, mut s) = super::sqlite(); super::$case(&mut *s); } )*
        }
        mod postgres {
            $( #[test] fn $case() { let (_b, mut s) = super::postgres(); super::$case(&mut *s); } )*
        }
    };
}

both!(
    last_step_only_moves_forward,
    recovery_codes_are_used_once_and_replaced_as_a_set,
    security_key_counters_only_grow_and_suspect_keys_are_hidden,
    history_queries_respect_time_scope_user_and_host,
    lockout_lock_and_unlock_forget_earlier_failures,
    list_remove_and_import_are_scoped_and_all_or_nothing,
    ssh_agent_key_counters_only_grow_and_login_keys_are_remembered,
    locations_follow_the_latest_let_in_and_are_forgotten_with_history,
);

fn locations_follow_the_latest_let_in_and_are_forgotten_with_history(store: &mut dyn Store) {
    let sydney = GeoFacts {
        country: Some("AU".into()),
        city: Some("Sydney".into()),
        coordinates: Some((-33.8688, 151.2093)),
        accuracy_radius_km: Some(20),
        asn: Some(64498),
        as_org: None,
    };
    store
        .mark_source_seen("alice", "192.0.2.10", 1000, Some(&paris()))
        .unwrap();
    store
        .mark_source_seen("alice", "198.51.100.7", 2000, Some(&sydney))
        .unwrap();
    store
        .mark_source_seen("alice", "203.0.113.200", 3000, None)
        .unwrap();
    store
        .mark_source_seen("bob", "192.0.2.11", 4000, Some(&paris()))
        .unwrap();
    assert_eq!(store.country_last_seen("alice", "FR").unwrap(), Some(1000));
    assert_eq!(store.country_last_seen("alice", "AU").unwrap(), Some(2000));
    assert_eq!(store.country_last_seen("alice", "DE").unwrap(), None);
    // The latest located let-in: Sydney (the later one had no location).
    let previous = store.last_located_source("alice").unwrap().unwrap();
    assert_eq!(
        previous,
        PreviousAttempt {
            time: 2000,
            rhost: "198.51.100.7".into(),
            country: Some("AU".into()),
            city: Some("Sydney".into()),
            coordinates: (-33.8688, 151.2093),
            accuracy_radius_km: 20,
        }
    );
    // An earlier let-in (a clock set back) does not overwrite the
    // location of a later one; a later one does, also to "unknown".
    store
        .mark_source_seen("alice", "198.51.100.7", 1500, Some(&paris()))
        .unwrap();
    assert_eq!(store.country_last_seen("alice", "AU").unwrap(), Some(2000));
    store
        .mark_source_seen("alice", "198.51.100.7", 2500, None)
        .unwrap();
    assert_eq!(store.country_last_seen("alice", "AU").unwrap(), None);
    assert_eq!(
        store.last_located_source("alice").unwrap().unwrap().time,
        1000
    );

    // Retention: locations of let-ins before the cut go, sources stay.
    assert_eq!(store.forget_locations_before(1500).unwrap(), 1);
    assert_eq!(store.country_last_seen("alice", "FR").unwrap(), None);
    assert_eq!(store.last_located_source("alice").unwrap(), None);
    assert_eq!(
        store.source_last_seen("alice", "192.0.2.10").unwrap(),
        Some(1000)
    );
    assert_eq!(store.country_last_seen("bob", "FR").unwrap(), Some(4000));
    assert_eq!(store.forget_locations_before(1500).unwrap(), 0);
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

fn ssh_key(id: &str, user: &str) -> SshKeyCredential {
    SshKeyCredential {
        id: id.into(),
        user: user.into(),
        public_key: "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t".into(),
        label: "agent key".into(),
        created: 4,
    }
}

fn ssh_agent_key_counters_only_grow_and_login_keys_are_remembered(store: &mut dyn Store) {
    store.add_ssh_key(&ssh_key("s1", "sam")).unwrap();
    let keys = store.ssh_keys("sam").unwrap();
    assert_eq!(keys, vec![(ssh_key("s1", "sam"), 0)]);
    assert!(store.accept_ssh_key("s1", 3, &success("sam", 1)).unwrap());
    assert!(!store.accept_ssh_key("s1", 3, &success("sam", 2)).unwrap());
    assert_eq!(store.ssh_keys("sam").unwrap()[0].1, 3);
    store.mark_ssh_key_suspect("s1").unwrap();
    assert!(store.ssh_keys("sam").unwrap().is_empty());
    assert!(!store.accept_ssh_key("s1", 9, &success("sam", 3)).unwrap());
    assert_eq!(store.history("sam", 10).unwrap().len(), 1);
    assert!(
        store
            .list("sam")
            .unwrap()
            .iter()
            .any(|c| c.method == "ssh_agent_key")
    );
    assert!(store.remove("sam", "s1").unwrap());

    assert_eq!(
        store.login_key_last_seen("sam", "SHA256:abc").unwrap(),
        None
    );
    store.mark_login_key_seen("sam", "SHA256:abc", 50).unwrap();
    store.mark_login_key_seen("sam", "SHA256:abc", 40).unwrap();
    assert_eq!(
        store.login_key_last_seen("sam", "SHA256:abc").unwrap(),
        Some(50)
    );
    assert_eq!(
        store.login_key_last_seen("ann", "SHA256:abc").unwrap(),
        None
    );
}

fn cred(id: &str, user: &str) -> TotpCredential {
    TotpCredential {
        id: id.into(),
        user: user.into(),
        label: "phone".into(),
        secret: Zeroizing::new(b"12345678901234567890".to_vec()),
        algorithm: "SHA1".into(),
        digits: 6,
        period: 30,
        last_step: None,
        created: 1,
    }
}

fn success(user: &str, time: u64) -> HistoryEntry {
    HistoryEntry {
        time,
        user: user.into(),
        service: "sudo".into(),
        method: "totp".into(),
        outcome: "success".into(),
        host: "web1".into(),
        ..HistoryEntry::default()
    }
}

fn last_step_only_moves_forward(store: &mut dyn Store) {
    store.add_totp(&cred("c1", "alice")).unwrap();
    let win = success("alice", 10);
    assert!(store.accept_totp("c1", 100, &win).unwrap());
    assert!(!store.accept_totp("c1", 100, &win).unwrap());
    assert!(!store.accept_totp("c1", 99, &win).unwrap());
    assert!(!store.accept_totp("no-such", 101, &win).unwrap());
    // One success row: a refused step writes nothing.
    let history = store.history("alice", 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].host, "web1");
    let creds = store.totp_credentials("alice").unwrap();
    assert_eq!(creds[0].last_step, Some(100));
    assert_eq!(creds[0].secret.as_slice(), b"12345678901234567890");
    assert!(store.accept_totp("c1", 101, &win).unwrap());
    assert!(store.credential_exists("c1").unwrap());
    assert!(!store.credential_exists("c2").unwrap());
    assert_eq!(store.credential_count().unwrap(), 1);
}

fn recovery_codes_are_used_once_and_replaced_as_a_set(store: &mut dyn Store) {
    let hashes = vec!["$argon2id$one".to_owned(), "$argon2id$two".to_owned()];
    store.replace_recovery_codes("dan", &hashes, 5).unwrap();
    let unused = store.unused_recovery_codes("dan").unwrap();
    assert_eq!(
        unused.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>(),
        ["$argon2id$one", "$argon2id$two"]
    );
    let row = unused[0].0;
    assert!(store.accept_recovery_code(row, &success("dan", 6)).unwrap());
    assert!(!store.accept_recovery_code(row, &success("dan", 7)).unwrap());
    assert_eq!(store.unused_recovery_codes("dan").unwrap().len(), 1);
    assert_eq!(store.history("dan", 10).unwrap().len(), 1);
    store
        .replace_recovery_codes("dan", &["$argon2id$three".to_owned()], 8)
        .unwrap();
    let unused = store.unused_recovery_codes("dan").unwrap();
    assert_eq!(unused.len(), 1);
    assert_eq!(unused[0].1, "$argon2id$three");
    assert!(store.unused_recovery_codes("eve").unwrap().is_empty());
    let list = store.list("dan").unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].label, "1 unused code(s)");
}

fn key(id: &str, user: &str) -> Fido2Credential {
    Fido2Credential {
        id: id.into(),
        user: user.into(),
        key_handle: vec![1, 2, 3],
        resident: false,
        public_key: vec![4; 65],
        algorithm: "es256".into(),
        rp_id: "pam://stepup".into(),
        presence: true,
        pin: false,
        verification: false,
        label: "yubikey".into(),
        created: 3,
    }
}

fn security_key_counters_only_grow_and_suspect_keys_are_hidden(store: &mut dyn Store) {
    store.add_fido2(&key("k1", "amy")).unwrap();
    store.add_fido2(&key("k0", "amy")).unwrap();
    let keys = store.fido2_credentials("amy").unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].0.public_key, vec![4; 65]);
    assert_eq!(keys[1].1, 0);
    // A key without a counter (always 0) may be used at 0 again.
    assert!(store.accept_fido2("k0", 0, &success("amy", 1)).unwrap());
    assert!(store.accept_fido2("k0", 0, &success("amy", 2)).unwrap());
    assert!(store.accept_fido2("k1", 5, &success("amy", 3)).unwrap());
    assert!(!store.accept_fido2("k1", 5, &success("amy", 4)).unwrap());
    assert!(!store.accept_fido2("k1", 4, &success("amy", 4)).unwrap());
    store.mark_suspect("k1").unwrap();
    assert!(!store.accept_fido2("k1", 9, &success("amy", 5)).unwrap());
    let keys = store.fido2_credentials("amy").unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].0.id, "k0");
    assert_eq!(store.history("amy", 10).unwrap().len(), 3);
}

fn history_queries_respect_time_scope_user_and_host(store: &mut dyn Store) {
    let entry =
        |time, user: &str, tty: &str, rhost: &str, outcome: &str, host: &str| HistoryEntry {
            time,
            user: user.into(),
            service: "sudo".into(),
            tty: tty.into(),
            rhost: rhost.into(),
            method: "totp".into(),
            outcome: outcome.into(),
            host: host.into(),
        };
    for (time, user, tty, rhost, outcome, host) in [
        (100, "alice", "/dev/pts/1", "", "success", "web1"),
        (200, "alice", "/dev/pts/2", "10.0.0.1", "success", "web2"),
        (250, "alice", "/dev/pts/2", "", "wrong_code", "web1"),
        (260, "alice", "/dev/pts/2", "", "replay", "web2"),
        (270, "alice", "/dev/pts/2", "", "cancelled", "web1"),
        (280, "alice", "/dev/pts/2", "", "bad_signature", "web2"),
        (300, "bob", "/dev/pts/1", "", "success", "web1"),
    ] {
        store
            .record(&entry(time, user, tty, rhost, outcome, host))
            .unwrap();
    }
    assert_eq!(store.last_success("alice", 0, None).unwrap(), Some(200));
    assert_eq!(store.last_success("alice", 201, None).unwrap(), None);
    let tty = Some((HistoryColumn::Tty, "/dev/pts/1"));
    assert_eq!(store.last_success("alice", 0, tty).unwrap(), Some(100));
    let rhost = Some((HistoryColumn::Rhost, "10.0.0.1"));
    assert_eq!(store.last_success("alice", 0, rhost).unwrap(), Some(200));
    let other = Some((HistoryColumn::Rhost, "10.0.0.2"));
    assert_eq!(store.last_success("alice", 0, other).unwrap(), None);
    assert_eq!(store.failures_since("alice", 0).unwrap(), 3);
    assert_eq!(store.failures_since("alice", 255).unwrap(), 2);
    assert_eq!(store.failures_since("bob", 0).unwrap(), 0);
    let newest = store.history("alice", 2).unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!((newest[0].time, newest[0].host.as_str()), (280, "web2"));
    assert_eq!(newest[1].outcome, "cancelled");

    assert_eq!(store.source_last_seen("alice", "10.0.0.1").unwrap(), None);
    store
        .mark_source_seen("alice", "10.0.0.1", 500, None)
        .unwrap();
    store
        .mark_source_seen("alice", "10.0.0.1", 400, None)
        .unwrap();
    assert_eq!(
        store.source_last_seen("alice", "10.0.0.1").unwrap(),
        Some(500)
    );
    assert_eq!(store.source_last_seen("bob", "10.0.0.1").unwrap(), None);
    assert_eq!(store.prune_history(260).unwrap(), 3);
    assert_eq!(store.history("alice", 10).unwrap().len(), 3);
}

fn lockout_lock_and_unlock_forget_earlier_failures(store: &mut dyn Store) {
    assert_eq!(store.lockout("cal").unwrap(), None);
    let mut wrong = success("cal", 50);
    wrong.outcome = "wrong_code".into();
    store.record(&wrong).unwrap();
    store.record(&wrong).unwrap();
    store.lock("cal", 60, Some(660)).unwrap();
    let row = store.lockout("cal").unwrap().unwrap();
    assert_eq!((row.locked_at, row.locked_until), (Some(60), Some(660)));
    store.lock("cal", 70, None).unwrap();
    assert_eq!(store.lockout("cal").unwrap().unwrap().locked_until, None);
    store.unlock("cal").unwrap();
    let row = store.lockout("cal").unwrap().unwrap();
    assert_eq!((row.locked_at, row.locked_until), (None, None));
    assert_eq!(
        store.failures_since_after("cal", 0, row.reset_at).unwrap(),
        0
    );
    store.record(&wrong).unwrap();
    assert_eq!(
        store.failures_since_after("cal", 0, row.reset_at).unwrap(),
        1
    );
    assert_eq!(store.failures_since("cal", 0).unwrap(), 3);
}

fn list_remove_and_import_are_scoped_and_all_or_nothing(store: &mut dyn Store) {
    store.add_totp(&cred("c1", "alice")).unwrap();
    store.add_fido2(&key("k1", "alice")).unwrap();
    assert_eq!(store.list("alice").unwrap().len(), 2);
    assert!(!store.remove("bob", "c1").unwrap());
    assert!(store.remove("alice", "c1").unwrap());
    assert!(store.remove("alice", "k1").unwrap());
    assert!(store.list("alice").unwrap().is_empty());
    assert!(!store.remove("alice", "recovery").unwrap());

    let batch = ImportBatch {
        totp: vec![cred("i1", "gus"), cred("i2", "hal")],
        recovery: vec![("gus".into(), "$argon2id$g".into(), 9)],
        fido2: vec![key("ik", "hal")],
        ssh_keys: vec![ssh_key("is", "hal")],
    };
    store.import(&batch).unwrap();
    assert_eq!(store.list("gus").unwrap().len(), 2);
    assert_eq!(store.list("hal").unwrap().len(), 3);
    // An import that clashes with an existing id writes nothing at all.
    let clash = ImportBatch {
        totp: vec![cred("new", "ivy"), cred("i1", "ivy")],
        ..ImportBatch::default()
    };
    assert!(store.import(&clash).is_err());
    assert!(store.list("ivy").unwrap().is_empty());
    assert!(store.checkpoint().is_ok());
}

/// The shared store's client drives its own current-thread runtime with
/// `block_on`, which tokio allows on its blocking pool (where the daemon
/// calls the store) under both runtime flavours; and the store may be
/// dropped on an async task (its runtime shuts down in the background).
#[test]
fn the_shared_store_works_from_tokios_blocking_pool_and_drops_anywhere() {
    let (_backing, store) = postgres();
    let store = std::sync::Arc::new(std::sync::Mutex::new(store));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (i, runtime) in [&multi, &current].into_iter().enumerate() {
        let store = store.clone();
        let user = format!("pool{i}");
        let listed = runtime.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let mut store = store.lock().unwrap();
                store.add_totp(&cred(&format!("p{i}"), &user)).unwrap();
                store.list(&user).unwrap().len()
            })
            .await
            .unwrap()
        });
        assert_eq!(listed, 1);
    }
    current.block_on(async move { drop(store) });
}
