//! A running container's processes and traffic, read from /proc: what
//! `top` lists and what `stats` counts besides the cgroup's numbers.

use super::status::stat_fields;

/// One process of a container, with its host pid, as `top` shows it.
#[derive(Clone, Debug)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// The real uid, as the host sees it.
    pub uid: Option<u32>,
    /// User plus system CPU time.
    pub cpu_seconds: u64,
    pub command: String,
}

/// Every process in the PID namespace of process `pid`, by pid; `None`
/// when `pid` has ended.
pub fn in_pid_namespace_of(pid: i32) -> Option<Vec<ProcessInfo>> {
    let namespace = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let theirs = namespace(&pid.to_string())?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
        .max(1);
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut pids: Vec<u32> = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    let found: Vec<ProcessInfo> = pids
        .into_iter()
        .filter(|p| namespace(&p.to_string()).as_ref() == Some(&theirs))
        .filter_map(|p| read_process(p, ticks)) // None: ended meanwhile
        .collect();
    // The host's PID namespace (`--pid host`): the container's processes
    // are its first process and what descends from it.
    if namespace("self").as_ref() == Some(&theirs) {
        return Some(descendants_of(pid, found));
    }
    Some(found)
}

/// `root` and the processes below it, in pid order.
fn descendants_of(root: i32, all: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    let mut kept: std::collections::HashSet<u32> = u32::try_from(root).into_iter().collect();
    // Parents have lower pids only until pids wrap: repeat until stable.
    loop {
        let before = kept.len();
        for p in &all {
            if p.ppid.is_some_and(|pp| kept.contains(&pp)) {
                kept.insert(p.pid);
            }
        }
        if kept.len() == before {
            break;
        }
    }
    all.into_iter().filter(|p| kept.contains(&p.pid)).collect()
}

fn read_process(pid: u32, ticks: u64) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let fields = stat_fields(&stat)?;
    let cpu: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum()) / ticks;
    let uid =
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next()?.parse().ok());
    Some(ProcessInfo {
        pid,
        ppid: fields.get(1).and_then(|p| p.parse().ok()),
        uid,
        cpu_seconds: cpu,
        command: String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_string(),
    })
}

/// Bytes received and sent on the interfaces of process `pid`'s network
/// namespace other than loopback, from its view of /proc/net/dev.
pub fn network_bytes(pid: i32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let mut total = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        total.0 += fields.first().copied().unwrap_or(0);
        total.1 += fields.get(8).copied().unwrap_or(0);
    }
    Some(total)
}

/// The host's memory, the limit of a container without one.
pub fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
