//! The overlay's semantics over its layers: lookup through the layers,
//! merged listings, copy-up, and every change made in the upper layer with
//! whiteouts and opaque markers — the rules of Linux overlayfs, in the file
//! format hutch's image store writes.
//!
//! Locking: `tree` is held for reading by everything that resolves paths and
//! for writing by everything that changes names in the upper layer, so a
//! path built from the inode table is the path on disk. A file's data is
//! copied up without it (under the node's own `copy_up` lock), so a large
//! copy-up does not stall the rest of the filesystem.

use crate::copy::{copy_data, copy_metadata};
use crate::dir_cache::DirCache;
use crate::inode::{read, write, Inodes, Node, NodeState, ROOT};
use crate::layer::{self, is_dir, is_reserved, probe, whiteout_name, Layer, Probe, OPAQUE_MARKER, OWNER_XATTR};
use crate::sys::{stat_at, stat_fd};
use rustix::fs::{AtFlags, Gid, Mode, OFlags, RenameFlags, Uid};
use std::cell::OnceCell;
use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// What the layers hold under one name: the topmost entry's stat, and the
/// layers that hold it (every merged one, for a directory).
/// The writable layer's index among the layers: always the first (when
/// there is one), above the read-only lowers.
pub const UPPER: usize = 0;

pub struct Found {
    pub st: libc::stat64,
    pub layers: Vec<usize>,
    pub owner: Option<(u32, u32)>,
    /// The device a placeholder file stands for.
    pub device: Option<(u32, u64)>,
}

impl Found {
    /// Whether its topmost copy is in the writable layer.
    pub fn in_upper(&self) -> bool {
        self.layers.first() == Some(&UPPER)
    }

    /// `name` in the directory `dir` of layer `layer`, `st` its stat: with
    /// what its xattrs keep.
    fn read(dir: BorrowedFd<'_>, name: &CStr, st: libc::stat64, layer: usize, owner: Option<(u32, u32)>) -> Found {
        let device = layer::stored_device(dir, name, &st);
        Found { st, layers: vec![layer], owner, device }
    }

    /// The type the overlay shows: a placeholder's device type.
    pub fn kind(&self) -> u32 {
        self.device.map_or(self.st.st_mode & libc::S_IFMT, |(kind, _)| kind)
    }
}

/// Where a node is now: its parent directory's path and its name (none for
/// the root), and the layers holding it.
pub struct Place {
    pub parent: PathBuf,
    /// The parent directory's inode (the root's own for the root).
    pub parent_ino: u64,
    pub name: Option<CString>,
    pub layers: Vec<usize>,
}

impl Place {
    pub fn path(&self) -> PathBuf {
        match &self.name {
            Some(name) => self.parent.join(OsStr::from_bytes(name.to_bytes())),
            None => self.parent.clone(),
        }
    }

    pub fn top(&self) -> usize {
        self.layers.first().copied().unwrap_or(0)
    }
}

/// One entry of a merged directory listing.
pub struct Item {
    pub name: CString,
    pub ino: u64,
    pub kind: u32,
}

/// One directory of the overlay in each of its layers, each opened when
/// first needed, and once however many names are looked up in it.
pub struct LayerDirs<'a> {
    overlay: &'a Overlay,
    /// The directory's inode: its layers' descriptors come from (and stay
    /// in) the overlay's cache.
    ino: u64,
    path: &'a Path,
    layers: &'a [usize],
    /// Per layer: the directory, or None where the layer has none.
    fds: Vec<OnceCell<Option<Arc<OwnedFd>>>>,
}

impl<'a> LayerDirs<'a> {
    pub fn new(overlay: &'a Overlay, ino: u64, path: &'a Path, layers: &'a [usize]) -> LayerDirs<'a> {
        LayerDirs { overlay, ino, path, layers, fds: layers.iter().map(|_| OnceCell::new()).collect() }
    }

    fn get(&self, i: usize) -> io::Result<Option<BorrowedFd<'_>>> {
        if let Some(fd) = self.fds[i].get() {
            return Ok(fd.as_ref().map(|f| f.as_fd()));
        }
        let layer = self.layers[i];
        let opened = match self.overlay.layer_dir(layer, self.ino, self.path) {
            Ok(fd) => Some(fd),
            // This layer's directory went away under the mount.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => None,
            Err(e) => return Err(e),
        };
        Ok(self.fds[i].get_or_init(|| opened).as_ref().map(|f| f.as_fd()))
    }
}

pub struct Overlay {
    /// The upper layer first (when there is one), then the lowers, topmost first.
    pub layers: Vec<Layer>,
    pub has_upper: bool,
    /// Where copies and new entries are prepared before they appear.
    work: Option<OwnedFd>,
    pub inodes: Inodes,
    dirs: DirCache,
    pub tree: RwLock<()>,
    tmp_counter: AtomicU64,
    /// The ids this process creates files as: chowning to them is a no-op.
    own_ids: (u32, u32),
}

impl Overlay {
    pub fn new(layers: Vec<Layer>, has_upper: bool, work: Option<OwnedFd>) -> Overlay {
        Overlay {
            inodes: Inodes::new(Self::merge_root(&layers)),
            dirs: DirCache::default(),
            layers,
            has_upper,
            work,
            tree: RwLock::new(()),
            tmp_counter: AtomicU64::new(0),
            own_ids: (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw()),
        }
    }

