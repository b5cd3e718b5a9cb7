//! Everything the daemon remembers, behind one [`Store`] trait with two
//! backends: the embedded SQLite database in the state directory
//! ([`SqliteStore`], the default) and a PostgreSQL database shared by a
//! fleet ([`PgStore`], `[store] url`). Both keep the same guarantees: a
//! code, recovery code or key counter is accepted at most once (a
//! compare-and-set that writes the used step and the success row in one
//! transaction), and nothing is acknowledged before it is durable. See
//! docs/state.md.

use std::path::{Path, PathBuf};

use stepup_config::StoreSettings;
use stepup_config::attempt::{GeoFacts, PreviousAttempt};
use zeroize::Zeroizing;

pub mod admin;
pub mod crypt;
pub mod postgres;
pub mod snapshot;
pub mod sqlite;

pub use postgres::{Health, PgStore};
pub use sqlite::{SCHEMA_VERSION, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {reason}")]
    UnsafeDir { path: PathBuf, reason: String },
    #[error("state directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {}", sqlite::describe_sql(.0))]
    Sql(#[from] rusqlite::Error),
    #[error(
        "state database {path} cannot be read ({reason}); refusing to start without it rather than forget used codes and lockouts: see docs/state.md"
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "state database schema version {found} is newer than this stepupd understands ({}); refusing to touch it",
        sqlite::SCHEMA_VERSION
    )]
    TooNew { found: i64 },
    #[error(
        "state database {path} is damaged ({detail}); refusing to start rather than forget used codes and lockouts. Restore it from a backup, or move it aside to start empty (every user's factors must then be enrolled again): see docs/state.md"
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The shared store cannot be reached now (connection refused, timed
    /// out, closed, the server shutting down): the attempt is
    /// "unavailable" and the module's failmode decides.
    #[error("shared store unreachable: {0}")]
    Unreachable(String),
    /// The shared store answered with an error.
    #[error("shared store: {0}")]
    Shared(String),
    #[error(
        "shared store schema version {found} is newer than this stepupd understands ({known}); refusing to touch it"
    )]
    SharedTooNew { found: i64, known: i64 },
    /// `[store]` cannot be used as written (URL options, files).
    #[error("[store] {0}")]
    Settings(String),
    /// A sealed secret did not open (wrong fleet key, altered row).
    #[error(transparent)]
    Crypt(#[from] crypt::CryptError),
}

impl StoreError {
    /// The store could not be asked (as opposed to: it answered no).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }
}

/// A TOTP credential as stored. The secret is zeroized when dropped.
pub struct TotpCredential {
    pub id: String,
    pub user: String,
    pub label: String,
    pub secret: Zeroizing<Vec<u8>>,
    pub algorithm: String,
    pub digits: u32,
    pub period: u64,
    /// Last time step a code was accepted for (codes at or before it are replays).
    pub last_step: Option<u64>,
    pub created: u64,
}

/// What `List` shows: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSummary {
    pub id: String,
    pub method: String,
    pub label: String,
    pub created: u64,
}

/// One line of authentication history.
#[derive(Debug, Clone, Default)]
pub struct HistoryEntry {
    pub time: u64,
    pub user: String,
    pub service: String,
    pub tty: String,
    pub rhost: String,
    pub method: String,
    /// `success`, `wrong_code`, `replay`, `too_many_tries`, `timeout`, `cancelled`, `not_enrolled`.
    pub outcome: String,
    /// The host that recorded it (`[store] host_name`; the shared store
    /// mixes every host's rows).
    pub host: String,
}

/// A user's lockout state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRow {
    pub locked_at: Option<u64>,
    /// `None` with `locked_at` set: locked until an admin unlocks.
    pub locked_until: Option<u64>,
    /// History rows up to this id no longer count (set by an unlock).
    pub reset_at: i64,
}

/// A FIDO2 credential as stored (imported from pam_u2f or enrolled).
#[derive(Debug, Clone)]
pub struct Fido2Credential {
    pub id: String,
    pub user: String,
    pub key_handle: Vec<u8>,
    pub resident: bool,
    pub public_key: Vec<u8>,
    pub algorithm: String,
    pub rp_id: String,
    pub presence: bool,
    pub pin: bool,
    pub verification: bool,
    pub label: String,
    pub created: u64,
}

/// A security key used through an ssh-agent: its OpenSSH public key line
/// (type, base64, no comment), not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKeyCredential {
    pub id: String,
    pub user: String,
    pub public_key: String,
    pub label: String,
    pub created: u64,
}

/// What one import writes.
#[derive(Default)]
pub struct ImportBatch {
    pub totp: Vec<TotpCredential>,
    /// (user, PHC hash, created)
    pub recovery: Vec<(String, String, u64)>,
    pub fido2: Vec<Fido2Credential>,
    pub ssh_keys: Vec<SshKeyCredential>,
}

/// History columns a success can be scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryColumn {
    Tty,
    Rhost,
}

