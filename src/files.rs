//! Writing files so that readers never see half of one, and locking them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// Opens (creating it 0600) and locks `path`: shared or exclusive, held
/// until the file is dropped.
pub fn lock_file(path: &Path, exclusive: bool) -> std::io::Result<fs::File> {
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(path)?;
    if exclusive { file.lock() } else { file.lock_shared() }?;
    Ok(file)
}
