//! The shared store: one PostgreSQL database for a fleet (`[store] url`).
//!
//! Same guarantees as the SQLite store, across hosts: the `accept_*`
//! methods are one transaction whose conditional `UPDATE` takes the
//! credential row's lock; a second host's `UPDATE` of the same row waits
//! for the first to commit and then re-checks its condition against the
//! committed row (PostgreSQL's READ COMMITTED re-evaluation), so of two
//! hosts given the same code at the same instant exactly one wins, and the
//! success row is written in the same transaction. Secrets (TOTP secrets,
//! recovery code hashes, security key public keys) are sealed with the
//! fleet key and bound to their row ([`crypt`](crate::store::crypt)).

use std::cell::RefCell;
use std::sync::Arc;

use stepup_config::StoreSettings;
use stepup_config::attempt::{GeoFacts, PreviousAttempt};
use tokio_postgres::Row;

use super::crypt::{Binding, Keyring};
use super::{
    CredentialSummary, Fido2Credential, HistoryColumn, HistoryEntry, ImportBatch, LockoutRow,
    SshKeyCredential, Store, StoreError, TotpCredential,
};

mod fleet;
mod link;
mod schema;
pub mod settings;

pub use fleet::{Migrated, Rekeyed};

use link::{Conn, Link, OpError, prepared};
pub use link::{Health, RETRY_AFTER};
pub use schema::PG_SCHEMA_VERSION;

/// The shared store. Interior mutability: the trait's readers take
/// `&self`, and a read may have to reconnect (the engine holds the store
/// behind a mutex, so one call runs at a time).
pub struct PgStore {
    link: RefCell<Link>,
    keys: Arc<Keyring>,
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn totp_binding(id: &str, user: &str, algorithm: &str, digits: u32, period: u64) -> Binding {
    Binding::new(
        "totp",
        &[
            id,
            user,
            algorithm,
            &digits.to_string(),
            &period.to_string(),
        ],
    )
}

fn fido2_binding(id: &str, user: &str, rp_id: &str, algorithm: &str) -> Binding {
    Binding::new("fido2", &[id, user, rp_id, algorithm])
}

fn recovery_binding(user: &str) -> Binding {
    Binding::new("recovery", &[user])
}

fn ssh_key_binding(id: &str, user: &str) -> Binding {
    Binding::new("ssh-key", &[id, user])
}

impl PgStore {
    /// Check `[store]` and read the fleet key; connect at the first use
    /// (an unreachable database at start is an outage like any other).
    pub fn open(
        settings: &StoreSettings,
        health: Box<dyn Fn(Health) + Send>,
    ) -> Result<Self, StoreError> {
        let parsed = settings::parse(settings)?;
        let key_file = settings
            .key_file
            .as_deref()
            .ok_or_else(|| StoreError::Settings("url needs key_file".into()))?;
        let keys = Arc::new(Keyring::from_files(
            key_file,
            settings.previous_key_file.as_deref(),
        )?);
        Self::with_keys(parsed, keys, health)
    }

    /// A store over these settings and keys (`store migrate`, `store rekey`).
    pub fn with_keys(
        settings: settings::PgSettings,
        keys: Arc<Keyring>,
        health: Box<dyn Fn(Health) + Send>,
    ) -> Result<Self, StoreError> {
        let setup_keys = keys.clone();
        let limit = settings.query_timeout;
        let setup = Box::new(move |runtime: &tokio::runtime::Runtime, conn: &mut Conn| {
            runtime.block_on(async {
                tokio::time::timeout(limit, schema::prepare(conn, &setup_keys))
                    .await
                    .unwrap_or_else(|_| {
                        Err(StoreError::Unreachable(
                            "no answer while checking the schema".into(),
                        ))
                    })
            })
        });
        Ok(Self {
            link: RefCell::new(Link::new(settings, health, setup)?),
            keys,
        })
    }

    /// The keys this store seals and opens with.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    fn read<T>(&self, op: impl AsyncFn(&mut Conn) -> Result<T, OpError>) -> Result<T, StoreError> {
        self.link.borrow_mut().run(true, op)
    }

    fn write<T>(&self, op: impl AsyncFn(&mut Conn) -> Result<T, OpError>) -> Result<T, StoreError> {
        self.link.borrow_mut().run(false, op)
    }

