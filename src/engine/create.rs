//! Creating a container: its image found (pulled when missing), its
//! record, its writable layer, its /etc files and its runtime Spec, all in
//! its store directory, ready to start.

use super::images::PullPolicy;
use super::{Engine, Error};
use crate::cgroup;
use crate::config::Config;
use crate::containers::{Container, ContainerRecord, HealthConfig, RestartPolicy};
use crate::image::config::RunDefaults;
use crate::image::pull::Platform;
use crate::image::{ImageRecord, Store};
use crate::runtime_dir::ContainerRuntimeDir;
use crate::spec::annotations;
use crate::spec::device::Device;
use crate::spec::{self, ContainerConfig, EtcFiles, SeccompChoice, Volume};
use crate::storage::{self, LayeredRoot};
use crate::trace;
use netstack::{NetworkMode, PortMapping};
use oci_spec::runtime::{LinuxResources, Spec};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where a container's root filesystem comes from.
#[derive(Clone, Debug)]
pub enum RootSource {
    /// An image, by name; `command` replaces its Cmd when not empty.
    Image { name: String, pull: PullPolicy, platform: Option<Platform>, entrypoint: Option<String> },
    /// A directory used as it is (`--rootfs`); `command` is required.
    Directory(PathBuf),
}

/// `--security-opt`: no_new_privs, and which seccomp filter.
#[derive(Clone, Debug)]
pub struct SecurityOptions {
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
}

impl Default for SecurityOptions {
    /// Docker's default sandbox: no_new_privs and its seccomp filter.
    fn default() -> SecurityOptions {
        SecurityOptions { no_new_privileges: true, seccomp: SeccompChoice::Default }
    }
}

/// Everything a new container is made from, checked and typed.
#[derive(Clone, Debug)]
pub struct ContainerOptions {
    pub root: RootSource,
    pub command: Vec<String>,
    /// Unique; generated when `None`.
    pub name: Option<String>,
    /// `KEY=VALUE`, or `KEY` to pass the caller's value on.
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    /// `NAME|UID[:GROUP|GID]`.
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// `-v` and `--mount` binds and volumes.
    pub volumes: Vec<Volume>,
    /// `--volumes-from CONTAINER[:ro|rw]`: its binds and volumes too.
    pub volumes_from: Vec<String>,
    pub devices: Vec<Device>,
    /// `None`: the config file's default, else pasta or slirp4netns.
    pub network: Option<NetworkMode>,
    /// `-p` values: `[HOST-IP:][HOST-PORT:]CONTAINER-PORT[/PROTO]`.
    pub publish: Vec<String>,
    /// Publish every port the image exposes (`-P`).
    pub publish_all: bool,
    pub terminal: bool,
    pub interactive: bool,
    pub init: bool,
    pub read_only: bool,
    /// Removed as soon as it exits (`--rm`).
    pub auto_remove: bool,
    /// `PATH[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security: SecurityOptions,
    pub resources: Option<LinuxResources>,
    pub cgroups: cgroup::Mode,
    /// The log rotates at this size.
    pub log_max_size: Option<u64>,
    /// Descriptors 3 to 3+N-1 of the caller's are passed on.
    pub preserve_fds: u32,
    /// Rows and columns of the caller's terminal, for `-t`.
    pub terminal_size: Option<(u16, u16)>,
    /// `--label KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--health-*`: what is set replaces the image's HEALTHCHECK.
    pub healthcheck: Option<HealthConfig>,
    /// `--no-healthcheck`: none, whatever the image says.
    pub no_healthcheck: bool,
    /// `--pid host`: the host's PID namespace.
    pub pid_host: bool,
    /// `--ipc host`: the host's IPC namespace and shared memory.
    pub ipc_host: bool,
    /// `--env-host`: the caller's environment passed in (see
    /// [`host_environment`]), under the image's and the flags'.
    pub env_host: bool,
    /// An anonymous volume for each of the image's VOLUMEs (`run` makes
    /// them; a build step's container does not, as BuildKit).
    pub image_volumes: bool,
}

