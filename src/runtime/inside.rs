//! Work on a container's files from a helper process whose root is the
//! container's root (`hutch cp`): a running container's user and mount
//! namespaces are joined; for a stopped one the helper makes a user
//! namespace of its own and mounts the container's root filesystem there,
//! as the monitor does. The helper holds nothing of the host's but what
//! the caller gives it (a pipe): a process of the container that could
//! reach into it finds no way out.

use super::{exec, RunError};
use crate::sys::{die_with_parent, exit_now};
use crate::userns::{self, Forked, UsernsPlan};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, chroot, Pid};
use oci_spec::runtime::Spec;
use std::io::{Read, Write};
use std::path::Path;

/// The container whose root the helper enters.
pub enum Root<'a> {
    /// Running: the host pid of its first process.
    Running(i32),
    /// Stopped: its spec (root path, layers) to mount the root from.
    Stopped(&'a Spec),
}

/// A running helper; `wait` gives its verdict.
pub struct Helper {
    pid: Pid,
    verdict: std::io::PipeReader,
}

/// Starts `work` in a helper whose `/` is the container's root. Call it
/// while the process has one thread.
pub fn spawn(root: Root<'_>, plan: &UsernsPlan, work: impl FnOnce() -> Result<(), String>) -> Result<Helper, RunError> {
    let (verdict, mut verdict_w) = std::io::pipe().map_err(|e| sys("pipe", e))?;
    let forked = match root {
        Root::Running(_) => super::fork_here()?,
        Root::Stopped(_) => userns::fork_into_userns(plan)?,
    };
    match forked {
        Forked::Child => {
            drop(verdict);
            die_with_parent();
            let outcome = enter(&root).and_then(|()| work());
            let code = match outcome {
                Ok(()) => 0,
                Err(why) => {
                    let _ = verdict_w.write_all(why.as_bytes());
                    crate::EXIT_HUTCH_ERROR
                }
            };
            exit_now(code)
        }
        Forked::Parent { child } => Ok(Helper { pid: child, verdict }),
    }
}

impl Helper {
    /// Waits for the helper: why it failed, in one line, if it did.
    pub fn wait(mut self) -> Result<(), String> {
        let mut why = String::new();
        let _ = self.verdict.read_to_string(&mut why);
        let status = loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match status {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            _ if !why.is_empty() => Err(why),
            other => Err(format!("the helper in the container ended unexpectedly ({other:?})")),
        }
    }
}

fn enter(root: &Root<'_>) -> Result<(), String> {
    match root {
        Root::Running(pid) => exec::join_namespaces(*pid).map_err(|e| e.to_string())?,
        Root::Stopped(spec) => {
            unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
            crate::storage::mount_spec_root(spec).map_err(|e| e.to_string())?;
            let path = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
            chroot(&path).map_err(|e| format!("chroot {}: {e}", path.display()))?;
        }
    }
    chdir(Path::new("/")).map_err(|e| format!("chdir /: {e}"))
}

fn sys(op: &'static str, e: std::io::Error) -> RunError {
    RunError::Sys { op, errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)) }
}
