//! Resource limits through cgroup v2, where systemd (or an admin) has
//! delegated a subtree to the user.
//!
//! ```text
//! BASE                   the caller's cgroup when it is delegated, else a
//! │                      transient scope the user's systemd makes (Delegate=yes)
//! └─ hutch-ID/           one per container, controllers enabled below it
//!    ├─ monitor/         hutch, the monitor and its helpers (FUSE, network)
//!    └─ container/       the container's processes, with its limits
//! ```
//!
//! Processes live only in leaves (cgroup v2's no-internal-processes rule),
//! and the container's limits do not count hutch's own helpers. Without
//! delegation a run without limits goes on quietly; one with limits fails
//! before starting, saying why and how to get delegation.

mod limits;
pub mod stats;
mod systemd;

pub use limits::{controllers_for, flags_for};

use oci_spec::runtime::LinuxResources;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{flags} needs a cgroup v2 subtree delegated to you, and {why}: run hutch in a delegated scope \
         (systemd-run --user --scope -p Delegate=yes hutch …), start a systemd user instance \
         (loginctl enable-linger $USER), or ask the admin for Delegate= on user@.service; \
         --cgroups=disabled runs without limits"
    )]
    NotDelegated { flags: String, why: String },
    #[error(transparent)]
    Io(#[from] crate::files::IoError),
    #[error("--cgroups {0:?}: expected enabled or disabled")]
    BadMode(String),
}

use crate::files::io;

/// `--cgroups`: whether hutch uses cgroups at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enabled,
    /// Run without limits knowingly, even when limits were asked for.
    Disabled,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode, Error> {
        match s {
            "enabled" => Ok(Mode::Enabled),
            "disabled" => Ok(Mode::Disabled),
            other => Err(Error::BadMode(other.into())),
        }
    }
}

/// The cgroup v2 hierarchy and this process's place in it.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// Where cgroup2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified
    /// on a hybrid host.
    pub mount: PathBuf,
    /// Whether cgroup v1 hierarchies hold controllers too (hybrid).
    hybrid: bool,
}

impl Hierarchy {
    /// The cgroup2 mount, from /proc/self/mountinfo.
    pub fn find() -> Option<Hierarchy> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mut mount = None;
        let mut hybrid = false;
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
            match fields.get(dash + 1) {
                Some(&"cgroup2") if mount.is_none() => mount = fields.get(4).map(|m| unescape(m)),
                Some(&"cgroup") => hybrid |= fields.get(dash + 3).is_some_and(|o| !o.contains("name=")),
                _ => {}
            }
        }
        Some(Hierarchy { mount: mount?, hybrid })
    }

    /// The cgroup of process `pid` ("self" for this one), as a directory.
    pub fn cgroup_of(&self, pid: &str) -> Option<PathBuf> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(self.dir(path))
    }

    /// Whether cgroup v1 hierarchies hold controllers too.
    pub fn is_hybrid(&self) -> bool {
        self.hybrid
    }

    /// The controllers the cgroup `dir` offers, and whether it is
    /// delegated to the caller (owned, so limits can be set below it).
    pub fn delegation(&self, dir: &Path) -> (Vec<String>, bool) {
        let uid = nix::unistd::geteuid().as_raw();
        let owned = |name: &str| fs::metadata(dir.join(name)).is_ok_and(|m| m.uid() == uid);
        (read_words(&dir.join("cgroup.controllers")), owned("cgroup.procs") && owned("cgroup.subtree_control"))
    }

    /// `rel` (as /proc/PID/cgroup and cgroupsPath give it) under the mount.
    pub fn dir(&self, rel: &str) -> PathBuf {
        self.mount.join(rel.trim_start_matches('/'))
    }

    /// `dir` as cgroupsPath names it: relative to the mount, from '/'.
    pub fn relative(&self, dir: &Path) -> String {
        format!("/{}", dir.strip_prefix(&self.mount).unwrap_or(dir).display())
    }

    /// Why the cgroup `dir` cannot hold limits on `controllers`, if it cannot.
    fn undelegated(&self, dir: &Path, controllers: &[&str]) -> Option<String> {
        let shown = self.relative(dir);
        let available = read_words(&dir.join("cgroup.controllers"));
        let missing: Vec<&str> = controllers.iter().copied().filter(|c| !available.iter().any(|a| a == c)).collect();
        if self.hybrid && !missing.is_empty() {
            return Some(format!(
                "this host has the {} controller on cgroup v1 (a hybrid layout), where no user can be given it",
                missing.join(", ")
            ));
        }
        let uid = nix::unistd::geteuid().as_raw();
        let owned = |name: &str| fs::metadata(dir.join(name)).is_ok_and(|m| m.uid() == uid);
        if !owned("cgroup.procs") || !owned("cgroup.subtree_control") || !owned(".") {
            return Some(format!("your cgroup {shown} is not delegated to you"));
        }
        match missing.as_slice() {
            [] => None,
            _ => Some(format!("the {} controller is not delegated to your cgroup {shown}", missing.join(", "))),
        }
    }
}