impl ContainerOptions {
    /// `run ROOT COMMAND` with every flag at its default.
    pub fn new(root: RootSource, command: Vec<String>) -> ContainerOptions {
        ContainerOptions {
            root,
            command,
            name: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            volumes: Vec::new(),
            volumes_from: Vec::new(),
            devices: Vec::new(),
            network: None,
            publish: Vec::new(),
            publish_all: false,
            terminal: false,
            interactive: false,
            init: false,
            read_only: false,
            auto_remove: false,
            tmpfs: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            security: SecurityOptions::default(),
            resources: None,
            cgroups: cgroup::Mode::default(),
            log_max_size: None,
            preserve_fds: 0,
            terminal_size: None,
            labels: BTreeMap::new(),
            restart: RestartPolicy::default(),
            healthcheck: None,
            no_healthcheck: false,
            pid_host: false,
            ipc_host: false,
            env_host: false,
            image_volumes: true,
        }
    }
}

/// A container on disk, not started: its record and its Spec.
pub struct Created {
    pub container: Container,
    pub(crate) spec: Spec,
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
    /// The image's VOLUMEs.
    image_volumes: Vec<String>,
    command: Vec<String>,
    env: Vec<String>,
    workdir: Option<PathBuf>,
    user: Option<String>,
    healthcheck: Option<HealthConfig>,
}

/// What the container is given from the host, checked before it starts.
struct HostResources {
    network: NetworkMode,
    ports: Vec<PortMapping>,
    /// `-v` binds, named volumes resolved to their data.
    volumes: Vec<Volume>,
}

impl Engine {
    /// Creates a container, ready for [`Engine::start`] or [`Engine::run`].
    /// Killed at any moment, it leaves a container that `ps -a` lists and
    /// `rm` removes, or nothing.
    pub fn create(&self, options: &ContainerOptions) -> Result<Created, Error> {
        // First: hutch's own descriptors from here on must not be taken
        // for the caller's.
        check_preserved_fds(options.preserve_fds)?;
        if options.auto_remove && !options.restart.is_no() {
            return Err(Error::Conflict(
                "--restart and --rm conflict: a container removed when it ends cannot restart",
            ));
        }
        self.keep_userns()?;
        let launch = self.resolve_image(options)?;
        trace::mark("image resolved");
        let network = self.network_mode(options.network.clone())?;
        let mut publish = options.publish.clone();
        if options.publish_all {
            publish.extend(launch.exposed_ports.iter().cloned());
        }
        let ports = self.published_ports(&publish, &network)?;
        let volumes = self.resolve_volumes(&self.requested_volumes(options, &launch)?)?;
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let record = ContainerRecord {
            id: crate::containers::new_id()?,
            image: launch.image_name.clone(),
            image_id: launch.image.as_ref().map(|i| i.id.to_string()),
            command: launch.command.clone(),
            created: created.as_secs(),
            created_nanos: created.subsec_nanos(),
            ports: ports.iter().map(PortMapping::display).collect(),
            stop_signal: launch.stop_signal.clone(),
            auto_remove: options.auto_remove,
            tty: options.terminal,
            interactive: options.interactive,
            log_max_size: options.log_max_size,
            cgroups: options.cgroups,
            volumes: volumes.iter().filter_map(|v| v.name.clone()).collect(),
            anonymous_volumes: volumes.iter().filter(|v| v.anonymous).filter_map(|v| v.name.clone()).collect(),
            binds: volumes.iter().map(Volume::to_bind).collect(),
            labels: options.labels.clone(),
            restart: options.restart,
            healthcheck: launch.healthcheck.clone(),
            ..Default::default()
        };
        let container = self.containers()?.create(record, options.name.as_deref())?;
        trace::mark("container record created");
        // Made by the monitor when a network helper needs it.
        let runtime_dir = self.runtime().map(|runtime| ContainerRuntimeDir::of(runtime, &container.record.id));
        let prepared = runtime_dir.and_then(|runtime_dir| {
            let overlay = self.prepare_rootfs(&launch, &container, options)?;
            trace::mark("root prepared");
            let host = HostResources { network, ports, volumes };
            let spec = self.build_spec(&container, &runtime_dir, host, options, &launch, overlay)?;
            trace::mark("spec written");
            Ok(Created { container: container.clone(), spec })
        });
        if prepared.is_err() {
            self.remove_files(&container);
        }
        prepared
    }

