//! The few system calls nix does not wrap, each fenced and explained here so
//! the rest of hutch stays free of `unsafe` (the workspace lints deny it
//! everywhere else).
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Which side of a fork the caller is on.
#[derive(Debug)]
pub enum Forked {
    /// The original process; `child` is the new one.
    Parent { child: nix::unistd::Pid },
    /// The new process.
    Child,
}

#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error(
        "fork: this process runs {0} threads; hutch forks only while it has one (a bug in hutch: please report it)"
    )]
    Threaded(usize),
    #[error("fork: {0}")]
    Fork(Errno),
}

/// Forks, after checking that this process has a single thread: a child of
/// a threaded process may inherit a lock some other thread held, and hang
/// in the allocator. Every fork in hutch goes through here.
pub fn fork() -> Result<Forked, ForkError> {
    single_threaded()?;
    // SAFETY: the process has one thread (checked above), so the child
    // inherits no lock held by another thread and may run any code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent { child }),
        Err(errno) => Err(ForkError::Fork(errno)),
    }
}

/// Forks a child that is the first process (PID 1) of a new PID
/// namespace. Unlike `unshare(CLONE_NEWPID)` followed by `fork`, the
/// caller can do it again for each new container process (a restart):
/// unshare works once per process.
pub fn fork_into_new_pid_namespace() -> Result<Forked, ForkError> {
    single_threaded()?;
    let flags = libc::c_ulong::try_from(libc::CLONE_NEWPID | libc::SIGCHLD).unwrap_or_default();
    // SAFETY: clone with no new stack (0) and no CLONE_VM, CLONE_SETTLS or
    // *_TID flags behaves as fork: the child gets a copy of the caller's
    // memory and continues here on its own copy of the stack; the pointer
    // arguments are unused for these flags. The process has one thread
    // (checked above), so the child inherits no lock another thread held.
    // glibc keeps no pid cache that a raw clone could leave stale (since 2.25).
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        0 => Ok(Forked::Child),
        -1 => Err(ForkError::Fork(Errno::last())),
        pid => Ok(Forked::Parent { child: nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(-1)) }),
    }
}

/// Every fork's precondition: one thread (see [`fork`]).
fn single_threaded() -> Result<(), ForkError> {
    match thread_count() {
        threads if threads > 1 => Err(ForkError::Threaded(threads)),
        _ => Ok(()),
    }
}

/// This process's threads, from field 20 of /proc/self/stat (1 when /proc
/// cannot tell: the fork itself is then the only check).
fn thread_count() -> usize {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 1 };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().nth(17).and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// Ends the process at once, without running destructors or atexit
/// handlers: right for forked children, whose copies of the parent's
/// buffers and state must not be flushed twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Asks the kernel to SIGKILL this process when its parent exits, and exits
/// at once if the parent is already gone (the race prctl leaves open).
pub fn die_with_parent() {
    let parent = nix::unistd::getppid();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        exit_now(crate::EXIT_HUTCH_ERROR);
    }
}

/// Whether capabilities survive a change from uid 0 to another uid.
pub fn keep_capabilities(keep: bool) -> Result<(), Errno> {
    nix::sys::prctl::set_keepcaps(keep)
}

/// No execve of this process or its children can gain privileges (setuid
/// bits and file capabilities are ignored). Irreversible.
pub fn set_no_new_privs() -> Result<(), Errno> {
    nix::sys::prctl::set_no_new_privs()
}

/// Marks every descriptor from `first` up close-on-exec, so a container
/// process inherits only its standard streams (and what is passed on purpose).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes flags of this process's descriptors.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    Errno::result(r).map(drop)
}

/// Restores the default disposition of every signal and unblocks them all:
/// ignored signals (Rust ignores SIGPIPE) and the mask survive execve, and a
/// container process must start as if from a fresh shell.
pub fn reset_signals() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL involves no handler code.
            let _ = unsafe { sigaction(sig, &default) };
        }
    }
    let _ = SigSet::all().thread_unblock();
}

/// Which mounts a change reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The mount alone.
    Mount,
    /// The mount and every mount below it.
    Tree,
}

