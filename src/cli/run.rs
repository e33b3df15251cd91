//! `hutch run`.

use super::{images, in_userns, runtime_and_userns, Error};
use crate::config::Config;
use crate::image::config::RunDefaults;
use crate::image::pull::Platform;
use crate::image::store::remove_tree;
use crate::image::{Error as ImageError, ImageRecord, Store};
use crate::runtime::{self, StdioMode};
use crate::spec::device::Device;
use crate::spec::{self, ContainerConfig, EtcFiles, OverlayRoot, SeccompChoice, Volume};
use crate::state::{new_container_id, ContainerDir};
use crate::userns::UsernsPlan;
use clap::{ArgAction, Args};
use netstack::{NetworkMode, PortMapping};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run a root filesystem directory instead of an image (no IMAGE argument)
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// Replace the image's entrypoint ("" clears it)
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,
    /// Platform to pull when the image is missing: OS/ARCH[/VARIANT]
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// When to pull the image: missing, always or never
    #[arg(long, value_name = "POLICY", default_value = "missing")]
    pull: String,
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
    /// The image (or, with --rootfs, the command), then the command and its arguments
    #[arg(value_name = "IMAGE [COMMAND]", trailing_var_arg = true)]
    command: Vec<String>,
}

pub fn run(args: RunArgs, root: &Path) -> Result<i32, Error> {
    let (runtime, plan) = runtime_and_userns()?;
    let launch = resolve_image(&args, root)?;
    let volumes = args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<Vec<_>, _>>()?;
    let devices =
        args.devices.iter().map(|d| Device::parse(d).map_err(spec::Error::from)).collect::<Result<Vec<_>, _>>()?;
    check_preserved_fds(args.preserve_fds)?;
    let network = network_mode(args.network.as_deref())?;
    let ports = published_ports(&args.publish, &network)?;
    let id = new_container_id()?;
    let dir = ContainerDir::create(&runtime, &id)?;
    let result = prepare_rootfs(&launch, &plan, root, &id).and_then(|overlay| {
        run_in(&dir, &plan, &id, Resources { volumes, devices, network, ports }, &args, &launch, overlay)
    });
    if args.rm {
        if let Err(e) = dir.remove() {
            eprintln!("hutch: {e}");
        }
        if launch.image.is_some() {
            if let Err(e) = remove_container_files(&plan, root, &id) {
                eprintln!("hutch: {e}");
            }
        }
    }
    result
}

/// What to start: the image (if any) and the command with the image's
/// settings applied.
struct Launch {
    image: Option<ImageRecord>,
    command: Vec<String>,
    env: Vec<String>,
    workdir: Option<PathBuf>,
    user: Option<String>,
}

/// `run --rootfs DIR CMD…`, or `run IMAGE [CMD…]` with the image's config
/// (pulled first when missing, as Docker does).
fn resolve_image(args: &RunArgs, root: &Path) -> Result<Launch, Error> {
    if args.rootfs.is_some() {
        if args.command.is_empty() {
            return Err(Error::Other("no command given: hutch run --rootfs DIR COMMAND [ARG...]".into()));
        }
        return Ok(Launch {
            image: None,
            command: args.command.clone(),
            env: args.env.clone(),
            workdir: args.workdir.clone(),
            user: args.user.clone(),
        });
    }
    let Some((name, rest)) = args.command.split_first() else {
        return Err(Error::Other("no image given: hutch run [OPTIONS] IMAGE [COMMAND] [ARG...]".into()));
    };
    let image = find_or_pull(args, root, name)?;
    let store = Store::open(root)?;
    let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&store.read_blob(&image.id)?)
        .map_err(|e| Error::Other(format!("image {name}: config: {e}")))?;
    let defaults = RunDefaults::from_config(&config);
    let command = defaults.command(args.entrypoint.as_deref(), rest).ok_or_else(|| {
        Error::Other(format!("image {name} has no command (Cmd or Entrypoint): give one after the image name"))
    })?;
    Ok(Launch {
        command,
        env: defaults.env.iter().chain(&args.env).cloned().collect(),
        workdir: args.workdir.clone().or(defaults.workdir.map(PathBuf::from)),
        user: args.user.clone().or(defaults.user),
        image: Some(image),
    })
}

fn find_or_pull(args: &RunArgs, root: &Path, name: &str) -> Result<ImageRecord, Error> {
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let found = Store::open(root)?.find(name);
    match (args.pull.as_str(), found) {
        ("always", _) => images::pull_image(root, name, platform, false),
        ("missing", Err(ImageError::NotFound(_))) => {
            eprintln!("Unable to find image '{name}' locally");
            images::pull_image(root, name, platform, false)
        }
        ("missing" | "never", found) => Ok(found?),
        (other, _) => Err(Error::Other(format!("--pull {other:?}: expected missing, always or never"))),
    }
}

/// The store's `containers/ID/`: the mount point of the image's root
/// (`rootfs/`) and the container's writable layer (`upper/`, `work/`),
/// which the monitor joins with the image's layers through fuse-overlay.
fn prepare_rootfs(launch: &Launch, plan: &UsernsPlan, root: &Path, id: &str) -> Result<Option<OverlayRoot>, Error> {
    let Some(image) = &launch.image else { return Ok(None) };
    let store = Store::open(root)?;
    let dir = store.container_path(id);
    let lowers: Vec<PathBuf> = image.layers.iter().rev().map(|l| store.layer_path(&l.diff_id)).collect();
    let image_id = image.id.to_string();
    let (target, layers) = (dir.clone(), lowers.clone());
    in_userns(plan, || {
        let _lock = store.lock_shared()?;
        if let Some(missing) = layers.iter().find(|l| !l.is_dir()) {
            return Err(Error::Other(format!(
                "layer {} of the image is missing from the store: pull the image again",
                missing.display()
            )));
        }
        let made = |e: std::io::Error| Error::Other(format!("create {}: {e}", target.display()));
        std::fs::create_dir(&target).map_err(made)?;
        std::fs::write(target.join("image"), &image_id).map_err(made)?;
        for sub in ["rootfs", "upper", "work"] {
            std::fs::create_dir(target.join(sub)).map_err(made)?;
        }
        Ok(())
    })?;
    Ok(Some(OverlayRoot { lowers, upper: dir }))
}

fn remove_container_files(plan: &UsernsPlan, root: &Path, id: &str) -> Result<(), Error> {
    let dir = Store::open(root)?.container_path(id);
    in_userns(plan, || Ok(remove_tree(&dir)?))
}

fn run_in(
    dir: &ContainerDir,
    plan: &UsernsPlan,
    id: &str,
    resources: Resources,
    args: &RunArgs,
    launch: &Launch,
    overlay: Option<OverlayRoot>,
) -> Result<i32, Error> {
    let Resources { volumes, devices, network, ports } = resources;
    let security = security_options(&args.security_opt)?;
    let hostname = args.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let etc_files = EtcFiles {
        hosts: dir.write("hosts", netstack::hosts_file(&hostname, &network).as_bytes())?,
        hostname: dir.write("hostname", format!("{hostname}\n").as_bytes())?,
        resolv_conf: dir.write("resolv.conf", netstack::resolv_conf(&network).as_bytes())?,
    };
    let config = ContainerConfig {
        rootfs: overlay.as_ref().map(|o| o.upper.join("rootfs")).or(args.rootfs.clone()).unwrap_or_default(),
        overlay,
        command: launch.command.clone(),
        env: launch.env.clone(),
        workdir: launch.workdir.clone(),
        user: launch.user.clone(),
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
