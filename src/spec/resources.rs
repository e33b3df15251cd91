//! Resource limits as Docker's flags spell them (`--memory 64m`,
//! `--cpus 0.5`…), checked and turned into the OCI Spec's
//! `linux.resources`.

use super::Error;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};
use std::collections::HashMap;

/// The limits asked for, as given; `resources` checks them.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Memory limit (e.g. 64m, 1g)
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap (default: twice --memory)
    pub memory_swap: Option<String>,
    /// Memory the container is guaranteed under pressure (memory.low)
    pub memory_reservation: Option<String>,
    /// Number of CPUs the container may use (e.g. 0.5)
    pub cpus: Option<f64>,
    /// Relative CPU weight, cgroup v1 style (2-262144, default 1024)
    pub cpu_shares: Option<u64>,
    /// Relative CPU weight (1-10000, default 100)
    pub cpu_weight: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1, 0,2)
    pub cpuset_cpus: Option<String>,
    /// Most processes and threads the container may have (-1: unlimited)
    pub pids_limit: Option<i64>,
    /// Relative block I/O weight (10-1000)
    pub blkio_weight: Option<u16>,
}

impl Limits {
    /// The limits asked for, checked; `None` when there are none.
    pub fn resources(&self) -> Result<Option<LinuxResources>, Error> {
        let bad = |flag: &str, why: String| Error::Limit { flag: flag.to_string(), why };
        let size = |flag: &str, text: &Option<String>| -> Result<Option<i64>, Error> {
            text.as_deref()
                .map(|t| match t {
                    "-1" => Ok(-1),
                    t => parse_size(t)
                        .and_then(|n| i64::try_from(n).ok())
                        .ok_or_else(|| bad(flag, format!("{t:?} is not a size (e.g. 64m, 1g)"))),
                })
                .transpose()
        };
        let memory = size("memory", &self.memory)?.filter(|m| *m > 0);
        let reservation = size("memory-reservation", &self.memory_reservation)?;
        let mut swap = size("memory-swap", &self.memory_swap)?;
        match (memory, swap) {
            (None, Some(s)) if s > 0 => return Err(bad("memory-swap", "needs --memory as well".into())),
            (Some(m), Some(s)) if s > 0 && s < m => {
                return Err(bad("memory-swap", "must be at least --memory (it counts memory plus swap)".into()))
            }
            // Docker's default: as much swap as memory.
            (Some(m), None) => swap = Some(m.saturating_mul(2)),
            _ => {}
        }
        if let (Some(m), Some(r)) = (memory, reservation) {
            if r > m {
                return Err(bad("memory-reservation", "must be at most --memory".into()));
            }
        }
        let mut resources = LinuxResourcesBuilder::default();
        let mut any = false;
        if memory.is_some() || reservation.is_some() {
            let mut m = LinuxMemoryBuilder::default();
            if let Some(limit) = memory {
                m = m.limit(limit);
            }
            if let Some(swap) = swap {
                m = m.swap(swap);
            }
            if let Some(low) = reservation {
                m = m.reservation(low);
            }
            resources = resources.memory(m.build()?);
            any = true;
        }
        if self.cpus.is_some() || self.cpu_shares.is_some() || self.cpuset_cpus.is_some() {
            let mut cpu = LinuxCpuBuilder::default();
            if let Some(cpus) = self.cpus {
                let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                if !(0.01..=online).contains(&cpus) {
                    return Err(bad("cpus", format!("{cpus} is out of range: from 0.01 to {online} on this machine")));
                }
                // In range (checked above): at most the machine's CPUs times 100,000.
                #[allow(clippy::cast_possible_truncation)]
                let quota = (cpus * 100_000.0).round() as i64;
                cpu = cpu.quota(quota).period(100_000u64);
            }
            if let Some(shares) = self.cpu_shares {
                if !(2..=262_144).contains(&shares) {
                    return Err(bad("cpu-shares", format!("{shares} is out of range: from 2 to 262144")));
                }
                cpu = cpu.shares(shares);
            }
            if let Some(list) = &self.cpuset_cpus {
                if list.is_empty() || !list.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '-') {
                    return Err(bad("cpuset-cpus", format!("{list:?} is not a CPU list (e.g. 0-1 or 0,2)")));
                }
                cpu = cpu.cpus(list.clone());
            }
            resources = resources.cpu(cpu.build()?);
            any = true;
        }
        if let Some(weight) = self.cpu_weight {
            if !(1..=10_000).contains(&weight) {
                return Err(bad("cpu-weight", format!("{weight} is out of range: from 1 to 10000")));
            }
            resources = resources.unified(HashMap::from([("cpu.weight".to_string(), weight.to_string())]));
            any = true;
        }
        if let Some(limit) = self.pids_limit {
            let pids = LinuxPidsBuilder::default().limit(limit).build()?;
            resources = resources.pids(pids);
            any = true;
        }
        if let Some(weight) = self.blkio_weight {
            if !(10..=1000).contains(&weight) {
                return Err(bad("blkio-weight", format!("{weight} is out of range: from 10 to 1000")));
            }
            let io = LinuxBlockIoBuilder::default().weight(weight).build()?;
            resources = resources.block_io(io);
            any = true;
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(resources.build()?))
    }
}

/// `512`, `64k`, `10m`, `1g` (powers of 1024, as Docker reads them).
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (digits, shift) = match trimmed.chars().last()? {
        'k' => (&trimmed[..trimmed.len() - 1], 10),
        'm' => (&trimmed[..trimmed.len() - 1], 20),
        'g' => (&trimmed[..trimmed.len() - 1], 30),
        _ => (trimmed, 0),
    };
    digits.parse::<u64>().ok().and_then(|n| n.checked_mul(1 << shift)).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut Limits)) -> Result<Option<LinuxResources>, Error> {
        let mut args = Limits::default();
        f(&mut args);
        args.resources()
    }

    #[test]
    fn memory_gets_dockers_default_swap_and_bad_values_are_refused() {
        let r = limits(|a| a.memory = Some("64m".into())).unwrap().unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        assert!(limits(|a| a.memory = Some("lots".into())).is_err());
        assert!(limits(|a| a.memory_swap = Some("1g".into())).is_err(), "swap without memory");
        assert!(limits(|a| {
            a.memory = Some("1g".into());
            a.memory_swap = Some("64m".into())
        })
        .is_err());
        assert!(limits(|a| a.cpus = Some(0.0)).is_err());
        assert!(limits(|a| a.cpuset_cpus = Some("a".into())).is_err());
        assert!(limits(|_| {}).unwrap().is_none());
    }

    #[test]
    fn cpus_become_a_quota_of_a_100ms_period() {
        let r = limits(|a| a.cpus = Some(0.5)).unwrap().unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
    }
}
