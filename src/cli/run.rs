//! `hutch run`.

use super::limits::{parse_size, LimitArgs};
use super::{images, in_userns, runtime_and_userns, Error};
use crate::cgroup;
use crate::config::Config;
use crate::containers::{Container, ContainerRecord, Containers};
use crate::image::config::RunDefaults;
use crate::image::pull::Platform;
use crate::image::store::remove_tree;
use crate::image::time::now;
use crate::image::{Error as ImageError, ImageRecord, Store};
use crate::runtime::{self, StdioMode};
use crate::spec::device::Device;
use crate::spec::{self, ContainerConfig, EtcFiles, SeccompChoice, Volume};
use crate::state::{new_container_id, write_atomic, ContainerDir, RuntimeDir};
use crate::storage::{self, LayeredRoot};
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
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run in the background and print the container's id
    #[arg(short = 'd', long)]
    detach: bool,
    /// The container's name (unique; generated when not given)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Log options: max-size=SIZE (the log rotates at SIZE; default 10m)
    #[arg(long, value_name = "OPT")]
    log_opt: Vec<String>,
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
    /// Publish every port the image exposes, each on a free host port
    #[arg(short = 'P', long)]
    publish_all: bool,
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
    #[command(flatten)]
    limits: LimitArgs,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// The image (or, with --rootfs, the command), then the command and its arguments
    #[arg(value_name = "IMAGE [COMMAND]", trailing_var_arg = true)]
    command: Vec<String>,
}

pub fn run(args: RunArgs, root: &Path) -> Result<i32, Error> {
    let (runtime, plan) = runtime_and_userns()?;
    let mut created = create_container(&args, root, &runtime, &plan)?;
    let stdio = StdioMode { terminal: args.tty, interactive: args.interactive, preserve_fds: args.preserve_fds };
    if let Err(e) = place_in_cgroup(&created.container, &mut created.spec) {
        remove_container(&plan, &created.container, &created.runtime_dir);
        return Err(e);
    }
    if args.detach {
        let started = runtime::start_detached(&created.spec, &plan, stdio);
        if started.is_err() && args.rm {
            remove_container(&plan, &created.container, &created.runtime_dir);
        }
        started?;
        println!("{}", created.container.record.id);
        return Ok(0);
    }
    let result = runtime::run(&created.spec, &plan, stdio);
    report_oom(&created.container);
    if args.rm {
        remove_container(&plan, &created.container, &created.runtime_dir);
    }
    Ok(result?)
}

/// Gives the container its cgroup, when there is one to give (see
/// `cgroup::setup`), and names it in the Spec the monitor runs.
pub(super) fn place_in_cgroup(container: &Container, spec: &mut oci_spec::runtime::Spec) -> Result<(), Error> {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    if container.record.cgroups == cgroup::Mode::Disabled && resources.is_some() {
        eprintln!("hutch: note: --cgroups=disabled: the container runs without its limits");
    }
    if let Some(cgroups_path) = cgroup::setup(&container.record.id, resources.as_ref(), container.record.cgroups)? {
        spec::run_in_cgroup(spec, &cgroups_path)?;
    }
    Ok(())
}

/// Says so when the container's end came from the OOM killer.
pub(super) fn report_oom(container: &Container) {
    if container.state().oom_killed {
        eprintln!(
            "hutch: container {} was killed for lack of memory (OOMKilled): its --memory limit was reached",
            container.record.name
        );
    }
}

/// `hutch create`: the container, ready for `hutch start`.
pub fn create(args: RunArgs, root: &Path) -> Result<i32, Error> {
    if args.detach {
        return Err(Error::Other("create takes no -d: hutch start runs the container in the background".into()));
    }
    let (runtime, plan) = runtime_and_userns()?;
    let created = create_container(&args, root, &runtime, &plan)?;
    println!("{}", created.container.record.id);
    Ok(0)
}

/// A container on disk, not started: its record, its root, its Spec.
struct Created {
    container: Container,
    runtime_dir: ContainerDir,
    spec: oci_spec::runtime::Spec,
}

fn create_container(args: &RunArgs, root: &Path, runtime: &RuntimeDir, plan: &UsernsPlan) -> Result<Created, Error> {
    let launch = resolve_image(args, root)?;
    let volumes = args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<Vec<_>, _>>()?;
    let devices =
        args.devices.iter().map(|d| Device::parse(d).map_err(spec::Error::from)).collect::<Result<Vec<_>, _>>()?;
    check_preserved_fds(args.preserve_fds)?;
    let network = network_mode(args.network.as_deref())?;
    let mut publish = args.publish.clone();
    if args.publish_all {
        publish.extend(launch.exposed_ports.iter().cloned());
    }
    let ports = published_ports(&publish, &network)?;
    let record = ContainerRecord {
        id: new_container_id()?,
        image: launch.image_name.clone(),
        image_id: launch.image.as_ref().map(|i| i.id.to_string()),
        command: launch.command.clone(),
        created: now(),
        ports: ports.iter().map(PortMapping::display).collect(),
        stop_signal: launch.stop_signal.clone(),
        auto_remove: args.rm,
        tty: args.tty,
        interactive: args.interactive,
        log_max_size: log_max_size(&args.log_opt)?,
        cgroups: args.limits.cgroups.parse()?,
        ..Default::default()
    };
    let container = Containers::open(root)?.create(record, args.name.as_deref())?;
    let runtime_dir = ContainerDir::create(runtime, &container.record.id)?;
    let prepared = prepare_rootfs(&launch, root, &container).and_then(|overlay| {
        let resources = Resources { volumes, devices, network, ports };
        build_spec(&container, &runtime_dir, plan, resources, args, &launch, overlay)
    });
    match prepared {
        Ok(spec) => Ok(Created { container, runtime_dir, spec }),
        Err(e) => {
            remove_container(plan, &container, &runtime_dir);
            Err(e)
        }
    }
}

