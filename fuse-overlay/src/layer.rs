//! One directory of the overlay (a read-only image layer or the writable
//! upper one) and how its entries read: whiteouts, opaque directories, the
//! owner kept in an xattr and device nodes kept as placeholders.
//!
//! Every path is resolved below the layer's root with openat2
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a layer changed under the mount,
//! or a symlink where a directory was, can make a lookup fail but never lead
//! outside the layer.

use crate::sys;
use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The prefix of a whiteout file: `.wh.NAME` hides NAME of the layers below.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// An empty file of this name makes its directory opaque.
pub const OPAQUE_MARKER: &CStr = c".wh..wh..opq";
/// `UID:GID` of an entry whose owner the user namespace cannot map.
pub const OWNER_XATTR: &str = "user.hutch.owner";
/// On an empty regular file: the device node it stands for, `c MAJOR:MINOR`
/// or `b MAJOR:MINOR` (rootless cannot make device nodes).
pub const DEVICE_XATTR: &str = "user.hutch.device";
/// The kernel overlay's opaque markers, read for compatibility.
const OVERLAY_OPAQUE_XATTRS: [&str; 2] = ["user.overlay.opaque", "trusted.overlay.opaque"];

pub struct Layer {
    root: OwnedFd,
    pub dev: u64,
}

/// What one layer holds under a name.
pub enum Probe {
    Entry(libc::stat64),
    Whiteout,
    Absent,
}

impl Layer {
    pub fn open(path: &Path) -> io::Result<Layer> {
        let root = rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let dev = sys::stat_fd(root.as_fd())?.st_dev;
        Ok(Layer { root, dev })
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens `rel` (relative to the layer, empty for its root) with `flags`,
    /// never through a symlink and never outside the layer.
    pub fn open_at(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let rel: &Path = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        loop {
            match openat2(&self.root, rel, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode, resolve) {
                Err(rustix::io::Errno::AGAIN) => continue, // a rename raced the walk
                r => return r.map_err(io::Error::from),
            }
        }
    }

    /// An O_PATH descriptor of the directory `rel`.
    pub fn dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        self.open_at(rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
    }
}

/// What `dir` holds under `name`: an entry, a whiteout (`.wh.NAME` or the
/// kernel overlay's `c 0 0` node), or nothing.
pub fn probe(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Probe> {
    match sys::stat_at(dir, name) {
        Ok(st) if is_whiteout_node(&st) => Ok(Probe::Whiteout),
        Ok(st) => Ok(Probe::Entry(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => match sys::stat_at(dir, &whiteout_name(name)) {
            Ok(_) => Ok(Probe::Whiteout),
            // A name too long for the prefix has no `.wh.` whiteout.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENAMETOOLONG)) => Ok(Probe::Absent),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

pub fn is_whiteout_node(st: &libc::stat64) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

pub fn is_dir(st: &libc::stat64) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Names the overlay keeps for itself: they are never shown nor created.
pub fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(WHITEOUT_PREFIX)
}

pub fn whiteout_name(name: &CStr) -> CString {
    let mut v = WHITEOUT_PREFIX.to_vec();
    v.extend_from_slice(name.to_bytes());
    CString::new(v).unwrap_or_default()
}

/// Whether the directory `name` in `parent` hides the layers below it.
pub fn is_opaque(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<bool> {
    let dir = open_child_dir(parent, name)?;
    if sys::stat_at(dir.as_fd(), OPAQUE_MARKER).is_ok() {
        return Ok(true);
    }
    let path = proc_path(dir.as_fd(), None);
    Ok(OVERLAY_OPAQUE_XATTRS.iter().any(|x| matches!(xattr::get_deref(&path, x), Ok(Some(v)) if v == b"y")))
}

/// An O_PATH descriptor of the directory `name` in `parent` (not through a symlink).
pub fn open_child_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(parent, name, flags, Mode::empty())?)
}

/// A path that names `name` in the directory `dir` (or `dir` itself) for
/// the path-only system calls (the l*xattr family).
pub fn proc_path(dir: BorrowedFd<'_>, name: Option<&CStr>) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if let Some(name) = name {
        p.push(OsStr::from_bytes(name.to_bytes()));
    }
    p
}

/// The device (`S_IFCHR` or `S_IFBLK`, rdev) an entry stands for: only
/// empty regular files can be placeholders, so other entries cost no read.
pub fn stored_device(dir: BorrowedFd<'_>, name: &CStr, st: &libc::stat64) -> Option<(u32, u64)> {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size != 0 {
        return None;
    }
    let v = xattr::get(proc_path(dir, Some(name)), DEVICE_XATTR).ok()??;
    parse_device(std::str::from_utf8(&v).ok()?)
}

/// `c 1:3` → (S_IFCHR, makedev(1, 3)).
pub fn parse_device(v: &str) -> Option<(u32, u64)> {
    let (kind, numbers) = v.trim().split_once(' ')?;
    let kind = match kind {
        "c" => libc::S_IFCHR,
        "b" => libc::S_IFBLK,
        _ => return None,
    };
    let (major, minor) = numbers.split_once(':')?;
    Some((kind, libc::makedev(major.parse().ok()?, minor.parse().ok()?)))
}

/// The placeholder xattr's value for a device of `kind` and `rdev`.
pub fn device_value(kind: u32, rdev: u64) -> String {
    let letter = if kind == libc::S_IFBLK { 'b' } else { 'c' };
    format!("{letter} {}:{}", libc::major(rdev), libc::minor(rdev))
}

/// The `UID:GID` an entry keeps in its owner xattr, if any.
pub fn stored_owner(dir: BorrowedFd<'_>, name: &CStr) -> Option<(u32, u32)> {
    let v = xattr::get(proc_path(dir, Some(name)), OWNER_XATTR).ok()??;
    parse_owner(std::str::from_utf8(&v).ok()?)
}

/// `1000:100` → (1000, 100).
pub fn parse_owner(v: &str) -> Option<(u32, u32)> {
    let (u, g) = v.split_once(':')?;
    Some((u.trim().parse().ok()?, g.trim().parse().ok()?))
}
