//! hutch's own TCP port forwarder, for slirp4netns: its `add_hostfwd`
//! carries every byte through slirp's user-mode TCP stack (~0.5× podman,
//! whose rootlesskit forwarder splices sockets). Here the listening socket
//! is made in the host's network namespace before the container's exists;
//! the process that then creates the container's namespace keeps it,
//! accepts, connects to the container from inside its namespace, and
//! splices the two sockets through a pipe: the bytes never leave the kernel.

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::unistd::pipe2;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;

/// A host listener and the container port it leads to.
pub struct TcpForward {
    pub listener: TcpListener,
    pub container_port: u16,
}

/// Serves every forward on its own thread; returns at once. Call inside
/// the container's network namespace, `target` being the container's
/// address there (as Docker, loopback-only servers are not reachable).
pub(crate) fn serve(forwards: Vec<TcpForward>, target: IpAddr) {
    for forward in forwards {
        std::thread::spawn(move || {
            let to = SocketAddr::new(target, forward.container_port);
            for client in forward.listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    if let Ok(server) = TcpStream::connect(to) {
                        relay(client, server);
                    }
                });
            }
        });
    }
}

/// Both directions until each ends; a half-close is passed on.
fn relay(a: TcpStream, b: TcpStream) {
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (a2, b2) = (a.clone(), b.clone());
    let back = std::thread::spawn(move || pump(&b2, &a2));
    pump(&a, &b);
    let _ = back.join();
}

/// Splices `from` into `to` until end of stream or an error.
fn pump(from: &TcpStream, to: &TcpStream) {
    const CHUNK: usize = 1 << 20;
    if let Ok((pipe_r, pipe_w)) = pipe2(OFlag::O_CLOEXEC) {
        // A larger pipe moves more per splice (64 KiB by default); the
        // kernel caps it at fs.pipe-max-size, and failing is harmless.
        let _ = fcntl(&pipe_w, FcntlArg::F_SETPIPE_SZ(i32::try_from(CHUNK).unwrap_or(i32::MAX)));
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
        'copy: loop {
            let mut pending = match splice(from.as_fd(), None, pipe_w.as_fd(), None, CHUNK, flags) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while pending > 0 {
                match splice(pipe_r.as_fd(), None, to.as_fd(), None, pending, flags) {
                    Ok(0) | Err(_) => break 'copy,
                    Ok(n) => pending -= n,
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