/// Removes a container's files (its writable layer holds files of
/// subordinate ids: removed inside the user namespace), reporting failures
/// as notes: the container's own outcome is what the user asked about.
pub(super) fn remove_container(plan: &UsernsPlan, container: &Container, runtime_dir: &ContainerDir) {
    let dir = container.dir.clone();
    if let Err(e) = in_userns(plan, || Ok(remove_tree(&dir)?)) {
        eprintln!("hutch: {e}");
    }
    if let Err(e) = runtime_dir.remove() {
        eprintln!("hutch: {e}");
    }
}

/// `--log-opt max-size=10m`
fn log_max_size(options: &[String]) -> Result<Option<u64>, Error> {
    let mut max = None;
    for opt in options {
        let size = opt.strip_prefix("max-size=").and_then(parse_size).ok_or_else(|| {
            Error::Other(format!("unknown --log-opt {opt:?} (expected max-size=SIZE, e.g. max-size=10m)"))
        })?;
        max = Some(size);
    }
    Ok(max)
}

/// What to start: the image (if any) and the command with the image's
/// settings applied.
struct Launch {
    image: Option<ImageRecord>,
    /// The image as named, or the root directory.
    image_name: String,
    stop_signal: Option<String>,
    /// The image's ExposedPorts (`80/tcp`), published by `-P`.
    exposed_ports: Vec<String>,
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
            image_name: args.rootfs.as_deref().unwrap_or(Path::new("")).display().to_string(),
            stop_signal: None,
            exposed_ports: Vec::new(),
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
        image_name: name.clone(),
        stop_signal: defaults.stop_signal.clone(),
        exposed_ports: defaults.exposed_ports.clone(),
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
/// (`rootfs/`) and the container's writable layer, which the monitor
/// joins with the image's layers through the storage driver.
fn prepare_rootfs(launch: &Launch, root: &Path, container: &Container) -> Result<Option<LayeredRoot>, Error> {
    let Some(image) = &launch.image else { return Ok(None) };
    let store = Store::open(root)?;
    let lowers: Vec<PathBuf> = image.layers.iter().rev().map(|l| store.layer_path(&l.diff_id)).collect();
    // Held while checking, so an rmi cannot take the layers away meanwhile;
    // from then on `rmi` sees the container's `image` file.
    let _lock = store.lock_shared()?;
    if let Some(missing) = lowers.iter().find(|l| !l.is_dir()) {
        return Err(Error::Other(format!(
            "layer {} of the image is missing from the store: pull the image again",
            missing.display()
        )));
    }
    let made = |e: std::io::Error| Error::Other(format!("create {}: {e}", container.dir.display()));
    std::fs::write(container.path("image"), image.id.to_string()).map_err(made)?;
    std::fs::create_dir(container.path("rootfs")).map_err(made)?;
    let layered = LayeredRoot { driver: storage::driver(storage::DEFAULT_DRIVER)?, lowers, dir: container.dir.clone() };
    layered.driver.create_layer(&layered)?;
    Ok(Some(layered))
}

/// The container's runtime Spec, saved in its directory.
fn build_spec(
    container: &Container,
    runtime_dir: &ContainerDir,
    plan: &UsernsPlan,
    resources: Resources,
    args: &RunArgs,
    launch: &Launch,
    overlay: Option<LayeredRoot>,
) -> Result<oci_spec::runtime::Spec, Error> {
    let Resources { volumes, devices, network, ports } = resources;
    let security = security_options(&args.security_opt)?;
    let hostname = args.hostname.clone().unwrap_or_else(|| container.short_id().to_string());
    let write = |name: &str, text: String| -> Result<PathBuf, Error> {
        let path = container.path(name);
        write_atomic(&path, text.as_bytes())?;
        Ok(path)
    };
    let etc_files = EtcFiles {
        hosts: write("hosts", netstack::hosts_file(&hostname, &network))?,
        hostname: write("hostname", format!("{hostname}\n"))?,
        resolv_conf: write("resolv.conf", netstack::resolv_conf(&network))?,
    };
    let config = ContainerConfig {
        rootfs: overlay.as_ref().map(|o| o.dir.join("rootfs")).or(args.rootfs.clone()).unwrap_or_default(),
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
        state_dir: runtime_dir.path().to_path_buf(),
        container_dir: container.dir.clone(),
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
    let mut spec = spec::build(&config, plan)?;
    if let (Some(linux), Some(resources)) = (spec.linux_mut(), args.limits.resources()?) {
        linux.set_resources(Some(resources));
    }
    container.write(crate::containers::SPEC, &spec)?;
    Ok(spec)
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
