//! Container networking for hutch: the `--network` modes, network
//! namespaces, the user-mode helpers that connect them (slirp4netns,
//! pasta), published ports, and a container's /etc/hosts and resolv.conf.
//!
//! ```text
//! monitor (host network namespace, container's user namespace): connect()
//!  ├─ NetNs::create: a child unshares the network namespace, brings lo up,
//!  │                 and stays there forwarding TCP ports for slirp4netns
//!  ├─ Helper::start: slirp4netns or pasta for that namespace, ports published
//!  └─ the container joins the namespace
//! ```

mod files;
mod forward;
mod helper;
mod mode;
mod netns;
mod ports;
mod sys;

pub use files::{hosts_file, resolv_conf};
use forward::TcpForward;
use helper::{Helper, SLIRP_CONTAINER_IP};
pub use mode::{NetworkMode, SlirpOptions};
use netns::NetNs;
pub use ports::{check_available, parse_publish, PortMapping, Protocol};
pub use sys::bring_up_loopback;

/// A container's network: its namespace and the helper connecting it.
/// Dropping it stops the helper and frees the published ports.
pub struct Connected {
    // Held for its Drop (fields drop in order: the helper, then the namespace).
    _helper: Helper,
    netns: NetNs,
}

impl Connected {
    pub fn netns(&self) -> std::os::fd::BorrowedFd<'_> {
        self.netns.fd()
    }
}

/// Makes the network namespace for a container whose group ids end at
/// `max_gid`, and connects it as `mode` says, publishing `ports`; `dir`
/// holds the helper's log and sockets. TCP ports through slirp4netns go
/// through hutch's own forwarder (faster); pasta forwards its own.
///
/// Forks: call only from a single-threaded process (hutch's monitor).
pub fn connect(
    mode: &NetworkMode,
    ports: &[PortMapping],
    dir: &std::path::Path,
    max_gid: u32,
) -> Result<Connected, Error> {
    let (forwards, helper_ports): (Vec<TcpForward>, Vec<PortMapping>) = match mode {
        NetworkMode::Slirp4netns(_) => {
            let (tcp, udp): (Vec<PortMapping>, Vec<PortMapping>) =
                ports.iter().partition(|p| p.protocol == Protocol::Tcp);
            (tcp.iter().map(listen).collect::<Result<_, _>>()?, udp)
        }
        _ => (Vec::new(), ports.to_vec()),
    };
    let netns = NetNs::create(max_gid, forwards, SLIRP_CONTAINER_IP.into())?;
    let helper = Helper::start(mode, &netns, &helper_ports, dir)?;
    Ok(Connected { _helper: helper, netns })
}

fn listen(port: &PortMapping) -> Result<TcpForward, Error> {
    let listener = std::net::TcpListener::bind((port.host_ip, port.host_port))
        .map_err(|e| Error::Publishing { mapping: *port, message: e.to_string() })?;
    Ok(TcpForward { listener, container_port: port.container_port })
}

/// The helpers' MTU: at 1500 pasta is two orders of magnitude slower.
pub const MTU: u32 = 65520;

/// Errors of this crate; each names the operation or the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown network mode {0:?} (expected pasta[:OPTIONS], slirp4netns[:OPTIONS], host or none)")]
    UnknownMode(String),
    #[error("network mode {0:?}: unknown option {1:?} (slirp4netns takes allow_host_loopback=true|false, mtu=N)")]
    ModeOption(String, String),
    #[error(
        "no user-mode network helper: install passt (pasta) or slirp4netns, or run with --network host or --network none"
    )]
    NoHelper,
    #[error("network mode {0} needs no helper")]
    NoHelperNeeded(String),
    #[error("{0} is not installed: install it (Debian: apt-get install {pkg}) or choose another --network", pkg = package_of(.0))]
    HelperMissing(&'static str),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {message}")]
    HelperFailed { program: &'static str, message: String },
    #[error("invalid -p {spec:?}: {why} (expected [HOST-IP:][HOST-PORT:]CONTAINER-PORT[/tcp|/udp])")]
    Publish { spec: String, why: String },
    #[error("host port {}:{}/{} is already in use ({source}): stop what holds it or publish another host port", .mapping.host_ip, .mapping.host_port, .mapping.protocol)]
    PortTaken {
        mapping: PortMapping,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot publish {mapping}: {message}")]
    Publishing { mapping: PortMapping, message: String },
    #[error("cannot make the container's network namespace: {op}: {source}")]
    Netns {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("cannot make the container's network namespace: {0}")]
    NetnsSetup(String),
    #[error("cannot bring up the loopback interface: {op}: {source}")]
    Loopback {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
}

fn package_of(program: &str) -> &'static str {
    if program == "pasta" {
        "passt"
    } else {
        "slirp4netns"
    }
}