/// Mount attributes a bind mount can be given after it is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountAttrs {
    pub readonly: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl MountAttrs {
    pub fn is_empty(self) -> bool {
        self == MountAttrs::default()
    }
    fn bits(self) -> u64 {
        let mut bits = 0;
        if self.readonly {
            bits |= libc::MOUNT_ATTR_RDONLY;
        }
        if self.nosuid {
            bits |= libc::MOUNT_ATTR_NOSUID;
        }
        if self.nodev {
            bits |= libc::MOUNT_ATTR_NODEV;
        }
        if self.noexec {
            bits |= libc::MOUNT_ATTR_NOEXEC;
        }
        bits
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets `attrs` on the mount `mount` refers to (and every mount below it when
/// `recursive`), leaving its other flags as they are: unlike a remount, this
/// never trips over the flags the kernel locks on mounts from the host.
pub fn set_mount_attrs(mount: BorrowedFd<'_>, attrs: MountAttrs, depth: Depth) -> Result<(), Errno> {
    let attr = MountAttr { attr_set: attrs.bits(), attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH | if depth == Depth::Tree { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid struct mount_attr (MOUNT_ATTR_SIZE_VER0) that
    // outlives the call; the path is an empty NUL-terminated string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// A descriptor that turns readable when process `pid` ends (pidfd_open):
/// waiting for a process that is not a child, without polling /proc.
pub fn pidfd_open(pid: i32) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and touches no memory.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Whether descriptor `fd` is open in this process.
pub fn fd_is_open(fd: u32) -> bool {
    let Ok(fd) = i32::try_from(fd) else { return false };
    // SAFETY: F_GETFD only reads the descriptor's flags; an fd that is not
    // open gives EBADF, and no memory is touched.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// The caller's standard stream number `n` (0, 1 or 2).
pub fn standard_stream(n: u8) -> BorrowedFd<'static> {
    let fd = i32::from(n.min(2));
    // SAFETY: hutch never closes its standard streams, so descriptors 0-2
    // stay open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of a descriptor the kernel installed in this process
/// for us (SCM_RIGHTS).
pub fn own_received_fd(raw: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel just installed `raw` in this process for the
    // caller, who received it; nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) }
}

nix::ioctl_write_int_bad!(ioctl_set_controlling_terminal, libc::TIOCSCTTY);
nix::ioctl_read_bad!(ioctl_get_window_size, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(ioctl_set_window_size, libc::TIOCSWINSZ, libc::winsize);

/// Makes terminal `fd` the controlling terminal of this session.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: `fd` is open for the call; TIOCSCTTY takes an int flag.
    unsafe { ioctl_set_controlling_terminal(fd.as_raw_fd(), 0) }.map(drop)
}

/// The size of terminal `fd`, as (rows, columns).
pub fn window_size(fd: BorrowedFd<'_>) -> Result<(u16, u16), Errno> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: `fd` is open for the call; TIOCGWINSZ fills the valid `ws`.
    unsafe { ioctl_get_window_size(fd.as_raw_fd(), &mut ws) }?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Sets the size of terminal `fd`.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: `fd` is open for the call; TIOCSWINSZ only reads `ws`.
    unsafe { ioctl_set_window_size(fd.as_raw_fd(), &ws) }.map(drop)
}

/// Loads a classic BPF seccomp program, as libseccomp exports it (an array
/// of `struct sock_filter` in native byte order), into this process. The
/// kernel checks the program; the caller has no_new_privs or
/// CAP_SYS_ADMIN.
pub fn load_seccomp_program(program: &[u8]) -> Result<(), Errno> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    if program.is_empty() || !program.len().is_multiple_of(INSN) {
        return Err(Errno::EINVAL);
    }
    let filters: Vec<libc::sock_filter> = program
        .chunks_exact(INSN)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect();
    let len = u16::try_from(filters.len()).map_err(|_| Errno::E2BIG)?;
    let prog = libc::sock_fprog { len, filter: filters.as_ptr().cast_mut() };
    // SAFETY: `prog` points at `len` initialized instructions that live
    // until the call returns; the kernel copies the program and does not
    // write through the pointer.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, std::ptr::from_ref(&prog)) };
    Errno::result(r).map(drop)
}