    /// `--rootfs DIR CMD…`, or `IMAGE [CMD…]` with the image's config
    /// (pulled first when missing, as Docker does).
    fn resolve_image(&self, options: &ContainerOptions) -> Result<Launch, Error> {
        let (name, pull, platform, entrypoint) = match &options.root {
            RootSource::Directory(dir) => {
                if options.command.is_empty() {
                    return Err(Error::NoCommand);
                }
                return Ok(Launch {
                    image: None,
                    image_name: dir.display().to_string(),
                    stop_signal: None,
                    exposed_ports: Vec::new(),
                    image_volumes: Vec::new(),
                    command: options.command.clone(),
                    env: host_environment(options).chain(options.env.iter().cloned()).collect(),
                    workdir: options.workdir.clone(),
                    user: options.user.clone(),
                    healthcheck: chosen_healthcheck(options, None),
                });
            }
            RootSource::Image { name, pull, platform, entrypoint } => (name, *pull, platform, entrypoint),
        };
        let platform = platform.clone().unwrap_or_else(Platform::host);
        let image = self.find_or_pull(name, pull, platform)?;
        let (config, image_check) = self.image_run_config(&image)?;
        let defaults = RunDefaults::from_config(&config);
        let command = defaults
            .command(entrypoint.as_deref(), &options.command)
            .ok_or_else(|| Error::NoImageCommand(name.clone()))?;
        Ok(Launch {
            healthcheck: chosen_healthcheck(options, image_check.as_ref()),
            command,
            env: host_environment(options).chain(defaults.env.iter().chain(&options.env).cloned()).collect(),
            workdir: options.workdir.clone().or(defaults.workdir.map(PathBuf::from)),
            user: options.user.clone().or(defaults.user),
            image: Some(image),
            image_name: name.clone(),
            stop_signal: defaults.stop_signal.clone(),
            exposed_ports: defaults.exposed_ports.clone(),
            image_volumes: defaults.volumes.clone(),
        })
    }

    /// `-v` and `--mount`, then what `--volumes-from` takes, then an
    /// anonymous volume for each of the image's VOLUMEs no other covers.
    fn requested_volumes(&self, options: &ContainerOptions, launch: &Launch) -> Result<Vec<Volume>, Error> {
        let mut requested = options.volumes.clone();
        for source in &options.volumes_from {
            let (name, mode) = match source.rsplit_once(':') {
                Some((name, mode @ ("ro" | "rw"))) => (name, Some(mode == "ro")),
                _ => (source.as_str(), None),
            };
            let container = self.container(name)?;
            for bind in &container.record.binds {
                let volume = Volume::parse(bind)?;
                requested.push(match mode {
                    Some(read_only) => volume.with_read_only(read_only),
                    None => volume,
                });
            }
        }
        for path in launch.image_volumes.iter().filter(|_| options.image_volumes) {
            if !requested.iter().any(|v| v.destination == Path::new(path)) {
                requested.push(Volume::parse(path)?);
            }
        }
        Ok(requested)
    }

    /// The store's `containers/ID/`: the mount point of the image's root
    /// (`rootfs/`) and the container's writable layer, which the monitor
    /// joins with the image's layers through the storage driver.
    fn prepare_rootfs(
        &self,
        launch: &Launch,
        container: &Container,
        options: &ContainerOptions,
    ) -> Result<Option<LayeredRoot>, Error> {
        // A directory is mounted as it is (one that is missing fails with
        // its own error when the Spec is built).
        if launch.image.is_none()
            && matches!(&options.root, RootSource::Directory(dir) if !dir.is_dir() || writable(dir))
        {
            return Ok(None);
        }
        let store = Store::open(&self.root)?;
        // Held while checking, so an rmi cannot take the layers away
        // meanwhile; from then on `rmi` sees the container's record.
        let _lock = launch.image.as_ref().map(|_| store.lock_shared()).transpose()?;
        let (lowers, formats) = match (&launch.image, &options.root) {
            (Some(image), _) if image.layers.is_empty() => {
                // FROM scratch: an empty directory is the one lower layer.
                let empty = container.path("empty");
                std::fs::create_dir(&empty).map_err(super::error::io("create", &empty))?;
                let format = storage::LayerFormat { kernel_whiteouts: true, ..Default::default() };
                (vec![empty], vec![Some(format)])
            }
            (Some(image), _) => {
                // A layer twice in an image (two steps that changed nothing
                // give the same empty layer) counts once, where it is
                // topmost: the kernel refuses overlapping lowers, and the
                // lower copy shows nothing the upper one does not.
                let mut seen = std::collections::HashSet::new();
                let layers: Vec<_> = image.layers.iter().rev().filter(|l| seen.insert(&l.diff_id)).collect();
                let lowers: Vec<PathBuf> = layers.iter().map(|l| store.layer_path(&l.diff_id)).collect();
                if let Some(missing) = lowers.iter().find(|l| !l.is_dir()) {
                    return Err(Error::LayerMissing(missing.clone()));
                }
                (lowers, layers.iter().map(|l| store.layer_format(&l.diff_id)).collect())
            }
            (None, RootSource::Directory(dir)) => {
                // A root the caller cannot write (a shared, read-only
                // image): its mount points and the container's changes go
                // to a writable layer over it, not into it.
                let dir = std::fs::canonicalize(dir).map_err(super::error::io("open", dir))?;
                let unmapped_owners = !self.owns_in_userns(&dir)? || !self.owns_in_userns(&dir.join("etc"))?;
                let format = storage::LayerFormat { kernel_whiteouts: true, unmapped_owners, ..Default::default() };
                (vec![dir], vec![Some(format)])
            }
            (None, RootSource::Image { .. }) => return Ok(None), // resolved to an image record before
        };
        let rootfs = container.path("rootfs");
        std::fs::create_dir(&rootfs).map_err(super::error::io("create", &rootfs))?;
        let choice = self.storage_choice(&store, &formats)?;
        let layered = LayeredRoot {
            driver: choice.driver,
            lowers,
            dir: container.dir.clone(),
            volatile: container.record.auto_remove,
            why: choice.why.to_string(),
        };
        layered.driver.create_layer(&layered)?;
        Ok(Some(layered))
    }

