//! A container's root filesystem as a copy of its image's layers, lowest
//! first, with OCI whiteouts applied. A stopgap until the FUSE overlay
//! serves the layers directly; runs in the user namespace so owners copy.

use super::tree::{self, create_file, make_room, open_dir, open_or_create_dir, remove_at};
use super::Error;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, mknodat, FileStat, Mode, SFlag};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// Copies `layers` (lowest first) into the new directory `target`.
pub fn assemble(layers: &[PathBuf], target: &Path) -> Result<(), Error> {
    std::fs::create_dir(target).map_err(super::io("create", target))?;
    let dst = tree::open_root(target).map_err(|e| copy_error(target, e))?;
    for layer in layers {
        let src = tree::open_root(layer).map_err(|e| copy_error(layer, e))?;
        let mut copier = Copier { layer, dst_root: &dst, links: HashMap::new() };
        copier.merge(src.as_fd(), dst.as_fd(), &mut PathBuf::new())?;
    }
    Ok(())
}

fn copy_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("assembling the root filesystem: {}: {e}", path.display()))
}

struct Copier<'a> {
    layer: &'a Path,
    dst_root: &'a OwnedFd,
    /// Hardlinked files of this layer already copied: inode → path in the target.
    links: HashMap<u64, PathBuf>,
}

impl Copier<'_> {
    /// Merges one directory of a layer into the target: whiteouts first
    /// (they hide only what lower layers put there), then the entries.
    fn merge(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &mut PathBuf) -> Result<(), Error> {
        let names = list(src).map_err(|e| self.error(rel, e))?;
        if names.iter().any(|n| n == OPAQUE) {
            for lower in list(dst).map_err(|e| self.error(rel, e))? {
                remove_at(dst, &lower).map_err(|e| self.error(rel, e))?;
            }
        }
        for name in &names {
            if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
                if name != OPAQUE {
                    remove_at(dst, OsStr::from_bytes(hidden)).map_err(|e| self.error(rel, e))?;
                }
            }
        }
        for name in names.iter().filter(|n| !n.as_bytes().starts_with(WHITEOUT_PREFIX)) {
            rel.push(name);
            let result = self.copy_entry(src, dst, name, rel);
            rel.pop();
            result?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        rel: &mut PathBuf,
    ) -> Result<(), Error> {
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.error(rel, e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        // A directory merges into a lower directory; anything else replaces
        // what the lower layers had (a lower symlink included).
        make_room(dst, name, kind).map_err(|e| self.error(rel, e))?;
        match kind {
            SFlag::S_IFDIR => {
                let from = open_dir(src, name).map_err(|e| self.error(rel, e))?;
                let to = File::from(open_or_create_dir(dst, name).map_err(|e| self.error(rel, e))?);
                self.merge(from.as_fd(), to.as_fd(), rel)?;
                copy_metadata(&File::from(from), &to, &st).map_err(|e| self.error(rel, e))?;
            }
            SFlag::S_IFREG => self.copy_file(src, dst, name, &st, rel)?,
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(src, name).map_err(|e| self.error(rel, e))?;
                nix::unistd::symlinkat(target.as_os_str(), dst, name).map_err(|e| self.error(rel, e))?;
                tree::set_link_owner(dst, name, st.st_uid, st.st_gid).map_err(|e| self.error(rel, e))?;
            }
            SFlag::S_IFIFO => {
                mknodat(dst, name, SFlag::S_IFIFO, Mode::from_bits_truncate(st.st_mode & 0o7777), 0)
                    .map_err(|e| self.error(rel, e))?;
            }
            _ => {} // unpacking never stores other kinds
        }
        Ok(())
    }

    fn copy_file(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        st: &FileStat,
        rel: &Path,
    ) -> Result<(), Error> {
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&st.st_ino) {
                return nix::unistd::linkat(self.dst_root.as_fd(), first.as_path(), dst, name, AtFlags::empty())
                    .map_err(|e| self.error(rel, e));
            }
            self.links.insert(st.st_ino, rel.to_path_buf());
        }
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut from = File::from(nix::fcntl::openat(src, name, flags, Mode::empty()).map_err(|e| self.error(rel, e))?);
        let mut to = create_file(dst, name).map_err(|e| self.error(rel, e))?;
        std::io::copy(&mut from, &mut to).map_err(|e| self.error(rel, e))?;
        copy_metadata(&from, &to, st).map_err(|e| self.error(rel, e))
    }

    fn error(&self, rel: &Path, e: impl std::fmt::Display) -> Error {
        copy_error(&self.layer.join(rel), e)
    }
}

/// Owner, mode, extended attributes (the owner xattr among them) and times.
fn copy_metadata(from: &File, to: &File, st: &FileStat) -> std::io::Result<()> {
    tree::set_owner_and_mode(to, st.st_uid, st.st_gid, st.st_mode)?;
    if let Ok(names) = xattr::FileExt::list_xattr(from) {
        for name in names {
            if let Ok(Some(value)) = xattr::FileExt::get_xattr(from, &name) {
                let _ = xattr::FileExt::set_xattr(to, &name, &value);
            }
        }
    }
    let time = |s: i64, ns: i64| SystemTime::UNIX_EPOCH + Duration::new(s.max(0) as u64, ns as u32);
    let times = FileTimes::new()
        .set_modified(time(st.st_mtime, st.st_mtime_nsec))
        .set_accessed(time(st.st_atime, st.st_atime_nsec));
    let _ = to.set_times(times);
    Ok(())
}

fn list(dir: BorrowedFd<'_>) -> std::io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> =
        std::fs::read_dir(tree::fd_path(dir))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}
