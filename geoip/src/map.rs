//! The crate's one `unsafe` operation: mapping a database file.
//!
//! A GeoLite2-City file is ~60 MB; mapping it shares the page cache instead
//! of copying it into the daemon's heap, and opening is a metadata read, not
//! a file read.
use std::fs::File;

use memmap2::Mmap;

/// Maps `file` read-only.
///
/// # Why this is sound
///
/// `Mmap::map` is unsafe because the bytes behind the returned `&[u8]` must
/// not change, and the file must not shrink, while the map exists. That holds
/// for the files stepup maps:
/// - the caller has checked (`trust::open_trusted`, on this very descriptor)
///   that the file is owned by root and not writable by group or others, in
///   directories only root can change, so no other user can write it;
/// - database updates replace the file, they never rewrite it: geoipupdate
///   writes a new file and renames it over the old path, as do `mv` and
///   `install` (which unlinks the destination first). The mapped inode keeps
///   its old contents until the last map of it goes away; `LiveGeo` notices
///   the new inode and maps that.
///
/// What stays is root writing into the mapped file in place (`cp new old`
/// truncates and rewrites the same inode): the daemon could then read changed
/// bytes or die with SIGBUS. docs/deploy.md tells admins to replace, not
/// overwrite; root can break the daemon in many other ways too.
pub(crate) fn map_read_only(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: see above: a root-owned file, replaced by rename, never written
    // in place while mapped.
    unsafe { Mmap::map(file) }
}
