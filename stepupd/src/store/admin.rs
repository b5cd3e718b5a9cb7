//! What `stepupctl` does to the store itself, without the daemon: check
//! `[store]` offline, move a host's SQLite state into the shared store,
//! re-seal the shared store under a new fleet key.

use std::path::Path;
use std::sync::Arc;

use stepup_config::StoreSettings;

use super::crypt::{FleetKey, Keyring};
use super::postgres::settings;
use super::{Health, PgStore, SqliteStore, StoreError};

/// `stepupctl check` on `[store]`: the URL's options, the TLS files, the
/// password file and the fleet keys, without connecting. A line to print.
pub fn check_offline(store: &StoreSettings) -> Result<String, StoreError> {
    let Some(url) = &store.url else {
        return Ok("store: the embedded SQLite database in the state directory".to_owned());
    };
    settings::parse(store)?;
    let keys = keyring(store)?;
    Ok(format!(
        "store: {url} (fleet key {}; not connected: check is offline)",
        keys.ids()
    ))
}

fn keyring(store: &StoreSettings) -> Result<Keyring, StoreError> {
    let key_file = store
        .key_file
        .as_deref()
        .ok_or_else(|| StoreError::Settings("url needs key_file".into()))?;
    Ok(Keyring::from_files(
        key_file,
        store.previous_key_file.as_deref(),
    )?)
}

/// Errors are what the caller prints; a lost connection is not retried.
fn quiet() -> Box<dyn Fn(Health) + Send> {
    Box::new(|_| {})
}

/// `stepupctl store migrate`: this host's SQLite state (in `state_dir`)
/// into the shared store `store` describes, in one transaction. History
/// rows get `host`. A summary to print.
pub fn migrate(
    state_dir: &Path,
    store: &StoreSettings,
    host: &str,
    force: bool,
) -> Result<String, StoreError> {
    let local = SqliteStore::open(state_dir)?;
    let snapshot = local.snapshot()?;
    let shared = PgStore::with_keys(settings::parse(store)?, Arc::new(keyring(store)?), quiet())?;
    let done = shared.migrate_in(&snapshot, host, force)?;
    let mut report = format!(
        "migrated {} user(s) from {} to {}: {} TOTP credential(s), {} security key(s), {} ssh-agent key(s), {} recovery code(s), {} history row(s)",
        done.users,
        local.path().display(),
        store.url.as_deref().unwrap_or_default(),
        done.totp,
        done.keys,
        done.ssh_keys,
        done.recovery_codes,
        done.history
    );
    if !done.replaced.is_empty() {
        report.push_str(&format!(
            "\nreplaced in the shared store (--force): {}",
            done.replaced.join(", ")
        ));
    }
    Ok(report)
}

/// `stepupctl store rekey --new-key FILE`: every sealed value of the
/// shared store `[store]` names, opened with its keys and sealed under the
/// new one, in one transaction. A summary to print.
pub fn rekey(store: &StoreSettings, new_key: &Path) -> Result<String, StoreError> {
    let new = Keyring::new(FleetKey::from_file(new_key)?, None);
    let shared = PgStore::with_keys(settings::parse(store)?, Arc::new(keyring(store)?), quiet())?;
    let done = shared.rekey(&new)?;
    Ok(format!(
        "re-sealed under fleet key {}: {} TOTP secret(s), {} security key(s), {} ssh-agent key(s), {} recovery code(s). Now make {} the key_file of every host (docs/deploy.md, key rotation).",
        new.current.id_hex(),
        done.totp,
        done.keys,
        done.ssh_keys,
        done.recovery_codes,
        new_key.display()
    ))
}