    /// One read-only statement's rows.
    fn rows(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.read(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            let statement = prepared(&*client, cache, sql)
                .await
                .map_err(OpError::read)?;
            client
                .query(&statement, params)
                .await
                .map_err(OpError::read)
        })
    }

    /// One statement that changes something, outside a transaction: the
    /// rows it touched.
    fn execute(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            let statement = prepared(&*client, cache, sql)
                .await
                .map_err(OpError::read)?;
            client
                .execute(&statement, params)
                .await
                .map_err(OpError::write)
        })
    }

    /// A compare-and-set (`UPDATE … WHERE <still unused>`) and, if it
    /// changed the row, the success row: one transaction.
    fn accept(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            let tx = client.transaction().await.map_err(OpError::read)?;
            let statement = prepared(&tx, cache, sql).await.map_err(OpError::write)?;
            let changed = tx
                .execute(&statement, params)
                .await
                .map_err(OpError::write)?;
            if changed != 1 {
                return Ok(false);
            }
            insert_history(&tx, cache, success).await?;
            tx.commit().await.map_err(OpError::write)?;
            Ok(true)
        })
    }

    fn open_totp(&self, row: &Row) -> Result<TotpCredential, StoreError> {
        let (id, user): (String, String) = (row.get(0), row.get(1));
        let (algorithm, digits, period): (String, i32, i64) = (row.get(4), row.get(5), row.get(6));
        let digits = u32::try_from(digits).unwrap_or(0);
        let period = uint(period);
        let sealed: Vec<u8> = row.get(3);
        let secret = self.keys.open(
            &sealed,
            &totp_binding(&id, &user, &algorithm, digits, period),
        )?;
        Ok(TotpCredential {
            id,
            user,
            label: row.get(2),
            secret,
            algorithm,
            digits,
            period,
            last_step: row.get::<_, Option<i64>>(7).map(uint),
            created: uint(row.get(8)),
        })
    }

    fn open_fido2(&self, row: &Row) -> Result<(Fido2Credential, u32), StoreError> {
        let (id, user, rp_id, algorithm): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(6), row.get(5));
        let sealed: Vec<u8> = row.get(4);
        let public_key = self
            .keys
            .open(&sealed, &fido2_binding(&id, &user, &rp_id, &algorithm))?;
        let count: i64 = row.get(12);
        Ok((
            Fido2Credential {
                id,
                user,
                key_handle: row.get(2),
                resident: row.get(3),
                public_key: public_key.to_vec(),
                algorithm,
                rp_id,
                presence: row.get(7),
                pin: row.get(8),
                verification: row.get(9),
                label: row.get(10),
                created: uint(row.get(11)),
            },
            u32::try_from(count).unwrap_or(u32::MAX),
        ))
    }

    /// Seal what a TOTP credential row holds.
    pub(crate) fn seal_totp(&self, cred: &TotpCredential) -> Vec<u8> {
        self.keys.seal(
            &cred.secret,
            &totp_binding(
                &cred.id,
                &cred.user,
                &cred.algorithm,
                cred.digits,
                cred.period,
            ),
        )
    }

    pub(crate) fn seal_fido2(&self, key: &Fido2Credential) -> Vec<u8> {
        self.keys.seal(
            &key.public_key,
            &fido2_binding(&key.id, &key.user, &key.rp_id, &key.algorithm),
        )
    }

    pub(crate) fn seal_recovery(&self, user: &str, hash: &str) -> Vec<u8> {
        self.keys.seal(hash.as_bytes(), &recovery_binding(user))
    }

    /// An ssh-agent key's public key is not secret, but it decides who may
    /// step up: sealed so a database writer cannot plant one.
    pub(crate) fn seal_ssh_key(&self, key: &SshKeyCredential) -> Vec<u8> {
        self.keys.seal(
            key.public_key.as_bytes(),
            &ssh_key_binding(&key.id, &key.user),
        )
    }

    fn open_ssh_key(&self, row: &Row) -> Result<(SshKeyCredential, u32), StoreError> {
        let (id, user): (String, String) = (row.get(0), row.get(1));
        let sealed: Vec<u8> = row.get(2);
        let public_key = self.keys.open(&sealed, &ssh_key_binding(&id, &user))?;
        let public_key = String::from_utf8(public_key.to_vec())
            .map_err(|_| StoreError::Shared("an ssh key is not text".into()))?;
        let counter: i64 = row.get(5);
        Ok((
            SshKeyCredential {
                id,
                user,
                public_key,
                label: row.get(3),
                created: uint(row.get(4)),
            },
            u32::try_from(counter).unwrap_or(u32::MAX),
        ))
    }
}

