//! A directory tree as a tar stream: a container's writable layer for
//! `hutch commit`, a container's or the host's files for `hutch cp`.
//!
//! A layer directory becomes an OCI layer: whiteouts as fuse-overlay
//! writes them (`.wh.NAME` files, `.wh..wh..opq`) stay as they are; as the
//! kernel overlay writes them (`c 0 0` nodes, the `user.overlay.opaque`
//! xattr) they become those files. What the format keeps in xattrs goes
//! back into the headers: an owner the user namespace cannot map becomes
//! the header's uid/gid again, and a device placeholder a device entry. Layers are read in hutch's user namespace, where their files
//! have their in-container owners. Entries go in name order, so the same
//! tree gives the same bytes; multiply-linked files become hardlinks.

use fuse_overlay::{DEVICE_XATTR, OWNER_XATTR};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// Xattrs that describe the layer format rather than the file: never copied.
const FORMAT_XATTR_PREFIXES: [&[u8]; 3] = [b"user.hutch.", b"user.overlay.", b"trusted.overlay."];

/// Which paths go into the stream.
type Keep = Box<dyn Fn(&Path, &Metadata) -> bool>;

/// Builds one tar stream of trees and files.
pub struct TreeWriter<W: Write> {
    tar: tar::Builder<W>,
    /// Where each multiply-linked inode was written first: later names of
    /// it become hardlinks to that path.
    first_paths: HashMap<(u64, u64), PathBuf>,
    entries: u64,
    /// The tree is a layer: kernel whiteouts become OCI ones.
    layer: bool,
    /// Which paths below a directory go in (a build context's
    /// `.dockerignore`); all when `None`.
    keep: Option<Keep>,
    /// Every entry's permission bits (COPY `--chmod`).
    mode: Option<u32>,
    /// Entries owned by 0:0 whatever owns the files (a build's sources).
    root_owned: bool,
    /// Entries whose owner came from the owner xattr.
    stored_owners: u64,
    /// No time later than this (a reproducible build's).
    clamp: Option<u64>,
}

impl<W: Write> TreeWriter<W> {
    pub fn new(out: W) -> TreeWriter<W> {
        TreeWriter {
            tar: tar::Builder::new(out),
            first_paths: HashMap::new(),
            entries: 0,
            layer: false,
            keep: None,
            mode: None,
            root_owned: false,
            stored_owners: 0,
            clamp: None,
        }
    }

    /// Leaves out what is below a directory and `keep` refuses.
    pub fn keeping(mut self, keep: impl Fn(&Path, &Metadata) -> bool + 'static) -> TreeWriter<W> {
        self.keep = Some(Box::new(keep));
        self
    }

    /// Entries owned by root (0:0), whoever owns the files.
    pub fn owned_by_root(mut self) -> TreeWriter<W> {
        self.root_owned = true;
        self
    }

    /// No entry's times later than `clamp` (seconds since the epoch).
    pub fn with_times_clamped(mut self, clamp: Option<u64>) -> TreeWriter<W> {
        self.clamp = clamp;
        self
    }

    /// Gives every entry the permission bits `mode`.
    pub fn with_mode(mut self, mode: Option<u32>) -> TreeWriter<W> {
        self.mode = mode;
        self
    }

    /// For a layer's directory (a container's writable layer): whiteouts
    /// in the kernel overlay's format become OCI whiteouts.
    pub fn for_layer(out: W) -> TreeWriter<W> {
        TreeWriter { layer: true, ..TreeWriter::new(out) }
    }

    /// What is under the directory `dir`, entries named from the root of
    /// the stream (a layer's contents).
    pub fn append_contents(&mut self, dir: &Path) -> io::Result<()> {
        self.directory(dir, Path::new(""))
    }

    /// `path` (and, for a directory, all below it) as `name`; a symlink
    /// stays one unless `follow`.
    pub fn append(&mut self, path: &Path, name: &Path, follow: bool) -> io::Result<()> {
        let meta = if follow { fs::metadata(path) } else { fs::symlink_metadata(path) }.map_err(at(path))?;
        self.append_entry(path, name, &meta)
    }

    fn append_entry(&mut self, path: &Path, name: &Path, meta: &Metadata) -> io::Result<()> {
        self.entry(path, name, meta)?;
        if meta.is_dir() {
            self.directory(path, name)?;
        }
        Ok(())
    }

