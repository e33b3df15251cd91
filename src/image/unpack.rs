//! Unpacking one layer (a tar stream: plain, gzip or zstd) into its own
//! directory, safely and rootless; `cp` unpacks its streams with the same
//! code, placed as `Placement` says.
//!
//! A layer is kept in the kernel overlay's format, which both storage
//! drivers read: a whiteout `.wh.NAME` becomes a `c 0 0` node NAME (which a
//! user namespace may make since Linux 5.8), an opaque marker
//! `.wh..wh..opq` the `user.overlay.opaque` xattr of its directory. Where
//! the filesystem refuses either, the OCI file stays (fuse-overlay reads
//! that too) and the report says so. Every entry is created relative to descriptors
//! opened without following symlinks, and any entry that would leave the
//! layer (`..`, an absolute path, a symlinked parent, a hardlink to
//! something outside or not yet unpacked) fails the whole layer.
//!
//! Runs in the user namespace: owners from the tar headers are set as
//! they are when the namespace maps them; otherwise they go into the
//! `user.hutch.owner` xattr. Device nodes cannot be made rootless: they
//! become the placeholders fuse-overlay shows as devices.

use super::digest::HashingReader;
use super::tree::{self, create_file, make_room, open_dir, open_or_create_dir, set_link_owner};
use super::{Digest, Error};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{mknodat, Mode, SFlag};
use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tar::EntryType;

/// The kernel overlay's opaque-directory mark, in the `user` namespace
/// (`userxattr` mounts read that one).
const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// What was unpacked, and what could not be kept as it was.
#[derive(Debug, Default)]
pub struct Report {
    pub entries: u64,
    pub owners_in_xattr: u64,
    pub xattrs_refused: u64,
    pub devices_skipped: u64,
    /// Device nodes kept as fuse-overlay placeholders.
    pub device_placeholders: u64,
    /// Whiteouts and opaque markers kept as OCI files (the filesystem
    /// refused the kernel's format).
    pub whiteouts_as_files: u64,
}

impl Report {
    /// One line for the user when something could not be kept exactly.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.owners_in_xattr > 0 {
            parts.push(format!(
                "{} files belong to ids outside your mapping (no subordinate ids): kept as metadata, shown as root",
                self.owners_in_xattr
            ));
        }
        if self.devices_skipped > 0 {
            parts.push(format!(
                "{} device nodes skipped (they cannot be made without privileges)",
                self.devices_skipped
            ));
        }
        if self.xattrs_refused > 0 {
            parts.push(format!("{} extended attributes refused by the filesystem", self.xattrs_refused));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Unpacks the layer blob at `blob` into the new directory `dest` and checks
/// that the uncompressed stream has digest `diff_id`.
pub fn unpack(blob: &Path, layer: &Digest, diff_id: &Digest, dest: &Path) -> Result<Report, Error> {
    let layer_error = |message: String| Error::Layer { layer: layer.clone(), message };
    let file = File::open(blob).map_err(super::io("open", blob))?;
    let stream = decompressed(file).map_err(|e| layer_error(format!("reading the compressed stream: {e}")))?;
    let mut hashing = HashingReader::new(stream);
    std::fs::create_dir(dest).map_err(super::io("create", dest))?;
    let root = tree::open_root(dest).map_err(|e| layer_error(format!("open {}: {e}", dest.display())))?;
    let report = unpack_stream(&mut hashing, root, Placement::LAYER).map_err(|e| match e {
        EntryError::Hostile { path, reason } => Error::HostileEntry { layer: layer.clone(), path, reason },
        EntryError::Failed(message) => layer_error(message),
    })?;
    hashing.drain().map_err(|e| layer_error(format!("reading the tar stream: {e}")))?;
    let actual = hashing.hasher.finish();
    if &actual != diff_id {
        return Err(Error::DigestMismatch { what: "uncompressed layer", digest: diff_id.clone(), actual });
    }
    Ok(report)
}

/// Why an entry could not be unpacked.
#[derive(Debug)]
pub enum EntryError {
    /// It would land outside the tree, or is not what a tar entry may be.
    Hostile {
        path: String,
        reason: String,
    },
    Failed(String),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::Hostile { path, reason } => write!(f, "{path:?}: {reason}"),
            EntryError::Failed(message) => f.write_str(message),
        }
    }
}

/// Who owns what is unpacked.
#[derive(Clone, Copy, Debug)]
pub enum Owners {
    /// The ids in the tar headers (kept in an xattr when unmapped).
    FromArchive,
    /// These ids, whatever the headers say (`cp` into a container: root).
    Fixed(u32, u32),
    /// The unpacking process (`cp` out to the host).
    Caller,
}

