//! Named volumes: data that outlives containers, kept in the store as
//! Docker keeps them (`volumes/NAME/_data`, with `volume.json` beside).
//! A volume appears whole: made aside as `.creating-PID@START-NAME` and
//! renamed into place, so a killed creation leaves one or nothing; one set
//! aside for removal (`.removing-…`) is out of the list at once.

use crate::files::{io, IoError};
use crate::image::time::rfc3339_now;
use crate::liveness::ProcessId;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("invalid volume name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    InvalidName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {0} exists already")]
    Exists(String),
    #[error("volume {name} is in use by container {container}: remove the container first")]
    InUse { name: String, container: String },
    #[error("volume {name}: its record {path} is unreadable: {why}")]
    Corrupt { name: String, path: PathBuf, why: String },
}

const RECORD: &str = "volume.json";
const DATA: &str = "_data";
const STAGING_PREFIX: &str = ".creating-";
const REMOVAL_PREFIX: &str = ".removing-";

/// One volume, with Docker's field names in `inspect`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub scope: String,
}

/// The store's volumes.
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn open(store_root: &Path) -> Result<Volumes, Error> {
        let dir = store_root.join("volumes");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io("create", &dir))?;
        Ok(Volumes { dir })
    }

    /// Makes the volume `name` (a random one when `None`).
    pub fn create(&self, name: Option<&str>) -> Result<Volume, Error> {
        let name = match name {
            Some(name) => {
                check_name(name)?;
                name.to_string()
            }
            None => crate::containers::new_id().map_err(|e| {
                Error::Io(IoError {
                    op: "read",
                    path: "/dev/urandom".into(),
                    source: std::io::Error::other(e.to_string()),
                })
            })?,
        };
        let dir = self.dir.join(&name);
        if dir.exists() {
            return Err(Error::Exists(name));
        }
        let staging = self.dir.join(format!("{STAGING_PREFIX}{}-{name}", ProcessId::current_tag()));
        let made = (|| -> Result<Volume, Error> {
            fs::DirBuilder::new().mode(0o700).create(&staging).map_err(io("create", &staging))?;
            // The data directory is the container root's (the caller's id).
            fs::DirBuilder::new().mode(0o755).create(staging.join(DATA)).map_err(io("create", &staging))?;
            let volume = Volume {
                name: name.clone(),
                driver: "local".into(),
                mountpoint: dir.join(DATA),
                created_at: rfc3339_now(),
                scope: "local".into(),
            };
            let record = staging.join(RECORD);
            fs::write(&record, serde_json::to_vec_pretty(&volume).unwrap_or_default()).map_err(io("write", &record))?;
            match fs::rename(&staging, &dir) {
                Ok(()) => Ok(volume),
                // Made meanwhile by another command.
                Err(e) if dir.exists() => Err(Error::Io(IoError { op: "create", path: dir.clone(), source: e })),
                Err(e) => Err(io("create", &dir)(e).into()),
            }
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        made
    }

    /// The volume `name`, made first when missing (`run -v NAME:/path`).
    pub fn get_or_create(&self, name: &str) -> Result<Volume, Error> {
        match self.get(name) {
            Err(Error::NotFound(_)) => match self.create(Some(name)) {
                Err(Error::Exists(_) | Error::Io(_)) if self.dir.join(name).exists() => self.get(name),
                made => made,
            },
            found => found,
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume, Error> {
        check_name(name).map_err(|_| Error::NotFound(name.to_string()))?;
        let path = self.dir.join(name).join(RECORD);
        let bytes = match fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(name.to_string())),
            read => read.map_err(io("read", &path))?,
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { name: name.to_string(), path, why: e.to_string() })
    }

    /// Every volume, by name; what killed commands left aside is swept
    /// when it holds no data yet (creations), or returned by
    /// [`Volumes::abandoned_removals`] for the caller to delete.
    pub fn list(&self) -> Result<Vec<Volume>, Error> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io("read", &self.dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(owner) = name.strip_prefix(STAGING_PREFIX) {
                if crate::liveness::owner_of_name_gone(owner) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            } else if !name.starts_with('.') {
                found.extend(self.get(&name).ok());
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// Takes the volume out of the list at once; returns where it now is,
    /// for its data (which may hold files of other ids) to be deleted.
    pub fn set_aside(&self, name: &str) -> Result<PathBuf, Error> {
        let dir = self.dir.join(name);
        let aside = self.dir.join(format!("{REMOVAL_PREFIX}{}-{name}", ProcessId::current_tag()));
        match fs::rename(&dir, &aside) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(name.to_string())),
            renamed => renamed.map(|()| aside).map_err(|e| io("remove", &dir)(e).into()),
        }
    }

    /// Removes those of `names` that no container of the store lists:
    /// for the monitor of a `--rm` container, which may delete any file
    /// (it runs in the user namespace).
    pub fn remove_unused(&self, containers: &crate::containers::Containers, names: &[String]) {
        let listed = containers.list().unwrap_or_default();
        for name in names {
            if listed.iter().any(|c| c.record.volumes.contains(name)) {
                continue;
            }
            if let Ok(aside) = self.set_aside(name) {
                let _ = crate::image::store::remove_tree(&aside);
            }
        }
    }

    /// Removals whose process was killed before it deleted them.
    pub fn abandoned_removals(&self) -> Vec<PathBuf> {
        crate::liveness::left_by_gone_owners(&self.dir, REMOVAL_PREFIX)
    }
}

/// Docker's rule, as for containers, and two characters at least.
pub fn check_name(name: &str) -> Result<(), Error> {
    if crate::containers::follows_docker_rule(name) && name.len() >= 2 {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// Whether `source` of `-v SOURCE:DEST` names a volume rather than a host
/// path (Docker's rule: a host path is absolute or starts with `.`).
pub fn is_volume_name(source: &str) -> bool {
    !source.starts_with('/') && !source.starts_with('.')
}
