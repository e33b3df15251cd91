//! Where hutch keeps per-container runtime files, and how it writes them.
//!
//! `$XDG_RUNTIME_DIR/hutch` when that directory is the caller's and
//! writable; otherwise (unset, leaked through su/sudo, or missing as in ssh
//! and batch sessions without logind, common on HPC nodes) a private 0700
//! directory `/tmp/hutch-<uid>`.

use nix::unistd::{getuid, Uid};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::files::IoError),
    #[error("{0} is not a private directory of yours (owner or mode is wrong, or it is a symlink): remove it, or set XDG_RUNTIME_DIR")]
    Unsafe(PathBuf),
}

use crate::files::io;

/// The directory of hutch's runtime state for this user.
pub struct RuntimeDir {
    path: PathBuf,
}

impl RuntimeDir {
    /// Finds or creates it; `note` receives one line when hutch had to fall
    /// back to /tmp and created the directory there.
    pub fn open(note: impl FnOnce(&str)) -> Result<RuntimeDir, Error> {
        let uid = getuid();
        if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            if usable_xdg_dir(&xdg, uid) {
                let path = xdg.join("hutch");
                private_dir(&path, uid)?;
                return Ok(RuntimeDir { path });
            }
        }
        let path = std::env::temp_dir().join(format!("hutch-{uid}"));
        if private_dir(&path, uid)? {
            note(&format!(
                "XDG_RUNTIME_DIR is unset or not yours; keeping runtime state in {} (set XDG_RUNTIME_DIR to choose)",
                path.display()
            ));
        }
        Ok(RuntimeDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `note` the first time it is asked for `key` in this runtime dir:
    /// advice worth one line, not one line per command.
    pub fn once(&self, key: &str, note: impl FnOnce()) {
        let marker = self.path.join(format!("noted-{key}"));
        if fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&marker).is_ok() {
            note();
        }
    }
}

fn usable_xdg_dir(dir: &Path, uid: Uid) -> bool {
    let owned = fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid.as_raw());
    owned && nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK).is_ok()
}

/// Creates `path` 0700 if missing (returns true then), and refuses one that
/// another user could have prepared.
fn private_dir(path: &Path, uid: Uid) -> Result<bool, Error> {
    let created = match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io("create", path)(e).into()),
    };
    let meta = fs::symlink_metadata(path).map_err(io("stat", path))?;
    if !meta.is_dir() || meta.uid() != uid.as_raw() || meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Unsafe(path.to_path_buf()));
    }
    Ok(created)
}

/// The runtime files of one container (its store directory is
/// `Container::dir`): made by the monitor when a network helper needs them.
pub struct ContainerRuntimeDir {
    path: PathBuf,
}

impl ContainerRuntimeDir {
    /// Where it is, whether or not it exists (to remove it).
    pub fn of(runtime: &RuntimeDir, id: &str) -> ContainerRuntimeDir {
        ContainerRuntimeDir { path: runtime.path.join("containers").join(id) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn remove(&self) -> Result<(), Error> {
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &self.path)(e).into()),
            _ => Ok(()),
        }
    }
}
