//! `hutch run` and `hutch create`: the flags, parsed into the engine's
//! container options.

use super::limits::LimitArgs;
use super::Error;
use crate::containers::health::parse_go_duration;
use crate::containers::{HealthConfig, RestartPolicy};
use crate::engine::{ContainerOptions, Engine, PullPolicy, RootSource, SecurityOptions};
use crate::image::pull::Platform;
use crate::runtime::{self, StdioMode};
use crate::spec::device::Device;
use crate::spec::resources::parse_size;
use crate::spec::{MountArg, SeccompChoice, Volume};
use clap::{ArgAction, Args};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::PathBuf;

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
    #[arg(long, value_name = "POLICY", value_enum, default_value_t)]
    pull: PullPolicy,
    /// Set an environment variable (KEY=VALUE, or KEY to pass yours on)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Read environment variables from a file: KEY=VALUE lines (# comments)
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Set a label on the container: KEY[=VALUE]
    #[arg(short = 'l', long = "label", value_name = "KEY[=VALUE]")]
    labels: Vec<String>,
    /// Restart policy: no, on-failure[:MAX-RETRIES], always or unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    restart: String,
    /// Command run to check the container's health (as CMD-SHELL)
    #[arg(long, value_name = "COMMAND")]
    health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s, 1m30s)
    #[arg(long, value_name = "DURATION")]
    health_interval: Option<String>,
    /// Failed checks in a row that make the container unhealthy
    #[arg(long, value_name = "N")]
    health_retries: Option<u32>,
    /// Time during which failed checks do not count
    #[arg(long, value_name = "DURATION")]
    health_start_period: Option<String>,
    /// Longest time one check may take
    #[arg(long, value_name = "DURATION")]
    health_timeout: Option<String>,
    /// No healthcheck, even when the image has one
    #[arg(long)]
    no_healthcheck: bool,
    /// PID namespace: private (the default) or host (the host's processes, as MPI's shared memory needs)
    #[arg(long, value_name = "MODE")]
    pid: Option<String>,
    /// IPC namespace: private (the default) or host (the host's System V IPC, /dev/shm and /dev/mqueue)
    #[arg(long, value_name = "MODE")]
    ipc: Option<String>,
    /// Pass your environment in (less PATH, LD_*, HOME and the shell's own), under the image's and -e
    #[arg(long)]
    env_host: bool,
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
    /// Mount a bind, volume or tmpfs: type=bind|volume|tmpfs,src=…,dst=…[,readonly]
    #[arg(long = "mount", value_name = "type=TYPE,src=…,dst=…")]
    mounts: Vec<String>,
    /// Mount the binds and volumes of another container: CONTAINER[:ro|rw]
    #[arg(long, value_name = "CONTAINER[:ro|rw]")]
    volumes_from: Vec<String>,
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

pub fn run(args: RunArgs, engine: &Engine) -> Result<i32, Error> {
    let created = engine.create(&options(&args)?)?;
    let stdio = StdioMode { terminal: args.tty, interactive: args.interactive, preserve_fds: args.preserve_fds };
    if args.detach {
        let id = created.container.record.id.clone();
        engine.run_detached(created, stdio)?;
        println!("{id}");
        return Ok(0);
    }
    let name = created.container.record.name.clone();
    let exit = engine.run(created, stdio)?;
    report_oom(&name, exit.oom_killed);
    Ok(exit.code)
}

/// `hutch create`: the container, ready for `hutch start`.
pub fn create(args: RunArgs, engine: &Engine) -> Result<i32, Error> {
    if args.detach {
        return Err(Error::Usage("create takes no -d: hutch start runs the container in the background".into()));
    }
    let created = engine.create(&options(&args)?)?;
    println!("{}", created.container.record.id);
    Ok(0)
}

/// Says so when the container's end came from the OOM killer.
pub(super) fn report_oom(name: &str, oom_killed: bool) {
    if oom_killed {
        eprintln!("hutch: container {name} was killed for lack of memory (OOMKilled): its --memory limit was reached");
    }
}

