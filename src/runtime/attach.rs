//! `hutch attach`: the caller's streams connected to a detached container
//! through its monitor's socket (`attach.sock` in the container's store
//! directory).
//!
//! Both directions carry frames: a kind byte, a big-endian u32 length and
//! the bytes. The monitor sends the container's output (kind 1 stdout, 2
//! stderr); hutch sends the caller's input (kind 0) and terminal sizes
//! (kind 3: rows and columns as big-endian u16). The monitor closes the
//! connection when the container ends. Ctrl-P Ctrl-Q detaches, as in Docker.

use super::terminal::{self, RawMode};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

pub const SOCKET: &str = "attach.sock";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const RESIZE: u8 = 3;

/// Frames larger than this are refused (a peer gone wrong).
const MAX_FRAME: usize = 1 << 20;

/// Ctrl-P then Ctrl-Q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// One frame, ready to write.
pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(kind);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Takes the whole frames off the front of `buf`.
pub fn take_frames(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 5 {
        let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("a frame of {len} bytes"));
        }
        if buf.len() - at - 5 < len {
            break;
        }
        frames.push((buf[at], buf[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    buf.drain(..at);
    Ok(frames)
}

/// How an attached session ended.
pub enum Ended {
    /// The container ended (its monitor closed the connection).
    Container,
    /// The user typed the detach keys.
    Detached,
}

/// Connects to the monitor's socket in `dir` and relays until the
/// container ends or the user detaches. `tty`: the container has a
/// terminal (the caller's goes raw, its size follows); `stdin`: the
/// caller's input is sent.
pub fn attach(dir: &Path, tty: bool, stdin: bool) -> io::Result<Ended> {
    // By descriptor: a store path can be longer than a socket address may be.
    let dir_fd = std::fs::File::open(dir)?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", std::os::fd::AsRawFd::as_raw_fd(&dir_fd));
    let mut socket = UnixStream::connect(&path)?;
    drop(dir_fd);
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    winch.thread_block().map_err(io::Error::from)?;
    let signals = SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let _raw = if tty { RawMode::enable() } else { None };
    if tty {
        send_size(&mut socket)?;
    }
    let mut stdin_open = stdin;
    let mut pending_escape = false;
    let mut inbuf = Vec::new();
    loop {
        let (from_socket, from_stdin, resized) = {
            let stdin_handle = io::stdin();
            let mut fds =
                vec![PollFd::new(socket.as_fd(), PollFlags::POLLIN), PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            if stdin_open {
                fds.push(PollFd::new(stdin_handle.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |f: &PollFd| f.any().unwrap_or(false);
            (ready(&fds[0]), stdin_open && ready(&fds[2]), ready(&fds[1]))
        };
        if resized {
            while let Ok(Some(_)) = signals.read_signal() {}
            send_size(&mut socket)?;
        }
        if from_stdin {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(io::stdin().as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let (input, detach) = split_detach_keys(&buf[..n], &mut pending_escape);
                    if !input.is_empty() {
                        socket.write_all(&frame(STDIN, &input))?;
                    }
                    if detach {
                        return Ok(Ended::Detached);
                    }
                }
            }
        }
        if from_socket {
            let mut buf = [0u8; 64 * 1024];
            let n = socket.read(&mut buf)?;
            if n == 0 {
                return Ok(Ended::Container);
            }
            inbuf.extend_from_slice(&buf[..n]);
            for (kind, data) in take_frames(&mut inbuf).map_err(io::Error::other)? {
                if kind == STDERR {
                    io::stderr().write_all(&data)?;
                } else {
                    let mut out = io::stdout().lock();
                    out.write_all(&data)?;
                    out.flush()?;
                }
            }
        }
    }
}

fn send_size(socket: &mut UnixStream) -> io::Result<()> {
    let Some((rows, cols)) = terminal::size_of(io::stdin().as_fd()) else { return Ok(()) };
    let mut size = rows.to_be_bytes().to_vec();
    size.extend_from_slice(&cols.to_be_bytes());
    socket.write_all(&frame(RESIZE, &size))
}

/// The input to send, and whether the detach keys were typed. A Ctrl-P
/// alone is held back until the next key shows whether Ctrl-Q follows.
fn split_detach_keys(input: &[u8], pending: &mut bool) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len() + 1);
    for &b in input {
        if *pending {
            *pending = false;
            if b == DETACH_KEYS[1] {
                return (out, true);
            }
            out.push(DETACH_KEYS[0]);
        }
        if b == DETACH_KEYS[0] {
            *pending = true;
        } else {
            out.push(b);
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_whole_and_in_order() {
        let mut buf = [frame(STDOUT, b"hello"), frame(STDERR, b""), frame(STDIN, b"x")].concat();
        let tail = buf.split_off(buf.len() - 3);
        assert_eq!(take_frames(&mut buf).unwrap(), vec![(STDOUT, b"hello".to_vec()), (STDERR, Vec::new())]);
        buf.extend(tail);
        assert_eq!(take_frames(&mut buf).unwrap(), vec![(STDIN, b"x".to_vec())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn ctrl_p_ctrl_q_detaches_and_a_lone_ctrl_p_is_typed() {
        let mut pending = false;
        assert_eq!(split_detach_keys(b"ls\x10", &mut pending), (b"ls".to_vec(), false));
        assert_eq!(split_detach_keys(b"\x11", &mut pending), (Vec::new(), true));
        let mut pending = false;
        assert_eq!(split_detach_keys(b"\x10a", &mut pending), (b"\x10a".to_vec(), false));
    }
}
