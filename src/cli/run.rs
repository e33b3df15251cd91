//! `hutch run`.

use super::{runtime_and_userns, Error};
use crate::config::Config;
use crate::runtime::{self, StdioMode};
use crate::spec::device::Device;
use crate::spec::{self, ContainerConfig, EtcFiles, SeccompChoice, Volume};
use crate::state::{new_container_id, ContainerDir};
use crate::userns::UsernsPlan;
use clap::{ArgAction, Args};
use netstack::{NetworkMode, PortMapping};
use std::os::fd::AsFd;
use std::path::PathBuf;

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Directory holding the container's root filesystem
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,
    /// Set an environment variable (KEY=VALUE, or KEY to pass yours on)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// User inside the container: NAME|UID[:GROUP|GID]
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "NAME")]
    hostname: Option<String>,
    /// Bind mount a host path: HOST:CONTAINER[:ro|rw]
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:OPTS]")]
    volumes: Vec<String>,
    /// Give the container a host device: HOST[:CONTAINER][:PERMISSIONS]
    #[arg(long = "device", value_name = "HOST[:CONTAINER][:rwm]")]
    devices: Vec<String>,
    /// Pass on N descriptors beyond stdin, stdout and stderr (3 to 3+N-1)
    #[arg(long, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// Remove the container's runtime files when it exits
    #[arg(long)]
    rm: bool,
    /// Keep stdin open
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give the container a terminal
    #[arg(short = 't', long)]
    tty: bool,
    /// Run a small init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    init: bool,
    /// Network: pasta[:OPTS], slirp4netns[:OPTS], host or none (default: pasta, else slirp4netns)
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Publish a container port: [HOST-IP:][HOST-PORT:]CONTAINER-PORT[/tcp|/udp]
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long)]
    read_only: bool,
    /// Mount a tmpfs: PATH[:OPTIONS]
    #[arg(long, value_name = "PATH[:OPTS]")]
    tmpfs: Vec<String>,
    /// Add a capability (name with or without CAP_, or ALL)
    #[arg(long, value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a capability (name with or without CAP_, or ALL)
    #[arg(long, value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Every capability the user namespace can hold, nothing masked
    #[arg(long)]
    privileged: bool,
    /// Security options: no-new-privileges[=true|false], seccomp=unconfined
    #[arg(long, value_name = "OPT")]
    security_opt: Vec<String>,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// The command to run, and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true, required = true)]
    command: Vec<String>,
}

pub fn run(args: RunArgs) -> Result<i32, Error> {
    let (runtime, plan) = runtime_and_userns()?;
    let volumes = args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<Vec<_>, _>>()?;
    let devices =
        args.devices.iter().map(|d| Device::parse(d).map_err(spec::Error::from)).collect::<Result<Vec<_>, _>>()?;
    check_preserved_fds(args.preserve_fds)?;
    let network = network_mode(args.network.as_deref())?;
    let ports = published_ports(&args.publish, &network)?;
    let id = new_container_id()?;
    let dir = ContainerDir::create(&runtime, &id)?;
    let result = run_in(&dir, &plan, &id, Resources { volumes, devices, network, ports }, &args);
    if args.rm {
        if let Err(e) = dir.remove() {
            eprintln!("hutch: {e}");
        }
    }
    result
}

fn run_in(dir: &ContainerDir, plan: &UsernsPlan, id: &str, resources: Resources, args: &RunArgs) -> Result<i32, Error> {
    let Resources { volumes, devices, network, ports } = resources;
    let security = security_options(&args.security_opt)?;
    let hostname = args.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let etc_files = EtcFiles {
        hosts: dir.write("hosts", netstack::hosts_file(&hostname, &network).as_bytes())?,
        hostname: dir.write("hostname", format!("{hostname}\n").as_bytes())?,
        resolv_conf: dir.write("resolv.conf", netstack::resolv_conf(&network).as_bytes())?,
    };
    let config = ContainerConfig {
        rootfs: args.rootfs.clone(),
        command: args.command.clone(),
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname,
        volumes,
        devices,
        terminal: args.tty,
        terminal_size: runtime::terminal_size(std::io::stdin().as_fd()),
        network,
        ports,
        state_dir: dir.path().to_path_buf(),
        init: args.init,
        read_only: args.read_only,
        tmpfs: args.tmpfs.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        no_new_privileges: security.no_new_privileges,
        seccomp: security.seccomp,
        etc_files,
    };
    if args.privileged {
        eprintln!(
            "hutch: note: --privileged gives every capability inside the user namespace only: no host devices, kernel modules or host-wide settings"
        );
    }
    let spec = spec::build(&config, plan)?;
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Other(format!("serializing the spec: {e}")))?;
    dir.write("config.json", &json)?;
    Ok(runtime::run(
        &spec,
        plan,
        StdioMode { terminal: args.tty, interactive: args.interactive, preserve_fds: args.preserve_fds },
    )?)
}

/// What the container is given from the host, checked before it starts.
struct Resources {
    volumes: Vec<Volume>,
    devices: Vec<Device>,
    network: NetworkMode,
    ports: Vec<PortMapping>,
}

/// `--network`, else the config file's default, else pasta or slirp4netns.
fn network_mode(flag: Option<&str>) -> Result<NetworkMode, Error> {
    match flag {
        Some(mode) => Ok(mode.parse()?),
        None => Ok(NetworkMode::default_mode(Config::load()?.network.default.as_deref())?),
    }
}

/// `-p` values, checked free on the host. Like Docker, `host` networking
/// ignores them (with a note); `none` has nothing to publish to.
fn published_ports(specs: &[String], network: &NetworkMode) -> Result<Vec<PortMapping>, Error> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    match network {
        NetworkMode::Host => {
            eprintln!(
                "hutch: note: published ports are discarded with --network host: the container uses the host's ports"
            );
            return Ok(Vec::new());
        }
        NetworkMode::None => {
            return Err(Error::Other("-p needs a network: --network none has only loopback".into()));
        }
        _ => {}
    }
    let mut ports = Vec::new();
    for spec in specs {
        ports.extend(netstack::parse_publish(spec)?);
    }
    netstack::check_available(&ports)?;
    Ok(ports)
}

/// `--preserve-fds N` passes on descriptors 3 to 3+N-1: each must be open.
fn check_preserved_fds(count: u32) -> Result<(), Error> {
    for fd in 3..3 + count as i32 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(Error::Other(format!(
                "--preserve-fds {count}: descriptor {fd} is not open (pass {count} open descriptors from 3 up)"
            )));
        }
    }
    Ok(())
}

struct SecurityOptions {
    no_new_privileges: bool,
    seccomp: SeccompChoice,
}

/// `--security-opt`: no_new_privs is on unless turned off; the default
/// seccomp filter unless `seccomp=unconfined` or `seccomp=PROFILE.json`.
fn security_options(options: &[String]) -> Result<SecurityOptions, Error> {
    let mut chosen = SecurityOptions { no_new_privileges: true, seccomp: SeccompChoice::Default };
    for opt in options {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, "true"));
        match (key, value) {
            ("no-new-privileges", "true") => chosen.no_new_privileges = true,
            ("no-new-privileges", "false") => chosen.no_new_privileges = false,
            ("seccomp", "unconfined") => chosen.seccomp = SeccompChoice::Unconfined,
            ("seccomp", path) => chosen.seccomp = SeccompChoice::Profile(path.into()),
            _ => {
                return Err(Error::Other(format!(
                    "unknown --security-opt {opt:?} (expected no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json)"
                )))
            }
        }
    }
    Ok(chosen)
}
