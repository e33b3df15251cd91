//! The FUSE face of the overlay: fuse-backend-rs's `FileSystem` requests
//! mapped onto `Overlay`, open files and directory listings kept as handles.

use crate::inode::{lock, read, write, Node};
use crate::layer::{device_value, proc_path, DEVICE_XATTR, OWNER_XATTR};
use crate::notify::Notifier;
use crate::overlay::{errno, Item, LayerDirs, Overlay};
use crate::sys::{stat_at, stat_fd, statvfs_fd, with_file};
use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64, CreateIn, FOPEN_IN_KILL_SUIDGID, WRITE_KILL_PRIV};
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileSystem, FsOptions, GetxattrReply, ListxattrReply, OpenOptions, SetattrValid,
    ZeroCopyReader, ZeroCopyWriter,
};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

/// A directory being read: its listing, taken when reading starts at 0, so
/// offsets stay valid while entries come and go.
struct DirHandle {
    ino: u64,
    items: Mutex<Option<Vec<Item>>>,
}

/// Where a SETATTR applies.
enum Target {
    Named(Arc<OwnedFd>, CString),
    Open(Arc<OwnedFd>),
}

impl Target {
    fn stat(&self) -> io::Result<stat64> {
        match self {
            Target::Named(dir, name) => stat_at(dir.as_fd(), name),
            Target::Open(fd) => stat_fd(fd.as_fd()),
        }
    }

    fn chmod(&self, mode: Mode) -> io::Result<()> {
        match self {
            Target::Named(dir, name) => rustix::fs::chmodat(dir, name, mode, AtFlags::empty())?,
            Target::Open(fd) => rustix::fs::fchmod(fd, mode)?,
        }
        Ok(())
    }

    /// Drops what a write, truncate or chown by a process without
    /// CAP_FSETID drops on a local filesystem: setuid, setgid where group
    /// execute is set (without it, setgid marks mandatory locking) and file
    /// capabilities. Under HANDLE_KILLPRIV_V2 the kernel leaves this to the
    /// server, and in exchange stops asking for `security.capability`
    /// before every write(2).
    fn drop_privileges(&self) -> io::Result<bool> {
        let st = self.stat()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(false);
        }
        let was = st.st_mode & 0o7777;
        let mut mode = was & !libc::S_ISUID;
        if mode & libc::S_IXGRP != 0 {
            mode &= !libc::S_ISGID;
        }
        if mode != was {
            self.chmod(Mode::from_raw_mode(mode))?;
        }
        Ok(self.remove_capabilities()? || mode != was)
    }

    /// Removes `security.capability`; false if there was none.
    fn remove_capabilities(&self) -> io::Result<bool> {
        // Asked first: removing needs CAP_SETFCAP over the file even when
        // there is nothing to remove.
        let size_only: &mut [u8] = &mut [];
        let found = match self {
            Target::Named(dir, name) => {
                rustix::fs::lgetxattr(proc_path(dir.as_fd(), Some(name)), CAPABILITY_XATTR, size_only)
            }
            Target::Open(fd) => rustix::fs::fgetxattr(fd, CAPABILITY_XATTR, size_only),
        };
        match found {
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::OPNOTSUPP) => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        match self {
            Target::Named(dir, name) => rustix::fs::lremovexattr(proc_path(dir.as_fd(), Some(name)), CAPABILITY_XATTR)?,
            Target::Open(fd) => rustix::fs::fremovexattr(fd, CAPABILITY_XATTR)?,
        }
        Ok(true)
    }
}

const CAPABILITY_XATTR: &CStr = c"security.capability";

/// Open files by handle; shared with the threads' splice repliers.
#[derive(Default)]
pub struct OpenFiles(RwLock<HashMap<u64, Arc<OwnedFd>>>);

impl OpenFiles {
    pub fn get(&self, handle: u64) -> Option<Arc<OwnedFd>> {
        read(&self.0).get(&handle).cloned()
    }
}

pub struct OverlayFs {
    ov: Overlay,
    files: Arc<OpenFiles>,
    dirs: RwLock<HashMap<u64, Arc<DirHandle>>>,
    next_handle: AtomicU64,
    /// How long the kernel may trust entries and attributes: every change
    /// goes through this mount, so this can be long.
    timeout: Duration,
    /// The kernel caches writes and sends them in large pieces (see
    /// `layer_flags`).
    writeback: bool,
    uids: IdMap,
    gids: IdMap,
    notifier: Notifier,
}

/// The ids this user namespace maps (the inside column of its id map).
struct IdMap(Vec<(u32, u32)>);

