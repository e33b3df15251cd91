//! The per-container monitor: the first process in the container's user
//! namespace. It creates the PID namespace the container's processes live
//! in, starts the container's first process, waits for it, and exits with
//! its status. Later it also serves the FUSE overlay and holds the network
//! helper, which must live in the user namespace but outside the container.

use crate::runtime::channel::{Channel, Message};
use crate::runtime::{container, exit_code, SetupError, StdioMode};
use crate::sys::{die_with_parent, exit_now};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Spec;

/// Never returns: exits with the container's status.
pub fn run(spec: &Spec, stdio: StdioMode, channel: Channel, setgroups_allowed: bool) -> ! {
    let container = match start_container(spec, stdio, &channel, setgroups_allowed) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = channel.send(
                &Message::Failed {
                    code: e.code(),
                    message: e.to_string(),
                },
                None,
            );
            exit_now(e.code())
        }
    };
    let _ = channel.send(&Message::ContainerPid(container.as_raw()), None);
    drop(channel);
    loop {
        match waitpid(container, None) {
            Ok(status) => match exit_code(status) {
                Some(code) => exit_now(code),
                None => continue,
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => exit_now(crate::EXIT_HUTCH_ERROR),
        }
    }
}

fn start_container(
    spec: &Spec,
    stdio: StdioMode,
    channel: &Channel,
    setgroups_allowed: bool,
) -> Result<Pid, SetupError> {
    // The monitor's own mount namespace holds the container's root mounts
    // (the FUSE overlay) out of the host's sight; the container gets a
    // child of it.
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
        .map_err(|e| SetupError::sys("unshare", "", e))?;
    // SAFETY: the monitor is single-threaded (forked from single-threaded hutch).
    match unsafe { fork() }.map_err(|e| SetupError::sys("fork", "", e))? {
        ForkResult::Child => {
            die_with_parent();
            let channel = channel
                .try_clone()
                .unwrap_or_else(|_| exit_now(crate::EXIT_HUTCH_ERROR));
            container::start(spec, stdio, channel, setgroups_allowed)
        }
        ForkResult::Parent { child } => Ok(child),
    }
}
