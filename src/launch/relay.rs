//! Copying between the caller's standard streams and the container's.
//!
//! With `-t` the container has a terminal of its own and hutch copies its
//! master side. Without `-t` the container never holds the caller's
//! terminal: an open descriptor of it would let the container change its
//! settings, resize it, or read what is typed to other programs. Each of
//! the caller's streams that is a terminal is replaced by a pipe that hutch
//! copies; files and pipes are passed on as they are, at no cost, unless
//! the container's output is also logged (a kept container: `hutch logs`
//! shows foreground runs too), when stdout and stderr always go through
//! pipes that hutch copies to the caller and to the log.

use crate::containers::log::{self, LogWriter};
use crate::runtime::StdioMode;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, isatty, pipe2, read};
use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

/// The caller's standard stream number `n` (0, 1 or 2).
fn caller_stream(n: u8) -> BorrowedFd<'static> {
    crate::sys::standard_stream(n)
}

/// One end of a copy: one of the caller's standard streams, or a
/// descriptor hutch owns (a pipe end, the terminal master).
enum End {
    Caller(u8),
    Ours(Rc<OwnedFd>),
}

impl End {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            End::Caller(n) => caller_stream(*n),
            End::Ours(fd) => fd.as_fd(),
        }
    }
}

/// The container's log, shared by the streams that feed it.
pub(super) type Log = Rc<RefCell<LogWriter>>;

/// Copies what `from` yields to `to` (and to the log as `log`'s stream),
/// until `from` ends.
pub(super) struct Stream {
    from: End,
    to: End,
    log: Option<(Log, log::Stream)>,
}

/// What became of a copy step.
#[derive(PartialEq)]
pub(super) enum Copied {
    More,
    /// The source ended or the destination is gone: drop the stream (which
    /// closes a pipe end of ours, so the reader sees end-of-file).
    Done,
}

impl Stream {
    pub(super) fn source(&self) -> BorrowedFd<'_> {
        self.from.fd()
    }

    /// Whether this stream carries the container's output (drained at exit).
    pub(super) fn is_output(&self) -> bool {
        !matches!(self.from, End::Caller(0))
    }

    /// One read from the source (which poll said is ready), written in full.
    pub(super) fn copy(&self) -> Copied {
        let mut buf = [0u8; 16 * 1024];
        match read(self.from.fd(), &mut buf) {
            Ok(0) => Copied::Done,
            Ok(n) => {
                if let Some((log, stream)) = &self.log {
                    let _ = log.borrow_mut().write(*stream, &buf[..n]);
                }
                write_all(self.to.fd(), &buf[..n])
            }
            Err(Errno::EINTR | Errno::EAGAIN) => Copied::More,
            // EIO: every slave of the terminal is closed.
            Err(_) => Copied::Done,
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> Copied {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(_) => return Copied::Done,
        }
    }
    Copied::More
}

/// The copies between the container's terminal master and the caller.
pub(super) fn terminal_streams(master: OwnedFd, interactive: bool, log: Option<Log>) -> (Rc<OwnedFd>, Vec<Stream>) {
    let master = Rc::new(master);
    let log = log.map(|l| (l, log::Stream::Stdout));
    let mut streams = vec![Stream { from: End::Ours(master.clone()), to: End::Caller(1), log }];
    if interactive {
        streams.push(Stream { from: End::Caller(0), to: End::Ours(master.clone()), log: None });
    }
    (master, streams)
}

/// Pipes standing in for the caller's terminal, made before the fork.
pub(super) struct TerminalPipes {
    /// (standard stream number, the container's end, hutch's end)
    pipes: Vec<(u8, OwnedFd, OwnedFd)>,
}

impl TerminalPipes {
    /// A pipe for each of the caller's streams that is a terminal and that
    /// the container gets (stdin only with `-i`), and for stdout and stderr
    /// when they are `logged`; none with `-t`.
    pub(super) fn new(stdio: StdioMode, logged: bool) -> Result<TerminalPipes, Errno> {
        let mut pipes = Vec::new();
        if stdio.terminal {
            return Ok(TerminalPipes { pipes });
        }
        for n in 0..3 {
            let is_terminal = isatty(caller_stream(n)).unwrap_or(false);
            let piped = if n == 0 { stdio.interactive && is_terminal } else { logged || is_terminal };
            if !piped {
                continue;
            }
            let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC)?;
            pipes.push(if n == 0 { (n, read_end, write_end) } else { (n, write_end, read_end) });
        }
        Ok(TerminalPipes { pipes })
    }

    /// In the child: the pipes become its standard streams.
    pub(super) fn install(self) -> Result<(), Errno> {
        for (n, theirs, _ours) in self.pipes {
            match n {
                0 => dup2_stdin(&theirs)?,
                1 => dup2_stdout(&theirs)?,
                _ => dup2_stderr(&theirs)?,
            }
        }
        Ok(())
    }

    /// In hutch: the copies between the pipes and the caller's streams
    /// (and the log).
    pub(super) fn streams(self, log: Option<&Log>) -> Vec<Stream> {
        self.pipes
            .into_iter()
            .map(|(n, _theirs, ours)| {
                let ours = End::Ours(Rc::new(ours));
                match n {
                    0 => Stream { from: End::Caller(0), to: ours, log: None },
                    1 => Stream { from: ours, to: End::Caller(1), log: log.map(|l| (l.clone(), log::Stream::Stdout)) },
                    _ => Stream { from: ours, to: End::Caller(2), log: log.map(|l| (l.clone(), log::Stream::Stderr)) },
                }
            })
            .collect()
    }
}