impl IdMap {
    fn read(file: &str) -> IdMap {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        IdMap(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
                    Some((f.next()??, f.nth(1)??))
                })
                .collect(),
        )
    }

    fn contains(&self, id: u32) -> bool {
        self.0.iter().any(|&(start, count)| id >= start && id - start < count)
    }
}

impl OverlayFs {
    pub fn new(ov: Overlay, timeout: Duration, writeback: bool, notifier: Notifier) -> OverlayFs {
        OverlayFs {
            notifier,
            uids: IdMap::read("/proc/self/uid_map"),
            gids: IdMap::read("/proc/self/gid_map"),
            ov,
            files: Arc::default(),
            dirs: RwLock::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            timeout,
            writeback,
        }
    }

    fn node(&self, ino: u64) -> io::Result<Arc<Node>> {
        self.ov.inodes.get(ino)
    }

    /// The flags a layer file is opened with for a container's `flags`:
    /// the access mode, O_APPEND, the sync flags and `more`. With the
    /// writeback cache the kernel reads partly written pages through any
    /// handle and places appends itself: a write-only file is opened for
    /// reading too, and without O_APPEND (which would make every write an
    /// append, whatever its offset).
    fn layer_flags(&self, flags: i32, more: i32) -> OFlags {
        let keep = libc::O_ACCMODE | libc::O_APPEND | libc::O_SYNC | libc::O_DSYNC | more;
        let mut flags = flags & keep;
        if self.writeback {
            flags &= !libc::O_APPEND;
            if flags & libc::O_ACCMODE == libc::O_WRONLY {
                flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR;
            }
        }
        OFlags::from_bits_retain(flags.cast_unsigned())
    }

    pub fn open_files(&self) -> Arc<OpenFiles> {
        self.files.clone()
    }

    fn file(&self, handle: u64) -> io::Result<Arc<OwnedFd>> {
        self.files.get(handle).ok_or_else(|| errno(libc::EBADF))
    }

    fn add_file(&self, fd: OwnedFd) -> u64 {
        let h = self.next_handle.fetch_add(1, Ordering::Relaxed);
        write(&self.files.0).insert(h, Arc::new(fd));
        h
    }

    /// The stat the overlay shows: its own inode number, the kept owner.
    /// An owner this namespace cannot map is shown as its root: the kernel
    /// would show it as the overflow id and refuse every change to the file
    /// (EOVERFLOW); the real owner stays in the layer (or its xattr).
    /// A device placeholder shows as the device.
    fn present(&self, node: &Node, mut st: stat64) -> stat64 {
        st.st_ino = node.ino;
        let state = node.state();
        if let Some((uid, gid)) = state.owner {
            st.st_uid = uid;
            st.st_gid = gid;
        }
        if let Some((kind, rdev)) = state.device {
            st.st_mode = kind | (st.st_mode & 0o7777);
            st.st_rdev = rdev;
        }
        drop(state);
        if !self.uids.contains(st.st_uid) {
            st.st_uid = 0;
        }
        if !self.gids.contains(st.st_gid) {
            st.st_gid = 0;
        }
        st
    }

    /// An entry for the kernel, which takes a reference to the node.
    fn sent_entry(&self, node: Arc<Node>, st: stat64) -> Entry {
        let node = self.ov.inodes.hold(node);
        self.entry(&node, st)
    }

    fn entry(&self, node: &Node, st: stat64) -> Entry {
        Entry {
            inode: node.ino,
            generation: 0,
            attr: self.present(node, st),
            attr_flags: 0,
            attr_timeout: self.timeout,
            entry_timeout: self.timeout,
        }
    }

    /// The directory holding `node` in its top layer and its name there
    /// (`.` for the root), for the *at and l*xattr calls.
    fn parent_and_name(&self, node: &Node) -> io::Result<(Arc<OwnedFd>, CString)> {
        let place = self.ov.place(node)?;
        let dir = self.ov.layer_dir(place.top(), place.parent_ino, &place.parent)?;
        Ok((dir, place.name.unwrap_or_else(|| c".".to_owned())))
    }

