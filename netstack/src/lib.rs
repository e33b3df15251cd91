//! Container networking for hutch.
//!
//! Today: the `host` and `none` modes, the loopback interface of a fresh
//! network namespace, and the contents of a container's /etc/hosts and
//! /etc/resolv.conf. The user-mode helpers (slirp4netns, pasta) and port
//! publishing arrive here with the netstack issue.

mod files;
mod loopback;

pub use files::{hosts_file, resolv_conf};
pub use loopback::bring_up_loopback;

use std::fmt;
use std::str::FromStr;

/// Errors of this crate; each names the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown network mode {0:?} (expected host or none)")]
    UnknownMode(String),
    #[error("cannot bring up the loopback interface: {op}: {source}")]
    Loopback {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
}

/// How a container is connected (`--network`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// Share the host's network namespace (the HPC choice: MPI, InfiniBand).
    Host,
    /// A network namespace of its own with only loopback.
    None,
}

impl NetworkMode {
    /// Whether the container needs a network namespace of its own.
    pub fn needs_namespace(self) -> bool {
        matches!(self, NetworkMode::None)
    }
}

impl FromStr for NetworkMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(Error::UnknownMode(other.to_string())),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        })
    }
}
