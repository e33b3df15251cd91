//! Storage drivers: how an image's layers and a container's writable layer
//! become the container's root directory. Two sit behind one small
//! interface: the kernel's overlayfs (`overlay.rs`), chosen wherever it is
//! exact and the host allows it, and `fuse-overlay` (`fuse.rs`), which
//! works everywhere hutch does: kernels from 4.18, owners kept in xattrs
//! without subordinate ids, stores the kernel overlay refuses (NFS homes,
//! overlay itself). `choice.rs` picks one per container.

mod choice;
mod fuse;
mod overlay;

pub use choice::{choose, probe_kernel_overlay, Choice, LayerFormat, Preference, StoreProbe};

use crate::spec::annotations::{ROOTFS_DRIVER, ROOTFS_LOWERS, ROOTFS_UPPER, ROOTFS_VOLATILE, ROOTFS_WHY};
use oci_spec::runtime::Spec;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The driver of containers made before drivers had names, and of those
/// the kernel overlay cannot serve.
pub const DEFAULT_DRIVER: &str = fuse::FuseOverlay::NAME;
/// The kernel's overlayfs.
pub const KERNEL_DRIVER: &str = overlay::KernelOverlay::NAME;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown storage driver {0:?} (known: {known})", known = DRIVERS.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "))]
    UnknownDriver(String),
    #[error("{0}: the container's spec is damaged; remove the container and create it again")]
    Annotation(String),
    #[error(transparent)]
    Io(#[from] crate::files::IoError),
    #[error("mounting the root filesystem with {driver}: {why}")]
    Mount { driver: &'static str, why: String },
    #[error("storage driver {driver} cannot serve this image: {why} (use --storage-driver auto)")]
    Unusable { driver: &'static str, why: String },
}

/// An image's root filesystem: its layers, topmost first, and the
/// container's directory, which keeps the writable layer.
#[derive(Clone, Debug)]
pub struct LayeredRoot {
    pub driver: &'static dyn Driver,
    pub lowers: Vec<PathBuf>,
    pub dir: PathBuf,
    /// The writable layer need not survive a crash (`--rm`): never synced.
    pub volatile: bool,
    /// Why this driver (for `inspect`).
    pub why: String,
}

impl LayeredRoot {
    /// The writable layer: the container's changes, in the layer format
    /// of the image store (so `commit` can tar it as it is).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
}

/// One way of joining layers into a root directory.
pub trait Driver: Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;

    /// Makes the container's (new, empty) writable layer in `root.dir`.
    fn create_layer(&self, root: &LayeredRoot) -> Result<(), Error> {
        for dir in [root.upper(), root.work()] {
            std::fs::create_dir(&dir)
                .map_err(|source| Error::Io(crate::files::IoError { op: "create", path: dir, source }))?;
        }
        Ok(())
    }

    /// Mounts `root` on `target` in the caller's mount namespace, where it
    /// stays until [`Driver::unmount`] or until the namespace ends. The
    /// caller is single-threaded (a driver may fork a server).
    fn mount(&self, root: &LayeredRoot, target: &Path) -> Result<(), Error>;

    /// Takes the mount away; whatever served it ends.
    fn unmount(&self, target: &Path) -> Result<(), Error> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
            Error::Io(crate::files::IoError { op: "unmount", path: target.to_path_buf(), source: e.into() })
        })
    }
}

const DRIVERS: &[&dyn Driver] = &[&overlay::KernelOverlay, &fuse::FuseOverlay];

pub fn driver(name: &str) -> Result<&'static dyn Driver, Error> {
    DRIVERS.iter().copied().find(|d| d.name() == name).ok_or_else(|| Error::UnknownDriver(name.to_string()))
}

/// The annotations that tell the monitor how to mount `root`.
pub fn annotate(annotations: &mut HashMap<String, String>, root: &LayeredRoot) {
    let lowers: Vec<String> = root.lowers.iter().map(|l| l.to_string_lossy().into_owned()).collect();
    annotations.insert(ROOTFS_DRIVER.to_string(), root.driver.name().to_string());
    annotations.insert(ROOTFS_LOWERS.to_string(), serde_json::to_string(&lowers).unwrap_or_default());
    annotations.insert(ROOTFS_UPPER.to_string(), root.dir.to_string_lossy().into_owned());
    annotations.insert(ROOTFS_WHY.to_string(), root.why.clone());
    if root.volatile {
        annotations.insert(ROOTFS_VOLATILE.to_string(), "true".into());
    }
}

