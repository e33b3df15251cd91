//! The per-container monitor: the first process in the container's user
//! namespace. It keeps the container's mounts in a mount namespace of its
//! own, connects the container's network (a namespace and the helper that
//! carries its traffic, both started here, in the host's network
//! namespace), creates the PID namespace the container's processes live
//! in, starts the container's first process, waits for it, stops the
//! helper and exits with the container's status.

use crate::runtime::channel::{Channel, Message};
use crate::runtime::ANNOTATION_STATE_DIR;
use crate::runtime::{container, exit_code, fail, SetupError, StdioMode, ANNOTATION_NETWORK, ANNOTATION_PORTS};
use crate::sys::{die_with_parent, exit_now};
use netstack::{Connected, NetworkMode, PortMapping};
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Spec;
use std::path::PathBuf;

/// Never returns: exits with the container's status.
pub fn run(spec: &Spec, stdio: StdioMode, channel: Channel, setgroups_allowed: bool) -> ! {
    // The monitor's own mount namespace holds the container's root mounts
    // (the FUSE overlay) out of the host's sight; the container gets a
    // child of it.
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        fail(&channel, SetupError::sys("unshare", "", e));
    }
    let network = match connect_network(spec) {
        Ok(network) => network,
        Err(e) => fail(&channel, e),
    };
    // Children from here on are in the container's PID namespace; the
    // first is its PID 1.
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        fail(&channel, SetupError::sys("unshare", "", e));
    }
    // SAFETY: the monitor is single-threaded (forked from single-threaded hutch).
    match unsafe { fork() } {
        Err(e) => fail(&channel, SetupError::sys("fork", "", e)),
        Ok(ForkResult::Child) => {
            die_with_parent();
            let netns = network.as_ref().map(|n| n.netns());
            container::start(spec, stdio, channel, setgroups_allowed, netns)
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = channel.send(&Message::ContainerPid(child.as_raw()), None);
            drop(channel);
            let status = wait_for(child);
            drop(network); // stops the helper: its ports are free again
            exit_now(status)
        }
    }
}

/// For a helper mode: the container's network namespace and the running
/// helper (slirp4netns or pasta) that connects it, ports published.
fn connect_network(spec: &Spec) -> Result<Option<Connected>, SetupError> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let Some(mode) = annotations.get(ANNOTATION_NETWORK) else { return Ok(None) };
    let config = |e: netstack::Error| SetupError::config(e.to_string());
    let mode: NetworkMode = mode.parse().map_err(config)?;
    let ports = annotations
        .get(ANNOTATION_PORTS)
        .map(|list| list.split(',').filter(|p| !p.is_empty()).map(str::parse).collect::<Result<Vec<PortMapping>, _>>())
        .transpose()
        .map_err(config)?
        .unwrap_or_default();
    let dir = annotations.get(ANNOTATION_STATE_DIR).map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    netstack::connect(&mode, &ports, &dir, max_container_gid(spec)).map(Some).map_err(config)
}

/// The highest group id mapped in the container (ping is allowed for 0..=it).
fn max_container_gid(spec: &Spec) -> u32 {
    let maps = spec.linux().as_ref().and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
    maps.iter().map(|m| m.container_id() + m.size().saturating_sub(1)).max().unwrap_or(0)
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