    /// What a SETATTR changes: the file by its name, or, when no name leads
    /// to it any more (unlinked while open: the kernel still writes back
    /// its times and data), by the handle it came with, if that is the
    /// upper copy (a handle opened before a copy-up is the lower file).
    fn setattr_target(&self, node: &Node, handle_fd: Option<&Arc<OwnedFd>>) -> io::Result<Target> {
        match self.parent_and_name(node) {
            Ok((dir, name)) => Ok(Target::Named(dir, name)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && self.ov.in_upper(node) => {
                let upper_dev = self.ov.upper()?.dev;
                match handle_fd {
                    Some(fd) if stat_fd(fd.as_fd())?.st_dev == upper_dev => Ok(Target::Open(fd.clone())),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `f` with the path the l*xattr calls take for `ino`, copied up
    /// first when `f` changes it.
    fn with_xattr_path<T>(&self, ino: u64, change: bool, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
        let node = self.node(ino)?;
        if change {
            self.ov.copy_up(&node, true)?;
        }
        let _t = read(&self.ov.tree);
        let (dir, entry) = self.parent_and_name(&node)?;
        f(&proc_path(dir.as_fd(), Some(&entry)))
    }

    /// `setxattr user.hutch.owner UID:GID`: an owner the namespace cannot
    /// map (no subordinate ids), given the only way such an owner can be
    /// given here. Root of the namespace owns every file anyway, so this
    /// gives nothing `chown` would not give with subordinate ids.
    fn set_stored_owner(&self, ino: u64, value: &[u8]) -> io::Result<()> {
        let owner =
            std::str::from_utf8(value).ok().and_then(crate::layer::parse_owner).ok_or_else(|| errno(libc::EINVAL))?;
        let node = self.node(ino)?;
        self.ov.copy_up(&node, true)?;
        let _t = read(&self.ov.tree);
        let (dir, name) = self.parent_and_name(&node)?;
        let on_disk = stat_at(dir.as_fd(), &name)?.st_mode & libc::S_IFMT;
        let kept = self.ov.give_owner(dir.as_fd(), &name, on_disk, owner, false)?;
        node.state().owner = kept;
        Ok(())
    }

    fn create_entry(
        &self,
        ctx: &Context,
        parent: u64,
        name: &CStr,
        mode: u32,
        make: impl FnOnce(std::os::fd::BorrowedFd<'_>, &CStr, Mode) -> io::Result<Option<OwnedFd>>,
    ) -> io::Result<(Entry, Option<OwnedFd>)> {
        let (node, st, fd) = self.ov.create_entry(parent, name, (ctx.uid, ctx.gid), mode, make)?;
        Ok((self.sent_entry(node, st), fd))
    }
}

/// Whether a value of `len` bytes goes in a reply buffer of `size`: size 0
/// asks for the length only, a smaller buffer is ERANGE.
fn fits(len: usize, size: u32) -> io::Result<bool> {
    match size {
        0 => Ok(false),
        s if (s as usize) < len => Err(errno(libc::ERANGE)),
        _ => Ok(true),
    }
}

/// Our own xattrs and the kernel overlay's are not the container's business.
fn is_hidden_xattr(name: &[u8]) -> bool {
    name == OWNER_XATTR.as_bytes()
        || name == DEVICE_XATTR.as_bytes()
        || name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
}

fn time_of(sec: i64, nsec: i64, set: bool, now: bool) -> Timespec {
    match (set, now) {
        (_, true) => Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW as _ },
        (true, false) => Timespec { tv_sec: sec, tv_nsec: nsec as _ },
        (false, false) => Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT as _ },
    }
}

impl FileSystem for OverlayFs {
    type Inode = u64;
    type Handle = u64;

    /// HANDLE_KILLPRIV_V2: this server drops setuid, setgid and file
    /// capabilities when a write, truncate or chown asks it to
    /// (`Target::drop_privileges`), and the kernel, which would otherwise
    /// send a GETXATTR of `security.capability` before every write(2), asks
    /// once per file (its SB_NOSEC).
    fn init(&self, _capable: FsOptions) -> io::Result<FsOptions> {
        Ok(FsOptions::ASYNC_READ
            | FsOptions::BIG_WRITES
            | FsOptions::MAX_PAGES
            | FsOptions::PARALLEL_DIROPS
            | FsOptions::DO_READDIRPLUS
            | FsOptions::READDIRPLUS_AUTO
            | FsOptions::ATOMIC_O_TRUNC
            | FsOptions::CACHE_SYMLINKS
            | FsOptions::HANDLE_KILLPRIV_V2
            | if self.writeback { FsOptions::WRITEBACK_CACHE } else { FsOptions::empty() })
    }

    fn lookup(&self, _ctx: &Context, parent: u64, name: &CStr) -> io::Result<Entry> {
        match self.ov.lookup(parent, name) {
            Ok((node, st)) => Ok(self.sent_entry(node, st)),
            // Inode 0: a negative entry the kernel may keep (compilers probe
            // for many names that are not there); a name appears only
            // through this mount, which the kernel sees.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                Ok(Entry { entry_timeout: self.timeout, ..Entry::default() })
            }
            Err(e) => Err(e),
        }
    }

    fn forget(&self, _ctx: &Context, ino: u64, count: u64) {
        self.ov.inodes.forget([(ino, count)]);
    }

    fn batch_forget(&self, _ctx: &Context, requests: Vec<(u64, u64)>) {
        self.ov.inodes.forget(requests);
    }

    fn getattr(&self, _ctx: &Context, ino: u64, handle: Option<u64>) -> io::Result<(stat64, Duration)> {
        let node = self.node(ino)?;
        let st = match handle.and_then(|h| self.file(h).ok()) {
            Some(fd) => stat_fd(fd.as_fd())?,
            None => {
                let _t = read(&self.ov.tree);
                self.ov.stat(&node)?
            }
        };
        Ok((self.present(&node, st), self.timeout))
    }

    fn setattr(
        &self,
        _ctx: &Context,
        ino: u64,
        attr: stat64,
        handle: Option<u64>,
        valid: SetattrValid,
    ) -> io::Result<(stat64, Duration)> {
        let node = self.node(ino)?;
        let truncating_to_zero = valid.contains(SetattrValid::SIZE) && attr.st_size == 0;
        self.ov.copy_up(&node, !truncating_to_zero)?;
        let _t = read(&self.ov.tree);
        let handle_fd = handle.and_then(|h| self.file(h).ok());
        let target = self.setattr_target(&node, handle_fd.as_ref())?;
        let link = node.kind == libc::S_IFLNK;
        if valid.contains(SetattrValid::MODE) && !link {
            target.chmod(Mode::from_raw_mode(attr.st_mode & 0o7777))?;
        }
        if valid.intersects(SetattrValid::UID | SetattrValid::GID) {
            let Target::Named(dir, name) = &target else { return Err(errno(libc::ENOENT)) };
            let now = self.present(&node, self.ov.stat(&node)?);
            let uid = if valid.contains(SetattrValid::UID) { attr.st_uid } else { now.st_uid };
            let gid = if valid.contains(SetattrValid::GID) { attr.st_gid } else { now.st_gid };
            let on_disk = stat_at(dir.as_fd(), name)?.st_mode & libc::S_IFMT;
            let kept = self.ov.give_owner(dir.as_fd(), name, on_disk, (uid, gid), false)?;
            node.state().owner = kept;
        }
        if valid.contains(SetattrValid::SIZE) {
            let size = u64::try_from(attr.st_size).unwrap_or(0);
            match (&handle_fd, &target) {
                (Some(fd), _) | (None, Target::Open(fd)) => rustix::fs::ftruncate(fd, size)?,
                (None, Target::Named(dir, name)) => {
                    let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    rustix::fs::ftruncate(rustix::fs::openat(dir, name, flags, Mode::empty())?, size)?
                }
            }
        }
        if valid.intersects(SetattrValid::ATIME | SetattrValid::MTIME) {
            let times = Timestamps {
                last_access: time_of(
                    attr.st_atime,
                    attr.st_atime_nsec,
                    valid.contains(SetattrValid::ATIME),
                    valid.contains(SetattrValid::ATIME_NOW),
                ),
                last_modification: time_of(
                    attr.st_mtime,
                    attr.st_mtime_nsec,
                    valid.contains(SetattrValid::MTIME),
                    valid.contains(SetattrValid::MTIME_NOW),
                ),
            };
            match &target {
                Target::Named(dir, name) => rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?,
                Target::Open(fd) => rustix::fs::futimens(fd, &times)?,
            }
        }
        // A chown, or a truncate by a process without CAP_FSETID.
        if valid.contains(SetattrValid::KILL_SUIDGID) {
            target.drop_privileges()?;
        }
        Ok((self.present(&node, target.stat()?), self.timeout))
    }

    fn readlink(&self, _ctx: &Context, ino: u64) -> io::Result<Vec<u8>> {
        let node = self.node(ino)?;
        let _t = read(&self.ov.tree);
        let (dir, name) = self.parent_and_name(&node)?;
        Ok(rustix::fs::readlinkat(&dir, &name, Vec::new())?.into_bytes())
    }

    fn symlink(&self, ctx: &Context, target: &CStr, parent: u64, name: &CStr) -> io::Result<Entry> {
        let make = |work: std::os::fd::BorrowedFd<'_>, tmp: &CStr, _: Mode| {
            rustix::fs::symlinkat(target, work, tmp)?;
            Ok(None)
        };
        Ok(self.create_entry(ctx, parent, name, 0o777, make)?.0)
    }

    /// Fifos and sockets are made, and devices when the server may (as
    /// root of the initial namespace); otherwise a device becomes a
    /// placeholder, an empty file with the device in an xattr, shown as the
    /// device. (In a user namespace the kernel refuses a device `mknod`
    /// before asking the filesystem, so placeholders come from images.)
    fn mknod(&self, ctx: &Context, parent: u64, name: &CStr, mode: u32, rdev: u32, _umask: u32) -> io::Result<Entry> {
        let kind = mode & libc::S_IFMT;
        let make = |work: std::os::fd::BorrowedFd<'_>, tmp: &CStr, perm: Mode| {
            let file_type = rustix::fs::FileType::from_raw_mode(kind);
            match rustix::fs::mknodat(work, tmp, file_type, perm, rdev as u64) {
                Err(rustix::io::Errno::PERM) if kind == libc::S_IFCHR || kind == libc::S_IFBLK => {
                    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC;
                    let file = std::fs::File::from(rustix::fs::openat(work, tmp, flags, perm)?);
                    xattr::FileExt::set_xattr(&file, DEVICE_XATTR, device_value(kind, rdev as u64).as_bytes())?;
                }
                made => made?,
            }
            Ok(None)
        };
        Ok(self.create_entry(ctx, parent, name, mode, make)?.0)
    }

    fn mkdir(&self, ctx: &Context, parent: u64, name: &CStr, mode: u32, _umask: u32) -> io::Result<Entry> {
        let make = |work: std::os::fd::BorrowedFd<'_>, tmp: &CStr, perm: Mode| {
            rustix::fs::mkdirat(work, tmp, perm)?;
            Ok(None)
        };
        Ok(self.create_entry(ctx, parent, name, mode | libc::S_IFDIR, make)?.0)
    }

