//! Writing files so that readers never see half of one, and locking them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An I/O error with what was being done and to which path: every module's
/// errors hold one of these (`Error::Io`).
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// For `map_err(io("read", &path))?`: an I/O error on `path`, which `?`
/// turns into the module's error.
pub fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IoError + 'a {
    move |source| IoError { op, path: path.to_path_buf(), source }
}

/// Writes to a temporary name in the same directory, then renames: readers
/// see the old file or the whole new one, never half of it. No fsync: the
/// runtime dir does not outlive a reboot (it is a tmpfs where logind runs),
/// and a sync costs a millisecond or more on every container start.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
        f.write_all(contents)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// How a lock is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// With other shared holders.
    Shared,
    /// With no one.
    Exclusive,
}

/// Opens (creating it 0600) and locks `path`, held until the file is
/// dropped (or its process dies).
pub fn lock_file(path: &Path, lock: Lock) -> std::io::Result<fs::File> {
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(path)?;
    match lock {
        Lock::Shared => file.lock_shared()?,
        Lock::Exclusive => file.lock()?,
    }
    Ok(file)
}
