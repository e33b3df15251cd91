//! What a container's cgroup says it uses, for `hutch stats`.

use std::fs;
use std::path::Path;

/// One reading of a container leaf; `None` where the controller is off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub memory: Option<u64>,
    /// memory.max; `None` for "max".
    pub memory_limit: Option<u64>,
    /// cpu.stat usage_usec.
    pub cpu_usec: Option<u64>,
    /// cpu.max as a number of CPUs; `None` for "max".
    pub cpu_limit: Option<f64>,
    /// cpu.stat nr_throttled.
    pub throttled: Option<u64>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
    pub io_read: Option<u64>,
    pub io_written: Option<u64>,
}

impl Usage {
    pub fn read(leaf: &Path) -> Usage {
        let (io_read, io_written) = io_bytes(&leaf.join("io.stat"));
        Usage {
            memory: number(&leaf.join("memory.current")),
            memory_limit: number(&leaf.join("memory.max")),
            cpu_usec: keyed(&leaf.join("cpu.stat"), "usage_usec"),
            cpu_limit: cpu_max(&leaf.join("cpu.max")),
            throttled: keyed(&leaf.join("cpu.stat"), "nr_throttled"),
            pids: number(&leaf.join("pids.current")),
            pids_limit: number(&leaf.join("pids.max")),
            io_read,
            io_written,
        }
    }
}

/// A file holding one number (`None` for "max" or a missing file).
fn number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat keyed file (`cpu.stat`, `memory.events`).
pub fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `cpu.max` ("50000 100000") as CPUs.
fn cpu_max(path: &Path) -> Option<f64> {
    let text = fs::read_to_string(path).ok()?;
    let mut parts = text.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next()?.parse().ok()?;
    (period > 0.0).then(|| quota / period)
}

/// Bytes read and written over every device in `io.stat`.
fn io_bytes(path: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(text) = fs::read_to_string(path) else { return (None, None) };
    let (mut read, mut written) = (0, 0);
    for field in text.split_whitespace() {
        if let Some(n) = field.strip_prefix("rbytes=").and_then(|n| n.parse::<u64>().ok()) {
            read += n;
        } else if let Some(n) = field.strip_prefix("wbytes=").and_then(|n| n.parse::<u64>().ok()) {
            written += n;
        }
    }
    (Some(read), Some(written))
}