    /// The entries of the tar stream `input` (ADD's archives), as they are.
    pub fn append_archive(&mut self, input: impl io::Read) -> io::Result<()> {
        let mut archive = tar::Archive::new(input);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let mut header = entry.header().clone();
            let path = entry.path()?.into_owned();
            self.entries += 1;
            match (header.entry_type(), entry.link_name()?) {
                (EntryType::Link | EntryType::Symlink, Some(target)) => {
                    let target = target.into_owned();
                    self.tar.append_link(&mut header, &path, target)?
                }
                _ => self.tar.append_data(&mut header, &path, &mut entry)?,
            }
        }
        Ok(())
    }

    /// How many entries had their owner from the owner xattr so far.
    pub fn stored_owners(&self) -> u64 {
        self.stored_owners
    }

    /// Ends the stream; the number of entries written.
    pub fn finish(self) -> io::Result<u64> {
        self.tar.into_inner()?.flush()?;
        Ok(self.entries)
    }

    fn directory(&mut self, dir: &Path, name: &Path) -> io::Result<()> {
        let mut children: Vec<OsString> =
            fs::read_dir(dir).and_then(|list| list.map(|e| e.map(|e| e.file_name())).collect()).map_err(at(dir))?;
        children.sort();
        if self.layer && is_kernel_opaque(dir) {
            self.whiteout(&name.join(".wh..wh..opq"))?;
        }
        for child in children {
            let path = dir.join(&child);
            let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
            if self.keep.as_ref().is_none_or(|keep| keep(&path, &meta)) {
                self.append_entry(&path, &name.join(&child), &meta)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, name: &Path, meta: &Metadata) -> io::Result<()> {
        let kind = meta.file_type();
        if kind.is_socket() {
            return Ok(()); // sockets belong to running processes, not images
        }
        if self.layer && kind.is_char_device() && meta.rdev() == 0 {
            let hidden = name.file_name().map(|n| n.as_bytes()).unwrap_or_default();
            let mut whiteout = b".wh.".to_vec();
            whiteout.extend_from_slice(hidden);
            return self.whiteout(&name.with_file_name(std::ffi::OsStr::from_bytes(&whiteout)));
        }
        let mut header = Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        if let Some(mode) = self.mode.filter(|_| !kind.is_symlink()) {
            header.set_mode(mode);
        }
        if let Some((uid, gid)) = stored_owner(path) {
            header.set_uid(uid.into());
            header.set_gid(gid.into());
            self.stored_owners += 1;
        }
        if let Some(clamp) = self.clamp {
            let mtime = meta.mtime().clamp(0, i64::try_from(clamp).unwrap_or(i64::MAX));
            let mtime = u64::try_from(mtime).unwrap_or(0);
            header.set_mtime(mtime);
            if let Some(gnu) = header.as_gnu_mut() {
                gnu.set_atime(mtime);
                gnu.set_ctime(mtime);
            }
        }
        if self.root_owned {
            header.set_uid(0);
            header.set_gid(0);
            header.set_username("")?;
            header.set_groupname("")?;
        }
        self.entries += 1;
        if !kind.is_dir() && meta.nlink() > 1 {
            let inode = (meta.dev(), meta.ino());
            if let Some(first) = self.first_paths.get(&inode) {
                header.set_entry_type(EntryType::Link);
                header.set_size(0);
                return self.tar.append_link(&mut header, name, first);
            }
            self.first_paths.insert(inode, name.to_path_buf());
        }
        if !kind.is_symlink() {
            self.append_xattrs(path)?;
        }
        if kind.is_symlink() {
            let target = fs::read_link(path).map_err(at(path))?;
            header.set_size(0);
            self.tar.append_link(&mut header, name, target)
        } else if kind.is_file() {
            if let Some((device, rdev)) = stored_device(path) {
                header.set_entry_type(device);
                header.set_size(0);
                header.set_device_major(libc::major(rdev))?;
                header.set_device_minor(libc::minor(rdev))?;
                return self.tar.append_data(&mut header, name, io::empty());
            }
            self.tar.append_data(&mut header, name, File::open(path).map_err(at(path))?)
        } else {
            header.set_size(0);
            self.tar.append_data(&mut header, name, io::empty())
        }
    }

    /// An empty OCI whiteout file (`.wh.NAME` or `.wh..wh..opq`).
    fn whiteout(&mut self, name: &Path) -> io::Result<()> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        self.entries += 1;
        self.tar.append_data(&mut header, name, io::empty())
    }

    /// The file's own xattrs (file capabilities among them) as PAX records.
    fn append_xattrs(&mut self, path: &Path) -> io::Result<()> {
        let mut records = Vec::new();
        for key in xattr::list(path).map_err(at(path))? {
            let bytes = key.as_bytes();
            if FORMAT_XATTR_PREFIXES.iter().any(|p| bytes.starts_with(p)) {
                continue;
            }
            if let Some(value) = xattr::get(path, &key)? {
                records.push((format!("SCHILY.xattr.{}", key.to_string_lossy()), value));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        self.tar.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }
}

/// An error that names the file it is about.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Whether the kernel overlay marked `dir` opaque (it hides the layers below).
fn is_kernel_opaque(dir: &Path) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|key| matches!(xattr::get(dir, key), Ok(Some(v)) if v == b"y"))
}

/// The `UID:GID` an entry keeps in the owner xattr, if any.
fn stored_owner(path: &Path) -> Option<(u32, u32)> {
    fuse_overlay::parse_owner(std::str::from_utf8(&xattr::get(path, OWNER_XATTR).ok()??).ok()?)
}

/// The device a placeholder file stands for: its tar entry type and number.
fn stored_device(path: &Path) -> Option<(EntryType, u64)> {
    let value = xattr::get(path, DEVICE_XATTR).ok()??;
    let (kind, rdev) = fuse_overlay::parse_device(std::str::from_utf8(&value).ok()?)?;
    Some((if kind == libc::S_IFBLK { EntryType::Block } else { EntryType::Char }, rdev))
}
