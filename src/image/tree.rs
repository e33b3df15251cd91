//! Descriptor-relative file operations shared by unpacking and rootfs
//! assembly. Every step opens the next directory with O_NOFOLLOW from its
//! parent's descriptor, so no symlink in a tree (planted by an image, or
//! swapped in meanwhile) can redirect a write outside it.

use fuse_overlay::OWNER_XATTR;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Opens a directory of the tree for use as a parent descriptor.
pub fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// Opens `name` in `dir` as a directory, never following a symlink
/// (ELOOP, or ENOTDIR for other non-directories).
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
}

/// Opens `name` in `dir` as a directory, creating it (mode 0755, owned by
/// the caller) when missing.
pub fn open_or_create_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    match open_dir(dir, name) {
        Err(Errno::ENOENT) => {
            mkdirat(dir, name, Mode::from_bits_truncate(0o755))?;
            open_dir(dir, name)
        }
        other => other,
    }
}

/// What `name` in `dir` is, without following a symlink; None if missing.
fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<SFlag>, Errno> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Clears the way for a new entry `name` of kind `new` in `dir`: what is
/// there goes, unless both are directories (they merge). Returns whether
/// something was removed.
pub fn make_room(dir: BorrowedFd<'_>, name: &OsStr, new: SFlag) -> Result<bool, Errno> {
    match kind_at(dir, name)? {
        None => Ok(false),
        Some(SFlag::S_IFDIR) if new == SFlag::S_IFDIR => Ok(false),
        Some(_) => remove_at(dir, name).map(|()| true),
    }
}

/// Removes `name` from `dir`, a whole tree if it is a directory. A missing
/// entry is not an error.
pub fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            // std's remove_dir_all never follows symlinks inside the tree;
            // the magic link names exactly the directory we hold.
            std::fs::remove_dir_all(fd_path(dir).join(name)).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        }
        Err(e) => Err(e),
    }
}

/// `/proc/self/fd/N`: a path to an open directory for the std calls that
/// need one.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Creates `name` in `dir` as a new regular file (never through a symlink,
/// never over an existing entry).
pub fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> Result<File, Errno> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::from_bits_truncate(0o600)).map(File::from)
}

/// Sets owner (then mode, since chown clears setuid bits) on an open file
/// or directory. An id outside the namespace's map (no subordinate ids)
/// cannot be set: it is kept in the `user.hutch.owner` xattr for the
/// overlay to present, and `false` returned.
pub fn set_owner_and_mode(file: &File, uid: u32, gid: u32, mode: u32) -> Result<bool, Errno> {
    let owned = match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let _ = xattr::FileExt::set_xattr(file, OWNER_XATTR, format!("{uid}:{gid}").as_bytes());
            false
        }
        Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    };
    nix::sys::stat::fchmod(file.as_fd(), Mode::from_bits_truncate(mode & 0o7777))?;
    Ok(owned)
}

/// Sets a symlink's owner; false when the id is not mapped (symlinks cannot
/// carry user xattrs, and their owner rarely matters).
pub fn set_link_owner(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> Result<bool, Errno> {
    let owner = Some(nix::unistd::Uid::from_raw(uid));
    let group = Some(nix::unistd::Gid::from_raw(gid));
    match nix::unistd::fchownat(dir, name, owner, group, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}
