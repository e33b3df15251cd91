//! The per-container monitor: the first process in the container's user
//! namespace. It keeps the container's mounts in a mount namespace of its
//! own (an image's root filesystem there is mounted by its storage
//! driver), connects the container's network (a namespace and the helper that
//! carries its traffic, both started here, in the host's network
//! namespace), creates the PID namespace the container's processes live
//! in, starts the container's first process, waits for it, stops the
//! helper and exits with the container's status.

mod attach;
mod detached;
pub(crate) mod health;

use crate::cgroup::{ContainerCgroup, Hierarchy};
use crate::containers::{Container, ContainerState, ProcessId, RestartPolicy, Status};
use crate::image::time::now;
use crate::runtime::channel::{Channel, Message};
use crate::runtime::{container, fail, wait_for, SetupError, StdioMode};
use crate::spec::annotations;
use crate::sys::{die_with_parent, exit_now, Forked};
use health::Checker;
use netstack::{Connected, NetworkMode, PortMapping};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// How the monitor runs its container; the rest is in the Spec.
#[derive(Clone, Copy, Debug)]
pub struct MonitorPlan {
    pub stdio: StdioMode,
    /// The user namespace's maps were written by newuidmap/newgidmap, so
    /// setgroups is allowed in it.
    pub setgroups_allowed: bool,
    /// The monitor leaves hutch and keeps the container's output in its
    /// log; otherwise hutch relays the container's streams and signals.
    pub detached: bool,
    /// Restarts its restart policy made before this monitor: not 0 when
    /// it takes over after a foreground run.
    pub restarts: u32,
}

impl MonitorPlan {
    pub fn foreground(stdio: StdioMode, plan: &crate::userns::UsernsPlan) -> MonitorPlan {
        MonitorPlan { stdio, setgroups_allowed: plan.uses_helpers, detached: false, restarts: 0 }
    }

    pub fn detached(stdio: StdioMode, plan: &crate::userns::UsernsPlan, restarts: u32) -> MonitorPlan {
        MonitorPlan { stdio, setgroups_allowed: plan.uses_helpers, detached: true, restarts }
    }
}

/// Never returns: exits with the container's status.
pub fn run(spec: &Spec, plan: &MonitorPlan, channel: Channel) -> ! {
    let MonitorPlan { stdio, setgroups_allowed, detached, restarts } = *plan;
    if detached {
        detached::leave_caller(&channel);
    }
    let record = Recorder::from_spec(spec);
    if let (Some(c), 0) = (&record.container, restarts) {
        c.clear_stopped_by_user();
    }
    let network = match prepare(spec) {
        Ok(network) => network,
        Err(e) => fail(&channel, e),
    };
    if detached {
        detached::run(spec, plan, channel, network, record)
    }
    match fork_container(spec) {
        Err(e) => fail(&channel, e.into()),
        Ok(Forked::Child) => {
            die_with_parent();
            let netns = network.as_ref().map(|n| n.netns());
            container::start(spec, stdio, channel, setgroups_allowed, netns)
        }
        Ok(Forked::Parent { child }) => {
            record.started(child, 0);
            let _ = channel.send(&Message::ContainerPid(child.as_raw()), None);
            drop(channel);
            let checker = record.container.as_ref().and_then(|c| Checker::start(spec, c, child, setgroups_allowed));
            let status = wait_for(child);
            if let Some(checker) = checker {
                checker.stop();
            }
            crate::trace::mark("monitor: container exited");
            drop(network); // stops the helper: its ports are free again
            record.exited(status);
            exit_now(status)
        }
    }
}

/// Everything the container's first process needs from the monitor: for
/// a root mounted from layers, a mount namespace of the monitor's own that
/// holds that mount out of the host's sight (the container gets a child of
/// it; a root directory needs none), and the network. (The container's
/// process is forked into a new PID namespace, one per start.)
fn prepare(spec: &Spec) -> Result<Option<Connected>, SetupError> {
    let config = |e: crate::storage::Error| SetupError::config(e.to_string());
    if crate::storage::from_spec(spec).map_err(config)?.is_some() {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| SetupError::sys("unshare", "", e))?;
        crate::storage::mount_spec_root(spec).map_err(config)?;
        crate::trace::mark("monitor: root mounted");
    }
    let network = connect_network(spec)?;
    crate::trace::mark("monitor: network connected");
    Ok(network)
}

/// Forks the container's first process: PID 1 of a new PID namespace (one
/// per start), or an ordinary child where it shares the host's (`--pid host`).
fn fork_container(spec: &Spec) -> Result<Forked, crate::sys::ForkError> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    if namespaces.iter().any(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Pid) {
        crate::sys::fork_into_new_pid_namespace()
    } else {
        crate::sys::fork()
    }
}