/// The layered root a Spec's annotations name; none when the container's
/// root is a plain directory.
pub fn from_spec(spec: &Spec) -> Result<Option<LayeredRoot>, Error> {
    let Some(annotations) = spec.annotations() else { return Ok(None) };
    let Some(lowers) = annotations.get(ROOTFS_LOWERS) else { return Ok(None) };
    let lowers: Vec<PathBuf> =
        serde_json::from_str(lowers).map_err(|e| Error::Annotation(format!("{ROOTFS_LOWERS}: {e}")))?;
    let dir = annotations.get(ROOTFS_UPPER).ok_or_else(|| Error::Annotation(format!("no {ROOTFS_UPPER}")))?;
    // Containers made before drivers had names used the default.
    let driver = driver(annotations.get(ROOTFS_DRIVER).map_or(DEFAULT_DRIVER, String::as_str))?;
    Ok(Some(LayeredRoot {
        driver,
        lowers,
        dir: PathBuf::from(dir),
        volatile: annotations.get(ROOTFS_VOLATILE).is_some_and(|v| v == "true"),
        why: annotations.get(ROOTFS_WHY).cloned().unwrap_or_default(),
    }))
}

/// Mounts the root filesystem a Spec names on its root path (nothing to
/// do for a plain directory).
pub fn mount_spec_root(spec: &Spec) -> Result<(), Error> {
    let Some(root) = from_spec(spec)? else { return Ok(()) };
    root.driver.mount(&root, &spec_root(spec))
}

/// Unmounts it again, so removing the container's directory cannot reach
/// into the image's layers through the mount.
pub fn unmount_spec_root(spec: &Spec) -> Result<(), Error> {
    let Some(root) = from_spec(spec)? else { return Ok(()) };
    root.driver.unmount(&spec_root(spec))
}

/// Writes what the processes of a running container have written into its
/// writable layer on disk, for `commit`, which reads the layer itself. The
/// FUSE overlay lets the kernel cache writes (as fuse-overlayfs does) until
/// a file is closed or fsynced; syncfs would start the writeback but, on
/// FUSE, not wait for it. So each regular file of the root filesystem that
/// a process holds open for writing is fsynced. The caller has joined the
/// container's namespaces: `/proc` lists only its processes, `/` is its
/// root, and FUSE serves only processes of its user namespace.
pub fn flush_open_files() -> Result<(), Error> {
    let proc_path = |rest: String| PathBuf::from(format!("/proc/{rest}"));
    let root_dev = std::fs::metadata("/").map_err(io_err("stat", Path::new("/")))?.dev();
    let procs = std::fs::read_dir("/proc").map_err(io_err("read", Path::new("/proc")))?;
    for proc in procs.flatten() {
        let Some(p) = proc.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        // A process that ended meanwhile has closed (and written) its files.
        let Ok(fds) = std::fs::read_dir(proc_path(format!("{p}/fdinfo"))) else { continue };
        for fd in fds.flatten() {
            let fd = fd.file_name().to_string_lossy().into_owned();
            let writable = std::fs::read_to_string(proc_path(format!("{p}/fdinfo/{fd}")))
                .ok()
                .and_then(|info| open_flags(&info))
                .is_some_and(|flags| flags & libc::O_ACCMODE != libc::O_RDONLY);
            let file = proc_path(format!("{p}/fd/{fd}"));
            // Only the root's files: volumes are not committed, and a file
            // of a FUSE mount the container made could make fsync hang.
            if writable && std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.dev() == root_dev) {
                // Closed since it was listed: then it is written already.
                if let Ok(f) = std::fs::File::open(&file) {
                    f.sync_all().map_err(io_err("fsync", &file))?;
                }
            }
        }
    }
    Ok(())
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io(crate::files::IoError { op, path: path.to_path_buf(), source })
}

/// The open flags in a `/proc/PID/fdinfo/FD` text (octal).
fn open_flags(fdinfo: &str) -> Option<i32> {
    let value = fdinfo.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i32::from_str_radix(value.trim(), 8).ok()
}

fn spec_root(spec: &Spec) -> PathBuf {
    spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default()
}
