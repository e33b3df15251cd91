//! An OCI Spec's `linux.resources` as cgroup v2 files, converted as crun
//! and runc do (cpu shares to cpu.weight, blkio weight to io.weight, swap
//! as memory+swap).

use super::Error;
use oci_spec::runtime::LinuxResources;
use std::fs;
use std::path::Path;

/// The controllers `resources` needs.
pub fn controllers_for(resources: &LinuxResources) -> Vec<&'static str> {
    let mut needed = Vec::new();
    if resources.memory().is_some_and(|m| m.limit().is_some() || m.reservation().is_some() || m.swap().is_some()) {
        needed.push("memory");
    }
    let cpu = resources.cpu().as_ref();
    let weighted = resources.unified().as_ref().is_some_and(|u| u.contains_key("cpu.weight"));
    if cpu.is_some_and(|c| c.quota().is_some() || c.shares().is_some()) || weighted {
        needed.push("cpu");
    }
    if cpu.is_some_and(|c| c.cpus().is_some()) {
        needed.push("cpuset");
    }
    if resources.pids().is_some() {
        needed.push("pids");
    }
    if resources.block_io().as_ref().is_some_and(|b| b.weight().is_some()) {
        needed.push("io");
    }
    needed
}

/// The flags that asked for `resources`, for messages: "--memory, --pids-limit".
pub fn flags_for(resources: &LinuxResources) -> String {
    let mut flags = Vec::new();
    if let Some(m) = resources.memory() {
        for (set, flag) in [
            (m.limit().is_some(), "--memory"),
            (m.swap().is_some() && m.limit().is_none(), "--memory-swap"),
            (m.reservation().is_some(), "--memory-reservation"),
        ] {
            if set {
                flags.push(flag);
            }
        }
    }
    if let Some(c) = resources.cpu() {
        for (set, flag) in [
            (c.quota().is_some(), "--cpus"),
            (c.shares().is_some(), "--cpu-shares"),
            (c.cpus().is_some(), "--cpuset-cpus"),
        ] {
            if set {
                flags.push(flag);
            }
        }
    }
    if resources.unified().as_ref().is_some_and(|u| u.contains_key("cpu.weight")) {
        flags.push("--cpu-weight");
    }
    if resources.pids().is_some() {
        flags.push("--pids-limit");
    }
    if resources.block_io().is_some() {
        flags.push("--blkio-weight");
    }
    flags.join(", ")
}

/// Writes `resources` into the cgroup `dir`.
pub(super) fn apply(dir: &Path, resources: &LinuxResources) -> Result<(), Error> {
    for (file, value) in files(dir, resources) {
        let path = dir.join(&file);
        fs::write(&path, &value).map_err(|e| {
            Error::Io(crate::files::IoError {
                op: "write",
                path: path.clone(),
                source: std::io::Error::new(e.kind(), format!("{value:?}: {e}")),
            })
        })?;
    }
    Ok(())
}

/// The cgroup files and values for `resources`, in the order to write them.
fn files(dir: &Path, resources: &LinuxResources) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut set = |file: &str, value: String| files.push((file.to_string(), value));
    if let Some(m) = resources.memory() {
        if let Some(low) = m.reservation() {
            set("memory.low", low.to_string());
        }
        if let Some(limit) = m.limit() {
            set("memory.max", max_or(limit));
        }
        // OCI's swap is memory+swap; cgroup v2 counts swap alone.
        if let (Some(swap), true) = (m.swap(), dir.join("memory.swap.max").exists()) {
            let alone = match (swap, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(limit)) if limit > 0 => s.saturating_sub(limit).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            set("memory.swap.max", alone);
        }
    }
    if let Some(c) = resources.cpu() {
        if let Some(quota) = c.quota() {
            set("cpu.max", format!("{} {}", max_or(quota), c.period().unwrap_or(100_000)));
        }
        if let Some(shares) = c.shares() {
            set("cpu.weight", shares_to_weight(shares).to_string());
        }
        if let Some(cpus) = c.cpus() {
            set("cpuset.cpus", cpus.clone());
        }
    }
    if let Some(pids) = resources.pids() {
        set("pids.max", max_or(pids.limit()));
    }
    if let Some(weight) = resources.block_io().as_ref().and_then(|b| b.weight()) {
        if dir.join("io.bfq.weight").exists() {
            set("io.bfq.weight", weight.to_string());
        } else {
            set("io.weight", format!("default {}", blkio_to_io_weight(weight)));
        }
    }
    for (key, value) in resources.unified().iter().flatten() {
        if !key.contains('/') {
            set(key, value.clone());
        }
    }
    files
}

/// cgroup v2 writes "max" for no limit; OCI uses -1 (or 0 for pids).
fn max_or(value: i64) -> String {
    if value <= 0 {
        "max".into()
    } else {
        value.to_string()
    }
}

/// cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), as crun does.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio weight (10..1000) to io.weight (1..10000).
fn blkio_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};

    #[test]
    fn weights_convert_like_crun() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn resources_become_cgroup_files() {
        let resources = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(64 << 20).swap(128 << 20).build().unwrap())
            .cpu(LinuxCpuBuilder::default().quota(50_000).period(100_000u64).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
            .build()
            .unwrap();
        let files = files(Path::new("/nonexistent"), &resources);
        let get = |f: &str| files.iter().find(|(n, _)| n == f).map(|(_, v)| v.as_str());
        assert_eq!(get("memory.max"), Some("67108864"));
        assert_eq!(get("cpu.max"), Some("50000 100000"));
        assert_eq!(get("pids.max"), Some("20"));
        assert_eq!(controllers_for(&resources), ["memory", "cpu", "pids"]);
        assert_eq!(flags_for(&resources), "--memory, --cpus, --pids-limit");
    }
}