/// The flags as the engine's typed options.
fn options(args: &RunArgs) -> Result<ContainerOptions, Error> {
    let (root, command) = match &args.rootfs {
        Some(dir) => (RootSource::Directory(dir.clone()), args.command.clone()),
        None => {
            let Some((image, rest)) = args.command.split_first() else {
                return Err(Error::Usage("no image given: hutch run [OPTIONS] IMAGE [COMMAND] [ARG...]".into()));
            };
            let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
            let source = RootSource::Image {
                name: image.clone(),
                pull: args.pull,
                platform,
                entrypoint: args.entrypoint.clone(),
            };
            (source, rest.to_vec())
        }
    };
    let mut binds: Vec<Volume> = args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<_, _>>()?;
    let mut tmpfs = args.tmpfs.clone();
    for mount in &args.mounts {
        match MountArg::parse(mount)? {
            MountArg::Bind(volume) => binds.push(volume),
            MountArg::Tmpfs(spec) => tmpfs.push(spec),
        }
    }
    Ok(ContainerOptions {
        root,
        command,
        name: args.name.clone(),
        env: environment(args)?,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        volumes: binds,
        volumes_from: args.volumes_from.clone(),
        devices: args
            .devices
            .iter()
            .map(|d| Device::parse(d).map_err(crate::spec::Error::from))
            .collect::<Result<_, _>>()?,
        network: args.network.as_deref().map(str::parse).transpose()?,
        publish: args.publish.clone(),
        publish_all: args.publish_all,
        terminal: args.tty,
        interactive: args.interactive,
        init: args.init,
        read_only: args.read_only,
        auto_remove: args.rm,
        tmpfs,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        security: security_options(&args.security_opt)?,
        resources: args.limits.limits().resources()?,
        cgroups: args.limits.cgroups,
        log_max_size: log_max_size(&args.log_opt)?,
        preserve_fds: args.preserve_fds,
        terminal_size: runtime::terminal_size(std::io::stdin().as_fd()),
        labels: labels(&args.labels),
        restart: RestartPolicy::parse(&args.restart).map_err(Error::Usage)?,
        healthcheck: healthcheck(args)?,
        no_healthcheck: args.no_healthcheck,
        pid_host: host_or_private("--pid", args.pid.as_deref())?,
        ipc_host: host_or_private("--ipc", args.ipc.as_deref())?,
        env_host: args.env_host,
        image_volumes: true,
    })
}

/// `--pid`/`--ipc`: whether the host's namespace is asked for.
fn host_or_private(flag: &str, mode: Option<&str>) -> Result<bool, Error> {
    match mode {
        None | Some("private") => Ok(false),
        Some("host") => Ok(true),
        Some(other) => Err(Error::Usage(format!("{flag} {other:?}: use host or private"))),
    }
}

/// `-e` values after those of `--env-file`s, so `-e` wins.
fn environment(args: &RunArgs) -> Result<Vec<String>, Error> {
    let mut env = Vec::new();
    for path in &args.env_file {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("--env-file {}: {e}", path.display())))?;
        env.extend(env_file_lines(&text));
    }
    env.extend(args.env.iter().cloned());
    Ok(env)
}

/// Docker's env file: one `KEY=VALUE` (or `KEY`, passed on) per line;
/// blank lines and lines starting with `#` skipped; values taken as they
/// are, quotes included.
fn env_file_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|line| line.trim_start())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
}

/// `--label KEY=VALUE` (`KEY` alone: an empty value).
pub(super) fn labels(given: &[String]) -> BTreeMap<String, String> {
    given
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// The `--health-*` flags, when any is given.
fn healthcheck(args: &RunArgs) -> Result<Option<HealthConfig>, Error> {
    let nanos = |flag: &str, value: &Option<String>| -> Result<u64, Error> {
        let Some(text) = value else { return Ok(0) };
        let duration = parse_go_duration(text)
            .ok_or_else(|| Error::Usage(format!("{flag} {text:?}: give a duration such as 30s, 1m30s or 500ms")))?;
        if duration.is_zero() {
            return Err(Error::Usage(format!("{flag} {text:?}: must be more than 0")));
        }
        Ok(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
    };
    let config = HealthConfig {
        test: args.health_cmd.iter().flat_map(|cmd| ["CMD-SHELL".to_string(), cmd.clone()]).collect(),
        interval: nanos("--health-interval", &args.health_interval)?,
        timeout: nanos("--health-timeout", &args.health_timeout)?,
        start_period: nanos("--health-start-period", &args.health_start_period)?,
        retries: args.health_retries.unwrap_or(0),
    };
    Ok((config != HealthConfig::default()).then_some(config))
}

/// `--log-opt max-size=10m`
fn log_max_size(options: &[String]) -> Result<Option<u64>, Error> {
    let mut max = None;
    for opt in options {
        let size = opt.strip_prefix("max-size=").and_then(parse_size).ok_or_else(|| {
            Error::Usage(format!("unknown --log-opt {opt:?} (expected max-size=SIZE, e.g. max-size=10m)"))
        })?;
        max = Some(size);
    }
    Ok(max)
}

/// `--security-opt`: no_new_privs is on unless turned off; the default
/// seccomp filter unless `seccomp=unconfined` or `seccomp=PROFILE.json`.
fn security_options(options: &[String]) -> Result<SecurityOptions, Error> {
    let mut chosen = SecurityOptions::default();
    for opt in options {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, "true"));
        match (key, value) {
            ("no-new-privileges", "true") => chosen.no_new_privileges = true,
            ("no-new-privileges", "false") => chosen.no_new_privileges = false,
            ("seccomp", "unconfined") => chosen.seccomp = SeccompChoice::Unconfined,
            ("seccomp", path) => chosen.seccomp = SeccompChoice::Profile(path.into()),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown --security-opt {opt:?} (expected no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json)"
                )))
            }
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        use std::time::Duration;
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("3 days"), None);
    }

    #[test]
    fn env_files_skip_comments_and_blank_lines() {
        let lines: Vec<String> = env_file_lines("# c\nA=1\n\n  B=\"x y\"\nC\n").collect();
        assert_eq!(lines, ["A=1", "B=\"x y\"", "C"]);
    }
}