    fn unlink(&self, _ctx: &Context, parent: u64, name: &CStr) -> io::Result<()> {
        self.ov.remove(parent, name, false)
    }

    fn rmdir(&self, _ctx: &Context, parent: u64, name: &CStr) -> io::Result<()> {
        self.ov.remove(parent, name, true)
    }

    fn rename(
        &self,
        _ctx: &Context,
        olddir: u64,
        oldname: &CStr,
        newdir: u64,
        newname: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        self.ov.rename(olddir, oldname, newdir, newname, flags)
    }

    fn link(&self, _ctx: &Context, ino: u64, newparent: u64, newname: &CStr) -> io::Result<Entry> {
        let node = self.node(ino)?;
        let st = self.ov.link(&node, newparent, newname)?;
        Ok(self.sent_entry(node, st))
    }

    fn open(
        &self,
        _ctx: &Context,
        ino: u64,
        flags: u32,
        fuse_flags: u32,
    ) -> io::Result<(Option<u64>, OpenOptions, Option<u32>)> {
        let node = self.node(ino)?;
        let flags = flags.cast_signed();
        let truncate = flags & libc::O_TRUNC != 0;
        if flags & libc::O_ACCMODE != libc::O_RDONLY || truncate {
            self.ov.copy_up(&node, !truncate)?;
        }
        let _t = read(&self.ov.tree);
        // Dropped before the layer file is truncated: the truncate would
        // drop them itself (this server has no CAP_FSETID in the initial
        // namespace either) without this server seeing it, and the kernel
        // would keep showing the old mode.
        if truncate && fuse_flags & FOPEN_IN_KILL_SUIDGID != 0 && self.setattr_target(&node, None)?.drop_privileges()? {
            self.notifier.attributes_changed(ino);
        }
        let place = self.ov.place(&node)?;
        let oflags = self.layer_flags(flags, libc::O_TRUNC | libc::O_NOATIME);
        let fd = match self.ov.open_place(&place, oflags) {
            // A write-only file this server may not read (it lacks
            // CAP_DAC_OVERRIDE): opened as asked; the kernel's partial-page
            // writes through it then fail.
            Err(e) if e.raw_os_error() == Some(libc::EACCES) && flags & libc::O_ACCMODE == libc::O_WRONLY => {
                self.ov.open_place(&place, (oflags - OFlags::RDWR) | OFlags::WRONLY)?
            }
            opened => opened?,
        };
        // Layer files change only through this mount: the page cache stays valid.
        Ok((Some(self.add_file(fd)), OpenOptions::KEEP_CACHE, None))
    }

