//! A container's state as its monitor records it, and how a reader tells
//! a live monitor from a dead one (or from an unrelated process that got
//! its pid since).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// A process named by its pid and its start time (clock ticks after boot),
/// which together do not repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

impl ProcessId {
    pub fn of(pid: i32) -> Option<ProcessId> {
        Some(ProcessId { pid, start: start_time(pid)? })
    }

    pub fn current() -> Option<ProcessId> {
        ProcessId::of(std::process::id().cast_signed())
    }

    /// Whether this very process still runs (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 of /proc/PID/stat; None for a missing process or a zombie.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat)?;
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The fields of a /proc/PID/stat text after the command name, from the
/// state (field 3) on. The name (field 2) may hold spaces and
/// parentheses: the fields start after the last ')'.
pub fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
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
        if self.status == Status::Running && !self.monitor.is_some_and(|m| m.alive()) {
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