/// Where a tar stream's entries land and how.
#[derive(Clone, Debug)]
pub struct Placement {
    pub owners: Owners,
    /// Device entries become fuse-overlay placeholders (a layer), or are
    /// made with mknod where allowed and otherwise skipped.
    pub device_placeholders: bool,
    /// Whether a non-directory entry may replace a directory (a layer's
    /// may; `cp` refuses, as Docker does).
    pub replace_directories: bool,
    /// OCI whiteouts become the kernel overlay's (a layer's).
    pub kernel_whiteouts: bool,
    /// What the first component of every entry's path becomes.
    pub top: Top,
}

#[derive(Clone, Debug)]
pub enum Top {
    Keep,
    /// Dropped: its contents land in the tree's root.
    Strip,
    Rename(OsString),
}

impl Placement {
    /// Files copied in (`cp`, a build's COPY and context): devices
    /// skipped, no directory replaced, whiteouts as they are.
    pub const fn files(owners: Owners, top: Top) -> Placement {
        Placement { owners, device_placeholders: false, replace_directories: false, kernel_whiteouts: false, top }
    }

    pub const LAYER: Placement = Placement {
        owners: Owners::FromArchive,
        device_placeholders: true,
        replace_directories: true,
        kernel_whiteouts: true,
        top: Top::Keep,
    };
}

/// Opens a directory to unpack into.
pub fn open_tree(path: &Path) -> Result<OwnedFd, Errno> {
    tree::open_root(path)
}

