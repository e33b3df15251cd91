//! Containers as the store keeps them: one directory per container under
//! `containers/ID/` holding its record (`container.json`: name, image,
//! command, settings), its runtime Spec (`config.json`), its state
//! (`state.json`, written by its monitor), its log, its /etc files and, for
//! an image, its writable layer. Records outlive reboots; runtime files
//! (`state.rs`) do not need to.

mod control;
pub mod health;
pub mod log;
mod names;
pub mod processes;
pub mod restart;
mod status;

pub use control::parse_signal;
pub use health::{Health, HealthConfig, HealthStatus, ProbeResult};
pub use names::follows_docker_rule;
pub use restart::RestartPolicy;
pub use status::{stat_fields, ContainerState, ProcessId, Status};

use crate::files::write_atomic;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::files::IoError),
    #[error("no such container: {0} (see hutch ps -a)")]
    NotFound(String),
    #[error("{prefix:?} names {count} containers: give more of the id, or the name")]
    Ambiguous { prefix: String, count: usize },
    #[error("the name {name:?} is in use by container {id}: remove it (hutch rm {name}) or choose another name")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    InvalidName(String),
    #[error("container {id}: {path}: {why} (remove it with hutch rm -f {id})")]
    Corrupt { id: String, path: PathBuf, why: String },
}

use crate::files::io;

/// What a container is, fixed when it is created.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it, or the root directory of a `--rootfs` run.
    pub image: String,
    /// The image's config digest, when the root comes from an image.
    #[serde(default)]
    pub image_id: Option<String>,
    pub command: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    /// Nanoseconds past `created`: orders containers made in one second.
    #[serde(default)]
    pub created_nanos: u32,
    /// Published ports as `-p` shows them (`127.0.0.1:8080->80/tcp`).
    #[serde(default)]
    pub ports: Vec<String>,
    /// The signal `stop` sends first (the image's StopSignal), SIGTERM if none.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Removed as soon as it exits (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub interactive: bool,
    /// Log size at which the log rotates (`--log-opt max-size`).
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// `--cgroups`: whether limits go through a delegated cgroup.
    #[serde(default)]
    pub cgroups: crate::cgroup::Mode,
    /// The named volumes it uses (`-v NAME:/path`).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Those of `volumes` made for it alone (`-v /path`, an image's
    /// VOLUME): `rm -v` removes them with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous_volumes: Vec<String>,
    /// Its binds and volumes as `-v` takes them (Docker's HostConfig.Binds),
    /// for `--volumes-from`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    /// `--label KEY=VALUE`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--restart`: what its monitor does when its process ends.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    /// Its healthcheck (`--health-cmd`, or the image's HEALTHCHECK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
}

/// The store's containers.
pub struct Containers {
    dir: PathBuf,
}

/// One container: its record and where it lives.
#[derive(Clone, Debug)]
pub struct Container {
    pub record: ContainerRecord,
    pub dir: PathBuf,
}

const RECORD: &str = "container.json";
/// A container being created: `.creating-PID@START-ID`, its creator named
/// by pid and start time (see `liveness`).
const STAGING_PREFIX: &str = ".creating-";

/// Where names are taken (see `Containers::names`).
const NAMES_DIR: &str = ".names";
/// A container being removed: `.removing-PID@START-ID`, out of the list
/// at once, its files deleted after.
const REMOVAL_PREFIX: &str = ".removing-";

fn staging_name(id: &str) -> String {
    format!("{STAGING_PREFIX}{}-{id}", ProcessId::current_tag())
}

const STATE: &str = "state.json";
/// The runtime Spec the monitor runs.
pub const SPEC: &str = "config.json";

