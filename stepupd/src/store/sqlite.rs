//! Crash-safe state under the state directory: an SQLite database in WAL
//! mode with `synchronous = FULL`, so a write that returned is on disk.
//!
//! SQLite (through rusqlite, bundled) because it gives atomic multi-row
//! updates, survives SIGKILL and power loss in WAL mode, and needs no server.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, params};
use stepup_config::attempt::{GeoFacts, PreviousAttempt};
use zeroize::Zeroizing;

use super::{
    CredentialSummary, Fido2Credential, HistoryColumn, HistoryEntry, ImportBatch, LockoutRow,
    SshKeyCredential, StoreError, TotpCredential,
};

/// Schema version this build writes. A newer one on disk is refused.
pub const SCHEMA_VERSION: i64 = 7;
const DB_FILE: &str = "stepup.db";

/// The schema's migrations: `MIGRATIONS[n]` takes a store at version `n`
/// to `n + 1`, in one transaction that also sets `user_version`. A new
/// schema version adds one entry here. The statements keep the indentation
/// they were first written with: SQLite stores each `CREATE` as written, so
/// a new store's schema text stays the same as the one earlier releases made.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 0 → 1: credentials and history.
    "BEGIN;
                 CREATE TABLE credentials (
                     id TEXT PRIMARY KEY,
                     user TEXT NOT NULL,
                     method TEXT NOT NULL,
                     label TEXT NOT NULL,
                     secret BLOB NOT NULL,
                     algorithm TEXT NOT NULL,
                     digits INTEGER NOT NULL,
                     period INTEGER NOT NULL,
                     last_step INTEGER,
                     created INTEGER NOT NULL
                 );
                 CREATE INDEX credentials_user ON credentials(user);
                 CREATE TABLE history (
                     id INTEGER PRIMARY KEY,
                     time INTEGER NOT NULL,
                     user TEXT NOT NULL,
                     service TEXT NOT NULL,
                     tty TEXT NOT NULL,
                     rhost TEXT NOT NULL,
                     method TEXT NOT NULL,
                     outcome TEXT NOT NULL
                 );
                 CREATE INDEX history_user_time ON history(user, time);
                 PRAGMA user_version = 1;
                 COMMIT;",
    // 1 → 2: the source addresses each user was allowed from.
    "BEGIN;
                 CREATE TABLE sources (
                     user TEXT NOT NULL,
                     rhost TEXT NOT NULL,
                     last_seen INTEGER NOT NULL,
                     PRIMARY KEY (user, rhost)
                 );
                 PRAGMA user_version = 2;
                 COMMIT;",
    // 2 → 3: lockouts, recovery codes, FIDO2 credentials.
    "BEGIN;
                 CREATE TABLE lockout (
                     user TEXT PRIMARY KEY,
                     locked_at INTEGER,
                     locked_until INTEGER,
                     reset_at INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE TABLE recovery_codes (
                     id INTEGER PRIMARY KEY,
                     user TEXT NOT NULL,
                     hash TEXT NOT NULL,
                     used_at INTEGER,
                     created INTEGER NOT NULL
                 );
                 CREATE INDEX recovery_codes_user ON recovery_codes(user);
                 CREATE TABLE fido2_credentials (
                     id TEXT PRIMARY KEY,
                     user TEXT NOT NULL,
                     key_handle BLOB NOT NULL,
                     resident INTEGER NOT NULL,
                     public_key BLOB NOT NULL,
                     algorithm TEXT NOT NULL,
                     rp_id TEXT NOT NULL,
                     sign_count INTEGER NOT NULL DEFAULT 0,
                     presence INTEGER NOT NULL,
                     pin INTEGER NOT NULL,
                     verification INTEGER NOT NULL,
                     label TEXT NOT NULL,
                     created INTEGER NOT NULL,
                     suspect INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE INDEX fido2_credentials_user ON fido2_credentials(user);
                 PRAGMA user_version = 3;
                 COMMIT;",
    // 3 → 4: grace and `stepped_up_within` ask for a user's last success
    // in a window: without this index they read every row of the user's in
    // the window (a user can add rows cheaply by cancelling prompts), 143 ms
    // per decision at 100 000 rows.
    "BEGIN;
                 CREATE INDEX history_user_outcome_time ON history(user, outcome, time);
                 PRAGMA user_version = 4;
                 COMMIT;",
    // 4 → 5: security keys used through an ssh-agent (`ssh_agent_key`),
    // and the login keys sshd reported (`new_login_key`).
    "BEGIN;
                 CREATE TABLE ssh_keys (
                     id TEXT PRIMARY KEY,
                     user TEXT NOT NULL,
                     public_key TEXT NOT NULL,
                     label TEXT NOT NULL,
                     counter INTEGER NOT NULL DEFAULT 0,
                     suspect INTEGER NOT NULL DEFAULT 0,
                     created INTEGER NOT NULL
                 );
                 CREATE INDEX ssh_keys_user ON ssh_keys(user);
                 CREATE TABLE login_keys (
                     user TEXT NOT NULL,
                     fingerprint TEXT NOT NULL,
                     last_seen INTEGER NOT NULL,
                     PRIMARY KEY (user, fingerprint)
                 );
                 PRAGMA user_version = 5;
                 COMMIT;",
    // 5 → 6: where each source was located when its person was last let in
    // from it (`[geoip]`), for `new_country` and `impossible_travel`; rows
    // from before stay NULL (no location). One index per question: the
    // latest time in a country is a seek, and so is the latest source with
    // coordinates (a partial index holds only those).
    "BEGIN;
                 ALTER TABLE sources ADD COLUMN country TEXT;
                 ALTER TABLE sources ADD COLUMN city TEXT;
                 ALTER TABLE sources ADD COLUMN latitude REAL;
                 ALTER TABLE sources ADD COLUMN longitude REAL;
                 ALTER TABLE sources ADD COLUMN accuracy_radius INTEGER;
                 ALTER TABLE sources ADD COLUMN asn INTEGER;
                 CREATE INDEX sources_user_country_seen ON sources(user, country, last_seen);
                 CREATE INDEX sources_user_located_seen ON sources(user, last_seen) WHERE latitude IS NOT NULL;
                 PRAGMA user_version = 6;
                 COMMIT;",
    // 6 → 7: the host that recorded each history row (the shared store
    // mixes hosts; a row written before this was written here).
    "BEGIN;
                 ALTER TABLE history ADD COLUMN host TEXT NOT NULL DEFAULT '';
                 PRAGMA user_version = 7;
                 COMMIT;",
];

/// A person's TOTP credentials, oldest first (read twice per step-up).
const TOTP_CREDENTIALS: &str =
    "SELECT id, user, label, secret, algorithm, digits, period, last_step, created
     FROM credentials WHERE user = ?1 AND method = 'totp' ORDER BY created, id";

/// The embedded store: one SQLite file in the state directory.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Open (creating if needed) the store in `dir`, which must be root-owned
    /// and not accessible by group or others.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
                StoreError::Io {
                    path: dir.to_owned(),
                    source,
                }
            })?;
        }
        check_private(dir, true)?;
        let path = dir.join(DB_FILE);
        // Files are created 0600 whatever the caller's umask.
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.clone(),
            detail,
        };
        // A file that is there but cannot be read (permissions without
        // CAP_DAC_OVERRIDE, a directory in its place, I/O errors) is not a
        // damaged store: say what the system said.
        if let Some(reason) = unreadable(&path) {
            return Err(StoreError::Unreadable { path, reason });
        }
        let conn = Connection::open(&path).map_err(|e| corrupt(e.to_string()))?;
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).map_err(
                    |source| StoreError::Io {
                        path: file.clone(),
                        source,
                    },
                )?;
            }
        }
        // Check the whole file before trusting any of it: a damaged store must
        // never be silently reset (that would re-open replays and lockouts).
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if check != "ok" {
            return Err(corrupt(check));
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // One query plan per statement, whatever is bound: without this,
        // SQLite may re-prepare a cached statement on every new binding
        // (the TOTP lookup was re-parsed and re-planned for each user, twice
        // per step-up). Every hot query is an equality on an indexed column,
        // whose plan does not depend on the value.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        let store = Self { conn, path };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database, for reading a whole snapshot (`store migrate`).
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: version });
        }
        for (from, migration) in (0_i64..).zip(MIGRATIONS) {
            if version <= from {
                self.conn.execute_batch(migration)?;
            }
        }
        Ok(())
    }

    pub fn add_totp(&mut self, cred: &TotpCredential) -> Result<(), StoreError> {
        insert_totp(&self.conn, cred)
    }

    pub fn totp_credentials(&self, user: &str) -> Result<Vec<TotpCredential>, StoreError> {
        let mut stmt = self.conn.prepare_cached(TOTP_CREDENTIALS)?;
        let rows = stmt.query_map(params![user], |r| {
            Ok(TotpCredential {
                id: r.get(0)?,
                user: r.get(1)?,
                label: r.get(2)?,
                secret: Zeroizing::new(r.get(3)?),
                algorithm: r.get(4)?,
                digits: r.get(5)?,
                period: r.get(6)?,
                last_step: r.get(7)?,
                created: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A compare-and-set (`UPDATE … WHERE <still unused>`) and, if it
    /// changed the row, the success row: one transaction. False when the
    /// row was not changed (used already, a race, a clone).
    fn accept(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        if tx.prepare_cached(sql)?.execute(params)? != 1 {
            return Ok(false);
        }
        insert_history(&tx, success)?;
        tx.commit()?;
        Ok(true)
    }

    /// Accept a TOTP code: advance the credential's last step (only forward)
    /// and record the success, in one transaction. False (and nothing
    /// written) when the step was already used. Durable when it returns.
    pub fn accept_totp(
        &mut self,
        id: &str,
        step: u64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE credentials SET last_step = ?2 WHERE id = ?1 AND (last_step IS NULL OR last_step < ?2)",
            params![id, step],
            success,
        )
    }

    /// Accept a recovery code: mark it used and record the success, in one
    /// transaction. False when it was already used.
    pub fn accept_recovery_code(
        &mut self,
        row: i64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE recovery_codes SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
            params![row, success.time],
            success,
        )
    }

    pub fn add_fido2(&mut self, key: &Fido2Credential) -> Result<(), StoreError> {
        insert_fido2(&self.conn, key)
    }

    /// A user's usable keys (not marked suspect), with their sign counters.
    pub fn fido2_credentials(&self, user: &str) -> Result<Vec<(Fido2Credential, u32)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, user, key_handle, resident, public_key, algorithm, rp_id, presence, pin, verification, label, created, sign_count
             FROM fido2_credentials WHERE user = ?1 AND suspect = 0 ORDER BY created, id",
        )?;
        let rows = stmt.query_map(params![user], |r| {
            Ok((
                Fido2Credential {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    key_handle: r.get(2)?,
                    resident: r.get(3)?,
                    public_key: r.get(4)?,
                    algorithm: r.get(5)?,
                    rp_id: r.get(6)?,
                    presence: r.get(7)?,
                    pin: r.get(8)?,
                    verification: r.get(9)?,
                    label: r.get(10)?,
                    created: r.get(11)?,
                },
                r.get(12)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Accept a key's assertion: raise its sign counter (only upwards, or
    /// both zero for keys without a counter) and record the success, in one
    /// transaction. False when the counter did not grow (a race or a clone).
    pub fn accept_fido2(
        &mut self,
        id: &str,
        sign_count: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE fido2_credentials SET sign_count = ?2
             WHERE id = ?1 AND suspect = 0 AND (sign_count < ?2 OR (sign_count = 0 AND ?2 = 0))",
            params![id, sign_count],
            success,
        )
    }

    /// Take a key out of use until an admin clears it (a counter went backwards).
    pub fn mark_suspect(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE fido2_credentials SET suspect = 1 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    /// Fold the write-ahead log into the main file (on a clean stop), so a
    /// copy of `stepup.db` alone is complete.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    pub fn list(&self, user: &str) -> Result<Vec<CredentialSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, method, label, created FROM credentials WHERE user = ?1
             UNION ALL
             SELECT id, 'fido2', label, created FROM fido2_credentials WHERE user = ?1
             UNION ALL
             SELECT id, 'ssh_agent_key', label, created FROM ssh_keys WHERE user = ?1
             UNION ALL
             SELECT 'recovery', 'recovery', count(*) || ' unused code(s)', max(created)
               FROM recovery_codes WHERE user = ?1 AND used_at IS NULL HAVING count(*) > 0
             ORDER BY 4, 1",
        )?;
        let rows = stmt.query_map(params![user], |r| {
            Ok(CredentialSummary {
                id: r.get(0)?,
                method: r.get(1)?,
                label: r.get(2)?,
                created: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Remove one credential; false if the user has no such credential.
    pub fn remove(&mut self, user: &str, id: &str) -> Result<bool, StoreError> {
        let mut changed = self.conn.execute(
            "DELETE FROM credentials WHERE user = ?1 AND id = ?2",
            params![user, id],
        )?;
        changed += self.conn.execute(
            "DELETE FROM fido2_credentials WHERE user = ?1 AND id = ?2",
            params![user, id],
        )?;
        changed += self.conn.execute(
            "DELETE FROM ssh_keys WHERE user = ?1 AND id = ?2",
            params![user, id],
        )?;
        if id == "recovery" {
            changed += self
                .conn
                .execute("DELETE FROM recovery_codes WHERE user = ?1", params![user])?
                .min(1);
        }
        Ok(changed >= 1)
    }

    pub fn credential_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM credentials", [], |r| r.get(0))?)
    }

    pub fn record(&mut self, entry: &HistoryEntry) -> Result<(), StoreError> {
        insert_history(&self.conn, entry)
    }

    /// Most recent history entries for a user, newest first.
    pub fn history(&self, user: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT time, user, service, tty, rhost, method, outcome, host FROM history
             WHERE user = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![user, limit], |r| history_entry(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Time of the latest successful step-up of `user` at or after `since`,
    /// optionally only those with `tty` or `rhost` equal to a value.
    pub fn last_success(
        &self,
        user: &str,
        since: u64,
        same: Option<(HistoryColumn, &str)>,
    ) -> Result<Option<u64>, StoreError> {
        let (sql, value) = match same {
            None => (
                "SELECT max(time) FROM history WHERE user = ?1 AND time >= ?2 AND outcome = 'success' AND ?3 = ?3",
                "",
            ),
            Some((HistoryColumn::Tty, v)) => (
                "SELECT max(time) FROM history WHERE user = ?1 AND time >= ?2 AND outcome = 'success' AND tty = ?3",
                v,
            ),
            Some((HistoryColumn::Rhost, v)) => (
                "SELECT max(time) FROM history WHERE user = ?1 AND time >= ?2 AND outcome = 'success' AND rhost = ?3",
                v,
            ),
        };
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![user, since, value], |r| r.get(0))?)
    }

    /// Wrong answers (wrong code, replayed code, a key answer whose
    /// signature does not verify) by `user` at or after `since`.
    pub fn failures_since(&self, user: &str, since: u64) -> Result<u64, StoreError> {
        self.failures_since_after(user, since, 0)
    }

    /// Like [`failures_since`](Self::failures_since), counting only history
    /// rows after row `after_row` (an unlock's watermark).
    pub fn failures_since_after(
        &self,
        user: &str,
        since: u64,
        after_row: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM history WHERE user = ?1 AND time >= ?2 AND id > ?3 AND outcome IN ('wrong_code', 'replay', 'bad_signature')",
            )?
            .query_row(params![user, since, after_row], |r| r.get(0))?)
    }

    /// When `user` was last let in from `rhost`.
    pub fn source_last_seen(&self, user: &str, rhost: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT last_seen FROM sources WHERE user = ?1 AND rhost = ?2")?
            .query_row(params![user, rhost], |r| r.get(0))
            .optional()?)
    }

    /// Remember that `user` was let in from `rhost` at `time`, and where
    /// the location database put `rhost` then (`None`: no location). The
    /// location is the one of the latest let-in from that address.
    pub fn mark_source_seen(
        &mut self,
        user: &str,
        rhost: &str,
        time: u64,
        located: Option<&GeoFacts>,
    ) -> Result<(), StoreError> {
        let country = located.and_then(|l| l.country.as_deref());
        let city = located.and_then(|l| l.city.as_deref());
        let coordinates = located.and_then(|l| l.coordinates);
        let radius = located.and_then(|l| l.accuracy_radius_km);
        let asn = located.and_then(|l| l.asn);
        // SET reads the old row on every right-hand side: the location is
        // replaced only by a let-in at least as late as the one it records.
        self.conn
            .prepare_cached(
                "INSERT INTO sources (user, rhost, last_seen, country, city, latitude, longitude, accuracy_radius, asn)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (user, rhost) DO UPDATE SET
                   country = iif(excluded.last_seen >= last_seen, excluded.country, country),
                   city = iif(excluded.last_seen >= last_seen, excluded.city, city),
                   latitude = iif(excluded.last_seen >= last_seen, excluded.latitude, latitude),
                   longitude = iif(excluded.last_seen >= last_seen, excluded.longitude, longitude),
                   accuracy_radius = iif(excluded.last_seen >= last_seen, excluded.accuracy_radius, accuracy_radius),
                   asn = iif(excluded.last_seen >= last_seen, excluded.asn, asn),
                   last_seen = max(last_seen, excluded.last_seen)",
            )?
            .execute(params![
                user,
                rhost,
                time,
                country,
                city,
                coordinates.map(|c| c.0),
                coordinates.map(|c| c.1),
                radius,
                asn
            ])?;
        Ok(())
    }

    /// When `user` was last let in from an address located in `country`
    /// (`new_country`).
    pub fn country_last_seen(&self, user: &str, country: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT max(last_seen) FROM sources WHERE user = ?1 AND country = ?2")?
            .query_row(params![user, country], |r| r.get(0))?)
    }

    /// `user`'s latest let-in from an address with coordinates
    /// (`impossible_travel`).
    pub fn last_located_source(&self, user: &str) -> Result<Option<PreviousAttempt>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT last_seen, rhost, country, city, latitude, longitude, accuracy_radius
                 FROM sources WHERE user = ?1 AND latitude IS NOT NULL AND longitude IS NOT NULL
                 ORDER BY last_seen DESC LIMIT 1",
            )?
            .query_row(params![user], |r| {
                Ok(PreviousAttempt {
                    time: r.get(0)?,
                    rhost: r.get(1)?,
                    country: r.get(2)?,
                    city: r.get(3)?,
                    coordinates: (r.get(4)?, r.get(5)?),
                    accuracy_radius_km: r.get::<_, Option<u16>>(6)?.unwrap_or(0),
                })
            })
            .optional()?)
    }

    /// Forget where sources were for let-ins before `before` (history
    /// retention bounds location data too); the sources themselves stay,
    /// for `new_rhost`. Returns how many rows lost their location.
    pub fn forget_locations_before(&mut self, before: u64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE sources SET country = NULL, city = NULL, latitude = NULL, longitude = NULL, accuracy_radius = NULL, asn = NULL
             WHERE last_seen < ?1 AND (country IS NOT NULL OR latitude IS NOT NULL OR asn IS NOT NULL)",
            params![before],
        )?)
    }

    /// The lockout row of a user, if any.
    pub fn lockout(&self, user: &str) -> Result<Option<LockoutRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT locked_at, locked_until, reset_at FROM lockout WHERE user = ?1",
            )?
            .query_row(params![user], |r| {
                Ok(LockoutRow {
                    locked_at: r.get(0)?,
                    locked_until: r.get(1)?,
                    reset_at: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Lock `user` from `at` until `until` (`None`: until an admin unlocks).
    pub fn lock(&mut self, user: &str, at: u64, until: Option<u64>) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO lockout (user, locked_at, locked_until) VALUES (?1, ?2, ?3)
             ON CONFLICT (user) DO UPDATE SET locked_at = excluded.locked_at, locked_until = excluded.locked_until",
            params![user, at, until],
        )?;
        Ok(())
    }

    /// Lift a lock and forget every failure recorded so far (faillock --reset).
    pub fn unlock(&mut self, user: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO lockout (user, locked_at, locked_until, reset_at)
             VALUES (?1, NULL, NULL, (SELECT coalesce(max(id), 0) FROM history))
             ON CONFLICT (user) DO UPDATE SET locked_at = NULL, locked_until = NULL, reset_at = excluded.reset_at",
            params![user],
        )?;
        Ok(())
    }

    /// Replace a user's recovery codes with these hashes, atomically.
    pub fn replace_recovery_codes(
        &mut self,
        user: &str,
        hashes: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM recovery_codes WHERE user = ?1", params![user])?;
        for hash in hashes {
            tx.execute(
                "INSERT INTO recovery_codes (user, hash, created) VALUES (?1, ?2, ?3)",
                params![user, hash, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// (row id, PHC hash) of a user's unused recovery codes.
    pub fn unused_recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, hash FROM recovery_codes WHERE user = ?1 AND used_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map(params![user], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Everything an import brings, in one transaction: all of it or none.
    pub fn import(&mut self, batch: &ImportBatch) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for cred in &batch.totp {
            insert_totp(&tx, cred)?;
        }
        for (user, hash, created) in &batch.recovery {
            tx.execute(
                "INSERT INTO recovery_codes (user, hash, created) VALUES (?1, ?2, ?3)",
                params![user, hash, created],
            )?;
        }
        for key in &batch.fido2 {
            insert_fido2(&tx, key)?;
        }
        for key in &batch.ssh_keys {
            insert_ssh_key(&tx, key)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Delete history older than `before`; returns how many rows went.
    pub fn prune_history(&mut self, before: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM history WHERE time < ?1", params![before])?)
    }

    /// Does a credential with this id exist for anyone?
    pub fn credential_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM credentials WHERE id = ?1",
                params![id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn add_ssh_key(&mut self, key: &SshKeyCredential) -> Result<(), StoreError> {
        insert_ssh_key(&self.conn, key)
    }

    /// A user's usable ssh-agent security keys (not marked suspect), with
    /// their last accepted counters, in enrollment order.
    pub fn ssh_keys(&self, user: &str) -> Result<Vec<(SshKeyCredential, u32)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, user, public_key, label, created, counter FROM ssh_keys
             WHERE user = ?1 AND suspect = 0 ORDER BY created, id",
        )?;
        let rows = stmt.query_map(params![user], |r| {
            Ok((
                SshKeyCredential {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    public_key: r.get(2)?,
                    label: r.get(3)?,
                    created: r.get(4)?,
                },
                r.get(5)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Accept an ssh-agent signature: raise the key's counter (strictly
    /// upwards) and record the success, in one transaction. False when the
    /// counter did not grow (a race, a replay or a clone).
    pub fn accept_ssh_key(
        &mut self,
        id: &str,
        counter: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE ssh_keys SET counter = ?2 WHERE id = ?1 AND suspect = 0 AND counter < ?2",
            params![id, counter],
            success,
        )
    }

    /// Take an ssh-agent key out of use (its counter went backwards).
    pub fn mark_ssh_key_suspect(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE ssh_keys SET suspect = 1 WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// When `user` last logged in (allowed) with the key of `fingerprint`.
    pub fn login_key_last_seen(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT last_seen FROM login_keys WHERE user = ?1 AND fingerprint = ?2",
            )?
            .query_row(params![user, fingerprint], |r| r.get(0))
            .optional()?)
    }

    pub fn mark_login_key_seen(
        &mut self,
        user: &str,
        fingerprint: &str,
        time: u64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO login_keys (user, fingerprint, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (user, fingerprint) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
            params![user, fingerprint, time],
        )?;
        Ok(())
    }
}

fn insert_ssh_key(conn: &Connection, key: &SshKeyCredential) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ssh_keys (id, user, public_key, label, created) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key.id,
        key.user,
        key.public_key,
        key.label,
        key.created
    ])?;
    Ok(())
}

fn insert_totp(conn: &Connection, cred: &TotpCredential) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO credentials (id, user, method, label, secret, algorithm, digits, period, last_step, created)
         VALUES (?1, ?2, 'totp', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        cred.id,
        cred.user,
        cred.label,
        cred.secret.as_slice(),
        cred.algorithm,
        cred.digits,
        cred.period,
        cred.last_step,
        cred.created
    ])?;
    Ok(())
}

fn insert_fido2(conn: &Connection, key: &Fido2Credential) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO fido2_credentials (id, user, key_handle, resident, public_key, algorithm, rp_id, presence, pin, verification, label, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        key.id,
        key.user,
        key.key_handle,
        key.resident,
        key.public_key,
        key.algorithm,
        key.rp_id,
        key.presence,
        key.pin,
        key.verification,
        key.label,
        key.created
    ])?;
    Ok(())
}

/// A history row's `time, user, service, tty, rhost, method, outcome,
/// host` columns, from column `first` on.
pub(super) fn history_entry(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        time: r.get(first)?,
        user: r.get(first + 1)?,
        service: r.get(first + 2)?,
        tty: r.get(first + 3)?,
        rhost: r.get(first + 4)?,
        method: r.get(first + 5)?,
        outcome: r.get(first + 6)?,
        host: r.get(first + 7)?,
    })
}

