use std::io;
use std::path::PathBuf;

use maxminddb::MaxMindDbError;

/// Why a database cannot be used, or a lookup failed. Every variant names
/// the file, so a message in the journal says which one to fix.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Not owned by root, writable by group or others, not a regular file,
    /// or in a directory others could replace it through.
    #[error("{path}: refused: {reason}")]
    Untrusted { path: PathBuf, reason: String },
    #[error("{path}: empty file, not a MaxMind DB database")]
    Empty { path: PathBuf },
    /// Truncated, garbage, or otherwise not a MaxMind DB file.
    #[error("{path}: not a usable MaxMind DB database: {source}")]
    Invalid {
        path: PathBuf,
        source: MaxMindDbError,
    },
    #[error("{path}: database type {found:?} is not {wanted}")]
    WrongType {
        path: PathBuf,
        found: String,
        wanted: &'static str,
    },
    /// The file opened but a record could not be decoded: it is damaged.
    #[error("{path}: lookup failed, the database is damaged: {source}")]
    Lookup {
        path: PathBuf,
        source: MaxMindDbError,
    },
}

impl GeoError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            GeoError::Io { path, .. }
            | GeoError::Untrusted { path, .. }
            | GeoError::Empty { path }
            | GeoError::Invalid { path, .. }
            | GeoError::WrongType { path, .. }
            | GeoError::Lookup { path, .. } => path,
        }
    }
}
