//! The device state file (see the crate docs for its fields).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::device::SkError;

/// The environment variable naming the state file (an absolute path).
pub const STATE_ENV: &str = "STEPUP_SK_SOFT_STATE";

/// How often a key waiting for a touch re-reads the file.
const TOUCH_POLL: Duration = Duration::from_millis(50);

/// Whether someone touches the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Touch {
    /// Touched at once.
    #[default]
    Auto,
    /// Nobody touches: the key gives up after `touch_timeout_ms`.
    Never,
}

/// The whole "device": its counter and the switches tests flip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default)]
    pub counter: u32,
    #[serde(default)]
    pub touch: Touch,
    #[serde(default = "default_touch_timeout_ms")]
    pub touch_timeout_ms: u64,
    #[serde(default)]
    pub uv: bool,
    #[serde(default)]
    pub pin: Option<String>,
}

fn default_touch_timeout_ms() -> u64 {
    1000
}

impl Default for State {
    fn default() -> Self {
        State {
            counter: 0,
            touch: Touch::Auto,
            touch_timeout_ms: default_touch_timeout_ms(),
            uv: false,
            pin: None,
        }
    }
}

/// The state file named by [`STATE_ENV`]; `DeviceNotFound` when unset or
/// not absolute (the helper runs from `/`, so a relative path would be a
/// surprise).
pub fn path_from_env() -> Result<PathBuf, SkError> {
    let path = std::env::var_os(STATE_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| SkError::DeviceNotFound(format!("{STATE_ENV} is not set")))?;
    if !path.is_absolute() {
        return Err(SkError::DeviceNotFound(format!(
            "{STATE_ENV} must be an absolute path, not {}",
            path.display()
        )));
    }
    Ok(path)
}

/// Read the state; a missing or empty file is a fresh device.
pub fn load(path: &Path) -> Result<State, SkError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(SkError::general(format!("{}: {e}", path.display()))),
    };
    if text.trim().is_empty() {
        return Ok(State::default());
    }
    serde_json::from_str(&text).map_err(|e| SkError::general(format!("{}: {e}", path.display())))
}

/// Write the state atomically: temporary file in the same directory, then
/// rename.
pub fn save(path: &Path, state: &State) -> Result<(), SkError> {
    let io = |e: std::io::Error| SkError::general(format!("{}: {e}", path.display()));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let text = serde_json::to_string_pretty(state).map_err(|e| SkError::general(e.to_string()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

/// An exclusive lock over the state, held until dropped.
pub fn lock(path: &Path) -> Result<Flock<File>, SkError> {
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_name)
        .map_err(|e| SkError::general(format!("{}: {e}", Path::new(&lock_name).display())))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| SkError::general(format!("flock: {errno}")))
}

/// Take the next counter value and store it (under the lock) before any
/// signature is made with it.
pub fn next_counter(path: &Path) -> Result<u32, SkError> {
    let _lock = lock(path)?;
    let mut state = load(path)?;
    state.counter = state
        .counter
        .checked_add(1)
        .ok_or_else(|| SkError::general("the signature counter is exhausted".into()))?;
    save(path, &state)?;
    Ok(state.counter)
}

/// Wait for a touch as a real key blinks: until the file says `"auto"` or
/// `touch_timeout_ms` has passed (then `General`, as `sk-usbhid` returns for
/// FIDO_ERR_ACTION_TIMEOUT).
pub fn wait_for_touch(path: &Path) -> Result<(), SkError> {
    let start = Instant::now();
    loop {
        let state = load(path)?;
        if state.touch == Touch::Auto {
            return Ok(());
        }
        let timeout = Duration::from_millis(state.touch_timeout_ms);
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(SkError::general(
                "nobody touched the key (state: \"touch\": \"never\")".into(),
            ));
        }
        std::thread::sleep(TOUCH_POLL.min(timeout - elapsed));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_and_empty_files_are_a_fresh_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), State::default());
        fs::write(&path, "  \n").unwrap();
        assert_eq!(load(&path).unwrap(), State::default());
    }

    #[test]
    fn counter_grows_and_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(next_counter(&path).unwrap(), 1);
        assert_eq!(next_counter(&path).unwrap(), 2);
        assert_eq!(load(&path).unwrap().counter, 2);
        save(
            &path,
            &State {
                counter: u32::MAX,
                ..State::default()
            },
        )
        .unwrap();
        assert!(matches!(next_counter(&path), Err(SkError::General(_))));
        assert_eq!(load(&path).unwrap().counter, u32::MAX);
    }

    #[test]
    fn unknown_fields_and_bad_json_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, r#"{"counter": 1, "touched": "never"}"#).unwrap();
        assert!(matches!(load(&path), Err(SkError::General(_))));
        fs::write(&path, "{").unwrap();
        assert!(matches!(load(&path), Err(SkError::General(_))));
    }

    #[test]
    fn never_touched_times_out_and_a_late_touch_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let never = State {
            touch: Touch::Never,
            touch_timeout_ms: 100,
            ..State::default()
        };
        save(&path, &never).unwrap();
        assert!(matches!(wait_for_touch(&path), Err(SkError::General(_))));

        save(
            &path,
            &State {
                touch_timeout_ms: 10_000,
                ..never
            },
        )
        .unwrap();
        let toucher = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                save(&path, &State::default()).unwrap();
            })
        };
        wait_for_touch(&path).unwrap();
        toucher.join().unwrap();
    }
}