fn insert_history(conn: &Connection, entry: &HistoryEntry) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO history (time, user, service, tty, rhost, method, outcome, host)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.time,
        entry.user,
        entry.service,
        entry.tty,
        entry.rhost,
        entry.method,
        entry.outcome,
        entry.host
    ])?;
    Ok(())
}

/// The state directory must be root's alone: it holds TOTP secrets.
/// Why an existing database file cannot be opened for reading and
/// writing, if it cannot; `None` when it is absent (a new store) or fine.
fn unreadable(path: &Path) -> Option<String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(e.to_string()),
    };
    if !meta.file_type().is_file() {
        return Some("it is not a regular file".to_owned());
    }
    let mut header = [0u8; 100];
    let read = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .and_then(|f| std::os::unix::fs::FileExt::read_at(&f, &mut header, 0));
    read.err().map(|e| e.to_string())
}

/// SQLite's error, with what it means here for the failures an
/// administrator has to act on.
pub(super) fn describe_sql(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => format!(
            "the file system holding the state directory is full ({e}); nothing was recorded, free some space"
        ),
        Some(ErrorCode::SystemIoFailure) => {
            format!("I/O error on the state directory ({e}); nothing was recorded")
        }
        Some(ErrorCode::ReadOnly) => {
            format!("the state directory is read-only ({e}); nothing was recorded")
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            format!("cannot open the database files ({e})")
        }
        _ => e.to_string(),
    }
}

