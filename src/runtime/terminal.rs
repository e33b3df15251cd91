//! `-t`: a pseudo-terminal from the container's own devpts instance (so
//! `tty` inside names /dev/pts/0), whose master side hutch relays to the
//! caller's terminal in raw mode.

use super::channel::{Channel, Message};
use super::SetupError;
use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, isatty};
use std::os::fd::{AsFd, BorrowedFd};

/// Container side: opens a new terminal, makes it the controlling terminal
/// and standard streams of this process, and hands the master to hutch.
/// Call after pivot_root, in a new session.
pub fn attach_new_terminal(channel: &Channel, size: Option<(u16, u16)>) -> Result<(), SetupError> {
    let err = |op: &str, e| SetupError::sys(op, "/dev/ptmx", e);
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(|e| err("open", e))?;
    grantpt(&master).map_err(|e| err("grantpt", e))?;
    unlockpt(&master).map_err(|e| err("unlockpt", e))?;
    let slave_name = ptsname_r(&master).map_err(|e| err("ptsname", e))?;
    let slave =
        open(slave_name.as_str(), OFlag::O_RDWR, Mode::empty()).map_err(|e| SetupError::sys("open", &slave_name, e))?;
    if let Some((rows, cols)) = size {
        set_size(slave.as_fd(), rows, cols);
    }
    crate::sys::set_controlling_terminal(slave.as_fd()).map_err(|e| SetupError::sys("TIOCSCTTY", &slave_name, e))?;
    dup2_stdin(&slave).map_err(|e| SetupError::sys("dup2", &slave_name, e))?;
    dup2_stdout(&slave).map_err(|e| SetupError::sys("dup2", &slave_name, e))?;
    dup2_stderr(&slave).map_err(|e| SetupError::sys("dup2", &slave_name, e))?;
    channel
        .send(&Message::TerminalMaster, Some(master.as_fd()))
        .map_err(|e| SetupError::sys("send the terminal to hutch", "", e))
}

/// The size of the terminal `fd`, as (rows, columns), if it is one.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    crate::sys::window_size(fd).ok()
}

/// Sets the size of terminal `fd`; the kernel then sends SIGWINCH to its
/// foreground process group.
pub fn set_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let _ = crate::sys::set_window_size(fd, rows, cols);
}

/// The caller's terminal in raw mode for as long as this lives, so keys
/// (Ctrl-C included) reach the container's terminal untouched.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin, when stdin is a terminal.
    pub fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !isatty(stdin.as_fd()).unwrap_or(false) {
            return None;
        }
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}
