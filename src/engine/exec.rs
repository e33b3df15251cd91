//! Running containers: `exec` (a new process in a running container, in
//! its namespaces and its cgroup, with the container's settings and the
//! caller's changes), and what `top` and `stats` read of them.

use super::{Engine, Error};
use crate::containers::processes::{self, ProcessInfo};
use crate::containers::{Container, Health};
use crate::monitor::health;
use crate::runtime::StdioMode;
use crate::spec::ExecConfig;
use std::path::Path;

/// What the new process changes of the container's own.
pub type ExecOptions = ExecConfig;

impl Engine {
    /// Runs `options.command` in `container` in the foreground; returns its
    /// exit status.
    pub fn exec(&self, container: &Container, options: &ExecOptions, stdio: StdioMode) -> Result<i32, Error> {
        let state = container.state();
        let (Some(_), Some(pid)) = (state.live_monitor(), state.pid) else {
            return Err(Error::NotRunning(container.record.name.clone()));
        };
        let plan = self.plan()?;
        let mut spec = container.spec()?;
        if let Some(cgroup) = &state.cgroup {
            let cgroup = crate::cgroup::ContainerCgroup { dir: cgroup.clone() };
            let relative = cgroup.prepare_exec(&format!("hutch-exec-{}", container.short_id()))?;
            if let Some(linux) = spec.linux_mut() {
                linux.set_cgroups_path(relative);
            }
        }
        let base = spec.process().as_ref().ok_or_else(|| Error::NoProcess(container.record.name.clone()))?;
        let process = crate::spec::exec_process(base, options, Path::new(&format!("/proc/{pid}/root")), plan)?;
        crate::trace::mark("exec: process prepared");
        let status = crate::launch::exec(&spec, &process, pid, plan, stdio);
        crate::trace::mark("exec: process ended");
        Ok(status?)
    }
}

impl Engine {
    /// `healthcheck run`: runs the container's check once and records the
    /// result; the health that follows.
    pub fn check_health(&self, container: &Container) -> Result<Health, Error> {
        let name = || container.record.name.clone();
        let config = container.record.healthcheck.clone().ok_or_else(|| Error::NoHealthcheck(name()))?;
        let state = container.state();
        let (Some(_), Some(pid)) = (state.live_monitor(), state.pid) else {
            return Err(Error::NotRunning(name()));
        };
        let spec = container.spec()?;
        let process = health::check_process(&spec, &config).ok_or_else(|| Error::NoHealthcheck(name()))?;
        let result = health::check(&spec, &process, pid, self.plan()?.uses_helpers, config.timeout());
        let started = state.started_at.unwrap_or_default();
        let in_start_period = crate::image::time::now() < started + config.start_period().as_secs();
        Ok(container.record_health(result, in_start_period)?)
    }
}

/// One reading of what a container uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// From its cgroup, when it has one.
    pub cgroup: Option<crate::cgroup::stats::Usage>,
    /// Bytes received and sent, when it runs in a network namespace.
    pub network: Option<(u64, u64)>,
}

impl Engine {
    /// The processes of a running container.
    pub fn processes(&self, container: &Container) -> Result<Vec<ProcessInfo>, Error> {
        let state = container.state();
        let (Some(_), Some(pid)) = (state.live_monitor(), state.pid) else {
            return Err(Error::NotRunning(container.record.name.clone()));
        };
        processes::in_pid_namespace_of(pid).ok_or_else(|| Error::NotRunning(container.record.name.clone()))
    }

    /// What `container` uses now (nothing when it is not running).
    pub fn usage(&self, container: &Container) -> Usage {
        let state = container.state();
        if !state.is_running() {
            return Usage::default();
        }
        let leaf = state.cgroup.map(|dir| crate::cgroup::ContainerCgroup { dir }.container_leaf());
        Usage {
            cgroup: leaf.map(|leaf| crate::cgroup::stats::Usage::read(&leaf)),
            network: state.pid.and_then(processes::network_bytes),
        }
    }
}
