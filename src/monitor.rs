//! The per-container monitor: the first process in the container's user
//! namespace. It creates the PID namespace the container's processes live
//! in, starts the container's first process, waits for it, and exits with
//! its status. Later it also serves the FUSE overlay and holds the network
//! helper, which must live in the user namespace but outside the container.

use crate::runtime::channel::{Channel, Message};
use crate::runtime::{container, exit_code, fail, SetupError, StdioMode};
use crate::sys::{die_with_parent, exit_now};
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Spec;

/// Never returns: exits with the container's status.
pub fn run(spec: &Spec, stdio: StdioMode, channel: Channel, setgroups_allowed: bool) -> ! {
    // The monitor's own mount namespace holds the container's root mounts
    // (the FUSE overlay) out of the host's sight; the container gets a
    // child of it. Its first child is PID 1 of a new PID namespace.
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID) {
        fail(&channel, SetupError::sys("unshare", "", e));
    }
    // SAFETY: the monitor is single-threaded (forked from single-threaded hutch).
    match unsafe { fork() } {
        Err(e) => fail(&channel, SetupError::sys("fork", "", e)),
        Ok(ForkResult::Child) => {
            die_with_parent();
            container::start(spec, stdio, channel, setgroups_allowed)
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = channel.send(&Message::ContainerPid(child.as_raw()), None);
            drop(channel);
            exit_now(wait_for(child))
        }
    }
}

/// The container's exit status, the shell's way.
fn wait_for(container: Pid) -> i32 {
    loop {
        match waitpid(container, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return code;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return crate::EXIT_HUTCH_ERROR,
        }
    }
}
