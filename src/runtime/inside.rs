//! Work on a container's files from a helper process whose root is the
//! container's root (`hutch cp`): a running container's user and mount
//! namespaces are joined; for a stopped one the helper makes a user
//! namespace of its own and mounts the container's root filesystem there,
//! as the monitor does. The helper holds nothing of the host's but what
//! the caller gives it (a pipe): a process of the container that could
//! reach into it finds no way out.

use super::{exec, RunError};
use crate::child::{self, Child};
use crate::sys::die_with_parent;
use crate::userns::{self, UsernsPlan};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, chroot};
use oci_spec::runtime::Spec;
use std::path::Path;

/// The container whose root the helper enters.
pub enum Root<'a> {
    /// Running: the host pid of its first process.
    Running(i32),
    /// Stopped: its spec (root path, layers) to mount the root from.
    Stopped(&'a Spec),
}

/// Starts `work` in a helper whose `/` is the container's root; `wait`
/// gives its outcome. Call it while the process has one thread.
pub fn spawn<T>(
    root: Root<'_>,
    plan: &UsernsPlan,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<Child<T>, RunError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let fork = || match root {
        Root::Running(_) => super::fork_here(),
        Root::Stopped(_) => Ok(userns::fork_into_userns(plan)?),
    };
    child::spawn("helper in the container", fork, |reply| {
        die_with_parent();
        reply.send(enter(&root).and_then(|()| work()))
    })
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
