//! The user-mode helpers that carry a container's traffic: slirp4netns and
//! pasta, started in the host's network namespace for the container's, as
//! children that die with their parent (PR_SET_PDEATHSIG), so no helper
//! outlives the container's monitor, however it ends.

use crate::netns::NetNs;
use crate::ports::{PortMapping, Protocol};
use crate::{Error, NetworkMode, SlirpOptions};
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, read};
use std::io::{BufRead, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where slirp4netns puts the container, its gateway (the host) and DNS.
pub const SLIRP_CONTAINER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const SLIRP_HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const SLIRP_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The address pasta answers DNS on, forwarding to the host's resolver.
pub const PASTA_DNS_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running helper; stopped when dropped.
pub struct Helper {
    name: &'static str,
    child: Child,
    /// slirp4netns exits when this closes.
    _exit_pipe: Option<OwnedFd>,
    /// It listens on host ports, which must be free again once it is
    /// dropped.
    holds_host_ports: bool,
}

impl Helper {
    /// Starts the helper `mode` names for `netns`, publishing `ports`.
    /// Its output goes to `log`; slirp4netns's API socket is made in `dir`.
    pub fn start(mode: &NetworkMode, netns: &NetNs, ports: &[PortMapping], dir: &Path) -> Result<Helper, Error> {
        let log = dir.join("network.log");
        match mode {
            NetworkMode::Slirp4netns(options) => start_slirp4netns(options, netns, ports, dir, &log),
            NetworkMode::Pasta(args) => start_pasta(args, netns, ports, &log),
            NetworkMode::Host | NetworkMode::None => Err(Error::NoHelperNeeded(mode.to_string())),
        }
    }
}

impl Drop for Helper {
    /// Helpers keep no state worth a graceful stop: killed at once. Reaped
    /// only when it held host ports: its exit closes its tap device, which
    /// waits out an RCU grace period in the kernel (25–35 ms here, most of
    /// a networked container's end); otherwise whoever inherits it reaps it.
    fn drop(&mut self) {
        drop(self._exit_pipe.take());
        let _ = self.child.kill();
        if self.holds_host_ports {
            let _ = self.child.wait();
        }
    }
}

/// A helper command: output to `log`, the given descriptors inherited at
/// their numbers, signals as a fresh process has them (the monitor blocks
/// the ones it relays), killed when its parent dies.
fn helper_command(program: &'static str, log: &Path, inherited: Vec<RawFd>) -> Result<Command, Error> {
    let log_file = std::fs::File::create(log).map_err(|e| Error::Spawn { program, source: e })?;
    let log_copy = log_file.try_clone().map_err(|e| Error::Spawn { program, source: e })?;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).stdout(log_copy).stderr(log_file);
    crate::sys::prepare_exec(&mut cmd, inherited);
    Ok(cmd)
}

fn spawn(program: &'static str, mut cmd: Command) -> Result<Child, Error> {
    cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::HelperMissing(program),
        _ => Error::Spawn { program, source: e },
    })
}

/// The helper's last words, for an error message.
fn last_log_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().rev().find(|l| !l.trim().is_empty() && !l.contains("syslog")).unwrap_or("no output").trim().to_string()
}

fn start_slirp4netns(
    options: &SlirpOptions,
    netns: &NetNs,
    ports: &[PortMapping],
    dir: &Path,
    log: &Path,
) -> Result<Helper, Error> {
    let program = "slirp4netns";
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|source| Error::Netns { op: "pipe", source });
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    let ns = netns.fd().as_raw_fd();
    let mut cmd = helper_command(program, log, vec![ns, ready_w.as_raw_fd(), exit_r.as_raw_fd()])?;
    // The API socket's path is relative to `dir`: absolute ones may pass
    // the 108 bytes a socket path may have.
    cmd.current_dir(dir).args([
        "--configure".to_string(),
        format!("--mtu={}", options.mtu),
        "--enable-sandbox".into(),
        "--enable-seccomp".into(),
        format!("--ready-fd={}", ready_w.as_raw_fd()),
        format!("--exit-fd={}", exit_r.as_raw_fd()),
        "--api-socket=slirp4netns.sock".into(),
        "--netns-type=path".into(),
    ]);
    if !options.allow_host_loopback {
        cmd.arg("--disable-host-loopback");
    }
    cmd.arg(format!("/proc/self/fd/{ns}")).arg("tap0");
    let child = spawn(program, cmd)?;
    drop((ready_w, exit_r));
    // TCP ports go through hutch's forwarder; UDP ones through slirp4netns.
    let holds_host_ports = ports.iter().any(|p| p.protocol != Protocol::Tcp);
    let helper = Helper { name: program, child, _exit_pipe: Some(exit_w), holds_host_ports };
    let mut buf = [0u8; 1];
    if !matches!(read(&ready_r, &mut buf), Ok(1)) {
        return Err(Error::HelperFailed { program, message: last_log_line(log) });
    }
    let socket = dir.join("slirp4netns.sock");
    for port in ports {
        add_hostfwd(&socket, port)?;
    }
    Ok(helper)
}