/// A mountinfo path with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> PathBuf {
    let mut out = Vec::new();
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(n) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path).map(|s| s.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

/// Controllers hutch enables for a container when the base has them, so
/// `stats` can show usage even without limits.
const USEFUL: [&str; 5] = ["cpu", "memory", "pids", "io", "cpuset"];

/// Leaf names under a container's cgroup.
const MONITOR_LEAF: &str = "monitor";
const CONTAINER_LEAF: &str = "container";

/// One container's cgroup (`hutch-ID/`).
#[derive(Clone, Debug)]
pub struct ContainerCgroup {
    pub dir: PathBuf,
}

impl ContainerCgroup {
    /// The leaf the container's processes run in.
    pub fn container_leaf(&self) -> PathBuf {
        self.dir.join(CONTAINER_LEAF)
    }

    /// The container cgroup that holds the leaf `container` (as cgroupsPath gives it).
    pub fn of_leaf(hierarchy: &Hierarchy, leaf: &str) -> ContainerCgroup {
        let dir = hierarchy.dir(leaf);
        ContainerCgroup { dir: dir.parent().map(Path::to_path_buf).unwrap_or(dir) }
    }

    /// Whether the kernel's OOM killer ended a process of the container.
    pub fn oom_killed(&self) -> bool {
        stats::keyed(&self.container_leaf().join("memory.events"), "oom_kill").is_some_and(|n| n > 0)
    }

    /// Removes the container's leaf once its processes are gone (the
    /// kernel may take a moment to release the last of them).
    pub fn remove_container_leaf(&self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while let Err(e) = fs::remove_dir(self.container_leaf()) {
            if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Readies the container's leaf for a new process of the container
    /// (`exec`), which then joins it and so its limits. Returns the leaf as
    /// the Spec's cgroupsPath names it.
    pub fn prepare_exec(&self, unit: &str) -> Result<Option<PathBuf>, Error> {
        let leaf = self.container_leaf();
        prepare_to_join(&leaf, unit)?;
        Ok(Hierarchy::find().map(|h| PathBuf::from(h.relative(&leaf))))
    }

    /// Removes the leaves and the container's cgroup; one still holding a
    /// process (hutch itself, a monitor ending) stays, and is swept later.
    pub fn remove(&self) {
        self.remove_container_leaf();
        let _ = fs::remove_dir(self.dir.join(MONITOR_LEAF));
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Gives container `id` its cgroup when that is possible, moving hutch (and
/// so the monitor it forks) into the monitor leaf and writing `resources`
/// on the container leaf. Returns the leaf as the Spec's cgroupsPath names
/// it (relative to the cgroup2 mount); `None`: no cgroup, which is fine
/// without limits.
pub fn setup(id: &str, resources: Option<&LinuxResources>, mode: Mode) -> Result<Option<String>, Error> {
    if mode == Mode::Disabled {
        return Ok(None);
    }
    let needed = resources.map(controllers_for).unwrap_or_default();
    let not_delegated = |why: String| match resources {
        Some(r) if !needed.is_empty() => Err(Error::NotDelegated { flags: flags_for(r), why }),
        _ => Ok(None),
    };
    let Some(hierarchy) = Hierarchy::find() else {
        return not_delegated("this host has no cgroup v2 hierarchy".into());
    };
    let Some(own) = hierarchy.cgroup_of("self") else {
        return not_delegated("this process has no cgroup v2 entry in /proc/self/cgroup".into());
    };
    let base = match in_place(&hierarchy, &own, &needed) {
        Ok(base) => base,
        // Asking systemd costs a round trip: only worth it for limits.
        Err(why) if !needed.is_empty() => {
            match systemd::move_into_new_scope(&format!("hutch-{}", id.get(..12).unwrap_or(id))) {
                Ok(()) => {
                    let scope = hierarchy.cgroup_of("self").unwrap_or(own.clone());
                    if let Some(why) = hierarchy.undelegated(&scope, &needed) {
                        return not_delegated(format!("the scope systemd made is not usable ({why})"));
                    }
                    scope
                }
                Err(systemd) => {
                    return not_delegated(format!("{why}; asking systemd for a delegated scope failed: {systemd}"))
                }
            }
        }
        Err(why) => return not_delegated(why),
    };
    match create(&base, id, &needed) {
        Ok(cgroup) => {
            if let Some(resources) = resources {
                limits::apply(&cgroup.container_leaf(), resources)?;
            }
            Ok(Some(hierarchy.relative(&cgroup.container_leaf())))
        }
        Err(_) if needed.is_empty() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the caller's own cgroup can be the base, and why not.
fn in_place(hierarchy: &Hierarchy, own: &Path, needed: &[&str]) -> Result<PathBuf, String> {
    if let Some(why) = hierarchy.undelegated(own, needed) {
        return Err(why);
    }
    // Controllers can be enabled below the base only once no process is
    // left in it: hutch moves out first; another process there (a shell)
    // makes it unusable unless they are enabled already.
    let wanted = wanted_controllers(own, needed);
    let enabled = read_words(&own.join("cgroup.subtree_control"));
    if wanted.iter().all(|c| enabled.contains(c)) {
        return Ok(own.to_path_buf());
    }
    let others = fs::read_to_string(own.join("cgroup.procs"))
        .map(|procs| procs.lines().any(|p| p.trim() != std::process::id().to_string()))
        .unwrap_or(true);
    if others && !needed.is_empty() {
        return Err(format!(
            "your cgroup {} holds other processes, so no controller can be enabled below it",
            hierarchy.relative(own)
        ));
    }
    Ok(own.to_path_buf())
}

/// The controllers to enable below `base`: those needed and the useful
/// ones it has.
fn wanted_controllers(base: &Path, needed: &[&str]) -> Vec<String> {
    let available = read_words(&base.join("cgroup.controllers"));
    available.into_iter().filter(|c| needed.contains(&c.as_str()) || USEFUL.contains(&c.as_str())).collect()
}

/// `base/hutch-ID/{monitor,container}`, hutch moved into the monitor leaf
/// and the controllers enabled on the way down.
fn create(base: &Path, id: &str, needed: &[&str]) -> Result<ContainerCgroup, Error> {
    sweep_stale(base);
    let cgroup = ContainerCgroup { dir: base.join(format!("hutch-{id}")) };
    // Until hutch has joined it, the new cgroup is empty, and another
    // start's sweep may take it for stale and remove it: made again then.
    let mut attempts = 1;
    while let Err(e) = make_and_join(&cgroup) {
        let removed_meanwhile = matches!(&e, Error::Io(io) if io.source.kind() == ErrorKind::NotFound);
        if !removed_meanwhile || attempts == 3 {
            return Err(e);
        }
        attempts += 1;
    }
    let wanted = wanted_controllers(base, needed);
    for dir in [base, cgroup.dir.as_path()] {
        enable(dir, &wanted, needed)?;
    }
    Ok(cgroup)
}

/// Makes the container's cgroup and its two leaves, and moves hutch into
/// the monitor leaf.
fn make_and_join(cgroup: &ContainerCgroup) -> Result<(), Error> {
    let monitor = cgroup.dir.join(MONITOR_LEAF);
    for dir in [&cgroup.dir, &monitor, &cgroup.container_leaf()] {
        match fs::create_dir(dir) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(io("mkdir", dir)(e).into()),
            _ => {}
        }
    }
    join(&monitor, "0")
}

/// Enables `wanted` in `dir`'s subtree_control; only a needed one failing
/// is an error.
fn enable(dir: &Path, wanted: &[String], needed: &[&str]) -> Result<(), Error> {
    let path = dir.join("cgroup.subtree_control");
    let enabled = read_words(&path);
    for controller in wanted.iter().filter(|c| !enabled.contains(c)) {
        let written = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("+{controller}").as_bytes()));
        if let Err(e) = written {
            if needed.contains(&controller.as_str()) {
                return Err(io("enable the controller", &path)(e).into());
            }
        }
    }
    Ok(())
}

/// Moves process `pid` ("0": the writer) into the cgroup `dir`.
pub fn join(dir: &Path, pid: &str) -> Result<(), Error> {
    let procs = dir.join("cgroup.procs");
    fs::OpenOptions::new()
        .write(true)
        .open(&procs)
        .and_then(|mut f| f.write_all(pid.as_bytes()))
        .map_err(io("join", &procs))?;
    Ok(())
}

/// Removes the cgroups of containers whose last process has ended but
/// which no one removed (a monitor cannot remove its own cgroup).
fn sweep_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry.file_name().to_str().is_some_and(|n| n.starts_with("hutch-"));
        if is_ours && stats::keyed(&path.join("cgroup.events"), "populated") == Some(0) {
            ContainerCgroup { dir: path }.remove();
        }
    }
}

/// Makes sure this process may move a process into the cgroup `target`:
/// the kernel wants write access to the cgroup.procs of the closest common
/// ancestor. When the caller sits in a cgroup it does not own (a login
/// session), the user's systemd moves it into a delegated scope first.
pub fn prepare_to_join(target: &Path, unit: &str) -> Result<(), Error> {
    let Some(hierarchy) = Hierarchy::find() else { return Ok(()) };
    let Some(own) = hierarchy.cgroup_of("self") else { return Ok(()) };
    let common: PathBuf =
        own.components().zip(target.components()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
    let uid = nix::unistd::geteuid().as_raw();
    if fs::metadata(common.join("cgroup.procs")).is_ok_and(|m| m.uid() == uid) {
        return Ok(());
    }
    systemd::move_into_new_scope(unit).map_err(|why| Error::NotDelegated {
        flags: "joining the container's cgroup".into(),
        why: format!("your cgroup {} is not delegated to you ({why})", hierarchy.relative(&own)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/sys/fs/cgroup"), PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(unescape(r"/a\040b"), PathBuf::from("/a b"));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("disabled".parse::<Mode>().ok(), Some(Mode::Disabled));
        assert!("off".parse::<Mode>().is_err());
    }
}
