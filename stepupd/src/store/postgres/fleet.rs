//! Whole-store operations on the shared store, each one transaction:
//! `stepupctl store migrate` (a host's SQLite state in) and `stepupctl
//! store rekey` (every sealed value under a new fleet key).

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::Transaction;

use super::*;
use crate::store::snapshot::Snapshot;

/// What a migration wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub users: usize,
    pub totp: usize,
    pub keys: usize,
    pub ssh_keys: usize,
    pub recovery_codes: usize,
    pub history: usize,
    /// Users who were already in the shared store and were replaced (`--force`).
    pub replaced: Vec<String>,
}

/// What a rekey re-sealed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    pub totp: usize,
    pub keys: usize,
    pub ssh_keys: usize,
    pub recovery_codes: usize,
}

type Cache = HashMap<&'static str, tokio_postgres::Statement>;

impl PgStore {
    /// Write a host's snapshot into the shared store, in one transaction.
    /// A user who already has factors there is refused (nothing is
    /// written) unless `replace`, which deletes their factors and lockout
    /// there first. History is added (rows without a host get `host`);
    /// sources are merged.
    pub fn migrate_in(
        &self,
        snapshot: &Snapshot,
        host: &str,
        replace: bool,
    ) -> Result<Migrated, StoreError> {
        let users: Vec<&str> = snapshot.users().into_iter().collect();
        let sealed = Sealed::of(self, snapshot);
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            let tx = client.transaction().await.map_err(OpError::read)?;
            tx.batch_execute(
                "LOCK TABLE credentials, fido2_credentials, recovery_codes IN SHARE ROW EXCLUSIVE MODE",
            )
            .await
            .map_err(OpError::write)?;
            let present = present_users(&tx, &users).await?;
            if !present.is_empty() && !replace {
                return Err(OpError::Store(StoreError::Settings(format!(
                    "already in the shared store: {}; nothing was migrated (--force replaces their factors there with this host's)",
                    present.join(", ")
                ))));
            }
            for user in &present {
                forget_user(&tx, user).await?;
            }
            write_factors(&tx, cache, snapshot, &sealed).await?;
            let ids = write_history(&tx, snapshot, host).await?;
            write_sources_and_lockouts(&tx, snapshot, &ids).await?;
            tx.commit().await.map_err(OpError::write)?;
            Ok(Migrated {
                users: users.len(),
                totp: snapshot.totp.len(),
                keys: snapshot.keys.len(),
                ssh_keys: snapshot.ssh_keys.len(),
                recovery_codes: snapshot.recovery.len(),
                history: snapshot.history.len(),
                replaced: present.clone(),
            })
        })
    }

    /// Re-seal every secret under `new` (opening each with this store's
    /// keys) and the key check with it, in one transaction: a value that
    /// does not open stops it with nothing changed.
    pub fn rekey(&self, new: &Keyring) -> Result<Rekeyed, StoreError> {
        self.write(async |conn: &mut Conn| {
            let tx = conn.client.transaction().await.map_err(OpError::read)?;
            let mut done = Rekeyed::default();
            let rows = tx
                .query("SELECT id, user_name, label, secret, algorithm, digits, period, last_step, created FROM credentials FOR UPDATE", &[])
                .await
                .map_err(OpError::write)?;
            for row in &rows {
                let cred = self.open_totp(row)?;
                let sealed = new.seal(&cred.secret, &totp_binding(&cred.id, &cred.user, &cred.algorithm, cred.digits, cred.period));
                update(&tx, "UPDATE credentials SET secret = $2 WHERE id = $1", &cred.id, &sealed).await?;
                done.totp += 1;
            }
            let rows = tx
                .query("SELECT id, user_name, key_handle, resident, public_key, algorithm, rp_id, presence, pin, verification, label, created, sign_count FROM fido2_credentials FOR UPDATE", &[])
                .await
                .map_err(OpError::write)?;
            for row in &rows {
                let (key, _) = self.open_fido2(row)?;
                let sealed = new.seal(&key.public_key, &fido2_binding(&key.id, &key.user, &key.rp_id, &key.algorithm));
                update(&tx, "UPDATE fido2_credentials SET public_key = $2 WHERE id = $1", &key.id, &sealed).await?;
                done.keys += 1;
            }
            done.ssh_keys = self.rekey_ssh_keys(&tx, new).await?;
            done.recovery_codes = rekey_recovery(&tx, &self.keys, new).await?;
            let check = schema::sealed_key_check(new);
            tx.execute("UPDATE stepup_meta SET value = $1 WHERE name = 'key_check'", &[&check])
                .await
                .map_err(OpError::write)?;
            tx.commit().await.map_err(OpError::write)?;
            Ok(done)
        })
    }
}

