//! A container's state as its monitor records it, and how a reader tells
//! a live monitor from a dead one (or from an unrelated process that got
//! its pid since).

pub use crate::liveness::{stat_fields, ProcessId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    /// Its process ended and its monitor starts it again after a pause
    /// (`--restart`).
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// The monitor that runs it.
    #[serde(default)]
    pub monitor: Option<ProcessId>,
    /// The container's first process, as the host numbers it.
    #[serde(default)]
    pub pid: Option<i32>,
    /// Seconds since the epoch.
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub finished_at: Option<u64>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The container's cgroup (`hutch-ID/`), when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<std::path::PathBuf>,
    /// The kernel's OOM killer ended a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// How often its monitor started its process again (`--restart`).
    #[serde(default)]
    pub restart_count: u32,
}

/// The status of a container whose monitor was killed: its container got
/// SIGKILL with it (PR_SET_PDEATHSIG), as `kill -9` would report.
const KILLED_WITH_MONITOR: i32 = 128 + 9;

impl ContainerState {
    pub fn running(monitor: Option<ProcessId>, pid: i32, started_at: u64) -> ContainerState {
        ContainerState {
            status: Status::Running,
            monitor,
            pid: Some(pid),
            started_at: Some(started_at),
            ..Default::default()
        }
    }

    /// A "running" record whose monitor is gone is an exited container.
    pub(super) fn checked(mut self) -> ContainerState {
        let monitored = matches!(self.status, Status::Running | Status::Restarting);
        if monitored && !self.monitor.is_some_and(|m| m.alive()) {
            self.status = Status::Exited;
            self.exit_code.get_or_insert(KILLED_WITH_MONITOR);
        }
        self
    }

    pub fn is_running(&self) -> bool {
        self.status == Status::Running
    }

    /// The monitor of a running container.
    pub fn live_monitor(&self) -> Option<ProcessId> {
        self.monitor.filter(|m| self.is_running() && m.alive())
    }

    /// The monitor of a container that runs or waits to restart.
    pub fn monitor_alive(&self) -> Option<ProcessId> {
        self.monitor.filter(|m| matches!(self.status, Status::Running | Status::Restarting) && m.alive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::current().expect("own /proc entry");
        assert!(me.alive());
        assert!(!ProcessId { start: me.start + 1, ..me }.alive());
    }

    #[test]
    fn a_running_record_without_its_monitor_reads_as_exited() {
        let gone = ProcessId { pid: i32::MAX, start: 1 };
        let state = ContainerState::running(Some(gone), 1, 0).checked();
        assert_eq!(state.status, Status::Exited);
        assert_eq!(state.exit_code, Some(137));
    }
}
