//! The only `unsafe` of netstack: forking the namespace's holder, the
//! helpers' pre-exec set-up, and the interface ioctls nix does not wrap
//! safely. Each block says why it is sound.
#![allow(unsafe_code)]

use crate::Error;
use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use nix::unistd::ForkResult;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Forks, after checking that this process has a single thread: a child
/// of a threaded process may inherit a lock some other thread held.
pub fn fork() -> Result<ForkResult, Errno> {
    if thread_count() > 1 {
        return Err(Errno::EDEADLK);
    }
    // SAFETY: the process has one thread (checked above), so the child
    // inherits no lock held by another thread and may run any code.
    unsafe { nix::unistd::fork() }
}

/// This process's threads, from field 20 of /proc/self/stat (1 when /proc
/// cannot tell).
fn thread_count() -> usize {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 1 };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().nth(17).and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// Ends a forked child at once, without the parent's destructors or
/// atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// A helper starts as a fresh process would: `inherited` descriptors kept
/// at their numbers, no signal blocked, SIGPIPE at its default, killed
/// when its parent dies.
pub fn prepare_exec(cmd: &mut Command, inherited: Vec<RawFd>) {
    // SAFETY: fcntl, sigprocmask, signal and prctl are async-signal-safe;
    // the descriptors stay open in the parent until spawn returns; a zeroed
    // sigset_t is valid storage for sigemptyset.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &inherited {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// IFF_UP | IFF_RUNNING (0x41) as ifreq's short flags.
const UP_AND_RUNNING: libc::c_short = 0x41;
const _: () = assert!(UP_AND_RUNNING as libc::c_int == libc::IFF_UP | libc::IFF_RUNNING);

nix::ioctl_read_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Sets IFF_UP on `lo` of the calling thread's network namespace.
pub fn bring_up_loopback() -> Result<(), Error> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|source| Error::Loopback { op: "socket", source })?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    // SAFETY: `sock` is an open socket and `req` a valid ifreq naming "lo";
    // SIOCGIFFLAGS fills ifru_flags.
    unsafe { get_interface_flags(sock.as_raw_fd(), &mut req) }
        .map_err(|source| Error::Loopback { op: "SIOCGIFFLAGS", source })?;
    // SAFETY: ifru_flags is the union member SIOCGIFFLAGS just wrote.
    unsafe { req.ifr_ifru.ifru_flags |= UP_AND_RUNNING };
    // SAFETY: as above; SIOCSIFFLAGS only reads the request.
    unsafe { set_interface_flags(sock.as_raw_fd(), &req) }
        .map_err(|source| Error::Loopback { op: "SIOCSIFFLAGS", source })?;
    Ok(())
}