    /// Whether `path` (if it exists) has an owner and group the user
    /// namespace maps: only then may the container's root change it
    /// through the kernel overlay.
    fn owns_in_userns(&self, path: &Path) -> Result<bool, Error> {
        let Ok(meta) = std::fs::metadata(path) else { return Ok(true) };
        let plan = self.plan()?;
        Ok(plan.maps_host_uid(meta.uid()) && plan.maps_host_gid(meta.gid()))
    }

    /// The container's runtime Spec, saved in its directory.
    fn build_spec(
        &self,
        container: &Container,
        runtime_dir: &ContainerRuntimeDir,
        host: HostResources,
        options: &ContainerOptions,
        launch: &Launch,
        overlay: Option<LayeredRoot>,
    ) -> Result<Spec, Error> {
        let HostResources { network, ports, volumes } = host;
        let hostname = options.hostname.clone().unwrap_or_else(|| container.short_id().to_string());
        // Written once, into the new container's directory, before anything
        // reads them: no need to write them aside first.
        let write = |name: &str, text: String| -> Result<PathBuf, Error> {
            let path = container.path(name);
            std::fs::write(&path, text.as_bytes()).map_err(super::error::io("write", &path))?;
            Ok(path)
        };
        let etc_files = EtcFiles {
            hosts: write("hosts", netstack::hosts_file(&hostname, &network))?,
            hostname: write("hostname", format!("{hostname}\n"))?,
            resolv_conf: write("resolv.conf", netstack::resolv_conf(&network))?,
        };
        let rootfs = match (&overlay, &options.root) {
            (Some(o), _) => o.dir.join("rootfs"),
            (None, RootSource::Directory(dir)) => dir.clone(),
            (None, RootSource::Image { .. }) => PathBuf::new(),
        };
        let config = ContainerConfig {
            rootfs,
            overlay,
            command: launch.command.clone(),
            env: launch.env.clone(),
            workdir: launch.workdir.clone(),
            user: launch.user.clone(),
            hostname,
            volumes,
            devices: options.devices.clone(),
            terminal: options.terminal,
            terminal_size: options.terminal_size,
            network,
            ports,
            state_dir: runtime_dir.path().to_path_buf(),
            container_dir: container.dir.clone(),
            init: options.init,
            read_only: options.read_only,
            tmpfs: options.tmpfs.clone(),
            cap_add: options.cap_add.clone(),
            cap_drop: options.cap_drop.clone(),
            privileged: options.privileged,
            no_new_privileges: options.security.no_new_privileges,
            seccomp: options.security.seccomp.clone(),
            etc_files,
            pid_host: options.pid_host,
            ipc_host: options.ipc_host,
        };
        if options.privileged {
            self.note("--privileged gives every capability inside the user namespace only: no host devices, kernel modules or host-wide settings");
        }
        let mut spec = spec::build(&config, self.plan()?)?;
        self.keep_seccomp_program(&mut spec);
        if let (Some(linux), Some(resources)) = (spec.linux_mut(), options.resources.clone()) {
            linux.set_resources(Some(resources));
        }
        container.write(crate::containers::SPEC, &spec)?;
        Ok(spec)
    }