/// Unpacks a tar stream into the directory `root`.
pub fn unpack_stream(input: impl Read, root: OwnedFd, placement: Placement) -> Result<Report, EntryError> {
    let mut unpacker =
        Unpacker { root, placement, report: Report::default(), dir_times: Vec::new(), last_parent: None };
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(|e| EntryError::Failed(format!("not a tar stream: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| EntryError::Failed(format!("reading the tar stream: {e}")))?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.set_dir_times();
    Ok(unpacker.report)
}

/// The digest of a layer blob's uncompressed stream (its diff_id), for
/// tarballs that come without an image config (`hutch import`).
pub fn diff_id_of(blob: &Path) -> Result<Digest, Error> {
    let file = File::open(blob).map_err(super::io("open", blob))?;
    let mut hashing = HashingReader::new(decompressed(file).map_err(super::io("read", blob))?);
    hashing.drain().map_err(super::io("read", blob))?;
    Ok(hashing.hasher.finish())
}

/// The uncompressed tar stream, by the stream's magic bytes rather than the
/// media type (registries mislabel): gzip, zstd, bzip2 (Docker's old
/// layers, ADD's archives), xz, or none.
pub fn decompressed(file: File) -> io::Result<Box<dyn Read>> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(reader)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        Ok(Box::new(decoder))
    } else if head.starts_with(b"BZh") {
        Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(reader)))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Ok(Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

struct Unpacker {
    root: OwnedFd,
    placement: Placement,
    report: Report,
    /// Directory mtimes, set once their contents are complete.
    dir_times: Vec<(Vec<OsString>, SystemTime)>,
    /// The last entry's parent: tar streams list a directory's entries
    /// together, so most entries reuse it instead of walking from the root.
    last_parent: Option<(Vec<OsString>, std::rc::Rc<OwnedFd>)>,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), EntryError> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let hostile = |reason: &str| EntryError::Hostile { path: shown.clone(), reason: reason.to_string() };
        let components = self.placed(&raw_path).map_err(&hostile)?;
        let Some((name, parents)) = components.split_last() else {
            return Ok(()); // the tree's root itself: its directory exists
        };
        let parent = self.parent_dir(parents).map_err(|r| hostile(&r))?;
        let kind = entry.header().entry_type();
        let fail = |what: &str, e: &dyn std::fmt::Display| EntryError::Failed(format!("{shown}: {what}: {e}"));
        self.report.entries += 1;
        // A later entry replaces an earlier one, except directory over directory.
        let new_kind = if kind == EntryType::Directory { SFlag::S_IFDIR } else { SFlag::S_IFREG };
        if !self.placement.replace_directories && new_kind != SFlag::S_IFDIR && open_dir(parent.as_fd(), name).is_ok() {
            return Err(fail("cannot replace a directory with a non-directory", &"remove it first"));
        }
        if make_room(parent.as_fd(), name, new_kind).map_err(|e| hostile(&format!("replacing it: {e}")))? {
            // What the cached parent's path resolved through may be gone.
            self.last_parent = None;
        }
        let header = entry.header();
        let owner = match self.placement.owners {
            Owners::FromArchive => {
                let id = |value: std::io::Result<u64>| value.ok().and_then(|v| u32::try_from(v).ok());
                match (id(header.uid()), id(header.gid())) {
                    (Some(uid), Some(gid)) => Some((uid, gid)),
                    _ => return Err(hostile("its owner (uid or gid) is malformed or out of range")),
                }
            }
            Owners::Fixed(uid, gid) => Some((uid, gid)),
            Owners::Caller => None,
        };
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().ok().map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        let is_file = matches!(kind, EntryType::Regular | EntryType::Continuous);
        if self.placement.kernel_whiteouts && is_file && self.kernel_whiteout(&parent, name) {
            return Ok(());
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = create_file(parent.as_fd(), name).map_err(|e| fail("create", &e))?;
                io::copy(entry, &mut file).map_err(|e| fail("write", &e))?;
                self.finish_file(&file, entry, owner, mode).map_err(|e| fail("set owner and mode", &e))?;
                if let Some(t) = mtime {
                    let _ = file.set_times(FileTimes::new().set_modified(t).set_accessed(t));
                }
            }
            EntryType::Directory => {
                let dir = open_or_create_dir(parent.as_fd(), name).map_err(|e| fail("mkdir", &e))?;
                let dir = File::from(dir);
                self.finish_file(&dir, entry, owner, mode).map_err(|e| fail("set owner and mode", &e))?;
                if let Some(t) = mtime {
                    self.dir_times.push((components.clone(), t));
                }
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| hostile("symlink without a target"))?;
                nix::unistd::symlinkat(OsStr::from_bytes(&target), parent.as_fd(), name.as_os_str())
                    .map_err(|e| fail("symlink", &e))?;
                if let Some((uid, gid)) = owner {
                    if !set_link_owner(parent.as_fd(), name, uid, gid).map_err(|e| fail("chown", &e))? {
                        self.report.owners_in_xattr += 1;
                    }
                }
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| hostile("hardlink without a target"))?;
                self.hardlink(&target, &parent, name).map_err(|r| hostile(&r))?;
            }
            EntryType::Fifo => {
                mknodat(parent.as_fd(), name.as_os_str(), SFlag::S_IFIFO, Mode::from_bits_truncate(mode & 0o777), 0)
                    .map_err(|e| fail("mkfifo", &e))?;
            }
            EntryType::Char | EntryType::Block => {
                let kind = if kind == EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let rdev = libc::makedev(major, minor);
                if self.placement.device_placeholders {
                    self.report.device_placeholders += 1;
                    let value = fuse_overlay::device_value(kind.bits(), rdev);
                    let file = create_file(parent.as_fd(), name).map_err(|e| fail("create", &e))?;
                    xattr::FileExt::set_xattr(&file, fuse_overlay::DEVICE_XATTR, value.as_bytes())
                        .map_err(|e| fail("keep the device node as a placeholder", &e))?;
                    self.finish_file(&file, entry, owner, mode).map_err(|e| fail("set owner and mode", &e))?;
                } else if mknodat(parent.as_fd(), name.as_os_str(), kind, Mode::from_bits_truncate(mode & 0o777), rdev)
                    .is_err()
                {
                    self.report.devices_skipped += 1;
                }
            }
            // Metadata entries the tar crate already applied to the next entry.
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => {}
            other => return Err(hostile(&format!("unsupported tar entry type {other:?}"))),
        }
        Ok(())
    }

    /// Makes an OCI whiteout entry (`.wh.NAME`, `.wh..wh..opq`) in the
    /// kernel overlay's format; false when `name` is no whiteout, or the
    /// filesystem refuses the format (the entry is then made as it is).
    fn kernel_whiteout(&mut self, parent: &OwnedFd, name: &OsStr) -> bool {
        let Some(hidden) = name.as_bytes().strip_prefix(fuse_overlay::WHITEOUT_PREFIX) else { return false };
        let made = if name.as_bytes() == fuse_overlay::OPAQUE_MARKER.to_bytes() {
            let dir = parent.try_clone().map(File::from);
            dir.is_ok_and(|dir| xattr::FileExt::set_xattr(&dir, OPAQUE_XATTR, b"y").is_ok())
        } else {
            let hidden = OsStr::from_bytes(hidden);
            // What an earlier entry of this layer put there goes.
            make_room(parent.as_fd(), hidden, SFlag::S_IFCHR).is_ok()
                && mknodat(parent.as_fd(), hidden, SFlag::S_IFCHR, Mode::empty(), 0).is_ok()
        };
        if !made {
            self.report.whiteouts_as_files += 1;
        }
        made
    }

    /// An entry's path as components in the tree, its first one placed as
    /// asked; refuses what would leave the tree.
    fn placed(&self, path: &[u8]) -> Result<Vec<OsString>, &'static str> {
        let mut parts = components(path)?;
        match &self.placement.top {
            Top::Keep => {}
            _ if parts.is_empty() => {}
            Top::Strip => {
                parts.remove(0);
            }
            Top::Rename(name) => parts[0] = name.clone(),
        }
        Ok(parts)
    }

    /// Owner, mode and extended attributes of a file or directory.
    fn finish_file<R: Read>(
        &mut self,
        file: &File,
        entry: &mut tar::Entry<'_, R>,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> Result<(), Errno> {
        match owner {
            Some((uid, gid)) => {
                if !tree::set_owner_and_mode(file, uid, gid, mode)? {
                    self.report.owners_in_xattr += 1;
                }
            }
            None => nix::sys::stat::fchmod(file.as_fd(), Mode::from_bits_truncate(mode & 0o7777))?,
        }
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for ext in extensions.flatten() {
                let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else { continue };
                if xattr::FileExt::set_xattr(file, OsStr::from_bytes(name), ext.value_bytes()).is_err() {
                    self.report.xattrs_refused += 1;
                }
            }
        }
        Ok(())
    }

    /// The parent directory of an entry: the cached one when it is the same
    /// path (nothing was removed since, so the path still resolves to it).
    fn parent_dir(&mut self, parents: &[OsString]) -> Result<std::rc::Rc<OwnedFd>, String> {
        if let Some((path, fd)) = &self.last_parent {
            if path.as_slice() == parents {
                return Ok(fd.clone());
            }
        }
        let fd = std::rc::Rc::new(self.walk(parents, true)?);
        self.last_parent = Some((parents.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Opens the parent directories of an entry one by one, refusing to go
    /// through a symlink or a non-directory; missing ones are created as
    /// tar does.
    fn walk(&self, parents: &[OsString], create: bool) -> Result<OwnedFd, String> {
        let mut dir =
            tree::open_dir(self.root.as_fd(), OsStr::new(".")).map_err(|e| format!("open layer root: {e}"))?;
        for part in parents {
            let next = if create { open_or_create_dir(dir.as_fd(), part) } else { open_dir(dir.as_fd(), part) };
            dir = next.map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => {
                    format!("goes through {:?}, which is a symlink or not a directory", part.to_string_lossy())
                }
                Errno::ENOENT => format!("{:?} does not exist in this layer", part.to_string_lossy()),
                e => format!("open {:?}: {e}", part.to_string_lossy()),
            })?;
        }
        Ok(dir)
    }

    /// A hardlink may only point at an entry unpacked earlier in this layer.
    fn hardlink(&self, target: &[u8], parent: &OwnedFd, name: &OsStr) -> Result<(), String> {
        let parts = self.placed(target).map_err(|r| format!("hardlink target {}", r.trim_start_matches("has ")))?;
        let Some((target_name, target_parents)) = parts.split_last() else {
            return Err("hardlink to the layer's root".into());
        };
        let shown = String::from_utf8_lossy(target);
        let target_dir = self.walk(target_parents, false).map_err(|r| format!("hardlink to {shown}: {r}"))?;
        nix::unistd::linkat(target_dir.as_fd(), target_name.as_os_str(), parent.as_fd(), name, AtFlags::empty())
            .map_err(|e| match e {
                Errno::ENOENT => format!("hardlink to {shown}, which is not in this layer before it"),
                Errno::EPERM => format!("hardlink to {shown}, which is a directory"),
                e => format!("hardlink to {shown}: {e}"),
            })
    }

    /// Directory mtimes last: creating entries inside changed them.
    fn set_dir_times(&self) {
        for (path, time) in &self.dir_times {
            if let Ok(dir) = self.walk(path, false) {
                let _ = File::from(dir).set_times(FileTimes::new().set_modified(*time).set_accessed(*time));
            }
        }
    }
}

/// The path's components, refusing what would leave the layer.
fn components(path: &[u8]) -> Result<Vec<OsString>, &'static str> {
    if path.first() == Some(&b'/') {
        return Err("has an absolute path");
    }
    let mut parts = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("has a '..' component"),
            name => parts.push(OsStr::from_bytes(name).to_os_string()),
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn paths_that_leave_the_layer_are_refused() {
        assert_eq!(components(b"./usr/bin/").unwrap(), ["usr", "bin"]);
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"../etc/passwd").is_err());
        assert!(components(b"usr/../../x").is_err());
        assert!(components(b"/etc/passwd").is_err());
    }
}