impl Containers {
    pub fn open(store_root: &Path) -> Result<Containers, Error> {
        let dir = store_root.join("containers");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io("create", &dir))?;
        Ok(Containers { dir })
    }

    /// The containers of the store that holds `container`.
    pub fn of(container: &Container) -> Containers {
        Containers { dir: container.dir.parent().map(Path::to_path_buf).unwrap_or_default() }
    }

    /// Creates the container's directory and record. The name (generated
    /// when `None`) is checked and taken under a lock, so two containers
    /// started at once never get the same one. The directory appears with
    /// its record in it (made aside, then renamed into place): a process
    /// killed meanwhile leaves a listed container or nothing, and what it
    /// made aside is swept once it is gone.
    pub fn create(&self, mut record: ContainerRecord, name: Option<&str>) -> Result<Container, Error> {
        let _lock = self.lock()?;
        let names = self.names()?;
        record.name = match name {
            Some(name) => {
                names::check(name)?;
                if let Some(holder) = self.name_holder(&names, name) {
                    return Err(Error::NameInUse { name: name.into(), id: holder.get(..12).unwrap_or(&holder).into() });
                }
                name.to_string()
            }
            None => names::generate(&record.id, |n| self.name_holder(&names, n).is_some()),
        };
        self.take_name(&names, &record.name, &record.id)?;
        let staging = self.dir.join(staging_name(&record.id));
        fs::DirBuilder::new().mode(0o700).create(&staging).map_err(io("create", &staging))?;
        let made_aside = Container { record, dir: staging.clone() };
        // Nobody reads a directory made aside: written in place.
        let placed = made_aside.write_in_place(RECORD, &made_aside.record).and_then(|()| {
            let dir = self.dir.join(&made_aside.record.id);
            fs::rename(&staging, &dir).map_err(io("create", &dir))?;
            Ok(Container { record: made_aside.record.clone(), dir })
        });
        if placed.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        placed
    }

    /// Every container with a readable record, newest first. What killed
    /// creations left aside is swept on the way.
    pub fn list(&self) -> Result<Vec<Container>, Error> {
        let entries = fs::read_dir(&self.dir).map_err(io("read", &self.dir))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(owner) = name.strip_prefix(STAGING_PREFIX) {
                // Holds only the record: no files of other ids.
                if crate::liveness::owner_of_name_gone(owner) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            } else if name.starts_with(REMOVAL_PREFIX) {
                continue;
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.extend(Container::at(&entry.path()).ok());
            }
        }
        let when = |c: &Container| (c.record.created, c.record.created_nanos);
        found.sort_by(|a, b| when(b).cmp(&when(a)).then(a.record.id.cmp(&b.record.id)));
        Ok(found)
    }

    /// Takes `container` out of the list at once by renaming its directory
    /// aside, and frees its name; returns where the directory now is, for
    /// its files to be deleted (a process killed meanwhile leaves it to
    /// [`Containers::abandoned_removals`]). `None` when it is gone already.
    pub fn set_aside(&self, container: &Container) -> Result<Option<PathBuf>, Error> {
        let aside = self.dir.join(format!("{REMOVAL_PREFIX}{}-{}", ProcessId::current_tag(), container.record.id));
        let _lock = self.lock()?;
        match fs::rename(&container.dir, &aside) {
            Ok(()) => {
                let names = self.names()?;
                if self.name_holder(&names, &container.record.name).is_none() {
                    let _ = fs::remove_file(names.join(&container.record.name));
                }
                Ok(Some(aside))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("remove", &container.dir)(e).into()),
        }
    }

    /// `containers/.names/`: per name, a symlink to the id of the container
    /// that has it (one small inode, made and read atomically), taken under
    /// the names lock; so checking a name reads one link, not every record.
    /// A store made before it has its names entered once. The caller holds
    /// the names lock.
    fn names(&self) -> Result<PathBuf, Error> {
        let dir = self.dir.join(NAMES_DIR);
        if dir.is_dir() {
            return Ok(dir);
        }
        // Under the lock, one made aside earlier is a killed process's.
        let prefix = format!("{NAMES_DIR}.tmp-");
        for entry in fs::read_dir(&self.dir).map_err(io("read", &self.dir))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let building = self.dir.join(format!("{prefix}{}", ProcessId::current_tag()));
        fs::DirBuilder::new().mode(0o700).create(&building).map_err(io("create", &building))?;
        for c in self.list()? {
            self.take_name(&building, &c.record.name, &c.record.id)?;
        }
        fs::rename(&building, &dir).map_err(io("create", &dir))?;
        Ok(dir)
    }

    /// The id of the container that has `name`, if one does (a name whose
    /// container is gone, its removal killed, is free).
    fn name_holder(&self, names: &Path, name: &str) -> Option<String> {
        let id = fs::read_link(names.join(name)).ok()?.to_string_lossy().into_owned();
        self.dir.join(&id).join(RECORD).is_file().then_some(id)
    }

    /// Gives `name` to `id`, replacing a link left by a container that is
    /// gone. The caller checked the name is free and holds the names lock.
    fn take_name(&self, names: &Path, name: &str, id: &str) -> Result<(), Error> {
        let link = names.join(name);
        match std::os::unix::fs::symlink(id, &link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fs::remove_file(&link).map_err(io("remove", &link))?;
                std::os::unix::fs::symlink(id, &link).map_err(io("create", &link))?;
            }
            taken => taken.map_err(io("create", &link))?,
        }
        Ok(())
    }

    /// Directories of removals whose process was killed before it deleted
    /// them (their layers hold files of other ids: the caller deletes them
    /// in the user namespace).
    pub fn abandoned_removals(&self) -> Vec<PathBuf> {
        crate::liveness::left_by_gone_owners(&self.dir, REMOVAL_PREFIX)
    }

    /// The container named `key`: its full id, its name, or a unique prefix of its id.
    pub fn find(&self, key: &str) -> Result<Container, Error> {
        // A name: one link to read.
        let by_name = names::check(key).ok().and_then(|()| fs::read_link(self.dir.join(NAMES_DIR).join(key)).ok());
        if let Some(c) = by_name.and_then(|id| Container::at(&self.dir.join(id)).ok()).filter(|c| c.record.name == key)
        {
            return Ok(c);
        }
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.record.id == key || c.record.name == key) {
            return Ok(c.clone());
        }
        let matching: Vec<&Container> =
            all.iter().filter(|c| !key.is_empty() && c.record.id.starts_with(key)).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(key.to_string())),
            many => Err(Error::Ambiguous { prefix: key.to_string(), count: many.len() }),
        }
    }

    fn lock(&self) -> Result<File, Error> {
        let path = self.dir.join(".names.lock");
        Ok(crate::files::lock_file(&path, crate::files::Lock::Exclusive).map_err(io("lock", &path))?)
    }
}