    /// Names the compiled program of the Spec's seccomp profile in it,
    /// compiling it into the runtime directory the first time. Without
    /// it the container compiles the profile itself, so a failure here
    /// costs time, not the start.
    fn keep_seccomp_program(&self, spec: &mut Spec) {
        let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else { return };
        let Ok(runtime) = self.runtime() else { return };
        if let Ok(program) = crate::runtime::seccomp::kept_program(runtime.path(), &profile) {
            let mut annotations = spec.annotations().clone().unwrap_or_default();
            annotations.insert(annotations::SECCOMP_PROGRAM.into(), program.to_string_lossy().into_owned());
            spec.set_annotations(Some(annotations));
        }
    }

    /// `--network`, else the config file's default, else pasta or slirp4netns.
    fn network_mode(&self, chosen: Option<NetworkMode>) -> Result<NetworkMode, Error> {
        match chosen {
            Some(mode) => Ok(mode),
            None => Ok(NetworkMode::default_mode(Config::load()?.network.default.as_deref())?),
        }
    }

    /// `-p` values, checked free on the host. Like Docker, `host` networking
    /// ignores them (with a note); `none` has nothing to publish to.
    fn published_ports(&self, specs: &[String], network: &NetworkMode) -> Result<Vec<PortMapping>, Error> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        match network {
            NetworkMode::Host => {
                self.note("published ports are discarded with --network host: the container uses the host's ports");
                return Ok(Vec::new());
            }
            NetworkMode::None => return Err(Error::PublishWithoutNetwork),
            _ => {}
        }
        let mut ports = Vec::new();
        for spec in specs {
            ports.extend(netstack::parse_publish(spec)?);
        }
        netstack::check_available(&ports)?;
        Ok(ports)
    }
}

/// With `--env-host`, the caller's environment as `KEY=VALUE`, less what
/// would break the image or point at the host: PATH, LD_*, HOME, the
/// shell's own, XDG_RUNTIME_DIR and hutch's settings. A batch job's
/// SLURM_*, PMI_*, PMIX_* and OMPI_* variables go through.
fn host_environment(options: &ContainerOptions) -> impl Iterator<Item = String> {
    const KEPT_OUT: [&str; 8] = ["PATH", "HOME", "HOSTNAME", "PWD", "OLDPWD", "SHLVL", "_", "XDG_RUNTIME_DIR"];
    let vars = if options.env_host { std::env::vars_os().collect() } else { Vec::new() };
    vars.into_iter().filter_map(|(key, value)| {
        let (key, value) = (key.into_string().ok()?, value.into_string().ok()?);
        let kept_out = KEPT_OUT.contains(&key.as_str()) || key.starts_with("LD_") || key.starts_with("HUTCH_");
        (!kept_out && !key.is_empty()).then(|| format!("{key}={value}"))
    })
}

/// `--health-*` over the image's HEALTHCHECK; none with `--no-healthcheck`
/// or a test of `NONE`.
fn chosen_healthcheck(options: &ContainerOptions, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    if options.no_healthcheck {
        return None;
    }
    let chosen = match &options.healthcheck {
        Some(given) => given.over(image),
        None => image?.clone(),
    };
    chosen.command().is_some().then_some(chosen)
}

/// Whether the caller may make entries in `dir` and in its `etc/` (where
/// the container's /etc files are mounted).
fn writable(dir: &Path) -> bool {
    let may_write = |d: &Path| nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok();
    let etc = dir.join("etc");
    may_write(dir) && (!etc.is_dir() || may_write(&etc))
}

/// `--preserve-fds N` passes on descriptors 3 to 3+N-1: each must be open.
fn check_preserved_fds(count: u32) -> Result<(), Error> {
    let last =
        count.checked_add(3).filter(|&end| i32::try_from(end).is_ok()).ok_or(Error::TooManyPreservedFds(count))?;
    for fd in 3..last {
        if !crate::sys::fd_is_open(fd) {
            return Err(Error::PreservedFdClosed { count, fd });
        }
    }
    Ok(())
}
