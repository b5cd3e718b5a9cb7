//! Everything an embedded store holds, read in one SQLite transaction, for
//! `stepupctl store migrate` (which writes it into the shared store in one
//! PostgreSQL transaction: all or nothing).

use std::collections::BTreeSet;

use rusqlite::params;
use zeroize::Zeroizing;

use super::{
    Fido2Credential, HistoryEntry, LockoutRow, SqliteStore, SshKeyCredential, StoreError,
    TotpCredential,
};

/// A security key with the state the engine keeps about it.
pub struct KeyState {
    pub key: Fido2Credential,
    pub sign_count: u32,
    pub suspect: bool,
}

/// An ssh-agent security key with its counter.
pub struct SshKeyState {
    pub key: SshKeyCredential,
    pub counter: u32,
    pub suspect: bool,
}

/// A recovery code row.
pub struct RecoveryRow {
    pub user: String,
    pub hash: String,
    pub used_at: Option<u64>,
    pub created: u64,
}

/// One host's whole state.
#[derive(Default)]
pub struct Snapshot {
    pub totp: Vec<TotpCredential>,
    pub keys: Vec<KeyState>,
    pub ssh_keys: Vec<SshKeyState>,
    pub recovery: Vec<RecoveryRow>,
    /// (row id in this store, the row), in id order.
    pub history: Vec<(i64, HistoryEntry)>,
    /// (user, source address, last seen)
    pub sources: Vec<(String, String, u64)>,
    /// (user, login key fingerprint, last seen)
    pub login_keys: Vec<(String, String, u64)>,
    pub lockouts: Vec<(String, LockoutRow)>,
}

impl Snapshot {
    /// Everyone who has a factor here (the users a migration brings over).
    pub fn users(&self) -> BTreeSet<&str> {
        self.totp
            .iter()
            .map(|c| c.user.as_str())
            .chain(self.keys.iter().map(|k| k.key.user.as_str()))
            .chain(self.ssh_keys.iter().map(|k| k.key.user.as_str()))
            .chain(self.recovery.iter().map(|r| r.user.as_str()))
            .collect()
    }
}

impl SqliteStore {
    /// Read the whole store as one consistent snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let conn = self.connection();
        conn.execute_batch("BEGIN")?;
        let snapshot = read_all(conn);
        conn.execute_batch("COMMIT")?;
        snapshot
    }
}

fn read_all(conn: &rusqlite::Connection) -> Result<Snapshot, StoreError> {
    let mut totp = conn.prepare(
        "SELECT id, user, label, secret, algorithm, digits, period, last_step, created
         FROM credentials WHERE method = 'totp' ORDER BY created, id",
    )?;
    let totp = totp
        .query_map([], |r| {
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
        })?
        .collect::<Result<_, _>>()?;
    let mut recovery =
        conn.prepare("SELECT user, hash, used_at, created FROM recovery_codes ORDER BY id")?;
    let recovery = recovery
        .query_map([], |r| {
            Ok(RecoveryRow {
                user: r.get(0)?,
                hash: r.get(1)?,
                used_at: r.get(2)?,
                created: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Snapshot {
        totp,
        keys: read_keys(conn)?,
        ssh_keys: read_ssh_keys(conn)?,
        recovery,
        history: read_history(conn)?,
        sources: read_pairs(
            conn,
            "SELECT user, rhost, last_seen FROM sources ORDER BY 1, 2",
        )?,
        login_keys: read_pairs(
            conn,
            "SELECT user, fingerprint, last_seen FROM login_keys ORDER BY 1, 2",
        )?,
        lockouts: read_lockouts(conn)?,
    })
}

fn read_keys(conn: &rusqlite::Connection) -> Result<Vec<KeyState>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, user, key_handle, resident, public_key, algorithm, rp_id, presence, pin,
                verification, label, created, sign_count, suspect
         FROM fido2_credentials ORDER BY created, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyState {
            key: Fido2Credential {
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
            sign_count: r.get(12)?,
            suspect: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_history(conn: &rusqlite::Connection) -> Result<Vec<(i64, HistoryEntry)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, time, user, service, tty, rhost, method, outcome, host FROM history ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, super::sqlite::history_entry(r, 1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (user, what was seen, when) rows: sources, login keys.
fn read_pairs(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_ssh_keys(conn: &rusqlite::Connection) -> Result<Vec<SshKeyState>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, user, public_key, label, created, counter, suspect FROM ssh_keys ORDER BY created, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SshKeyState {
            key: SshKeyCredential {
                id: r.get(0)?,
                user: r.get(1)?,
                public_key: r.get(2)?,
                label: r.get(3)?,
                created: r.get(4)?,
            },
            counter: r.get(5)?,
            suspect: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_lockouts(conn: &rusqlite::Connection) -> Result<Vec<(String, LockoutRow)>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT user, locked_at, locked_until, reset_at FROM lockout ORDER BY user")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            LockoutRow {
                locked_at: r.get(1)?,
                locked_until: r.get(2)?,
                reset_at: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
