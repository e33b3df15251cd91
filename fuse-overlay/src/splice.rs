//! READ replies spliced from the layer file to `/dev/fuse`.
//!
//! fuse-backend-rs answers a read by copying the data into its buffer and
//! out again with `writev`; profiles show that second copy as most of a
//! sequential read. Spliced, the data goes from the layer's page cache to
//! the FUSE page cache in one kernel copy (fuse-overlayfs does the same
//! through libfuse). The reply must reach the device in one write, header
//! first, and its length is known only once the data is in a pipe, so two
//! pipes are used: the data is spliced into one, the header written into the
//! other, the data moved behind it (page references, not bytes) and the
//! whole reply spliced to the device.
//!
//! Only plain reads of open files are answered here; anything else (another
//! request, a read larger than the pipes, a read that fails before any data)
//! goes to the server as before.

use crate::fs::OpenFiles;
use fuse_backend_rs::abi::fuse_abi::{InHeader, Opcode, ReadIn};
use fuse_backend_rs::transport::Reader;
use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

/// Pipe capacity: the kernel's read-ahead asks 128 KiB at a time; 256 KiB
/// also takes an unaligned 128 KiB read and its header. Small enough that a
/// user running many containers stays under `pipe-user-pages-soft`.
const PIPE_SIZE: usize = 256 * 1024;
/// The FUSE reply header: len, error, unique.
const OUT_HEADER: usize = 16;

/// One per server thread, with its pipes.
pub struct SpliceReplier {
    files: Arc<OpenFiles>,
    pipes: Option<Pipes>,
}

struct Pipes {
    data: (OwnedFd, OwnedFd),
    reply: (OwnedFd, OwnedFd),
    /// Largest read that fits: the capacity the kernel granted, less a page
    /// for the header and one for an unaligned start.
    max_read: usize,
}

impl Pipes {
    fn new() -> io::Result<Pipes> {
        let data = pipe_with(PipeFlags::CLOEXEC)?;
        let reply = pipe_with(PipeFlags::CLOEXEC)?;
        // Over the user's pipe quota the kernel refuses a bigger pipe; the
        // default one still serves small reads.
        let grant = |w: &OwnedFd| fcntl_setpipe_size(w, PIPE_SIZE).unwrap_or(16 * 4096);
        let capacity = grant(&data.1).min(grant(&reply.1));
        Ok(Pipes { data, reply, max_read: capacity.saturating_sub(2 * 4096) })
    }
}

impl SpliceReplier {
    pub fn new(files: Arc<OpenFiles>) -> SpliceReplier {
        SpliceReplier { files, pipes: None }
    }

    /// Answers `request` on `device`, the descriptor that read it (a cloned
    /// device has its own queue of requests), when it is a read this path
    /// can serve; false leaves it to the server.
    pub fn try_reply(&mut self, request: &Reader<'_>, device: &File) -> bool {
        let mut r = request.clone();
        let Ok(header) = r.read_obj::<InHeader>() else { return false };
        if header.opcode != Opcode::Read as u32 {
            return false;
        }
        let Ok(read) = r.read_obj::<ReadIn>() else { return false };
        let Some(file) = self.files.get(read.fh) else { return false };
        if self.pipes.is_none() {
            self.pipes = Pipes::new().ok();
        }
        let Some(pipes) = &self.pipes else { return false };
        if read.size as usize > pipes.max_read {
            return false;
        }
        match reply(pipes, file.as_fd(), device, header.unique, read.offset, read.size as usize) {
            Ok(()) => true,
            // The pipes may hold part of a reply: start the next with new
            // ones, and let the server answer this request its own way.
            Err(_) => {
                self.pipes = None;
                false
            }
        }
    }
}

/// Sends the reply. An error means nothing was sent and the pipes may hold
/// data: the caller replaces them and leaves the request to the server.
fn reply(
    pipes: &Pipes,
    file: std::os::fd::BorrowedFd<'_>,
    device: &File,
    unique: u64,
    offset: u64,
    size: usize,
) -> io::Result<()> {
    let mut at = offset;
    let mut got = 0;
    // Splices into the pipes never wait (NONBLOCK): data that starts
    // mid-page takes more pipe slots than its pages, so a pipe can fill
    // before `size`, and a blocked server thread would hang the reader.
    while got < size {
        match splice(file, Some(&mut at), &pipes.data.1, None, size - got, SpliceFlags::NONBLOCK) {
            // End of file: a short read, as pread gives.
            Ok(0) => break,
            Ok(n) => got += n,
            // Not a short reply either: the kernel would take it for the
            // end of the file. The server reads it again its own way.
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::try_from(OUT_HEADER + got).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut header = [0u8; OUT_HEADER];
    header[..4].copy_from_slice(&len.to_ne_bytes());
    header[8..].copy_from_slice(&unique.to_ne_bytes());
    if rustix::io::write(&pipes.reply.1, &header)? != OUT_HEADER {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    let mut moved = 0;
    while moved < got {
        moved += splice(&pipes.data.0, None, &pipes.reply.1, None, got - moved, SpliceFlags::NONBLOCK)?;
    }
    let sent = splice(&pipes.reply.0, None, device, None, OUT_HEADER + got, SpliceFlags::empty())?;
    if sent != OUT_HEADER + got {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}
