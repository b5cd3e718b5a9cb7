//! A database decides which country an attempt comes from, and so whether a
//! person is asked for a second factor: a file anyone but root can change
//! is no policy input. The rules are those of stepup's configuration files,
//! extended to the directories a file could be replaced through.
//!
//! What is checked, on every open:
//! - the file itself, through the descriptor that is then mapped (`fstat`
//!   after `open`, so nothing can swap the file between the check and its
//!   use), and so after any symlinks are followed: a regular file, owned by
//!   root, not writable by group or others;
//! - every directory from `/` down to the file's real location (the
//!   symlink's target, after `canonicalize`), and every directory from `/`
//!   down to the configured path's own directory (where a symlink itself
//!   lives: whoever can write there can point it elsewhere): owned by root
//!   and not writable by group or others, unless the sticky bit is set (as
//!   on `/tmp`: others may not rename or remove root's entries there).
use std::fs::{self, File, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::GeoError;

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Opens `path` for reading after the checks above; returns the open file
/// and its metadata (from the descriptor).
pub fn open_trusted(path: &Path) -> Result<(File, Metadata), GeoError> {
    let io = |source| GeoError::Io {
        path: path.to_owned(),
        source,
    };
    // Refuse a FIFO or device before opening it: opening a FIFO for
    // reading would block until someone writes.
    check_file(path, &fs::metadata(path).map_err(io)?)?;
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_file(path, &meta)?;
    let target = fs::canonicalize(path).map_err(io)?;
    check_directories(path, &target)?;
    let link_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let link_dir = fs::canonicalize(link_dir).map_err(io)?;
    check_directories(path, &link_dir.join("_"))?;
    Ok((file, meta))
}

fn check_file(path: &Path, meta: &Metadata) -> Result<(), GeoError> {
    let refuse = |reason: String| {
        Err(GeoError::Untrusted {
            path: path.to_owned(),
            reason,
        })
    };
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else {
            "not a regular file"
        };
        return refuse(format!("{what}, not a regular file"));
    }
    if meta.uid() != 0 {
        return refuse(format!("owned by uid {}, not root", meta.uid()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OR_OTHER_WRITE != 0 {
        return refuse(format!("mode {mode:04o} is writable by group or others"));
    }
    Ok(())
}

/// Checks each directory above `real` (an absolute, resolved path).
fn check_directories(path: &Path, real: &Path) -> Result<(), GeoError> {
    for dir in real.ancestors().skip(1) {
        let meta = fs::metadata(dir).map_err(|source| GeoError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mode = meta.mode() & 0o7777;
        let reason = if meta.uid() != 0 {
            format!(
                "directory {} is owned by uid {}, not root",
                dir.display(),
                meta.uid()
            )
        } else if mode & GROUP_OR_OTHER_WRITE != 0 && mode & STICKY == 0 {
            format!(
                "directory {} (mode {mode:04o}) is writable by group or others",
                dir.display()
            )
        } else {
            continue;
        };
        return Err(GeoError::Untrusted {
            path: PathBuf::from(path),
            reason,
        });
    }
    Ok(())
}
