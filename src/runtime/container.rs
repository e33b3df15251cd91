//! The container's first process: it enters the container's namespaces,
//! builds and enters its root, wires its standard streams, and becomes the
//! command. Any failure goes to hutch as one message, and the process exits
//! with Docker's status for it.

use super::channel::Channel;
use super::process::{become_user, Command};
use super::{fail, init, rootfs, seccomp, terminal, SetupError, StdioMode};
use crate::spec::annotations;
use crate::sys::{cloexec_from, reset_signals};
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stdin, sethostname, setsid};
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, Process, Spec};
use std::os::fd::BorrowedFd;

/// Never returns: the process becomes the command or exits.
/// `netns`: a network namespace the monitor made to join, instead of a new one.
pub fn start(
    spec: &Spec,
    stdio: StdioMode,
    channel: Channel,
    setgroups_allowed: bool,
    netns: Option<BorrowedFd<'_>>,
) -> ! {
    // Read while the host's paths are in sight: after the root changes, the
    // runtime directory is not.
    let program = seccomp::kept_program_of(spec);
    let err = match prepare(spec, stdio, &channel, netns, program) {
        Err(e) => e,
        Ok(launch) => {
            let exec = || launch.exec(setgroups_allowed, stdio.preserve_fds);
            if launch.with_init {
                init::supervise(channel, stdio.terminal, exec)
            }
            exec()
        }
    };
    fail(&channel, err)
}

/// A container whose namespaces, root and streams are ready.
struct Launch<'a> {
    process: &'a Process,
    seccomp: Option<&'a LinuxSeccomp>,
    /// The profile compiled already (see `seccomp::kept_program`).
    seccomp_program: Option<Vec<u8>>,
    command: Command,
    with_init: bool,
}

impl Launch<'_> {
    /// Becomes the container's user and its command; returns only on failure.
    fn exec(&self, setgroups_allowed: bool, preserve_fds: u32) -> SetupError {
        // Without no_new_privs only CAP_SYS_ADMIN may load a filter: load it
        // while the capabilities are still there. With it, load it last, so
        // the filter need not allow what becoming the user takes.
        let nnp = self.process.no_new_privileges() == Some(true);
        let filter =
            || self.seccomp.map_or(Ok(()), |profile| seccomp::install(profile, self.seccomp_program.as_deref()));
        if !nnp {
            if let Err(e) = filter() {
                return e;
            }
        }
        if let Err(e) = become_user(self.process, setgroups_allowed) {
            return e;
        }
        crate::trace::mark("container: user and capabilities");
        if nnp {
            if let Err(e) = filter() {
                return e;
            }
        }
        crate::trace::mark("container: seccomp");
        reset_signals();
        if let Err(e) = cloexec_from(preserve_fds.saturating_add(3)) {
            return SetupError::sys("close_range", "", e);
        }
        crate::trace::mark("container: exec");
        self.command.exec()
    }
}

fn prepare<'a>(
    spec: &'a Spec,
    stdio: StdioMode,
    channel: &Channel,
    netns: Option<BorrowedFd<'_>>,
    seccomp_program: Option<Vec<u8>>,
) -> Result<Launch<'a>, SetupError> {
    // A session of its own: no terminal of the caller's, no signals from
    // the caller's terminal except those hutch forwards.
    setsid().map_err(|e| SetupError::sys("setsid", "", e))?;
    join_cgroup(spec)?;
    let mut namespaces = namespaces_to_create(spec);
    if let Some(netns) = netns {
        setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| SetupError::sys("setns", "network namespace", e))?;
        namespaces.remove(CloneFlags::CLONE_NEWNET);
    }
    unshare(namespaces).map_err(|e| SetupError::sys("unshare", "", e))?;
    crate::trace::mark("container: namespaces made");
    if namespaces.contains(CloneFlags::CLONE_NEWNET) {
        netstack::bring_up_loopback().map_err(|e| SetupError::config(e.to_string()))?;
    }
    if let Some(name) = spec.hostname().as_deref().filter(|_| namespaces.contains(CloneFlags::CLONE_NEWUTS)) {
        sethostname(name).map_err(|e| SetupError::sys("sethostname", name, e))?;
    }
    rootfs::enter(spec)?;
    crate::trace::mark("container: root entered");

    let process = spec.process().as_ref().ok_or_else(|| SetupError::config("the spec has no process"))?;
    let with_init = annotations::get(spec, annotations::INIT).is_some_and(|v| v == "true");
    launch(spec, process, stdio, channel, with_init, seccomp_program)
}

/// Moves this process into the spec's cgroup (its limits apply from here
/// on), before the cgroup namespace is made, so it is rooted there.
pub(super) fn join_cgroup(spec: &Spec) -> Result<(), SetupError> {
    let Some(leaf) = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_ref()) else { return Ok(()) };
    let hierarchy = crate::cgroup::Hierarchy::find().ok_or_else(|| SetupError::config("no cgroup v2 hierarchy"))?;
    crate::cgroup::join(&hierarchy.dir(&leaf.to_string_lossy()), "0").map_err(|e| SetupError::config(e.to_string()))
}

/// The process, its streams connected: a new terminal with `-t`,
/// /dev/null for stdin unless `-i`.
fn launch<'a>(
    spec: &'a Spec,
    process: &'a Process,
    stdio: StdioMode,
    channel: &Channel,
    with_init: bool,
    seccomp_program: Option<Vec<u8>>,
) -> Result<Launch<'a>, SetupError> {
    let command = Command::from_process(process)?;
    if stdio.terminal {
        let cells = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
        let size = process.console_size().map(|b| (cells(b.height()), cells(b.width())));
        terminal::attach_new_terminal(channel, size)?;
    } else if !stdio.interactive {
        let null = open("/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| SetupError::sys("open", "/dev/null", e))?;
        dup2_stdin(&null).map_err(|e| SetupError::sys("dup2", "/dev/null", e))?;
    }
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    Ok(Launch { process, seccomp, seccomp_program, command, with_init })
}

/// `hutch exec`'s process, already in every namespace of the container
/// (and a child in its PID namespace): a session of its own, its streams,
/// then the container's user, capabilities and seccomp filter, and execve.
/// `seccomp_program` was read before the container's root came in sight.
pub fn exec_in(
    spec: &Spec,
    process: &Process,
    stdio: StdioMode,
    channel: Channel,
    setgroups_allowed: bool,
    seccomp_program: Option<Vec<u8>>,
) -> ! {
    let launched = setsid()
        .map_err(|e| SetupError::sys("setsid", "", e))
        .and_then(|_| launch(spec, process, stdio, &channel, false, seccomp_program));
    let err = match launched {
        Ok(launch) => launch.exec(setgroups_allowed, stdio.preserve_fds),
        Err(e) => e,
    };
    fail(&channel, err)
}

/// The namespaces this process creates; the user namespace exists already
/// (the monitor made it) and so does the PID namespace (we are its PID 1,
/// or share the host's).
fn namespaces_to_create(spec: &Spec) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    let list = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    for ns in list {
        if ns.path().is_some() {
            continue; // joining existing namespaces comes with `exec`
        }
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            _ => CloneFlags::empty(),
        };
    }
    flags
}