    fn create(
        &self,
        ctx: &Context,
        parent: u64,
        name: &CStr,
        args: CreateIn,
    ) -> io::Result<(Entry, Option<u64>, OpenOptions, Option<u32>)> {
        let oflags = self.layer_flags(args.flags.cast_signed(), 0) | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let make = |work: std::os::fd::BorrowedFd<'_>, tmp: &CStr, perm: Mode| {
            Ok(Some(rustix::fs::openat(work, tmp, oflags, perm)?))
        };
        let (entry, fd) = self.create_entry(ctx, parent, name, args.mode, make)?;
        let fd = fd.ok_or_else(|| errno(libc::EIO))?;
        Ok((entry, Some(self.add_file(fd)), OpenOptions::KEEP_CACHE, None))
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        _ctx: &Context,
        _ino: u64,
        handle: u64,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
        _lock_owner: Option<u64>,
        _flags: u32,
    ) -> io::Result<usize> {
        let fd = self.file(handle)?;
        with_file(fd.as_fd(), |f| w.write_from(f, size as usize, offset))
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        _ctx: &Context,
        ino: u64,
        handle: u64,
        r: &mut dyn ZeroCopyReader,
        size: u32,
        offset: u64,
        _lock_owner: Option<u64>,
        _delayed_write: bool,
        _flags: u32,
        fuse_flags: u32,
    ) -> io::Result<usize> {
        let fd = self.file(handle)?;
        // The kernel keeps the mode it had before the write.
        if fuse_flags & WRITE_KILL_PRIV != 0 && Target::Open(fd.clone()).drop_privileges()? {
            self.notifier.attributes_changed(ino);
        }
        with_file(fd.as_fd(), |f| r.read_to(f, size as usize, offset))
    }

    /// Nothing to flush (writes go straight to the layer file): ENOSYS
    /// makes the kernel stop sending FLUSH on every close.
    fn flush(&self, _ctx: &Context, _ino: u64, _handle: u64, _lock_owner: u64) -> io::Result<()> {
        Err(errno(libc::ENOSYS))
    }

    fn fsync(&self, _ctx: &Context, _ino: u64, datasync: bool, handle: u64) -> io::Result<()> {
        let fd = self.file(handle)?;
        if datasync {
            rustix::fs::fdatasync(fd.as_fd())?;
        } else {
            rustix::fs::fsync(fd.as_fd())?;
        }
        Ok(())
    }

    fn fallocate(&self, _ctx: &Context, _ino: u64, handle: u64, mode: u32, offset: u64, length: u64) -> io::Result<()> {
        let fd = self.file(handle)?;
        let flags = rustix::fs::FallocateFlags::from_bits_retain(mode);
        Ok(rustix::fs::fallocate(fd.as_fd(), flags, offset, length)?)
    }

    #[allow(clippy::too_many_arguments)]
    fn release(
        &self,
        _ctx: &Context,
        _ino: u64,
        _flags: u32,
        handle: u64,
        _flush: bool,
        _flock_release: bool,
        _lock_owner: Option<u64>,
    ) -> io::Result<()> {
        write(&self.files.0).remove(&handle);
        Ok(())
    }

    fn statfs(&self, _ctx: &Context, _ino: u64) -> io::Result<statvfs64> {
        statvfs_fd(self.ov.layers[0].root()) // the topmost layer: the upper when there is one
    }

    fn setxattr(&self, _ctx: &Context, ino: u64, name: &CStr, value: &[u8], flags: u32) -> io::Result<()> {
        if name.to_bytes() == OWNER_XATTR.as_bytes() {
            return self.set_stored_owner(ino, value);
        }
        if is_hidden_xattr(name.to_bytes()) {
            return Err(errno(libc::EPERM));
        }
        let flags = rustix::fs::XattrFlags::from_bits_retain(flags);
        self.with_xattr_path(ino, true, |path| Ok(rustix::fs::lsetxattr(path, name, value, flags)?))
    }

    fn getxattr(&self, _ctx: &Context, ino: u64, name: &CStr, size: u32) -> io::Result<GetxattrReply> {
        if is_hidden_xattr(name.to_bytes()) {
            return Err(errno(libc::ENODATA));
        }
        let name = std::ffi::OsStr::new(std::str::from_utf8(name.to_bytes()).map_err(|_| errno(libc::EINVAL))?);
        let value =
            self.with_xattr_path(ino, false, |path| xattr::get(path, name))?.ok_or_else(|| errno(libc::ENODATA))?;
        Ok(match fits(value.len(), size)? {
            true => GetxattrReply::Value(value),
            false => GetxattrReply::Count(u32::try_from(value.len()).map_err(|_| errno(libc::E2BIG))?),
        })
    }

    fn listxattr(&self, _ctx: &Context, ino: u64, size: u32) -> io::Result<ListxattrReply> {
        let mut names = Vec::new();
        for name in self.with_xattr_path(ino, false, |path| xattr::list(path))? {
            use std::os::unix::ffi::OsStrExt;
            if !is_hidden_xattr(name.as_bytes()) {
                names.extend_from_slice(name.as_bytes());
                names.push(0);
            }
        }
        Ok(match fits(names.len(), size)? {
            true => ListxattrReply::Names(names),
            false => ListxattrReply::Count(u32::try_from(names.len()).map_err(|_| errno(libc::E2BIG))?),
        })
    }

    fn removexattr(&self, _ctx: &Context, ino: u64, name: &CStr) -> io::Result<()> {
        if is_hidden_xattr(name.to_bytes()) {
            return Err(errno(libc::ENODATA));
        }
        self.with_xattr_path(ino, true, |path| Ok(rustix::fs::lremovexattr(path, name)?))
    }

    fn opendir(&self, _ctx: &Context, ino: u64, _flags: u32) -> io::Result<(Option<u64>, OpenOptions)> {
        if !self.node(ino)?.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        let h = self.next_handle.fetch_add(1, Ordering::Relaxed);
        write(&self.dirs).insert(h, Arc::new(DirHandle { ino, items: Mutex::new(None) }));
        Ok((Some(h), OpenOptions::empty()))
    }

    fn readdir(
        &self,
        _ctx: &Context,
        _ino: u64,
        handle: u64,
        _size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let dir = self.dir_handle(handle)?;
        let _t = read(&self.ov.tree);
        let (path, layers) = self.ov.dir_place(&*self.node(dir.ino)?)?;
        let items = self.listing(&dir, &path, &layers, offset)?;
        for (i, item) in items.iter().flatten().enumerate().skip(usize::try_from(offset).unwrap_or(usize::MAX)) {
            let type_ = item.kind >> 12;
            if add_entry(DirEntry { ino: item.ino, offset: i as u64 + 1, type_, name: item.name.to_bytes() })? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Each entry with its attributes; the directory's layers are opened
    /// once for the whole reply.
    fn readdirplus(
        &self,
        _ctx: &Context,
        _ino: u64,
        handle: u64,
        _size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let dir = self.dir_handle(handle)?;
        let _t = read(&self.ov.tree);
        let (path, layers) = self.ov.dir_place(&*self.node(dir.ino)?)?;
        let items = self.listing(&dir, &path, &layers, offset)?;
        let dirs = LayerDirs::new(&self.ov, dir.ino, &path, &layers);
        for (i, item) in items.iter().flatten().enumerate().skip(usize::try_from(offset).unwrap_or(usize::MAX)) {
            // Gone since the listing was taken: left out.
            let Ok((node, st)) = self.ov.lookup_in(dir.ino, &dirs, &item.name) else { continue };
            let dirent =
                DirEntry { ino: node.ino, offset: i as u64 + 1, type_: node.kind >> 12, name: item.name.to_bytes() };
            // Without a stat (a name still to link to a copied-up hardlink)
            // the entry carries no attributes: the kernel looks it up.
            let entry = st.map_or_else(Entry::default, |st| self.entry(&node, st));
            let added = add_entry(dirent, entry)?;
            if added == 0 {
                break;
            }
            if st.is_some() {
                self.ov.inodes.hold(node);
            }
        }
        Ok(())
    }

    fn fsyncdir(&self, _ctx: &Context, _ino: u64, _datasync: bool, _handle: u64) -> io::Result<()> {
        Ok(())
    }

    fn releasedir(&self, _ctx: &Context, _ino: u64, _flags: u32, handle: u64) -> io::Result<()> {
        write(&self.dirs).remove(&handle);
        Ok(())
    }

    fn lseek(&self, _ctx: &Context, _ino: u64, handle: u64, offset: u64, whence: u32) -> io::Result<u64> {
        let fd = self.file(handle)?;
        let pos = match whence.cast_signed() {
            libc::SEEK_DATA => rustix::fs::SeekFrom::Data(offset),
            libc::SEEK_HOLE => rustix::fs::SeekFrom::Hole(offset),
            libc::SEEK_SET => rustix::fs::SeekFrom::Start(offset),
            _ => return Err(errno(libc::EINVAL)),
        };
        Ok(rustix::fs::seek(fd.as_fd(), pos)?)
    }
}

impl OverlayFs {
    fn dir_handle(&self, handle: u64) -> io::Result<Arc<DirHandle>> {
        read(&self.dirs).get(&handle).cloned().ok_or_else(|| errno(libc::EBADF))
    }

    /// The handle's listing of directory `path` over `layers`, taken fresh
    /// when reading from offset 0, kept for the reads that follow. The
    /// caller holds the tree lock.
    fn listing<'a>(
        &self,
        dir: &'a DirHandle,
        path: &Path,
        layers: &[usize],
        offset: u64,
    ) -> io::Result<MutexGuard<'a, Option<Vec<Item>>>> {
        let mut items = lock(&dir.items);
        if offset == 0 || items.is_none() {
            *items = Some(self.ov.listing(path, layers)?);
        }
        Ok(items)
    }
}

