//! Telling whether the process that made something still runs: a pid
//! alone is not enough (it is reused, and a zombie still has one), a pid
//! with its start time is. Records, store `tmp/` entries and temporary
//! files name their owner this way, so a later command can prove it dead
//! and sweep what it left.

use serde::{Deserialize, Serialize};

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

impl ProcessId {
    /// `PID@START`, for names of files and directories.
    pub fn tag(&self) -> String {
        format!("{}@{}", self.pid, self.start)
    }

    /// The owner named by a [`ProcessId::tag`].
    pub fn from_tag(tag: &str) -> Option<ProcessId> {
        let (pid, start) = tag.split_once('@')?;
        Some(ProcessId { pid: pid.parse().ok()?, start: start.parse().ok()? })
    }

    /// This process's tag (`0@0`, which no live process has, if /proc
    /// cannot tell). Read once per process: a forked child, whose pid
    /// differs, reads its own.
    pub fn current_tag() -> String {
        static TAG: std::sync::Mutex<Option<(u32, String)>> = std::sync::Mutex::new(None);
        let pid = std::process::id();
        let mut cached = TAG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match cached.as_ref() {
            Some((of, tag)) if *of == pid => tag.clone(),
            _ => {
                let tag = ProcessId::current().map_or_else(|| "0@0".to_string(), |p| p.tag());
                *cached = Some((pid, tag.clone()));
                tag
            }
        }
    }
}

/// Whether what the owner tagged `tag` made is abandoned: its owner is
/// gone, or the tag names no process at all.
pub fn abandoned(tag: &str) -> bool {
    !ProcessId::from_tag(tag).is_some_and(|p| p.alive())
}

/// Whether the owner of `OWNER-REST` (a name made aside, as
/// `.creating-OWNER-ID` is after its prefix) is gone.
pub fn owner_of_name_gone(owner_and_rest: &str) -> bool {
    abandoned(owner_and_rest.split_once('-').map_or(owner_and_rest, |(owner, _)| owner))
}

/// The entries of `dir` named `PREFIX` + `OWNER-REST` whose owner is gone:
/// what killed processes left aside there.
pub fn left_by_gone_owners(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let left = entries
        .flatten()
        .filter(|e| e.file_name().to_str().and_then(|n| n.strip_prefix(prefix)).is_some_and(owner_of_name_gone));
    left.map(|e| e.path()).collect()
}