/// Publishes `port` through slirp4netns's API socket.
fn add_hostfwd(socket: &Path, port: &PortMapping) -> Result<(), Error> {
    let failed = |message: String| Error::Publishing { mapping: *port, message };
    // Connect through the directory's descriptor: the full path may be too long.
    let dir = std::fs::File::open(socket.parent().unwrap_or(Path::new("."))).map_err(|e| failed(e.to_string()))?;
    let name = socket.file_name().and_then(|n| n.to_str()).unwrap_or("slirp4netns.sock");
    let short = PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()));
    let mut stream = UnixStream::connect(&short).map_err(|e| failed(format!("slirp4netns API: {e}")))?;
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": port.protocol.to_string(),
            "host_addr": port.host_ip.to_string(),
            "host_port": port.host_port,
            "guest_port": port.container_port,
        }
    });
    stream.write_all(request.to_string().as_bytes()).map_err(|e| failed(e.to_string()))?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(|e| failed(e.to_string()))?;
    let reply: serde_json::Value =
        serde_json::from_str(&reply).map_err(|e| failed(format!("bad reply {reply:?}: {e}")))?;
    match reply.get("error") {
        None => Ok(()),
        Some(err) => Err(failed(err.get("desc").and_then(|d| d.as_str()).unwrap_or("refused").to_string())),
    }
}

/// pasta's options for published ports; `none` for what is not asked, so
/// nothing is forwarded implicitly (pasta's default is `auto`).
fn pasta_port_args(ports: &[PortMapping], extra: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, protocol) in [("-t", Protocol::Tcp), ("-u", Protocol::Udp)] {
        let specs: Vec<String> = ports
            .iter()
            .filter(|p| p.protocol == protocol)
            .map(|p| format!("{}/{}:{}", p.host_ip, p.host_port, p.container_port))
            .collect();
        if specs.is_empty() {
            if !extra.iter().any(|a| a == flag) {
                args.extend([flag.to_string(), "none".into()]);
            }
        } else {
            for spec in specs {
                args.extend([flag.to_string(), spec.replace("0.0.0.0/", "")]);
            }
        }
    }
    for flag in ["-T", "-U"] {
        if !extra.iter().any(|a| a == flag) {
            args.extend([flag.to_string(), "none".into()]);
        }
    }
    args
}

fn start_pasta(extra: &[String], netns: &NetNs, ports: &[PortMapping], log: &Path) -> Result<Helper, Error> {
    let program = "pasta";
    let ns = netns.fd().as_raw_fd();
    let mut cmd = helper_command(program, log, vec![ns])?;
    // --runas 0: stay the namespace's root (pasta's default, nobody, may
    // not be mapped); --netns through our descriptor: pasta drops its
    // capabilities before opening it, and /proc/PID/ns needs them.
    cmd.args(["--config-net", "--foreground", "--quiet", "--runas", "0", "--mtu", &crate::MTU.to_string()]);
    cmd.args(["--ns-ifname", "eth0", "--dns-forward", &PASTA_DNS_IP.to_string()]);
    cmd.args(pasta_port_args(ports, extra)).args(extra);
    cmd.arg("--netns").arg(format!("/proc/self/fd/{ns}"));
    let child = spawn(program, cmd)?;
    let mut helper = Helper { name: program, child, _exit_pipe: None, holds_host_ports: !ports.is_empty() };
    // Ready: a default route in the namespace, every published port bound
    // on the host, every -T/-U port bound inside (pasta binds those from a
    // timer, up to a second after it started).
    let host_ports: Vec<(Protocol, u16)> = ports.iter().map(|p| (p.protocol, p.host_port)).collect();
    let ns_ports = pasta_namespace_ports(extra);
    let ns_dir = netns.proc_net();
    wait_until(&mut helper, log, || {
        has_default_route(&ns_dir.join("route"))
            && host_ports.iter().all(|&(proto, port)| is_bound(Path::new("/proc/self/net"), proto, port))
            && ns_ports.iter().all(|&(proto, port)| is_bound(&ns_dir, proto, port))
    })?;
    Ok(helper)
}

