//! The only `unsafe` of the crate: the few calls whose results fuse-backend-rs
//! wants as libc structs (`stat64`, `statvfs64`), and lending a borrowed
//! descriptor to its `File`-based zero-copy I/O.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: never follows a symlink.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat64> {
    let mut st = MaybeUninit::<libc::stat64>::uninit();
    // SAFETY: `name` is NUL-terminated, `dir` is a live descriptor and `st`
    // is writable memory of the struct's size; it is read only on success.
    let r = unsafe { libc::fstatat64(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r == 0 {
        // SAFETY: fstatat64 returned 0, so it filled the whole struct.
        Ok(unsafe { st.assume_init() })
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fstat` of a descriptor (an O_PATH one included).
pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<libc::stat64> {
    let mut st = MaybeUninit::<libc::stat64>::uninit();
    // SAFETY: a live descriptor and a struct-sized buffer read only on success.
    let r = unsafe { libc::fstat64(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r == 0 {
        // SAFETY: fstat64 returned 0, so it filled the whole struct.
        Ok(unsafe { st.assume_init() })
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fstatvfs` of a descriptor.
pub fn statvfs_fd(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs64> {
    let mut st = MaybeUninit::<libc::statvfs64>::uninit();
    // SAFETY: a live descriptor and a struct-sized buffer read only on success.
    let r = unsafe { libc::fstatvfs64(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r == 0 {
        // SAFETY: fstatvfs64 returned 0, so it filled the whole struct.
        Ok(unsafe { st.assume_init() })
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `f` with a `File` view of a descriptor owned elsewhere: the
/// zero-copy readers and writers of fuse-backend-rs take `&mut File`, and a
/// `dup` per read or write would cost a system call each time.
pub fn with_file<R>(fd: BorrowedFd<'_>, f: impl FnOnce(&mut File) -> R) -> R {
    // SAFETY: the descriptor stays open for the borrow's lifetime, which
    // covers this call, and ManuallyDrop keeps the view from closing it.
    let mut file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd.as_raw_fd()) });
    f(&mut file)
}

/// Ends the process at once: no destructors, no thread joined. The kernel
/// closes every descriptor in one go, so the layers are let go of as soon
/// after an unmount as it allows.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}