const INSERT_HISTORY: &str =
    "INSERT INTO history (time, user_name, service, tty, rhost, method, outcome, host)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

async fn insert_history(
    client: &impl tokio_postgres::GenericClient,
    cache: &mut std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    entry: &HistoryEntry,
) -> Result<(), OpError> {
    let statement = prepared(client, cache, INSERT_HISTORY)
        .await
        .map_err(OpError::write)?;
    client
        .execute(
            &statement,
            &[
                &int(entry.time),
                &entry.user,
                &entry.service,
                &entry.tty,
                &entry.rhost,
                &entry.method,
                &entry.outcome,
                &entry.host,
            ],
        )
        .await
        .map_err(OpError::write)?;
    Ok(())
}

const INSERT_TOTP: &str = "INSERT INTO credentials (id, user_name, method, label, secret, algorithm, digits, period, last_step, created)
     VALUES ($1, $2, 'totp', $3, $4, $5, $6, $7, $8, $9)";
const INSERT_FIDO2: &str = "INSERT INTO fido2_credentials (id, user_name, key_handle, resident, public_key, algorithm, rp_id, presence, pin, verification, label, created)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const INSERT_SSH_KEY: &str =
    "INSERT INTO ssh_keys (id, user_name, public_key, label, created) VALUES ($1, $2, $3, $4, $5)";
const INSERT_RECOVERY: &str =
    "INSERT INTO recovery_codes (user_name, hash, created) VALUES ($1, $2, $3)";

/// Insert a TOTP credential whose secret is already sealed.
pub(crate) async fn insert_totp(
    client: &impl tokio_postgres::GenericClient,
    cache: &mut std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    cred: &TotpCredential,
    sealed: &[u8],
) -> Result<(), OpError> {
    let statement = prepared(client, cache, INSERT_TOTP)
        .await
        .map_err(OpError::write)?;
    client
        .execute(
            &statement,
            &[
                &cred.id,
                &cred.user,
                &cred.label,
                &sealed,
                &cred.algorithm,
                &i32::try_from(cred.digits).unwrap_or(i32::MAX),
                &int(cred.period),
                &cred.last_step.map(int),
                &int(cred.created),
            ],
        )
        .await
        .map_err(OpError::write)?;
    Ok(())
}

/// Insert a security key whose public key is already sealed.
pub(crate) async fn insert_fido2(
    client: &impl tokio_postgres::GenericClient,
    cache: &mut std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    key: &Fido2Credential,
    sealed: &[u8],
) -> Result<(), OpError> {
    let statement = prepared(client, cache, INSERT_FIDO2)
        .await
        .map_err(OpError::write)?;
    client
        .execute(
            &statement,
            &[
                &key.id,
                &key.user,
                &key.key_handle,
                &key.resident,
                &sealed,
                &key.algorithm,
                &key.rp_id,
                &key.presence,
                &key.pin,
                &key.verification,
                &key.label,
                &int(key.created),
            ],
        )
        .await
        .map_err(OpError::write)?;
    Ok(())
}

/// Insert a recovery code whose hash is already sealed.
pub(crate) async fn insert_recovery(
    client: &impl tokio_postgres::GenericClient,
    cache: &mut std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    (user, sealed, created): (&str, &[u8], u64),
) -> Result<(), OpError> {
    let statement = prepared(client, cache, INSERT_RECOVERY)
        .await
        .map_err(OpError::write)?;
    client
        .execute(&statement, &[&user, &sealed, &int(created)])
        .await
        .map_err(OpError::write)?;
    Ok(())
}

/// Insert an ssh-agent key whose public key is already sealed.
pub(crate) async fn insert_ssh_key(
    client: &impl tokio_postgres::GenericClient,
    cache: &mut std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    key: &SshKeyCredential,
    sealed: &[u8],
) -> Result<(), OpError> {
    let statement = prepared(client, cache, INSERT_SSH_KEY)
        .await
        .map_err(OpError::write)?;
    client
        .execute(
            &statement,
            &[&key.id, &key.user, &sealed, &key.label, &int(key.created)],
        )
        .await
        .map_err(OpError::write)?;
    Ok(())
}

mod queries;
