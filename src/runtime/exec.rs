//! `hutch exec`: a process that joins every namespace of a running
//! container (its user namespace first, which gives the rights to join the
//! others), then forks, so that its child is inside the container's PID
//! namespace, and that child becomes the new process.

use super::channel::{Channel, Message};
use super::{container, fail, wait_for, SetupError, StdioMode};
use crate::sys::{die_with_parent, exit_now, Forked};
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::{stat, Mode};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::OwnedFd;

/// The namespaces joined, in order: the user namespace grants the rights
/// for the others; the mount namespace goes last, as it changes root.
const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Never returns: exits with the new process's status. Runs in a child of
/// hutch, which relays streams and signals over `channel`.
pub(crate) fn join_and_run(
    spec: &Spec,
    process: &Process,
    target: i32,
    stdio: StdioMode,
    channel: Channel,
    setgroups_allowed: bool,
) -> ! {
    die_with_parent();
    let program = super::seccomp::kept_program_of(spec);
    if let Err(e) = container::join_cgroup(spec).and_then(|()| join_namespaces(target)) {
        fail(&channel, e)
    }
    crate::trace::mark("exec: namespaces joined");
    match crate::sys::fork() {
        Err(e) => fail(&channel, e.into()),
        Ok(Forked::Child) => {
            die_with_parent();
            container::exec_in(spec, process, stdio, channel, setgroups_allowed, program)
        }
        Ok(Forked::Parent { child }) => {
            let _ = channel.send(&Message::ContainerPid(child.as_raw()), None);
            drop(channel);
            exit_now(wait_for(child))
        }
    }
}

pub(crate) fn join_namespaces(target: i32) -> Result<(), SetupError> {
    // All opened first: /proc is the host's only until the mount namespace changes.
    let mut joins: Vec<(OwnedFd, CloneFlags, String)> = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{target}/ns/{name}");
        // One the container shares with hutch (`--network host`) is kept:
        // joining one's own user namespace is refused anyway.
        if same_file(&theirs, &format!("/proc/self/ns/{name}")) {
            continue;
        }
        let fd = open(theirs.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| SetupError::sys("open", &theirs, e))?;
        joins.push((fd, flag, theirs));
    }
    for (fd, flag, path) in joins {
        setns(fd, flag).map_err(|e| SetupError::sys("setns", &path, e))?;
    }
    Ok(())
}

fn same_file(a: &str, b: &str) -> bool {
    match (stat(a), stat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}