/// The kernel's references and forgets, driven through the request
/// handlers as the kernel would call them (no mount needed).
#[cfg(test)]
mod forget_tests {
    use super::*;
    use crate::inode::ROOT;
    use crate::mount::{open_overlay, Config};
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    struct Layers(PathBuf);

    impl Layers {
        /// A lower layer made by `fill`, an empty upper and work directory.
        fn new(test: &str, fill: impl FnOnce(&Path)) -> Layers {
            let base = std::env::temp_dir().join(format!("fuse-overlay-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            for dir in ["lower", "upper", "work"] {
                std::fs::create_dir_all(base.join(dir)).unwrap();
            }
            fill(&base.join("lower"));
            Layers(base)
        }

        fn fs(&self) -> OverlayFs {
            let p = |d: &str| self.0.join(d);
            let config = Config::new(vec![p("lower")], Some(p("upper")), Some(p("work")));
            OverlayFs::new(open_overlay(&config).unwrap().0, Duration::from_secs(1), true, Notifier::new(None))
        }
    }

    impl Drop for Layers {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn lookup(fs: &OverlayFs, parent: u64, name: &CStr) -> u64 {
        fs.lookup(&Context::default(), parent, name).unwrap().inode
    }

    fn chmod(fs: &OverlayFs, ino: u64) {
        let (mut attr, _) = fs.getattr(&Context::default(), ino, None).unwrap();
        attr.st_mode = 0o600;
        fs.setattr(&Context::default(), ino, attr, None, SetattrValid::MODE).unwrap();
    }