fn check_private(path: &Path, is_dir: bool) -> Result<(), StoreError> {
    let meta = fs::metadata(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let refuse = |reason: String| StoreError::UnsafeDir {
        path: path.to_owned(),
        reason,
    };
    if is_dir && !meta.is_dir() {
        return Err(refuse("not a directory".into()));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(refuse(format!(
            "owned by uid {}, expected {}",
            meta.uid(),
            nix::unistd::geteuid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "mode {mode:04o} gives group or others access (expected 0700; chmod 0700 it)"
        )));
    }
    Ok(())
}

/// The trait is today's inherent API, method for method (the inherent
/// methods stay for callers that hold a `SqliteStore`).
impl super::Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
    fn add_totp(&mut self, cred: &TotpCredential) -> Result<(), StoreError> {
        Self::add_totp(self, cred)
    }
    fn totp_credentials(&self, user: &str) -> Result<Vec<TotpCredential>, StoreError> {
        Self::totp_credentials(self, user)
    }
    fn accept_totp(
        &mut self,
        id: &str,
        step: u64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        Self::accept_totp(self, id, step, success)
    }
    fn accept_recovery_code(
        &mut self,
        row: i64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        Self::accept_recovery_code(self, row, success)
    }
    fn add_fido2(&mut self, key: &Fido2Credential) -> Result<(), StoreError> {
        Self::add_fido2(self, key)
    }
    fn fido2_credentials(&self, user: &str) -> Result<Vec<(Fido2Credential, u32)>, StoreError> {
        Self::fido2_credentials(self, user)
    }
    fn accept_fido2(
        &mut self,
        id: &str,
        sign_count: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        Self::accept_fido2(self, id, sign_count, success)
    }
    fn mark_suspect(&mut self, id: &str) -> Result<(), StoreError> {
        Self::mark_suspect(self, id)
    }
    fn checkpoint(&self) -> Result<(), StoreError> {
        Self::checkpoint(self)
    }
    fn list(&self, user: &str) -> Result<Vec<CredentialSummary>, StoreError> {
        Self::list(self, user)
    }
    fn remove(&mut self, user: &str, id: &str) -> Result<bool, StoreError> {
        Self::remove(self, user, id)
    }
    fn credential_count(&self) -> Result<u64, StoreError> {
        Self::credential_count(self)
    }
    fn record(&mut self, entry: &HistoryEntry) -> Result<(), StoreError> {
        Self::record(self, entry)
    }
    fn history(&self, user: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        Self::history(self, user, limit)
    }
    fn last_success(
        &self,
        user: &str,
        since: u64,
        same: Option<(HistoryColumn, &str)>,
    ) -> Result<Option<u64>, StoreError> {
        Self::last_success(self, user, since, same)
    }
    fn failures_since(&self, user: &str, since: u64) -> Result<u64, StoreError> {
        Self::failures_since(self, user, since)
    }
    fn failures_since_after(
        &self,
        user: &str,
        since: u64,
        after_row: i64,
    ) -> Result<u64, StoreError> {
        Self::failures_since_after(self, user, since, after_row)
    }
    fn source_last_seen(&self, user: &str, rhost: &str) -> Result<Option<u64>, StoreError> {
        Self::source_last_seen(self, user, rhost)
    }
    fn mark_source_seen(
        &mut self,
        user: &str,
        rhost: &str,
        time: u64,
        located: Option<&GeoFacts>,
    ) -> Result<(), StoreError> {
        Self::mark_source_seen(self, user, rhost, time, located)
    }
    fn country_last_seen(&self, user: &str, country: &str) -> Result<Option<u64>, StoreError> {
        Self::country_last_seen(self, user, country)
    }
    fn last_located_source(&self, user: &str) -> Result<Option<PreviousAttempt>, StoreError> {
        Self::last_located_source(self, user)
    }
    fn forget_locations_before(&mut self, before: u64) -> Result<usize, StoreError> {
        Self::forget_locations_before(self, before)
    }
    fn lockout(&self, user: &str) -> Result<Option<LockoutRow>, StoreError> {
        Self::lockout(self, user)
    }
    fn lock(&mut self, user: &str, at: u64, until: Option<u64>) -> Result<(), StoreError> {
        Self::lock(self, user, at, until)
    }
    fn unlock(&mut self, user: &str) -> Result<(), StoreError> {
        Self::unlock(self, user)
    }
    fn replace_recovery_codes(
        &mut self,
        user: &str,
        hashes: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        Self::replace_recovery_codes(self, user, hashes, now)
    }
    fn unused_recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, StoreError> {
        Self::unused_recovery_codes(self, user)
    }
    fn import(&mut self, batch: &ImportBatch) -> Result<(), StoreError> {
        Self::import(self, batch)
    }
    fn prune_history(&mut self, before: u64) -> Result<usize, StoreError> {
        Self::prune_history(self, before)
    }
    fn credential_exists(&self, id: &str) -> Result<bool, StoreError> {
        Self::credential_exists(self, id)
    }
    fn add_ssh_key(&mut self, key: &SshKeyCredential) -> Result<(), StoreError> {
        Self::add_ssh_key(self, key)
    }
    fn ssh_keys(&self, user: &str) -> Result<Vec<(SshKeyCredential, u32)>, StoreError> {
        Self::ssh_keys(self, user)
    }
    fn accept_ssh_key(
        &mut self,
        id: &str,
        counter: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        Self::accept_ssh_key(self, id, counter, success)
    }
    fn mark_ssh_key_suspect(&mut self, id: &str) -> Result<(), StoreError> {
        Self::mark_ssh_key_suspect(self, id)
    }
    fn login_key_last_seen(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<u64>, StoreError> {
        Self::login_key_last_seen(self, user, fingerprint)
    }
    fn mark_login_key_seen(
        &mut self,
        user: &str,
        fingerprint: &str,
        time: u64,
    ) -> Result<(), StoreError> {
        Self::mark_login_key_seen(self, user, fingerprint, time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        dir
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

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_another_user() {
        // SQLite re-prepares a statement whose plan may depend on a bound
        // value each time that value changes, unless the query planner
        // stability guarantee is on (`open`): the TOTP lookup was parsed
        // and planned again twice per step-up.
        let dir = private_dir();
        let mut store = SqliteStore::open(dir.path()).expect("open");
        store.add_totp(&cred("t-a", "alice")).expect("add");
        store.add_totp(&cred("t-b", "bob")).expect("add");
        for user in ["alice", "bob", "alice", "bob"] {
            let found = store.totp_credentials(user).expect("lookup");
            assert_eq!(found.len(), 1, "{user}");
            assert_eq!(found[0].user, user);
        }
        let cached = store.conn.prepare_cached(TOTP_CREDENTIALS).expect("cached");
        assert_eq!(cached.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn files_are_private_and_open_dir_is_refused() {
        let dir = private_dir();
        let store = SqliteStore::open(dir.path()).expect("open");
        let mode = fs::metadata(store.path()).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(store);

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = SqliteStore::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("0755"), "{err}");
    }

    #[test]
    fn last_step_only_moves_forward_and_survives_reopen() {
        let dir = private_dir();
        let mut store = SqliteStore::open(dir.path()).expect("open");
        store.add_totp(&cred("c1", "alice")).expect("add");
        let success = HistoryEntry {
            time: 1,
            user: "alice".into(),
            outcome: "success".into(),
            ..Default::default()
        };
        assert!(store.accept_totp("c1", 100, &success).expect("advance"));
        assert!(!store.accept_totp("c1", 100, &success).expect("same step"));
        assert!(!store.accept_totp("c1", 99, &success).expect("older step"));
        // One success row: refused steps write nothing.
        assert_eq!(store.history("alice", 10).expect("history").len(), 1);
        drop(store);
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let creds = store.totp_credentials("alice").expect("load");
        assert_eq!(creds[0].last_step, Some(100));
    }

    #[test]
    fn newer_schema_is_refused_not_rewritten() {
        let dir = private_dir();
        drop(SqliteStore::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        let err = SqliteStore::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::TooNew { found: 99 }), "{err}");
    }

    #[test]
    fn a_version_3_store_gains_the_success_index_and_grace_lookups_use_it() {
        let dir = private_dir();
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("raw open");
        for migration in &MIGRATIONS[..3] {
            conn.execute_batch(migration)
                .expect("make it a version 3 store");
        }
        drop(conn);
        drop(SqliteStore::open(dir.path()).expect("migrate"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("raw open");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        // The last-success lookup behind grace and `stepped_up_within` is an
        // index seek, not a scan of the user's rows in the window.
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT max(time) FROM history
                 WHERE user = ?1 AND time >= ?2 AND outcome = 'success' AND tty = ?3",
            )
            .expect("plan")
            .query_map(params!["alice", 0, "/dev/pts/1"], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter().any(|l| l.contains("history_user_outcome_time")),
            "{plan:?}"
        );
    }

    /// Uses EXPLAIN QUERY PLAN to name the indexes a query uses.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan")
            .query_map(params!["alice", "FR"], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows")
    }

    #[test]
    fn a_version_5_store_keeps_its_rows_and_gains_locations() {
        let dir = private_dir();
        let path = dir.path().join(DB_FILE);
        // A store as version 5 left it, with a source and a success.
        let conn = Connection::open(&path).expect("raw open");
        for migration in &MIGRATIONS[..5] {
            conn.execute_batch(migration).expect("v5 schema");
        }
        conn.execute_batch(
            "INSERT INTO sources (user, rhost, last_seen) VALUES ('alice', '192.0.2.10', 100);
             INSERT INTO history (time, user, service, tty, rhost, method, outcome)
               VALUES (100, 'alice', 'sshd', 'ssh', '192.0.2.10', 'totp', 'success');",
        )
        .expect("v5 rows");
        drop(conn);

        let mut store = SqliteStore::open(dir.path()).expect("migrate");
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            store.source_last_seen("alice", "192.0.2.10").unwrap(),
            Some(100)
        );
        assert_eq!(store.history("alice", 10).unwrap().len(), 1);
        // The old row has no location.
        let located: (Option<String>, Option<f64>, Option<i64>) = store
            .conn
            .query_row(
                "SELECT country, latitude, asn FROM sources WHERE user = 'alice'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(located, (None, None, None));
        assert_eq!(store.country_last_seen("alice", "FR").unwrap(), None);
        assert_eq!(store.last_located_source("alice").unwrap(), None);

        // Both location questions are index seeks.
        let by_country = plan(
            &store.conn,
            "SELECT max(last_seen) FROM sources WHERE user = ?1 AND country = ?2",
        );
        assert!(
            by_country
                .iter()
                .any(|l| l.contains("sources_user_country_seen")),
            "{by_country:?}"
        );
        let latest = plan(
            &store.conn,
            "SELECT last_seen FROM sources WHERE user = ?1 AND latitude IS NOT NULL AND longitude IS NOT NULL AND ?2 = ?2 ORDER BY last_seen DESC LIMIT 1",
        );
        assert!(
            latest
                .iter()
                .any(|l| l.contains("sources_user_located_seen")),
            "{latest:?}"
        );
        assert!(
            !latest.iter().any(|l| l.contains("TEMP B-TREE")),
            "{latest:?}"
        );

        // A new let-in from the old source records where it is.
        store
            .mark_source_seen("alice", "192.0.2.10", 200, Some(&paris()))
            .unwrap();
        assert_eq!(store.country_last_seen("alice", "FR").unwrap(), Some(200));
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

    #[test]
    fn damaged_store_is_refused_not_reset() {
        let dir = private_dir();
        {
            let mut store = SqliteStore::open(dir.path()).expect("open");
            for i in 0..200 {
                store
                    .add_totp(&cred(&format!("c{i}"), "alice"))
                    .expect("add");
            }
        }
        let path = dir.path().join(DB_FILE);
        let mut bytes = fs::read(&path).expect("read");
        let len = bytes.len();
        assert!(len > 8192, "{len}");
        bytes[4096..8192].fill(0xff);
        fs::write(&path, &bytes).expect("write");
        let err = SqliteStore::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("docs/state.md"), "{err}");
        // Not replaced by an empty store.
        assert_eq!(fs::read(&path).expect("read").len(), len);

        fs::write(&path, &bytes[..100]).expect("truncate");
        assert!(matches!(
            SqliteStore::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn checkpoint_leaves_a_complete_main_file() {
        let dir = private_dir();
        let mut store = SqliteStore::open(dir.path()).expect("open");
        for i in 0..40 {
            store
                .add_totp(&cred(&format!("c{i}"), "alice"))
                .expect("add");
        }
        store.checkpoint().expect("checkpoint");
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        assert_eq!(fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
        drop(store);
        // A copy of the main file alone has everything.
        let copy = private_dir();
        fs::copy(dir.path().join(DB_FILE), copy.path().join(DB_FILE)).expect("copy");
        let copied = SqliteStore::open(copy.path()).expect("open copy");
        assert_eq!(copied.credential_count().expect("count"), 40);
    }

    #[test]
    fn remove_is_scoped_to_the_user() {
        let dir = private_dir();
        let mut store = SqliteStore::open(dir.path()).expect("open");
        store.add_totp(&cred("c1", "alice")).expect("add");
        assert!(!store.remove("bob", "c1").expect("remove"));
        assert_eq!(store.list("alice").expect("list").len(), 1);
        assert!(store.remove("alice", "c1").expect("remove"));
        assert!(store.list("alice").expect("list").is_empty());
    }
}
