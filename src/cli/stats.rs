//! `hutch stats`: what running containers use, read from their cgroups
//! (CPU, memory, block I/O, processes) and their network namespaces.

use super::format::Format;
use super::Error;
use crate::containers::processes::host_memory;
use crate::containers::{Container, Containers};
use crate::engine::{Engine, Usage};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct StatsArgs {
    /// Print one reading and exit
    #[arg(long)]
    no_stream: bool,
    /// Show every container (default: running ones)
    #[arg(short, long)]
    all: bool,
    /// Output format: json, or a Go template ({{.Name}} {{.CPUPerc}}, table {{.Name}}\t{{.MemUsage}})
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Containers to show (default: every running one)
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// How far apart the readings a CPU percentage comes from are.
const INTERVAL: Duration = Duration::from_millis(1000);
const ONE_SHOT_INTERVAL: Duration = Duration::from_millis(500);

pub fn stats(args: StatsArgs, engine: &Engine) -> Result<i32, Error> {
    let store = engine.containers()?;
    let chosen = |store: &Containers| -> Result<Vec<Container>, Error> {
        if args.containers.is_empty() {
            let all = store.list()?;
            return Ok(all.into_iter().filter(|c| args.all || c.state().is_running()).collect());
        }
        Ok(args.containers.iter().map(|n| store.find(n)).collect::<Result<_, _>>()?)
    };
    let format = args.format.as_deref().map(|f| Format::parse(f, &header)).transpose()?;
    let mut previous = Readings::take(engine, &chosen(&store)?);
    let terminal = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(if args.no_stream { ONE_SHOT_INTERVAL } else { INTERVAL });
        let containers = chosen(&store)?;
        let now = Readings::take(engine, &containers);
        let table = render(&rows(&containers, &previous, &now), format.as_ref())?;
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

/// One reading of each container, by id, and when it was taken.
struct Readings {
    at: Instant,
    usage: Vec<(String, Usage)>,
}

impl Readings {
    fn take(engine: &Engine, containers: &[Container]) -> Readings {
        let usage = containers.iter().map(|c| (c.record.id.clone(), engine.usage(c))).collect();
        Readings { at: Instant::now(), usage }
    }

    fn of(&self, id: &str) -> Usage {
        self.usage.iter().find(|(i, _)| i == id).map(|(_, u)| *u).unwrap_or_default()
    }
}

/// A row of `stats`, with Docker's field names for `--format`.
#[derive(serde::Serialize)]
struct StatsRow {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Container")]
    container: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "CPUPerc")]
    cpu_perc: String,
    #[serde(rename = "MemUsage")]
    mem_usage: String,
    #[serde(rename = "MemPerc")]
    mem_perc: String,
    #[serde(rename = "NetIO")]
    net_io: String,
    #[serde(rename = "BlockIO")]
    block_io: String,
    #[serde(rename = "PIDs")]
    pids: String,
}

/// `stats`' column for a `--format` field, as Docker names it.
fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        other => return other.to_uppercase(),
    }
    .into()
}

fn render(rows: &[StatsRow], format: Option<&Format>) -> Result<String, Error> {
    if let Some(format) = format {
        return format.render(rows);
    }
    let mut table =
        vec![["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
            .map(String::from)];
    for r in rows {
        table.push(
            [&r.id, &r.name, &r.cpu_perc, &r.mem_usage, &r.mem_perc, &r.net_io, &r.block_io, &r.pids]
                .map(String::clone),
        );
    }
    Ok(super::containers::columns(&table))
}

fn rows(containers: &[Container], before: &Readings, now: &Readings) -> Vec<StatsRow> {
    let elapsed = now.at.duration_since(before.at).as_micros().max(1) as f64;
    let host_memory = host_memory();
    let mut rows = Vec::new();
    for c in containers {
        let Usage { cgroup: usage, network } = now.of(&c.record.id);
        let earlier = before.of(&c.record.id).cgroup;
        let unknown = || "--".to_string();
        let cpu = usage
            .and_then(|u| Some((u.cpu_usec? as f64 - earlier?.cpu_usec? as f64) / elapsed * 100.0))
            .map_or_else(unknown, |p| format!("{:.2}%", p.max(0.0)));
        let limit = usage.and_then(|u| u.memory_limit).or(host_memory);
        let memory = usage.and_then(|u| u.memory);
        rows.push(StatsRow {
            id: c.short_id().to_string(),
            container: c.short_id().to_string(),
            name: c.record.name.clone(),
            cpu_perc: cpu,
            mem_usage: memory
                .map_or_else(unknown, |m| format!("{} / {}", binary(m), limit.map_or_else(unknown, binary))),
            mem_perc: memory
                .zip(limit)
                .map_or_else(unknown, |(m, l)| format!("{:.2}%", m as f64 / l.max(1) as f64 * 100.0)),
            net_io: network.map_or_else(unknown, |(rx, tx)| format!("{} / {}", decimal(rx), decimal(tx))),
            block_io: usage
                .and_then(|u| Some(format!("{} / {}", decimal(u.io_read?), decimal(u.io_written?))))
                .unwrap_or_else(unknown),
            pids: usage.and_then(|u| u.pids).map_or_else(unknown, |p| p.to_string()),
        });
    }
    rows
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