/// The state the engine reads and writes. Each method is one transaction;
/// the `accept_*` methods are compare-and-set: true (and the success row
/// written with the used code) for the one caller that wins, false (and
/// nothing written) for any other, across every host sharing the store.
pub trait Store: Send {
    /// What store this is, for `stepupctl status` (never a secret).
    fn describe(&self) -> String;
    /// Does the store answer now? (The embedded store always does.)
    fn ping(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Called every second by the daemon: a shared store checks its
    /// connection now and then (and retries one that is down), so outages
    /// and recoveries are noticed without waiting for an attempt.
    fn keep_alive(&mut self) {}
    fn add_totp(&mut self, cred: &TotpCredential) -> Result<(), StoreError>;
    fn totp_credentials(&self, user: &str) -> Result<Vec<TotpCredential>, StoreError>;
    fn accept_totp(
        &mut self,
        id: &str,
        step: u64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError>;
    fn accept_recovery_code(
        &mut self,
        row: i64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError>;
    fn add_fido2(&mut self, key: &Fido2Credential) -> Result<(), StoreError>;
    fn fido2_credentials(&self, user: &str) -> Result<Vec<(Fido2Credential, u32)>, StoreError>;
    fn accept_fido2(
        &mut self,
        id: &str,
        sign_count: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError>;
    fn mark_suspect(&mut self, id: &str) -> Result<(), StoreError>;
    fn checkpoint(&self) -> Result<(), StoreError>;
    fn list(&self, user: &str) -> Result<Vec<CredentialSummary>, StoreError>;
    fn remove(&mut self, user: &str, id: &str) -> Result<bool, StoreError>;
    fn credential_count(&self) -> Result<u64, StoreError>;
    fn record(&mut self, entry: &HistoryEntry) -> Result<(), StoreError>;
    fn history(&self, user: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
    fn last_success(
        &self,
        user: &str,
        since: u64,
        same: Option<(HistoryColumn, &str)>,
    ) -> Result<Option<u64>, StoreError>;
    fn failures_since(&self, user: &str, since: u64) -> Result<u64, StoreError>;
    fn failures_since_after(
        &self,
        user: &str,
        since: u64,
        after_row: i64,
    ) -> Result<u64, StoreError>;
    fn source_last_seen(&self, user: &str, rhost: &str) -> Result<Option<u64>, StoreError>;
    /// `user` was let in from `rhost` at `time`, located there by the
    /// `[geoip]` databases if `located` (a later let-in replaces the
    /// location; an earlier one never does).
    fn mark_source_seen(
        &mut self,
        user: &str,
        rhost: &str,
        time: u64,
        located: Option<&GeoFacts>,
    ) -> Result<(), StoreError>;
    /// When `user` was last let in from an address located in `country`.
    fn country_last_seen(&self, user: &str, country: &str) -> Result<Option<u64>, StoreError>;
    /// `user`'s latest let-in from an address with coordinates.
    fn last_located_source(&self, user: &str) -> Result<Option<PreviousAttempt>, StoreError>;
    /// Forget where sources were for let-ins before `before` (history
    /// retention bounds location data too); the sources stay.
    fn forget_locations_before(&mut self, before: u64) -> Result<usize, StoreError>;
    fn lockout(&self, user: &str) -> Result<Option<LockoutRow>, StoreError>;
    fn lock(&mut self, user: &str, at: u64, until: Option<u64>) -> Result<(), StoreError>;
    fn unlock(&mut self, user: &str) -> Result<(), StoreError>;
    fn replace_recovery_codes(
        &mut self,
        user: &str,
        hashes: &[String],
        now: u64,
    ) -> Result<(), StoreError>;
    fn unused_recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, StoreError>;
    fn import(&mut self, batch: &ImportBatch) -> Result<(), StoreError>;
    fn prune_history(&mut self, before: u64) -> Result<usize, StoreError>;
    fn credential_exists(&self, id: &str) -> Result<bool, StoreError>;
    fn add_ssh_key(&mut self, key: &SshKeyCredential) -> Result<(), StoreError>;
    fn ssh_keys(&self, user: &str) -> Result<Vec<(SshKeyCredential, u32)>, StoreError>;
    fn accept_ssh_key(
        &mut self,
        id: &str,
        counter: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError>;
    fn mark_ssh_key_suspect(&mut self, id: &str) -> Result<(), StoreError>;
    fn login_key_last_seen(&self, user: &str, fingerprint: &str)
    -> Result<Option<u64>, StoreError>;
    fn mark_login_key_seen(
        &mut self,
        user: &str,
        fingerprint: &str,
        time: u64,
    ) -> Result<(), StoreError>;
}

/// Open the store `[store]` names: the shared PostgreSQL database when
/// `url` is set (reporting reachability changes to `health`), else the
/// SQLite database in `state_dir`.
pub fn open(
    settings: &StoreSettings,
    state_dir: &Path,
    health: Box<dyn Fn(Health) + Send>,
) -> Result<Box<dyn Store>, StoreError> {
    if settings.is_shared() {
        Ok(Box::new(PgStore::open(settings, health)?))
    } else {
        Ok(Box::new(SqliteStore::open(state_dir)?))
    }
}