    #[test]
    fn a_forgotten_node_leaves_the_table_and_comes_back_with_its_number() {
        let layers = Layers::new("forget", |l| {
            std::fs::create_dir(l.join("d")).unwrap();
            std::fs::write(l.join("d/f"), "lower").unwrap();
        });
        let fs = layers.fs();
        let d = lookup(&fs, ROOT, c"d");
        let f = lookup(&fs, d, c"f");
        assert_eq!(lookup(&fs, d, c"f"), f, "a second lookup: the same node, two references");
        assert_eq!(fs.ov.inodes.len(), 3);
        let held = fs.ov.inodes.get(f).unwrap();
        fs.forget(&Context::default(), f, 1);
        assert_eq!(fs.ov.inodes.len(), 3, "one reference is left");
        fs.batch_forget(&Context::default(), vec![(f, 1), (d, 1), (ROOT, 1)]);
        assert_eq!(fs.ov.inodes.len(), 2, "directories stay");
        assert!(fs.getattr(&Context::default(), f, None).is_err());
        // A lookup that raced the forget puts its node back.
        fs.ov.inodes.hold(held);
        assert_eq!(fs.ov.inodes.len(), 3);
        fs.forget(&Context::default(), f, 1);
        let d2 = lookup(&fs, ROOT, c"d");
        let f2 = lookup(&fs, d2, c"f");
        assert_eq!((d2, f2), (d, f), "the same numbers once looked up again");
        let (st, _) = fs.getattr(&Context::default(), f2, None).unwrap();
        assert_eq!((st.st_ino, st.st_size), (f, 5));
    }

    #[test]
    fn a_copied_up_hardlink_still_leads_its_other_names_to_the_copy() {
        let layers = Layers::new("pinned", |l| {
            std::fs::create_dir(l.join("a")).unwrap();
            std::fs::create_dir(l.join("b")).unwrap();
            std::fs::write(l.join("a/x"), "one").unwrap();
            std::fs::hard_link(l.join("a/x"), l.join("b/y")).unwrap();
        });
        let fs = layers.fs();
        let a = lookup(&fs, ROOT, c"a");
        let x = lookup(&fs, a, c"x");
        chmod(&fs, x);
        fs.batch_forget(&Context::default(), vec![(x, 1), (a, 1)]);
        let y = lookup(&fs, lookup(&fs, ROOT, c"b"), c"y");
        assert_eq!(y, x, "one inode");
        let upper = layers.0.join("upper");
        let ino = |p: &str| std::fs::metadata(upper.join(p)).unwrap().ino();
        assert_eq!(ino("b/y"), ino("a/x"), "the other name is linked to the copy");
    }
}