impl PgStore {
    async fn rekey_ssh_keys(&self, tx: &Transaction<'_>, new: &Keyring) -> Result<usize, OpError> {
        let rows = tx
            .query(
                "SELECT id, user_name, public_key, label, created, counter FROM ssh_keys FOR UPDATE",
                &[],
            )
            .await
            .map_err(OpError::write)?;
        for row in &rows {
            let (key, _) = self.open_ssh_key(row)?;
            let binding = ssh_key_binding(&key.id, &key.user);
            let sealed = new.seal(key.public_key.as_bytes(), &binding);
            let sql = "UPDATE ssh_keys SET public_key = $2 WHERE id = $1";
            update(tx, sql, &key.id, &sealed).await?;
        }
        Ok(rows.len())
    }
}

async fn update(tx: &Transaction<'_>, sql: &str, id: &str, sealed: &[u8]) -> Result<(), OpError> {
    tx.execute(sql, &[&id, &sealed])
        .await
        .map_err(OpError::write)
        .map(drop)
}

async fn rekey_recovery(
    tx: &Transaction<'_>,
    old: &Keyring,
    new: &Keyring,
) -> Result<usize, OpError> {
    let rows = tx
        .query(
            "SELECT id, user_name, hash FROM recovery_codes FOR UPDATE",
            &[],
        )
        .await
        .map_err(OpError::write)?;
    for row in &rows {
        let (id, user, sealed): (i64, String, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        let hash = old
            .open(&sealed, &recovery_binding(&user))
            .map_err(StoreError::from)?;
        let resealed = new.seal(&hash, &recovery_binding(&user));
        tx.execute(
            "UPDATE recovery_codes SET hash = $2 WHERE id = $1",
            &[&id, &resealed],
        )
        .await
        .map_err(OpError::write)?;
    }
    Ok(rows.len())
}

/// The snapshot's secrets, sealed before the transaction starts.
struct Sealed {
    totp: Vec<Vec<u8>>,
    keys: Vec<Vec<u8>>,
    ssh_keys: Vec<Vec<u8>>,
    recovery: Vec<Vec<u8>>,
}

impl Sealed {
    fn of(store: &PgStore, snapshot: &Snapshot) -> Self {
        Self {
            totp: snapshot.totp.iter().map(|c| store.seal_totp(c)).collect(),
            keys: snapshot
                .keys
                .iter()
                .map(|k| store.seal_fido2(&k.key))
                .collect(),
            ssh_keys: snapshot
                .ssh_keys
                .iter()
                .map(|k| store.seal_ssh_key(&k.key))
                .collect(),
            recovery: snapshot
                .recovery
                .iter()
                .map(|r| store.seal_recovery(&r.user, &r.hash))
                .collect(),
        }
    }
}

/// Which of `users` already have a factor in the shared store.
async fn present_users(tx: &Transaction<'_>, users: &[&str]) -> Result<Vec<String>, OpError> {
    let rows = tx
        .query(
            "SELECT user_name FROM credentials WHERE user_name = ANY($1)
             UNION SELECT user_name FROM fido2_credentials WHERE user_name = ANY($1)
             UNION SELECT user_name FROM ssh_keys WHERE user_name = ANY($1)
             UNION SELECT user_name FROM recovery_codes WHERE user_name = ANY($1)",
            &[&users],
        )
        .await
        .map_err(OpError::write)?;
    let found: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(found.into_iter().collect())
}

async fn forget_user(tx: &Transaction<'_>, user: &str) -> Result<(), OpError> {
    for sql in [
        "DELETE FROM credentials WHERE user_name = $1",
        "DELETE FROM fido2_credentials WHERE user_name = $1",
        "DELETE FROM ssh_keys WHERE user_name = $1",
        "DELETE FROM recovery_codes WHERE user_name = $1",
        "DELETE FROM lockout WHERE user_name = $1",
    ] {
        tx.execute(sql, &[&user]).await.map_err(OpError::write)?;
    }
    Ok(())
}

async fn write_factors(
    tx: &Transaction<'_>,
    cache: &mut Cache,
    snapshot: &Snapshot,
    sealed: &Sealed,
) -> Result<(), OpError> {
    for (cred, secret) in snapshot.totp.iter().zip(&sealed.totp) {
        insert_totp(tx, cache, cred, secret).await?;
    }
    for (state, public_key) in snapshot.keys.iter().zip(&sealed.keys) {
        insert_fido2(tx, cache, &state.key, public_key).await?;
        tx.execute(
            "UPDATE fido2_credentials SET sign_count = $2, suspect = $3 WHERE id = $1",
            &[&state.key.id, &i64::from(state.sign_count), &state.suspect],
        )
        .await
        .map_err(OpError::write)?;
    }
    for (state, public_key) in snapshot.ssh_keys.iter().zip(&sealed.ssh_keys) {
        insert_ssh_key(tx, cache, &state.key, public_key).await?;
        tx.execute(
            "UPDATE ssh_keys SET counter = $2, suspect = $3 WHERE id = $1",
            &[&state.key.id, &i64::from(state.counter), &state.suspect],
        )
        .await
        .map_err(OpError::write)?;
    }
    for (row, hash) in snapshot.recovery.iter().zip(&sealed.recovery) {
        tx.execute(
            "INSERT INTO recovery_codes (user_name, hash, used_at, created) VALUES ($1, $2, $3, $4)",
            &[&row.user, hash, &row.used_at.map(int), &int(row.created)],
        )
        .await
        .map_err(OpError::write)?;
    }
    Ok(())
}

/// History rows in their order; returns (old id → new id).
async fn write_history(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
    host: &str,
) -> Result<Vec<(i64, i64)>, OpError> {
    let statement = tx
        .prepare(
            "INSERT INTO history (time, user_name, service, tty, rhost, method, outcome, host)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .await
        .map_err(OpError::write)?;
    let mut ids = Vec::with_capacity(snapshot.history.len());
    for (old, e) in &snapshot.history {
        let row_host = if e.host.is_empty() { host } else { &e.host };
        let row = tx
            .query_one(
                &statement,
                &[
                    &int(e.time),
                    &e.user,
                    &e.service,
                    &e.tty,
                    &e.rhost,
                    &e.method,
                    &e.outcome,
                    &row_host,
                ],
            )
            .await
            .map_err(OpError::write)?;
        ids.push((*old, row.get(0)));
    }
    Ok(ids)
}

/// Sources merge (the later sighting wins). A lockout's unlock watermark
/// names a row of the old store's history: it becomes the id that row (or
/// the last one before it) got here.
async fn write_sources_and_lockouts(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
    ids: &[(i64, i64)],
) -> Result<(), OpError> {
    for (user, rhost, seen) in &snapshot.sources {
        tx.execute(
            "INSERT INTO sources (user_name, rhost, last_seen) VALUES ($1, $2, $3)
             ON CONFLICT (user_name, rhost) DO UPDATE SET last_seen = greatest(sources.last_seen, excluded.last_seen)",
            &[user, rhost, &int(*seen)],
        )
        .await
        .map_err(OpError::write)?;
    }
    for (user, fingerprint, seen) in &snapshot.login_keys {
        tx.execute(
            "INSERT INTO login_keys (user_name, fingerprint, last_seen) VALUES ($1, $2, $3)
             ON CONFLICT (user_name, fingerprint) DO UPDATE SET last_seen = greatest(login_keys.last_seen, excluded.last_seen)",
            &[user, fingerprint, &int(*seen)],
        )
        .await
        .map_err(OpError::write)?;
    }
    let first_new = ids.first().map_or(0, |(_, new)| new - 1);
    for (user, row) in &snapshot.lockouts {
        let reset_at = match ids.iter().rev().find(|(old, _)| *old <= row.reset_at) {
            Some((_, new)) => *new,
            None if row.reset_at > 0 => first_new,
            None => 0,
        };
        tx.execute(
            "INSERT INTO lockout (user_name, locked_at, locked_until, reset_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_name) DO UPDATE SET locked_at = excluded.locked_at,
                 locked_until = excluded.locked_until, reset_at = excluded.reset_at",
            &[user, &row.locked_at.map(int), &row.locked_until.map(int), &reset_at],
        )
        .await
        .map_err(OpError::write)?;
    }
    Ok(())
}
