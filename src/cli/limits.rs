//! The resource-limit flags of `run` and `create`, as Docker spells them
//! (checked and turned into the Spec's resources by `spec::resources`).

use crate::spec::resources::Limits;

#[derive(clap::Args)]
pub struct LimitArgs {
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short = 'm', long, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap (default: twice --memory)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory the container is guaranteed under pressure (memory.low)
    #[arg(long, value_name = "SIZE")]
    memory_reservation: Option<String>,
    /// Number of CPUs the container may use (e.g. 0.5)
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Relative CPU weight, cgroup v1 style (2-262144, default 1024)
    #[arg(short = 'c', long, value_name = "SHARES")]
    cpu_shares: Option<u64>,
    /// Relative CPU weight (1-10000, default 100)
    #[arg(long, value_name = "WEIGHT")]
    cpu_weight: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1, 0,2)
    #[arg(long, value_name = "LIST")]
    cpuset_cpus: Option<String>,
    /// Most processes and threads the container may have (-1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Relative block I/O weight (10-1000)
    #[arg(long, value_name = "WEIGHT")]
    blkio_weight: Option<u16>,
    /// enabled (limits through a delegated cgroup v2) or disabled (no cgroup, limit flags ignored)
    #[arg(long, value_name = "MODE", value_enum, default_value_t)]
    pub cgroups: crate::cgroup::Mode,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            memory_reservation: self.memory_reservation.clone(),
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpu_weight: self.cpu_weight,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
        }
    }
}
