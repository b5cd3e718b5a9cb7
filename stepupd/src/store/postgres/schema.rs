//! The shared store's schema, its version table (`stepup_schema`, as
//! SQLite has `user_version`), and the fleet key check. Run on every new
//! connection, under an advisory lock so two hosts starting at once do not
//! both migrate: a database at an older version is migrated forward in one
//! transaction; a newer one is refused, never rewritten.

use super::link::{Conn, describe, is_connection_error};
use crate::store::StoreError;
use crate::store::crypt::{Binding, Keyring};

/// Schema version this build writes on PostgreSQL.
pub const PG_SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[n]` takes the database from version `n` to `n + 1`.
const MIGRATIONS: [&str; PG_SCHEMA_VERSION as usize] = [
    // 0 → 1: everything SQLite's version 6 holds, secrets sealed (bytea),
    // and the key check.
    "CREATE TABLE credentials (
         id TEXT PRIMARY KEY,
         user_name TEXT NOT NULL,
         method TEXT NOT NULL,
         label TEXT NOT NULL,
         secret BYTEA NOT NULL,
         algorithm TEXT NOT NULL,
         digits INTEGER NOT NULL,
         period BIGINT NOT NULL,
         last_step BIGINT,
         created BIGINT NOT NULL
     );
     CREATE INDEX credentials_user ON credentials(user_name);
     CREATE TABLE fido2_credentials (
         id TEXT PRIMARY KEY,
         user_name TEXT NOT NULL,
         key_handle BYTEA NOT NULL,
         resident BOOLEAN NOT NULL,
         public_key BYTEA NOT NULL,
         algorithm TEXT NOT NULL,
         rp_id TEXT NOT NULL,
         sign_count BIGINT NOT NULL DEFAULT 0,
         presence BOOLEAN NOT NULL,
         pin BOOLEAN NOT NULL,
         verification BOOLEAN NOT NULL,
         label TEXT NOT NULL,
         created BIGINT NOT NULL,
         suspect BOOLEAN NOT NULL DEFAULT false
     );
     CREATE INDEX fido2_credentials_user ON fido2_credentials(user_name);
     CREATE TABLE recovery_codes (
         id BIGSERIAL PRIMARY KEY,
         user_name TEXT NOT NULL,
         hash BYTEA NOT NULL,
         used_at BIGINT,
         created BIGINT NOT NULL
     );
     CREATE INDEX recovery_codes_user ON recovery_codes(user_name);
     CREATE TABLE history (
         id BIGSERIAL PRIMARY KEY,
         time BIGINT NOT NULL,
         user_name TEXT NOT NULL,
         service TEXT NOT NULL,
         tty TEXT NOT NULL,
         rhost TEXT NOT NULL,
         method TEXT NOT NULL,
         outcome TEXT NOT NULL,
         host TEXT NOT NULL
     );
     CREATE INDEX history_user_time ON history(user_name, time);
     CREATE INDEX history_user_outcome_time ON history(user_name, outcome, time);
     CREATE TABLE sources (
         user_name TEXT NOT NULL,
         rhost TEXT NOT NULL,
         last_seen BIGINT NOT NULL,
         country TEXT,
         city TEXT,
         latitude DOUBLE PRECISION,
         longitude DOUBLE PRECISION,
         accuracy_radius INTEGER,
         asn BIGINT,
         PRIMARY KEY (user_name, rhost)
     );
     CREATE INDEX sources_user_country_seen ON sources(user_name, country, last_seen);
     CREATE INDEX sources_user_located_seen ON sources(user_name, last_seen) WHERE latitude IS NOT NULL;
     CREATE TABLE lockout (
         user_name TEXT PRIMARY KEY,
         locked_at BIGINT,
         locked_until BIGINT,
         reset_at BIGINT NOT NULL DEFAULT 0
     );
     CREATE TABLE ssh_keys (
         id TEXT PRIMARY KEY,
         user_name TEXT NOT NULL,
         public_key BYTEA NOT NULL,
         label TEXT NOT NULL,
         counter BIGINT NOT NULL DEFAULT 0,
         suspect BOOLEAN NOT NULL DEFAULT false,
         created BIGINT NOT NULL
     );
     CREATE INDEX ssh_keys_user ON ssh_keys(user_name);
     CREATE TABLE login_keys (
         user_name TEXT NOT NULL,
         fingerprint TEXT NOT NULL,
         last_seen BIGINT NOT NULL,
         PRIMARY KEY (user_name, fingerprint)
     );
     CREATE TABLE stepup_meta (
         name TEXT PRIMARY KEY,
         value BYTEA NOT NULL
     );",
];

/// An arbitrary constant naming stepup's migration lock.
const MIGRATION_LOCK: i64 = 0x5354_4550_5550;

const KEY_CHECK: &[u8] = b"stepup fleet key check";

fn key_check_binding() -> Binding {
    Binding::new("key-check", &[])
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if is_connection_error(&e) {
        StoreError::Unreachable(describe(&e))
    } else {
        StoreError::Shared(describe(&e))
    }
}

/// Bring the schema to this build's version and check that the fleet key
/// opens the database's key check (the first host to arrive writes it).
pub async fn prepare(conn: &mut Conn, keys: &Keyring) -> Result<(), StoreError> {
    let tx = conn.client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS stepup_schema (version INTEGER NOT NULL);
         INSERT INTO stepup_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM stepup_schema);",
    )
    .await
    .map_err(pg_error)?;
    let found: i32 = tx
        .query_one("SELECT max(version) FROM stepup_schema", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    let found = i64::from(found);
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::SharedTooNew {
            found,
            known: PG_SCHEMA_VERSION,
        });
    }
    for (from, migration) in (0_i64..).zip(MIGRATIONS) {
        if found <= from {
            tx.batch_execute(migration).await.map_err(pg_error)?;
        }
    }
    if found < PG_SCHEMA_VERSION {
        tx.execute(
            "UPDATE stepup_schema SET version = $1",
            &[&i32::try_from(PG_SCHEMA_VERSION).unwrap_or(i32::MAX)],
        )
        .await
        .map_err(pg_error)?;
    }
    check_key(&tx, keys).await?;
    tx.commit().await.map_err(pg_error)
}

async fn check_key(tx: &tokio_postgres::Transaction<'_>, keys: &Keyring) -> Result<(), StoreError> {
    let row = tx
        .query_opt(
            "SELECT value FROM stepup_meta WHERE name = 'key_check'",
            &[],
        )
        .await
        .map_err(pg_error)?;
    match row {
        Some(row) => {
            let sealed: Vec<u8> = row.get(0);
            keys.open(&sealed, &key_check_binding())?;
        }
        None => {
            let sealed = keys.seal(KEY_CHECK, &key_check_binding());
            tx.execute(
                "INSERT INTO stepup_meta (name, value) VALUES ('key_check', $1)",
                &[&sealed],
            )
            .await
            .map_err(pg_error)?;
        }
    }
    Ok(())
}

/// The key check sealed under `keys`' current key (for `store rekey`).
pub fn sealed_key_check(keys: &Keyring) -> Vec<u8> {
    keys.seal(KEY_CHECK, &key_check_binding())
}
