//! `hutch stats`: what running containers use, read from their cgroups
//! (CPU, memory, block I/O, processes) and their network namespaces.

use super::Error;
use crate::cgroup::stats::Usage;
use crate::cgroup::ContainerCgroup;
use crate::containers::{Container, Containers};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct StatsArgs {
    /// Print one reading and exit
    #[arg(long)]
    no_stream: bool,
    /// Show every container (default: running ones)
    #[arg(short, long)]
    all: bool,
    /// Containers to show (default: every running one)
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// How far apart the readings a CPU percentage comes from are.
const INTERVAL: Duration = Duration::from_millis(1000);
const ONE_SHOT_INTERVAL: Duration = Duration::from_millis(500);

pub fn stats(args: StatsArgs, root: &Path) -> Result<i32, Error> {
    let store = Containers::open(root)?;
    let chosen = |store: &Containers| -> Result<Vec<Container>, Error> {
        if args.containers.is_empty() {
            let all = store.list()?;
            return Ok(all.into_iter().filter(|c| args.all || c.state().is_running()).collect());
        }
        Ok(args.containers.iter().map(|n| store.find(n)).collect::<Result<_, _>>()?)
    };
    let mut previous = Readings::take(&chosen(&store)?);
    let terminal = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(if args.no_stream { ONE_SHOT_INTERVAL } else { INTERVAL });
        let containers = chosen(&store)?;
        let now = Readings::take(&containers);
        let table = table(&containers, &previous, &now);
        let mut out = std::io::stdout().lock();
        if terminal && !args.no_stream {
            let _ = out.write_all(b"\x1b[2J\x1b[H");
        }
        let _ = out.write_all(table.as_bytes());
        let _ = out.flush();
        if args.no_stream {
            return Ok(0);
        }
        previous = now;
    }
}

/// Bytes received and sent.
type NetworkBytes = (u64, u64);

/// One reading of each container, by id, and when it was taken.
struct Readings {
    at: Instant,
    usage: Vec<(String, Option<Usage>, Option<NetworkBytes>)>,
}

impl Readings {
    fn take(containers: &[Container]) -> Readings {
        let usage = containers
            .iter()
            .map(|c| {
                let state = c.state();
                let running = state.is_running();
                let cgroup = state.cgroup.filter(|_| running).map(|dir| ContainerCgroup { dir }.container_leaf());
                let network = state.pid.filter(|_| running).and_then(network_bytes);
                (c.record.id.clone(), cgroup.map(|leaf| Usage::read(&leaf)), network)
            })
            .collect();
        Readings { at: Instant::now(), usage }
    }

    fn of(&self, id: &str) -> (Option<Usage>, Option<NetworkBytes>) {
        self.usage.iter().find(|(i, _, _)| i == id).map(|(_, u, n)| (*u, *n)).unwrap_or_default()
    }
}

fn table(containers: &[Container], before: &Readings, now: &Readings) -> String {
    let mut rows =
        vec![["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
            .map(String::from)];
    let elapsed = now.at.duration_since(before.at).as_micros().max(1) as f64;
    let host_memory = host_memory();
    for c in containers {
        let (usage, network) = now.of(&c.record.id);
        let (earlier, _) = before.of(&c.record.id);
        let unknown = || "--".to_string();
        let cpu = usage
            .and_then(|u| Some((u.cpu_usec? as f64 - earlier?.cpu_usec? as f64) / elapsed * 100.0))
            .map_or_else(unknown, |p| format!("{:.2}%", p.max(0.0)));
        let limit = usage.and_then(|u| u.memory_limit).or(host_memory);
        let memory = usage.and_then(|u| u.memory);
        rows.push([
            c.short_id().to_string(),
            c.record.name.clone(),
            cpu,
            memory.map_or_else(unknown, |m| format!("{} / {}", binary(m), limit.map_or_else(unknown, binary))),
            memory.zip(limit).map_or_else(unknown, |(m, l)| format!("{:.2}%", m as f64 / l.max(1) as f64 * 100.0)),
            network.map_or_else(unknown, |(rx, tx)| format!("{} / {}", decimal(rx), decimal(tx))),
            usage
                .and_then(|u| Some(format!("{} / {}", decimal(u.io_read?), decimal(u.io_written?))))
                .unwrap_or_else(unknown),
            usage.and_then(|u| u.pids).map_or_else(unknown, |p| p.to_string()),
        ]);
    }
    super::containers::columns(&rows)
}

/// Bytes received and sent on the container's interfaces other than
/// loopback, from its first process's view of /proc/net/dev.
fn network_bytes(pid: i32) -> Option<NetworkBytes> {
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

fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// "1.5MiB", as Docker shows memory.
fn binary(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    scaled(bytes, 1024.0, &units)
}

/// "1.2MB", as Docker shows network and block I/O.
fn decimal(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB"])
}

fn scaled(bytes: u64, step: f64, units: &[&str]) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= step && unit + 1 < units.len() {
        value /= step;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}{}", units[0])
    } else {
        let digits = format!("{value:.3}");
        format!("{}{}", digits.trim_end_matches('0').trim_end_matches('.'), units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(binary(64 << 20), "64MiB");
        assert_eq!(binary(1536 * 1024), "1.5MiB");
        assert_eq!(decimal(999), "999B");
        assert_eq!(decimal(1_200), "1.2kB");
    }
}
