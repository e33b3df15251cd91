//! Running an OCI runtime Spec rootless.
//!
//! ```text
//! hutch (`launch`: signals, terminal, exit status)
//!  └─ monitor: root of a new user namespace (userns.rs), new PID namespace for its child
//!      └─ container process: PID 1; mount/UTS/IPC/cgroup(/net) namespaces,
//!         rootfs + pivot_root (rootfs.rs), terminal (terminal.rs), ids + execve (process.rs),
//!         optionally a reaping init in front of it (init.rs)
//! ```

pub mod attach;
mod capabilities;
pub(crate) mod channel;
pub(crate) mod container;
mod copy_up;
pub(crate) mod exec;
mod init;
pub mod inroot;
pub mod inside;
pub mod probe;
pub mod process;
mod rootfs;
pub mod seccomp;
pub(crate) mod signals;
pub(crate) mod terminal;

pub use terminal::{set_size as terminal_resize, size_of as terminal_size};

use crate::EXIT_HUTCH_ERROR;
use nix::errno::Errno;
use std::fmt;
use std::path::{Path, PathBuf};

/// How the container's standard streams are connected.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdioMode {
    /// A pseudo-terminal inside the container, relayed by hutch (`-t`).
    pub terminal: bool,
    /// Keep the caller's stdin (`-i`); otherwise the container reads /dev/null.
    pub interactive: bool,
    /// Descriptors 3 to 3+N-1 of the caller's are passed on (`--preserve-fds`);
    /// every other one is closed.
    pub preserve_fds: u32,
}

/// Why the container could not be started. Crosses from the container
/// process to hutch as one line.
#[derive(Debug)]
pub enum SetupError {
    /// A system call failed on a path; `hint` names a kernel setting
    /// that explains an EPERM (read when the error is made, not shown).
    Sys {
        op: String,
        path: PathBuf,
        errno: Errno,
        hint: Option<String>,
    },
    Io {
        op: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The spec asks for something that cannot be done.
    Config(String),
    /// The command itself cannot run (exit code 126 or 127).
    NotRunnable {
        code: i32,
        message: String,
    },
}

impl From<crate::sys::ForkError> for SetupError {
    fn from(e: crate::sys::ForkError) -> SetupError {
        SetupError::Config(e.to_string())
    }
}

impl SetupError {
    pub fn sys(op: &str, path: impl AsRef<Path>, errno: Errno) -> SetupError {
        let hint = (errno == Errno::EPERM).then(|| crate::userns::KernelSettings::read().restriction_hint()).flatten();
        SetupError::Sys { op: op.to_string(), path: path.as_ref().to_path_buf(), errno, hint }
    }
    pub fn io(op: &str, path: impl AsRef<Path>, source: std::io::Error) -> SetupError {
        SetupError::Io { op: op.to_string(), path: path.as_ref().to_path_buf(), source }
    }
    pub fn config(msg: impl Into<String>) -> SetupError {
        SetupError::Config(msg.into())
    }
    /// The exit status a failure maps to, as Docker's.
    pub fn code(&self) -> i32 {
        match self {
            SetupError::NotRunnable { code, .. } => *code,
            _ => EXIT_HUTCH_ERROR,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Sys { op, path, errno, hint } => {
                write!(f, "{op}")?;
                if !path.as_os_str().is_empty() {
                    write!(f, " {}", path.display())?;
                }
                write!(f, ": {}", errno.desc().to_lowercase())?;
                if let Some(hint) = hint {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            SetupError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            SetupError::Config(msg) => f.write_str(msg),
            SetupError::NotRunnable { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for SetupError {}

/// Why a run failed, as hutch reports it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Userns(#[from] crate::userns::Error),
    #[error("{message}")]
    Container { code: i32, message: String },
    #[error("{op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    #[error("the container's monitor died of {0} before the container finished")]
    MonitorKilled(nix::sys::signal::Signal),
    #[error(transparent)]
    Fork(#[from] crate::sys::ForkError),
    #[error(transparent)]
    Child(#[from] crate::child::Error),
}

impl RunError {
    pub fn code(&self) -> i32 {
        match self {
            RunError::Container { code, .. } => *code,
            _ => EXIT_HUTCH_ERROR,
        }
    }
}

/// A plain fork (no new namespace), as `userns::fork_into_userns` reports
/// one. Call it while the process has one thread.
pub(crate) fn fork_here() -> Result<crate::sys::Forked, RunError> {
    Ok(crate::sys::fork()?)
}

/// Tells hutch why setup failed (one line, over the channel) and exits with
/// the status that failure maps to.
pub(crate) fn fail(channel: &channel::Channel, err: SetupError) -> ! {
    let _ = channel.send(&channel::Message::Failed { code: err.code(), message: err.to_string() }, None);
    crate::sys::exit_now(err.code())
}

/// The exit status of a waited-for process, the shell's way: its code, or
/// 128 + the signal that killed it.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Waits for `child` (retrying on EINTR); its exit status the shell's way.
pub(crate) fn wait_for(child: nix::unistd::Pid) -> i32 {
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return code;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return EXIT_HUTCH_ERROR,
        }
    }
}
