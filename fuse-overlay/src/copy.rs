//! Copying one layer entry to another place: data (holes kept) and metadata
//! (owner, xattrs, mode, times — in that order, since a chown clears setuid
//! bits and file capabilities).

use crate::layer::proc_path;
use rustix::fs::{copy_file_range, seek, AtFlags, Gid, Mode, SeekFrom, Timespec, Timestamps, Uid};
use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;

/// The kernel overlay's private xattrs: meaningless in our upper layer.
fn is_private_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Copies the bytes of `src` to `dst` (both regular files), skipping holes,
/// so a sparse file stays sparse.
pub fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let mut offset = 0;
    while offset < size {
        let data = match seek(src, SeekFrom::Data(offset)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => break,   // only a hole is left
            Err(rustix::io::Errno::INVAL) => offset, // no SEEK_DATA here: copy everything
            Err(e) => return Err(e.into()),
        };
        let hole = seek(src, SeekFrom::Hole(data)).unwrap_or(size).min(size);
        copy_range(src, dst, data, hole)?;
        offset = hole;
    }
    rustix::fs::ftruncate(dst, size)?;
    Ok(())
}

fn copy_range(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, start: u64, end: u64) -> io::Result<()> {
    let (mut off_in, mut off_out) = (start, start);
    while off_in < end {
        let want = usize::try_from(end - off_in).unwrap_or(usize::MAX).min(1 << 30);
        match copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)), // the file shrank under us
            Ok(_) => {}
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                return copy_range_by_buffer(src, dst, off_in, end)
            }
            Err(e) => return Err(e.into()),
        }
        off_out = off_in;
    }
    Ok(())
}

fn copy_range_by_buffer(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, mut offset: u64, end: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while offset < end {
        let want = usize::try_from(end - offset).unwrap_or(usize::MAX).min(buf.len());
        let n = rustix::io::pread(src, &mut buf[..want], offset)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let mut done = 0;
        while done < n {
            done += rustix::io::pwrite(dst, &buf[done..n], offset + done as u64)?;
        }
        offset += n as u64;
    }
    Ok(())
}

/// Gives `dst_name` in `dst_dir` the owner, xattrs, mode and times `src`
/// has (`st` is its stat).
pub fn copy_metadata(
    src_dir: BorrowedFd<'_>,
    src_name: &CStr,
    st: &libc::stat64,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
) -> io::Result<()> {
    let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
    // An id the namespace does not map cannot be given; the owner xattr,
    // copied below, is what keeps such owners.
    match rustix::fs::chownat(
        dst_dir,
        dst_name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    if !is_link {
        copy_xattrs(src_dir, src_name, dst_dir, dst_name)?;
        rustix::fs::chmodat(dst_dir, dst_name, Mode::from_raw_mode(st.st_mode & 0o7777), AtFlags::empty())?;
    }
    let times = Timestamps {
        last_access: Timespec { tv_sec: st.st_atime, tv_nsec: st.st_atime_nsec as _ },
        last_modification: Timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec as _ },
    };
    rustix::fs::utimensat(dst_dir, dst_name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn copy_xattrs(src_dir: BorrowedFd<'_>, src_name: &CStr, dst_dir: BorrowedFd<'_>, dst_name: &CStr) -> io::Result<()> {
    let (src, dst) = (proc_path(src_dir, Some(src_name)), proc_path(dst_dir, Some(dst_name)));
    let names = match xattr::list(&src) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        use std::os::unix::ffi::OsStrExt;
        if is_private_xattr(name.as_bytes()) {
            continue;
        }
        let Some(value) = xattr::get(&src, &name)? else { continue };
        match xattr::set(&dst, &name, &value) {
            Ok(()) => {}
            // security.* and trusted.* the namespace may not set: the kernel
            // overlay drops them the same way.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