impl Container {
    /// Opens the container whose directory is `dir`.
    pub fn at(dir: &Path) -> Result<Container, Error> {
        let path = dir.join(RECORD);
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        let record: ContainerRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            id: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            path: path.clone(),
            why: e.to_string(),
        })?;
        Ok(Container { record, dir: dir.to_path_buf() })
    }

    pub fn short_id(&self) -> &str {
        &self.record.id[..12.min(self.record.id.len())]
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The state as last recorded, corrected for a monitor that is gone
    /// without recording the end (killed: its container died with it).
    pub fn state(&self) -> ContainerState {
        let path = self.path(STATE);
        let recorded: ContainerState =
            fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        recorded.checked()
    }

    pub fn write_state(&self, state: &ContainerState) -> Result<(), Error> {
        self.write(STATE, state)
    }

    /// The runtime Spec saved at creation.
    pub fn spec(&self) -> Result<oci_spec::runtime::Spec, Error> {
        let path = self.path(SPEC);
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            id: self.record.id.clone(),
            path,
            why: e.to_string(),
        })
    }

    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let path = self.path(name);
        Ok(write_atomic(&path, &self.json(&path, value)?).map_err(io("write", &path))?)
    }

    /// Writes a file nobody reads yet (in a directory made aside).
    fn write_in_place<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let path = self.path(name);
        Ok(fs::write(&path, self.json(&path, value)?).map_err(io("write", &path))?)
    }

    fn json<T: Serialize>(&self, path: &Path, value: &T) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(value).map_err(|e| Error::Corrupt {
            id: self.record.id.clone(),
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }
}

/// A new container id: 64 hex digits, as Docker's.
pub fn new_id() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    let urandom = Path::new("/dev/urandom");
    fs::File::open(urandom)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(io("read", urandom))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