/// Where the monitor records the container's state (its directory in the
/// store), when the spec names one, and the container's cgroup, if any.
struct Recorder {
    /// The container's record in the store (none for a bare Spec).
    container: Option<Container>,
    cgroup: Option<ContainerCgroup>,
}

impl Recorder {
    fn from_spec(spec: &Spec) -> Recorder {
        let dir = annotations::get(spec, annotations::CONTAINER_DIR).map(PathBuf::from);
        let leaf = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        let cgroup = leaf.zip(Hierarchy::find()).map(|(leaf, h)| ContainerCgroup::of_leaf(&h, &leaf.to_string_lossy()));
        Recorder { container: dir.and_then(|d| Container::at(&d).ok()), cgroup }
    }

    fn started(&self, pid: Pid, restart_count: u32) {
        if let Some(c) = &self.container {
            let mut state = ContainerState::running(ProcessId::current(), pid.as_raw(), now());
            state.cgroup = self.cgroup.as_ref().map(|cg| cg.dir.clone());
            state.restart_count = restart_count;
            let _ = c.write_state(&state);
        }
    }

    /// Records an end after which the process starts again.
    fn restarting(&self, code: i32, restart_count: u32) {
        let Some(c) = &self.container else { return };
        let mut state = c.state();
        state.status = Status::Restarting;
        state.pid = None;
        state.exit_code = Some(code);
        state.finished_at = Some(now());
        state.restart_count = restart_count;
        let _ = c.write_state(&state);
    }

    fn restart_policy(&self) -> RestartPolicy {
        self.container.as_ref().map(|c| c.record.restart).unwrap_or_default()
    }

    fn stopped_by_user(&self) -> bool {
        self.container.as_ref().is_some_and(Container::stopped_by_user)
    }

    /// Records the end (and whether the OOM killer caused it), and removes
    /// the container's leaf cgroup, empty now.
    fn exited(&self, code: i32) {
        let oom_killed = self.cgroup.as_ref().is_some_and(|cg| cg.oom_killed());
        if let Some(cgroup) = &self.cgroup {
            cgroup.remove_container_leaf();
        }
        let Some(c) = &self.container else { return };
        let mut state = c.state();
        state.status = Status::Exited;
        state.exit_code = Some(code);
        state.finished_at = Some(now());
        state.oom_killed = oom_killed;
        let _ = c.write_state(&state);
    }

    fn auto_remove(&self) -> bool {
        self.container.as_ref().is_some_and(|c| c.record.auto_remove)
    }

    /// Removes the container's files: its root filesystem is unmounted
    /// first (its server then ends), so removing its directory cannot reach
    /// into the image's layers through the mount.
    fn remove(&self, spec: &Spec) {
        let _ = crate::storage::unmount_spec_root(spec);
        if let Some(c) = &self.container {
            // Out of the list at once; what a kill leaves is finished later.
            let containers = crate::containers::Containers::of(c);
            if let Ok(Some(aside)) = containers.set_aside(c) {
                let _ = crate::image::store::remove_tree(&aside);
            }
            let store = c.dir.parent().and_then(Path::parent);
            if let Some(volumes) = store.and_then(|root| crate::volumes::Volumes::open(root).ok()) {
                volumes.remove_unused(&containers, &c.record.anonymous_volumes);
            }
        }
        if let Some(dir) = annotations::get(spec, annotations::STATE_DIR) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// For a helper mode: the container's network namespace and the running
/// helper (slirp4netns or pasta) that connects it, ports published.
fn connect_network(spec: &Spec) -> Result<Option<Connected>, SetupError> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let Some(mode) = annotations.get(annotations::NETWORK) else { return Ok(None) };
    let config = |e: netstack::Error| SetupError::config(e.to_string());
    let mode: NetworkMode = mode.parse().map_err(config)?;
    let ports = annotations
        .get(annotations::PORTS)
        .map(|list| list.split(',').filter(|p| !p.is_empty()).map(str::parse).collect::<Result<Vec<PortMapping>, _>>())
        .transpose()
        .map_err(config)?
        .unwrap_or_default();
    let dir = annotations.get(annotations::STATE_DIR).map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    // Only a helper needs the container's runtime directory: made here.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| SetupError::io("create", &dir, e))?;
    netstack::connect(&mode, &ports, &dir, max_container_gid(spec)).map(Some).map_err(config)
}

/// The highest group id mapped in the container (ping is allowed for 0..=it).
fn max_container_gid(spec: &Spec) -> u32 {
    let maps = spec.linux().as_ref().and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
    maps.iter().map(|m| m.container_id() + m.size().saturating_sub(1)).max().unwrap_or(0)
}
