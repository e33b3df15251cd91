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
    let tmp = temp_sibling(path);
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

/// Where `path` is written before it is renamed into place:
/// `.NAME.tmp-PID@START` beside it, tagged with its writer (see `liveness`).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", crate::liveness::ProcessId::current_tag()))
}

/// Removes the [`temp_sibling`]s of `path` whose writers are gone (killed
/// before they could rename or remove them).
pub fn sweep_temp_siblings(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let prefix = format!(".{name}.tmp-");
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let sibling = entry.file_name();
        let Some(owner) = sibling.to_str().and_then(|s| s.strip_prefix(&prefix)) else { continue };
        if crate::liveness::abandoned(owner) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The bytes of the files under `dir` (apparent sizes, hard links counted
/// once); what cannot be read counts nothing.
pub fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

/// The caller's home: `$HOME`, else the password database's entry, as
/// other tools find it where nothing set HOME (a Slurm task started with
/// `--export=NONE`, a cron job).
pub fn home_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()) {
        return Some(home);
    }
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten()?;
    Some(user.dir).filter(|d| d.is_absolute())
}
