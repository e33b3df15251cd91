//! The detached monitor's side of `hutch attach`: a socket in the
//! container's store directory that hands out the container's output as it
//! comes and takes input for its stdin (with `-i`) and sizes for its
//! terminal (with `-t`). Frames as in `runtime::attach`.
//!
//! The monitor never waits for a client: sockets and the container's input
//! are non-blocking, a client that cannot keep up is dropped, and input the
//! container does not read is discarded.

use crate::containers::log::Stream;
use crate::runtime::attach::{frame, take_frames, RESIZE, SOCKET, STDERR, STDIN, STDOUT};
use crate::runtime::terminal_resize;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

pub(super) struct AttachServer {
    listener: Option<(UnixListener, PathBuf)>,
    clients: Vec<Client>,
    /// Where clients' input goes: the stdin pipe (`-i`) or the terminal.
    input: Option<OwnedFd>,
    /// The container's terminal, for size changes.
    terminal: Option<OwnedFd>,
}

struct Client {
    socket: UnixStream,
    inbuf: Vec<u8>,
}

impl AttachServer {
    /// Listens in `dir` (the container's store directory), when given.
    pub(super) fn new(
        dir: Option<&std::path::Path>,
        input: Option<OwnedFd>,
        terminal: Option<OwnedFd>,
    ) -> AttachServer {
        if let Some(fd) = &input {
            let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        let listener = dir.and_then(|dir| {
            let path = dir.join(SOCKET);
            let _ = std::fs::remove_file(&path); // left by a killed monitor
            let dir_fd = std::fs::File::open(dir).ok()?;
            // By descriptor: a store path can be longer than a socket address may be.
            let listener = UnixListener::bind(format!("/proc/self/fd/{}/{SOCKET}", dir_fd.as_raw_fd())).ok()?;
            listener.set_nonblocking(true).ok()?;
            Some((listener, path))
        });
        AttachServer { listener, clients: Vec::new(), input, terminal }
    }

    /// What to poll: the listener, then each client.
    pub(super) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let listener = self.listener.as_ref().map(|(l, _)| l.as_fd());
        listener.into_iter().chain(self.clients.iter().map(|c| c.socket.as_fd())).collect()
    }

    /// Serves what poll found ready (flags in the order of `fds`).
    pub(super) fn serve(&mut self, ready: &[bool]) {
        let mut ready = ready.iter().copied();
        if self.listener.is_some() && ready.next().unwrap_or(false) {
            self.accept();
        }
        let ready: Vec<bool> = ready.collect();
        let mut i = 0;
        let mut clients = std::mem::take(&mut self.clients);
        clients.retain_mut(|client| {
            let was_ready = ready.get(i).copied().unwrap_or(false);
            i += 1;
            !was_ready || self.read_client(client)
        });
        clients.append(&mut self.clients);
        self.clients = clients;
    }

    fn accept(&mut self) {
        let Some((listener, _)) = &self.listener else { return };
        while let Ok((socket, _)) = listener.accept() {
            if socket.set_nonblocking(true).is_ok() {
                self.clients.push(Client { socket, inbuf: Vec::new() });
            }
        }
    }

    /// Reads a client's frames; false when it is gone.
    fn read_client(&mut self, client: &mut Client) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match client.socket.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => client.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        let Ok(frames) = take_frames(&mut client.inbuf) else { return false };
        for (kind, data) in frames {
            match (kind, data.as_slice()) {
                (STDIN, data) => self.write_input(data),
                (RESIZE, [r0, r1, c0, c1]) => {
                    if let Some(terminal) = &self.terminal {
                        terminal_resize(
                            terminal.as_fd(),
                            u16::from_be_bytes([*r0, *r1]),
                            u16::from_be_bytes([*c0, *c1]),
                        );
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn write_input(&self, mut data: &[u8]) {
        let Some(input) = &self.input else { return };
        while !data.is_empty() {
            match nix::unistd::write(input, data) {
                Ok(n) => data = &data[n..],
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return, // full or closed: the container is not reading
            }
        }
    }

    /// Sends output to every client; a client that cannot take it is dropped.
    pub(super) fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let frame = frame(if stream == Stream::Stderr { STDERR } else { STDOUT }, data);
        self.clients.retain_mut(|c| write_whole(&mut c.socket, &frame));
    }
}

/// Writes a whole frame to a non-blocking socket, waiting a little for room:
/// a client that stays full for a second is dropped.
fn write_whole(socket: &mut UnixStream, mut data: &[u8]) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !data.is_empty() {
        match socket.write(data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}