/// The ports pasta binds inside the namespace for `-T`/`-U` options:
/// numbers and ranges (the listening side of `A-B:C-D`); addresses,
/// interfaces and exclusions are left to pasta.
fn pasta_namespace_ports(args: &[String]) -> Vec<(Protocol, u16)> {
    let mut ports = Vec::new();
    for pair in args.windows(2) {
        let protocol = match pair[0].as_str() {
            "-T" | "--tcp-ns" => Protocol::Tcp,
            "-U" | "--udp-ns" => Protocol::Udp,
            _ => continue,
        };
        for item in pair[1].split(',').filter(|i| !i.starts_with('~')) {
            let item = item.rsplit_once('/').map_or(item, |(_, ports)| ports);
            let listening = item.split(':').next().unwrap_or_default().split('%').next().unwrap_or_default();
            let (a, b) = listening.split_once('-').unwrap_or((listening, listening));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                ports.extend((a..=b).map(|p| (protocol, p)));
            }
        }
    }
    ports
}

/// Whether something listens on (TCP) or is bound to (UDP) `port` in the
/// network namespace whose /proc/…/net directory is `net`.
fn is_bound(net: &Path, protocol: Protocol, port: u16) -> bool {
    let (files, state) = match protocol {
        Protocol::Tcp => (["tcp", "tcp6"], "0A"), // LISTEN
        Protocol::Udp => (["udp", "udp6"], "07"), // CLOSE: a bound socket
    };
    let wanted = format!(":{port:04X}");
    files.iter().any(|f| {
        std::fs::read_to_string(net.join(f)).is_ok_and(|table| {
            table.lines().skip(1).any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.len() > 3 && fields[1].ends_with(&wanted) && fields[3] == state
            })
        })
    })
}

/// Polls `ready` until it holds, the helper exits, or time runs out.
fn wait_until(helper: &mut Helper, log: &Path, mut ready: impl FnMut() -> bool) -> Result<(), Error> {
    let program = helper.name;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready() {
            return Ok(());
        }
        if !matches!(helper.child.try_wait(), Ok(None)) {
            return Err(Error::HelperFailed { program, message: last_log_line(log) });
        }
        if Instant::now() > deadline {
            return Err(Error::HelperFailed { program, message: format!("not ready after {READY_TIMEOUT:?}") });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn has_default_route(table: &Path) -> bool {
    let Ok(file) = std::fs::File::open(table) else { return false };
    std::io::BufReader::new(file)
        .lines()
        .skip(1)
        .map_while(Result::ok)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_publish;

    #[test]
    fn pasta_namespace_ports_are_found_in_its_options() {
        let args: Vec<String> = ["-T", "5000,6000-6001:7000-7001,~6001", "-U", "127.0.0.1/53", "-t", "80"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            pasta_namespace_ports(&args),
            [(Protocol::Tcp, 5000), (Protocol::Tcp, 6000), (Protocol::Tcp, 6001), (Protocol::Udp, 53)]
        );
    }

    #[test]
    fn pasta_forwards_only_what_is_published() {
        let ports: Vec<_> =
            ["8080:80", "127.0.0.1:5353:53/udp"].iter().flat_map(|p| parse_publish(p).unwrap()).collect();
        assert_eq!(
            pasta_port_args(&ports, &[]),
            ["-t", "8080:80", "-u", "127.0.0.1/5353:53", "-T", "none", "-U", "none"]
        );
        assert_eq!(pasta_port_args(&[], &["-T".into(), "5000".into()]), ["-t", "none", "-u", "none", "-U", "none"]);
    }
}