    /// The root merges every layer down to the first opaque root.
    fn merge_root(layers: &[Layer]) -> Vec<usize> {
        let opaque = layers.iter().position(|l| stat_at(l.root(), OPAQUE_MARKER).is_ok());
        (0..opaque.map_or(layers.len(), |o| o + 1)).collect()
    }

    pub fn upper(&self) -> io::Result<&Layer> {
        if self.has_upper {
            Ok(&self.layers[UPPER])
        } else {
            Err(errno(libc::EROFS))
        }
    }

    fn work(&self) -> io::Result<BorrowedFd<'_>> {
        self.work.as_ref().map(|w| w.as_fd()).ok_or_else(|| errno(libc::EROFS))
    }

    fn tmp_name(&self) -> CString {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        CString::new(format!("tmp.{}.{n}", std::process::id())).unwrap_or_default()
    }

    pub fn in_upper(&self, node: &Node) -> bool {
        self.has_upper && node.state().layers.first() == Some(&0)
    }

    // ---- resolving -------------------------------------------------------

    /// The current place of `node`, built from its first name up to the root.
    pub fn place(&self, node: &Node) -> io::Result<Place> {
        let (layers, first) = {
            let s = node.state();
            (s.layers.clone(), s.aliases.first().cloned())
        };
        if node.ino == ROOT {
            return Ok(Place { parent: PathBuf::new(), parent_ino: ROOT, name: None, layers });
        }
        let (parent_ino, name) = first.ok_or_else(|| errno(libc::ENOENT))?;
        let mut up = parent_ino;
        let mut names = Vec::new();
        while up != ROOT {
            if names.len() > 4096 {
                return Err(errno(libc::ELOOP));
            }
            let parent = self.inodes.get(up)?;
            let (next, n) = parent.state().aliases.first().cloned().ok_or_else(|| errno(libc::ENOENT))?;
            names.push(n);
            up = next;
        }
        let parent = names.iter().rev().map(|n| OsStr::from_bytes(n.to_bytes())).collect();
        Ok(Place { parent, parent_ino, name: Some(name), layers })
    }

    /// The directory `path` (inode `ino`) of layer `layer`, kept open for
    /// the next requests on its files.
    pub fn layer_dir(&self, layer: usize, ino: u64, path: &Path) -> io::Result<Arc<OwnedFd>> {
        self.dirs.get_or_open(layer, ino, || self.layers[layer].dir(path))
    }

    /// Opens the file at `place` in its topmost layer (never through a symlink).
    pub fn open_place(&self, place: &Place, flags: OFlags) -> io::Result<OwnedFd> {
        match &place.name {
            None => self.layers[place.top()].open_at(Path::new(""), flags, Mode::empty()),
            Some(name) => {
                let dir = self.layer_dir(place.top(), place.parent_ino, &place.parent)?;
                Ok(rustix::fs::openat(&dir, name, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?)
            }
        }
    }

    /// A directory node's path and merged layers.
    pub fn dir_place(&self, dir: &Node) -> io::Result<(PathBuf, Vec<usize>)> {
        if !dir.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        let place = self.place(dir)?;
        Ok((place.path(), place.layers))
    }

    /// What the layers `layers` of directory `dir` (at `path`) hold under
    /// `name`, the directory's layer descriptors taken from the cache.
    pub fn find(&self, dir: u64, path: &Path, layers: &[usize], name: &CStr) -> io::Result<Option<Found>> {
        self.find_in(&LayerDirs::new(self, dir, path, layers), name)
    }

    /// What the directory `dirs` holds under `name`, topmost layer first.
    pub fn find_in(&self, dirs: &LayerDirs<'_>, name: &CStr) -> io::Result<Option<Found>> {
        let mut found: Option<Found> = None;
        for (i, &l) in dirs.layers.iter().enumerate() {
            let Some(fd) = dirs.get(i)? else { continue };
            let last = i + 1 == dirs.layers.len();
            match probe(fd, name)? {
                Probe::Whiteout => break,
                Probe::Absent => continue,
                Probe::Entry(st) => match &mut found {
                    None => {
                        let owner = match st.st_mode & libc::S_IFMT {
                            libc::S_IFLNK => None,
                            _ => layer::stored_owner(fd, name),
                        };
                        let dir = is_dir(&st);
                        found = Some(Found::read(fd, name, st, l, owner));
                        if !dir || last || layer::is_opaque(fd, name)? {
                            break;
                        }
                    }
                    Some(f) => {
                        if !is_dir(&st) {
                            break;
                        }
                        f.layers.push(l);
                        if last || layer::is_opaque(fd, name)? {
                            break;
                        }
                    }
                },
            }
        }
        Ok(found)
    }

    /// Whether a layer below the upper one shows something under `name`.
    fn lower_has(&self, dir: u64, path: &Path, layers: &[usize], name: &CStr) -> io::Result<bool> {
        let lowers: Vec<usize> = layers.iter().copied().filter(|&l| !(self.has_upper && l == 0)).collect();
        Ok(self.find(dir, path, &lowers, name)?.is_some())
    }

    fn key(&self, f: &Found) -> (u64, u64) {
        (self.layers[f.layers[0]].dev, f.st.st_ino) // its topmost copy's device
    }

    /// The node for what `find` found under `name` in `parent`.
    pub fn node_for(&self, parent: u64, name: &CStr, f: &Found) -> Arc<Node> {
        let (node, fresh) = self.inodes.node(self.key(f), f.kind(), || NodeState {
            owner: f.owner,
            device: f.device,
            ..NodeState::new(vec![(parent, name.to_owned())], f.layers.clone())
        });
        if !fresh {
            let mut s = node.state();
            if !s.aliases.iter().any(|(p, n)| *p == parent && n.as_c_str() == name) {
                s.aliases.push((parent, name.to_owned()));
            }
            // What is on disk is the truth, except for a hardlink already
            // copied up under another name (see `lookup`).
            if node.is_dir() || s.layers.first() != Some(&UPPER) || f.in_upper() {
                s.layers = f.layers.clone();
            }
            s.owner = f.owner;
            s.device = f.device;
        }
        node
    }

    /// Looks `name` up in directory `parent`: the node and its stat.
    pub fn lookup(&self, parent: u64, name: &CStr) -> io::Result<(Arc<Node>, libc::stat64)> {
        let (node, st) = {
            let _t = read(&self.tree);
            let dir = self.inodes.get(parent)?;
            let (path, layers) = self.dir_place(&dir)?;
            self.lookup_in(parent, &LayerDirs::new(self, parent, &path, &layers), name)?
        };
        match st {
            Some(st) => Ok((node, st)),
            None => {
                let _t = write(&self.tree);
                self.link_copied_alias(&node, parent, name)?;
                let st = self.stat(&node)?;
                Ok((node, st))
            }
        }
    }

    /// Looks `name` up in the directory `parent`, which `dirs` opened (once
    /// for all names of a listing). The caller holds `tree` for reading. No
    /// stat for a lower hardlink whose inode was copied up under another
    /// name: this name must first be linked to the copy (`lookup` does).
    pub fn lookup_in(
        &self,
        parent: u64,
        dirs: &LayerDirs<'_>,
        name: &CStr,
    ) -> io::Result<(Arc<Node>, Option<libc::stat64>)> {
        if is_reserved(name.to_bytes()) {
            return Err(errno(libc::ENOENT));
        }
        let f = self.find_in(dirs, name)?.ok_or_else(|| errno(libc::ENOENT))?;
        let node = self.node_for(parent, name, &f);
        let relink = !f.in_upper() && self.in_upper(&node);
        Ok((node, Some(f.st).filter(|_| !relink)))
    }

    /// The stat of `node` in its topmost layer.
    pub fn stat(&self, node: &Node) -> io::Result<libc::stat64> {
        let place = self.place(node)?;
        let layer = &self.layers[place.top()];
        match &place.name {
            None => stat_fd(layer.root()),
            Some(name) => stat_at(self.layer_dir(place.top(), place.parent_ino, &place.parent)?.as_fd(), name),
        }
    }

    /// The merged listing of directory `path` over `layers`: the topmost
    /// entry of each name, whiteouts and what they hide left out.
    pub fn listing(&self, path: &Path, layers: &[usize]) -> io::Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut hidden: HashSet<Vec<u8>> = HashSet::new();
        for &l in layers {
            let layer = &self.layers[l];
            let fd = match layer.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => continue,
                Err(e) => return Err(e),
            };
            let mut whiteouts = Vec::new();
            for entry in rustix::fs::Dir::read_from(&fd)? {
                let entry = entry?;
                let name = entry.file_name();
                let bytes = name.to_bytes();
                if bytes == b"." || bytes == b".." || bytes == OPAQUE_MARKER.to_bytes() {
                    continue;
                }
                if let Some(hides) = bytes.strip_prefix(layer::WHITEOUT_PREFIX) {
                    whiteouts.push(hides.to_vec());
                    continue;
                }
                if seen.contains(bytes) || hidden.contains(bytes) {
                    continue;
                }
                let kind = match entry.file_type() {
                    rustix::fs::FileType::Unknown | rustix::fs::FileType::CharacterDevice => {
                        match stat_at(fd.as_fd(), name) {
                            Ok(st) if layer::is_whiteout_node(&st) => {
                                whiteouts.push(bytes.to_vec());
                                continue;
                            }
                            Ok(st) => st.st_mode & libc::S_IFMT,
                            Err(_) => continue, // gone since the listing was read
                        }
                    }
                    t => t.as_raw_mode(),
                };
                seen.insert(bytes.to_vec());
                let ino = self.inodes.number((layer.dev, entry.ino()));
                // A known regular file may be a device placeholder.
                let kind = match kind {
                    libc::S_IFREG => self.inodes.get(ino).map_or(kind, |node| node.kind),
                    _ => kind,
                };
                items.push(Item { name: name.to_owned(), ino, kind });
            }
            hidden.extend(whiteouts);
        }
        Ok(items)
    }

    // ---- copy-up ---------------------------------------------------------

    /// Makes directory `dir` and its ancestors exist in the upper layer.
    /// The caller holds `tree` for writing.
    fn copy_up_dirs(&self, dir: &Arc<Node>) -> io::Result<()> {
        let mut chain = Vec::new();
        let mut n = dir.clone();
        while !self.in_upper(&n) {
            let up = n.state().aliases.first().map(|a| a.0).ok_or_else(|| errno(libc::ENOENT))?;
            chain.push(n);
            n = self.inodes.get(up)?;
        }
        for n in chain.iter().rev() {
            self.copy_up_one_dir(n)?;
        }
        Ok(())
    }

    fn copy_up_one_dir(&self, dir: &Node) -> io::Result<()> {
        let (upper, work) = (self.upper()?, self.work()?);
        let place = self.place(dir)?;
        let name = place.name.as_deref().ok_or_else(|| errno(libc::EINVAL))?;
        let src = self.layers[place.top()].dir(&place.parent)?;
        let st = stat_at(src.as_fd(), name)?;
        let dst = upper.dir(&place.parent)?;
        let tmp = self.tmp_name();
        rustix::fs::mkdirat(work, &tmp, Mode::from_raw_mode(0o700))?;
        let moved = copy_metadata(src.as_fd(), name, &st, work, &tmp)
            .and_then(|_| Ok(rustix::fs::renameat_with(work, &tmp, &dst, name, RenameFlags::NOREPLACE)?));
        if let Err(e) = moved {
            let _ = rustix::fs::unlinkat(work, &tmp, AtFlags::REMOVEDIR);
            return Err(e);
        }
        self.inodes.bind((upper.dev, stat_at(dst.as_fd(), name)?.st_ino), dir.ino);
        dir.state().layers.insert(0, 0);
        Ok(())
    }

    /// Copies a file (or symlink, fifo, socket) up into the upper layer:
    /// prepared in the work directory, renamed into place once complete, so
    /// a failure (a full disk) leaves nothing half-copied in sight.
    pub fn copy_up(&self, node: &Arc<Node>, with_data: bool) -> io::Result<()> {
        if node.is_dir() {
            let _t = write(&self.tree);
            return self.copy_up_dirs(node);
        }
        let _once = crate::inode::lock(&node.copy_up);
        if self.in_upper(node) {
            return Ok(());
        }
        let (upper, work) = (self.upper()?, self.work()?);
        let (src_dir, name, st) = {
            let _t = write(&self.tree);
            let parent = self.parent_of(node)?;
            self.copy_up_dirs(&parent)?;
            let place = self.place(node)?;
            let name = place.name.clone().ok_or_else(|| errno(libc::EINVAL))?;
            let src_dir = self.layers[place.top()].dir(&place.parent)?;
            let st = stat_at(src_dir.as_fd(), &name)?;
            (src_dir, name, st)
        };
        let tmp = self.tmp_name();
        let made = prepare_copy(src_dir.as_fd(), &name, &st, work, &tmp, with_data);
        let _t = write(&self.tree);
        let placed = made.and_then(|_| {
            self.copy_up_dirs(&self.parent_of(node)?)?;
            let place = self.place(node)?;
            let name = place.name.as_deref().ok_or_else(|| errno(libc::EINVAL))?;
            let dst = upper.dir(&place.parent)?;
            rustix::fs::renameat_with(work, &tmp, &dst, name, RenameFlags::NOREPLACE)?;
            self.inodes.bind((upper.dev, stat_at(dst.as_fd(), name)?.st_ino), node.ino);
            {
                let mut state = node.state();
                state.layers = vec![0];
                // Names of the group not seen yet must find the copy later.
                state.pinned = st.st_nlink > 1;
            }
            self.link_other_aliases(node, &dst, name)
        });
        if placed.is_err() {
            let _ = rustix::fs::unlinkat(work, &tmp, AtFlags::empty());
        }
        placed
    }

    fn parent_of(&self, node: &Node) -> io::Result<Arc<Node>> {
        let up = node.state().aliases.first().map(|a| a.0).ok_or_else(|| errno(libc::ENOENT))?;
        self.inodes.get(up)
    }

    /// After a copy-up, every other known name of a hardlinked file links to
    /// the copy, so the group stays one file.
    fn link_other_aliases(&self, node: &Node, copy_dir: &OwnedFd, copy_name: &CStr) -> io::Result<()> {
        let others: Vec<(u64, CString)> = node.state().aliases.iter().skip(1).cloned().collect();
        for (parent, name) in others {
            let dir = self.inodes.get(parent)?;
            self.copy_up_dirs(&dir)?;
            let (path, _) = self.dir_place(&dir)?;
            let dst = self.upper()?.dir(&path)?;
            match rustix::fs::linkat(copy_dir, copy_name, &dst, &name, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `name` in `parent` is a lower hardlink of `node`, which was copied up
    /// under another name: link the copy here. Caller holds `tree` for writing.
    fn link_copied_alias(&self, node: &Arc<Node>, parent: u64, name: &CStr) -> io::Result<()> {
        let dir = self.inodes.get(parent)?;
        self.copy_up_dirs(&dir)?;
        let (path, _) = self.dir_place(&dir)?;
        let dst = self.upper()?.dir(&path)?;
        let src = self.place(node)?;
        let src_dir = self.upper()?.dir(&src.parent)?;
        let src_name = src.name.as_deref().ok_or_else(|| errno(libc::EINVAL))?;
        if src.parent == path && src_name == name {
            return Ok(());
        }
        match rustix::fs::linkat(&src_dir, src_name, &dst, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies a whole directory tree up (for a rename of a lower directory:
    /// what moves must be entirely in the upper layer), then makes it opaque.
    pub fn copy_up_tree(&self, node: &Arc<Node>) -> io::Result<()> {
        if !node.is_dir() {
            return self.copy_up(node, true);
        }
        {
            let _t = write(&self.tree);
            self.copy_up_dirs(node)?;
            if node.state().layers.len() == 1 {
                return Ok(());
            }
        }
        let items = {
            let _t = read(&self.tree);
            let (path, layers) = self.dir_place(node)?;
            self.listing(&path, &layers)?
        };
        for item in items {
            let (child, _) = self.lookup(node.ino, &item.name)?;
            self.copy_up_tree(&child)?;
        }
        let _t = write(&self.tree);
        let (path, _) = self.dir_place(node)?;
        make_marker(self.upper()?.dir(&path)?.as_fd(), OPAQUE_MARKER)?;
        node.state().layers = vec![0];
        Ok(())
    }

    // ---- changes ---------------------------------------------------------

    /// Creates a new entry `name` in `parent` with the caller's owner and
    /// `mode`; `make` makes it in the directory and under the name it is
    /// given. An entry with nothing to hide and no owner to give is made in
    /// place, as the kernel overlay does (no lookup sees it before the tree
    /// lock is released); any other is prepared in the work directory and
    /// renamed into place complete, and any whiteout of the name removed.
    pub fn create_entry(
        &self,
        parent: u64,
        name: &CStr,
        owner: (u32, u32),
        mode: u32,
        make: impl FnOnce(BorrowedFd<'_>, &CStr, Mode) -> io::Result<Option<OwnedFd>>,
    ) -> io::Result<(Arc<Node>, libc::stat64, Option<OwnedFd>)> {
        let work = self.work()?;
        let _t = write(&self.tree);
        let (dir, dst) = self.claim_name(parent, name)?;
        let parent_st = stat_fd(dst.as_fd())?;
        // This server whites out a name as `.wh.NAME`, or, when that is
        // too long, with a whiteout node at the name itself.
        let over_whiteout = match fits_whiteout_prefix(name) {
            true => stat_at(dst.as_fd(), &whiteout_name(name)).is_ok(),
            false => is_whiteout_at(dst.as_fd(), name),
        };
        let in_place = owner == self.own_ids
            && parent_st.st_mode & libc::S_ISGID == 0
            && !matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK)
            && !over_whiteout;
        let tmp = (!in_place).then(|| self.tmp_name());
        let (at, at_name) = match &tmp {
            Some(tmp) => (work, tmp.as_c_str()),
            None => (dst.as_fd(), name),
        };
        // In place, the entry is made with its permissions (chmod only if
        // this process's umask trims them: a chmod would leave its ctime
        // after its mtime, and the kernel's first write would then send its
        // times back); in the work dir, private until placed.
        let perm = match (in_place, mode & libc::S_IFMT) {
            (true, _) => mode & 0o7777,
            (false, libc::S_IFDIR) => 0o700,
            (false, _) => 0o600,
        };
        let file = make(at, at_name, Mode::from_raw_mode(perm))?;
        let placed = match &tmp {
            None => stat_at(at, at_name).and_then(|st| set_mode(at, at_name, &st, mode & 0o7777)).map(|()| None),
            Some(tmp) => {
                let parent = (&parent_st, dir.state().owner);
                self.place_new_entry(work, tmp, &dst, name, owner, mode, over_whiteout, parent)
            }
        };
        let kept = match placed {
            Ok(kept) => kept,
            Err(e) => {
                let _ = rustix::fs::unlinkat(at, at_name, AtFlags::empty())
                    .or_else(|_| rustix::fs::unlinkat(at, at_name, AtFlags::REMOVEDIR));
                return Err(e);
            }
        };
        let st = stat_at(dst.as_fd(), name)?;
        let found = Found::read(dst.as_fd(), name, st, 0, kept);
        let node = self.node_for(parent, name, &found);
        Ok((node, st, file))
    }

    /// Checks that `name` is free in directory `parent` and may be made,
    /// and makes the directory exist in the upper layer: the directory node
    /// and its upper descriptor. The caller holds `tree` for writing.
    fn claim_name(&self, parent: u64, name: &CStr) -> io::Result<(Arc<Node>, Arc<OwnedFd>)> {
        if is_reserved(name.to_bytes()) {
            return Err(errno(libc::EPERM));
        }
        self.upper()?;
        let dir = self.inodes.get(parent)?;
        let (path, layers) = self.dir_place(&dir)?;
        if self.find(parent, &path, &layers, name)?.is_some() {
            return Err(errno(libc::EEXIST));
        }
        self.copy_up_dirs(&dir)?;
        let dst = self.layer_dir(0, parent, &path)?;
        Ok((dir, dst))
    }

    /// Gives the entry `tmp` made in the work directory its owner and mode
    /// and renames it to `name` in `dst`, over the name's whiteout when
    /// `replaces_whiteout`; the parent's stat and kept owner decide setgid.
    #[allow(clippy::too_many_arguments)]
    fn place_new_entry(
        &self,
        work: BorrowedFd<'_>,
        tmp: &CStr,
        dst: &OwnedFd,
        name: &CStr,
        (uid, gid): (u32, u32),
        mode: u32,
        replaces_whiteout: bool,
        (parent_st, parent_owner): (&libc::stat64, Option<(u32, u32)>),
    ) -> io::Result<Option<(u32, u32)>> {
        let st = stat_at(work, tmp)?;
        let kind = st.st_mode & libc::S_IFMT;
        // A setgid directory gives new entries its group, and new
        // directories its setgid bit (the kernel did not see the real parent).
        let setgid_parent = parent_st.st_mode & libc::S_ISGID != 0;
        let gid = if setgid_parent { parent_owner.map_or(parent_st.st_gid, |o| o.1) } else { gid };
        let owner_kept = self.give_owner(work, tmp, kind, (uid, gid), true)?;
        let setgid = if setgid_parent && kind == libc::S_IFDIR { libc::S_ISGID } else { 0 };
        set_mode(work, tmp, &st, mode & 0o7777 | setgid)?;
        if kind == libc::S_IFDIR && replaces_whiteout {
            let new_dir =
                rustix::fs::openat(work, tmp, OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty())?;
            make_marker(new_dir.as_fd(), OPAQUE_MARKER)?;
        }
        // Over a whiteout node, which the rename replaces; else onto a free name.
        let rflags = if replaces_whiteout { RenameFlags::empty() } else { RenameFlags::NOREPLACE };
        rustix::fs::renameat_with(work, tmp, dst, name, rflags)?;
        if replaces_whiteout {
            remove_whiteout(dst.as_fd(), name)?;
        }
        Ok(owner_kept)
    }

    /// Gives `name` in `dir` the owner `(uid, gid)`; an owner the namespace
    /// cannot map is kept in the owner xattr (returned) instead. A `fresh`
    /// entry has no owner xattr to clear and is already ours.
    /// `kind` is the entry's type on disk (a device placeholder is a
    /// regular file there).
    pub fn give_owner(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        kind: u32,
        owner: (u32, u32),
        fresh: bool,
    ) -> io::Result<Option<(u32, u32)>> {
        if fresh && owner == self.own_ids {
            return Ok(None);
        }
        let path = layer::proc_path(dir, Some(name));
        let (uid, gid) = (Uid::from_raw(owner.0), Gid::from_raw(owner.1));
        // Only regular files and directories may carry `user.*` xattrs.
        let keeps_xattrs = matches!(kind, libc::S_IFREG | libc::S_IFDIR);
        match rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(()) if fresh || !keeps_xattrs => Ok(None),
            Ok(()) => match xattr::remove(&path, OWNER_XATTR) {
                Err(e) if !matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP)) => Err(e),
                _ => Ok(None),
            },
            Err(rustix::io::Errno::INVAL) if keeps_xattrs => {
                xattr::set(&path, OWNER_XATTR, format!("{}:{}", owner.0, owner.1).as_bytes())?;
                Ok(Some(owner))
            }
            // An id the namespace cannot map, on a file that cannot keep it:
            // what the kernel answers on any filesystem here.
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `name` from `parent` (a directory when `dir`): deleted from
    /// the upper layer, hidden by a whiteout when a lower layer has it.
    pub fn remove(&self, parent: u64, name: &CStr, want_dir: bool) -> io::Result<()> {
        if is_reserved(name.to_bytes()) {
            return Err(errno(libc::ENOENT));
        }
        self.upper()?;
        let _t = write(&self.tree);
        let dir = self.inodes.get(parent)?;
        let (path, layers) = self.dir_place(&dir)?;
        let f = self.find(parent, &path, &layers, name)?.ok_or_else(|| errno(libc::ENOENT))?;
        match (want_dir, is_dir(&f.st)) {
            (true, false) => return Err(errno(libc::ENOTDIR)),
            (false, true) => return Err(errno(libc::EISDIR)),
            _ => {}
        }
        if want_dir && !self.listing(&path.join(OsStr::from_bytes(name.to_bytes())), &f.layers)?.is_empty() {
            return Err(errno(libc::ENOTEMPTY));
        }
        let in_upper = self.has_upper && f.in_upper();
        let lower = !in_upper || self.lower_has(parent, &path, &layers, name)?;
        self.copy_up_dirs(&dir)?;
        let dst = self.layer_dir(0, parent, &path)?;
        // The whiteout first: until the upper entry is gone it changes
        // nothing. A name too long for the `.wh.` prefix gets the kernel's
        // whiteout node instead, which takes the name itself: made after.
        let node_whiteout = lower && !fits_whiteout_prefix(name);
        if lower && !node_whiteout {
            make_marker(dst.as_fd(), &whiteout_name(name))?;
        }
        if in_upper {
            if want_dir {
                clear_dir(dst.as_fd(), name)?;
                rustix::fs::unlinkat(&dst, name, AtFlags::REMOVEDIR)?;
            } else {
                rustix::fs::unlinkat(&dst, name, AtFlags::empty())?;
            }
        }
        if node_whiteout {
            make_whiteout_node(dst.as_fd(), name)?;
        }
        self.forget_name(&f, parent, name, in_upper);
        Ok(())
    }

    /// Bookkeeping after the name `(parent, name)` of what `f` found is gone.
    fn forget_name(&self, f: &Found, parent: u64, name: &CStr, in_upper: bool) {
        let key = self.key(f);
        if let Some(node) = self.inodes.known(key) {
            node.state().aliases.retain(|(p, n)| !(*p == parent && n.as_c_str() == name));
        }
        if in_upper && (f.st.st_nlink <= 1 || is_dir(&f.st)) {
            self.inodes.unbind(key);
        }
    }

    /// rename(2) with RENAME_NOREPLACE and RENAME_EXCHANGE.
    pub fn rename(&self, old_parent: u64, old: &CStr, new_parent: u64, new: &CStr, flags: u32) -> io::Result<()> {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
        if flags & !known != 0 {
            return Err(errno(libc::EINVAL));
        }
        if is_reserved(new.to_bytes()) {
            return Err(errno(libc::EPERM));
        }
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        self.upper()?;
        // What moves must be in the upper layer first, whole.
        let (src, _) = self.lookup(old_parent, old)?;
        self.copy_up_tree(&src)?;
        if exchange {
            let (dst, _) = self.lookup(new_parent, new)?;
            self.copy_up_tree(&dst)?;
        }
        let _t = write(&self.tree);
        let (old_dir, new_dir) = (self.inodes.get(old_parent)?, self.inodes.get(new_parent)?);
        let (old_path, old_layers) = self.dir_place(&old_dir)?;
        let (new_path, new_layers) = self.dir_place(&new_dir)?;
        let source = self.find(old_parent, &old_path, &old_layers, old)?.ok_or_else(|| errno(libc::ENOENT))?;
        let dest = self.find(new_parent, &new_path, &new_layers, new)?;
        if !source.in_upper() {
            return Err(errno(libc::EAGAIN)); // changed while it was copied up
        }
        match &dest {
            Some(_) if flags & libc::RENAME_NOREPLACE != 0 => return Err(errno(libc::EEXIST)),
            None if exchange => return Err(errno(libc::ENOENT)),
            Some(existing) if !exchange => {
                match (is_dir(&source.st), is_dir(&existing.st)) {
                    (true, false) => return Err(errno(libc::ENOTDIR)),
                    (false, true) => return Err(errno(libc::EISDIR)),
                    _ => {}
                }
                let dest_path = new_path.join(OsStr::from_bytes(new.to_bytes()));
                if is_dir(&existing.st) && !self.listing(&dest_path, &existing.layers)?.is_empty() {
                    return Err(errno(libc::ENOTEMPTY));
                }
            }
            _ => {}
        }
        if source.st.st_ino == dest.as_ref().map_or(0, |d| d.st.st_ino) && dest.as_ref().is_some_and(Found::in_upper) {
            return Ok(()); // two names of one file: rename(2) does nothing
        }
        self.copy_up_dirs(&new_dir)?;
        let (src_dir, dst_dir) =
            (self.layer_dir(UPPER, old_parent, &old_path)?, self.layer_dir(UPPER, new_parent, &new_path)?);
        let mut node_whiteout_after = false;
        // Prepared so that each step leaves a consistent tree: the moving
        // directory hides what lower layers hold at its new name, the old
        // name is whited out before the entry leaves it.
        if is_dir(&source.st) {
            make_marker(layer::open_child_dir(src_dir.as_fd(), old)?.as_fd(), OPAQUE_MARKER)?;
        }
        if exchange {
            if dest.as_ref().is_some_and(|d| is_dir(&d.st)) {
                make_marker(layer::open_child_dir(dst_dir.as_fd(), new)?.as_fd(), OPAQUE_MARKER)?;
            }
        } else {
            if self.lower_has(old_parent, &old_path, &old_layers, old)? {
                if fits_whiteout_prefix(old) {
                    make_marker(src_dir.as_fd(), &whiteout_name(old))?;
                } else {
                    node_whiteout_after = true;
                }
            }
            if dest.as_ref().is_some_and(|d| is_dir(&d.st) && d.in_upper()) {
                clear_dir(dst_dir.as_fd(), new)?;
            }
        }
        let rflags = RenameFlags::from_bits_retain(flags);
        rustix::fs::renameat_with(&src_dir, old, &dst_dir, new, rflags)?;
        if node_whiteout_after {
            make_whiteout_node(src_dir.as_fd(), old)?;
        }
        if !exchange {
            remove_whiteout(dst_dir.as_fd(), new)?;
        }
        self.renamed(&source, (old_parent, old), (new_parent, new), dest.as_ref(), exchange);
        Ok(())
    }

    /// Bookkeeping after a rename: names of the nodes, and the layers of a
    /// moved directory's contents (all upper now, under an opaque top).
    fn renamed(&self, source: &Found, old: (u64, &CStr), new: (u64, &CStr), dest: Option<&Found>, exchange: bool) {
        // A node never looked up has no names or contents to update.
        let rename_alias = |f: &Found, from: (u64, &CStr), to: (u64, &CStr)| {
            let Some(node) = self.inodes.known(self.key(f)) else { return };
            {
                let mut st = node.state();
                st.aliases.retain(|(parent, name)| !(*parent == from.0 && name.as_c_str() == from.1));
                st.aliases.insert(0, (to.0, to.1.to_owned()));
                st.layers = vec![UPPER];
            }
            if node.is_dir() {
                self.flatten_below(&node);
            }
        };
        if let Some(dest) = dest {
            if exchange {
                rename_alias(dest, new, old);
            } else {
                self.forget_name(dest, new.0, new.1, dest.in_upper());
            }
        }
        rename_alias(source, old, new);
    }

    /// Every node below `dir` now lives in the upper layer only.
    fn flatten_below(&self, dir: &Node) {
        for node in self.inodes.all() {
            let mut up = node.state().aliases.first().map(|a| a.0);
            let mut depth = 0;
            while let Some(p) = up.filter(|&p| p != ROOT && depth < 4096) {
                if p == dir.ino {
                    node.state().layers.retain(|&l| l == 0);
                    break;
                }
                up = self.inodes.get(p).ok().and_then(|n| n.state().aliases.first().map(|a| a.0));
                depth += 1;
            }
        }
    }

    /// A hard link `new` in `new_parent` to `node`.
    pub fn link(&self, node: &Arc<Node>, new_parent: u64, new: &CStr) -> io::Result<libc::stat64> {
        if node.is_dir() {
            return Err(errno(libc::EPERM));
        }
        self.copy_up(node, true)?;
        let _t = write(&self.tree);
        let (_, dst) = self.claim_name(new_parent, new)?;
        let src = self.place(node)?;
        let src_name = src.name.as_deref().ok_or_else(|| errno(libc::EINVAL))?;
        rustix::fs::linkat(self.upper()?.dir(&src.parent)?, src_name, &dst, new, AtFlags::empty())?;
        remove_whiteout(dst.as_fd(), new)?;
        node.state().aliases.push((new_parent, new.to_owned()));
        stat_at(dst.as_fd(), new)
    }
}

/// Prepares in `work` a copy of `name` in `src_dir` (without its data for
/// a copy-up that truncates anyway).
fn prepare_copy(
    src_dir: BorrowedFd<'_>,
    name: &CStr,
    st: &libc::stat64,
    work: BorrowedFd<'_>,
    tmp: &CStr,
    with_data: bool,
) -> io::Result<()> {
    let made: io::Result<()> = (|| {
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {
                let dst = rustix::fs::openat(
                    work,
                    tmp,
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                if with_data {
                    let src = rustix::fs::openat(
                        src_dir,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    copy_data(src.as_fd(), dst.as_fd(), u64::try_from(st.st_size).unwrap_or(0))?;
                }
            }
            libc::S_IFLNK => {
                let target = rustix::fs::readlinkat(src_dir, name, Vec::new())?;
                rustix::fs::symlinkat(&target, work, tmp)?;
            }
            kind => {
                let ft = rustix::fs::FileType::from_raw_mode(kind);
                rustix::fs::mknodat(work, tmp, ft, Mode::from_raw_mode(0o600), st.st_rdev)?;
            }
        }
        copy_metadata(src_dir, name, st, work, tmp)
    })();
    if made.is_err() {
        let _ = rustix::fs::unlinkat(work, tmp, AtFlags::empty());
    }
    made
}

/// An empty marker file (a whiteout or the opaque marker) in `dir`.
/// Gives the entry `name` (whose stat is `st`) in `dir` the permissions
/// `perm`: an entry made private, or trimmed by the process umask, gets
/// what the caller asked for. A symlink has none to give (and chmod
/// would follow it).
fn set_mode(dir: BorrowedFd<'_>, name: &CStr, st: &libc::stat64, perm: u32) -> io::Result<()> {
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK || st.st_mode & 0o7777 == perm {
        return Ok(());
    }
    Ok(rustix::fs::chmodat(dir, name, Mode::from_raw_mode(perm), AtFlags::empty())?)
}

fn make_marker(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match rustix::fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the `.wh.` whiteout of `name` (a name too long for one has none).
fn remove_whiteout(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, whiteout_name(name), AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT | rustix::io::Errno::NAMETOOLONG) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `.wh.NAME` is a name the filesystem takes (NAME_MAX is 255).
fn fits_whiteout_prefix(name: &CStr) -> bool {
    name.to_bytes().len() + layer::WHITEOUT_PREFIX.len() <= 255
}

/// The kernel overlay's whiteout, `c 0 0` at the name itself (a user
/// namespace may make one since Linux 5.8).
fn make_whiteout_node(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let mode = rustix::fs::Mode::empty();
    Ok(rustix::fs::mknodat(dir, name, rustix::fs::FileType::CharacterDevice, mode, 0)?)
}

/// Whether `name` in `dir` is a whiteout node.
fn is_whiteout_at(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    stat_at(dir, name).is_ok_and(|st| layer::is_whiteout_node(&st))
}

/// Removes the markers an upper directory that looks empty may still hold,
/// so it can be removed or replaced.
fn clear_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut markers = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        if entry.file_name().to_bytes().starts_with(layer::WHITEOUT_PREFIX) {
            markers.push(entry.file_name().to_owned());
        }
    }
    for m in markers {
        rustix::fs::unlinkat(&dir, &m, AtFlags::empty())?;
    }
    Ok(())
}
