//! Docker's copy-up: an empty volume is filled with what the image has
//! where the volume is mounted, before the mount hides it. Runs in the
//! container's mount namespace as root of its user namespace, so owners
//! and modes are kept as the container sees them (without subordinate ids
//! only the one mapped id can be given: other owners become it).

use super::inroot;
use super::SetupError;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Copies the root's `destination` into `volume` when the volume is empty
/// and the root has a directory there.
pub fn fill_empty_volume(root: BorrowedFd<'_>, destination: &Path, volume: &Path) -> Result<(), SetupError> {
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let Ok(from) = inroot::open(root, destination, dir_flags) else { return Ok(()) };
    let io = |e| SetupError::sys("copy the image's files into the volume at", destination, e);
    let to = nix::fcntl::open(volume, dir_flags | OFlag::O_NOFOLLOW, Mode::empty()).map_err(io)?;
    if !is_empty(&to).map_err(io)? {
        return Ok(());
    }
    copy_dir(&from, &to).map_err(io)?;
    keep_owner_and_mode(&to, &fstat(&from).map_err(io)?);
    Ok(())
}

fn is_empty(dir: &OwnedFd) -> Result<bool, Errno> {
    let mut listing = Dir::from_fd(dir.try_clone().map_err(|_| Errno::EBADF)?)?;
    let empty = listing.iter().flatten().all(|e| is_dot(e.file_name()));
    Ok(empty)
}

fn is_dot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

/// Directories, regular files and symlinks, recursively; device nodes,
/// fifos and sockets are left out (a user namespace cannot make devices).
fn copy_dir(from: &OwnedFd, to: &OwnedFd) -> Result<(), Errno> {
    let mut listing = Dir::from_fd(from.try_clone().map_err(|_| Errno::EBADF)?)?;
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if is_dot(name) {
            continue;
        }
        let stat = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let mode = Mode::from_bits_truncate(stat.st_mode & 0o7777);
        let no_follow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match kind {
            SFlag::S_IFDIR => {
                mkdirat(to, name, Mode::from_bits_truncate(0o700))?;
                let sub_from = openat(from, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | no_follow, Mode::empty())?;
                let sub_to = openat(to, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | no_follow, Mode::empty())?;
                copy_dir(&sub_from, &sub_to)?;
                keep_owner_and_mode(&sub_to, &stat);
            }
            SFlag::S_IFREG => {
                let source = openat(from, name, OFlag::O_RDONLY | no_follow, Mode::empty())?;
                let target = openat(to, name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | no_follow, mode)?;
                let (mut source, mut target) = (std::fs::File::from(source), std::fs::File::from(target));
                std::io::copy(&mut source, &mut target).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
                keep_owner_and_mode(&target.into(), &stat);
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(from, name)?;
                symlinkat(target.as_os_str(), to, name)?;
                let (uid, gid) = (Uid::from_raw(stat.st_uid), Gid::from_raw(stat.st_gid));
                let _ = fchownat(to, name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The image's owner and mode on the copy; the owner where it can be
/// given (mapped), the mode after it (a chown clears set-id bits).
fn keep_owner_and_mode(fd: &OwnedFd, stat: &FileStat) {
    let _ = fchown(fd.as_fd(), Some(Uid::from_raw(stat.st_uid)), Some(Gid::from_raw(stat.st_gid)));
    let _ = fchmod(fd.as_fd(), Mode::from_bits_truncate(stat.st_mode & 0o7777));
}
