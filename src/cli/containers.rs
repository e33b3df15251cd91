//! The container verbs: ps, logs, stop, kill, start, restart, wait, rm,
//! inspect. Containers are named by full id, name or unique id prefix.

use super::filter::Filters;
use super::format::Format;
use super::Error;
use crate::containers::log::{self, LogReader, Record, Stream};
use crate::containers::{parse_signal, Container, ContainerState, HealthStatus, Status};
use crate::engine::{Engine, ExecOptions, Removal};
use crate::image::pull::human_size;
use crate::image::time::{human_duration, now, rfc3339};
use crate::runtime::{self, StdioMode};
use clap::Args;
use std::io::Write;
use std::time::Duration;

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones)
    #[arg(short, long)]
    all: bool,
    /// Only container ids
    #[arg(short, long)]
    quiet: bool,
    /// Full ids and commands
    #[arg(long)]
    no_trunc: bool,
    /// Output format: json, or a Go template ({{.Names}}, table {{.ID}}\t{{.Status}})
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Only containers that match: name=, id=, status=, exited=, ancestor=, volume=, label=, health= (repeatable)
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Show each container's size: its writable layer (and with the image, "virtual")
    #[arg(short, long)]
    size: bool,
    /// The N containers created last, in any state
    #[arg(short = 'n', long, value_name = "N")]
    last: Option<usize>,
    /// The container created last, in any state
    #[arg(short, long)]
    latest: bool,
}

/// Whether a container passes `ps`' filters.
fn ps_filters_allow(filters: &Filters, c: &Container, state: &ContainerState) -> bool {
    let ancestor = |v: &str| {
        let named = crate::image::ImageRef::parse(v).map(|r| r.to_string()).ok();
        let id = c.record.image_id.as_deref().unwrap_or_default().trim_start_matches("sha256:");
        c.record.image == v
            || named.as_deref() == Some(c.record.image.as_str())
            || (!v.is_empty() && id.starts_with(v.trim_start_matches("sha256:")))
    };
    filters.allows("name", |v| c.record.name.contains(v))
        && filters.allows("id", |v| c.record.id.starts_with(v))
        && filters.allows("status", |v| state.status.as_str() == v)
        && filters.allows("exited", |v| state.status == Status::Exited && state.exit_code.unwrap_or(0).to_string() == v)
        && filters.allows("ancestor", ancestor)
        && filters.allows("volume", |v| c.record.volumes.iter().any(|name| name == v))
        && filters.allows("label", |v| super::filter::label_matches(c.record.labels.iter(), v))
        && filters.allows("health", |v| {
            let health = c.health().map(|h| h.status.as_str());
            health.unwrap_or("none") == v
        })
}

/// A row of `ps`, with Docker's field names for `--format`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PsRow {
    #[serde(rename = "ID")]
    id: String,
    image: String,
    command: String,
    created_at: String,
    running_for: String,
    ports: String,
    state: String,
    status: String,
    names: String,
    /// `k=v,k2=v2`, as Docker prints them.
    labels: String,
    /// With `-s`: "12B (virtual 4.3MB)".
    size: String,
}

/// `ps`' column for a `--format` field, as Docker names it.
fn ps_header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

#[derive(Args)]
pub struct LogsArgs {
    container: String,
    /// Keep printing new output until the container stops
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines ("all" for every line)
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<String>,
    /// Show each line's time
    #[arg(short, long)]
    timestamps: bool,
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait for the stop signal to work before SIGKILL
    #[arg(short = 't', long = "time", value_name = "SECONDS", default_value_t = 10)]
    time: u64,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// The signal to send
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct StartArgs {
    /// Stay attached: relay the container's output (and input with -i), exit with its status
    #[arg(short, long)]
    attach: bool,
    /// Relay stdin too (with -a)
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Stop running containers first (SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Also remove the anonymous volumes the container was given (-v /path, the image's VOLUMEs)
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn ps(args: PsArgs, engine: &Engine) -> Result<i32, Error> {
    let filters =
        Filters::parse(&args.filter, &["name", "id", "status", "exited", "ancestor", "volume", "label", "health"])?;
    // As Docker: asking for a state, an exit code or the last ones shows
    // stopped ones too.
    let last = if args.latest { Some(1) } else { args.last };
    let all = args.all || filters.has("status") || filters.has("exited") || last.is_some();
    let containers = engine.list_containers()?;
    let rows: Vec<(Container, ContainerState)> = containers
        .into_iter()
        .map(|c| {
            let state = c.state();
            (c, state)
        })
        .filter(|(c, s)| (all || s.is_running()) && ps_filters_allow(&filters, c, s))
        .take(last.unwrap_or(usize::MAX)) // newest first
        .collect();
    if args.quiet {
        for (c, _) in rows {
            println!("{}", if args.no_trunc { c.record.id.as_str() } else { c.short_id() });
        }
        return Ok(0);
    }
    let format = args.format.as_deref().map(|f| Format::parse(f, &ps_header)).transpose()?;
    let sizes = match args.size {
        true => engine.container_sizes(&rows.iter().map(|(c, _)| c).collect::<Vec<_>>()),
        false => Vec::new(),
    };
    let rows: Vec<PsRow> = rows
        .iter()
        .enumerate()
        .map(|(i, (c, state))| {
            let command = c.record.command.join(" ");
            let command = if args.no_trunc || command.chars().count() <= 20 {
                command
            } else {
                format!("{}…", command.chars().take(19).collect::<String>())
            };
            PsRow {
                id: if args.no_trunc { c.record.id.clone() } else { c.short_id().to_string() },
                image: c.record.image.clone(),
                command: format!("\"{command}\""),
                created_at: rfc3339(c.record.created),
                running_for: format!("{} ago", human_duration(now().saturating_sub(c.record.created))),
                ports: c.record.ports.join(", "),
                state: state.status.as_str().to_string(),
                status: status_line(state, c.health().map(|h| h.status)),
                names: c.record.name.clone(),
                labels: c.record.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                size: sizes.get(i).map(size_line).unwrap_or_default(),
            }
        })
        .collect();
    if let Some(format) = format {
        print!("{}", format.render(&rows)?);
        return Ok(0);
    }
    if args.size {
        let mut table =
            vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", "SIZE"].map(String::from)];
        for r in rows {
            table.push([r.id, r.image, r.command, r.running_for, r.status, r.ports, r.names, r.size]);
        }
        print!("{}", columns(&table));
        return Ok(0);
    }
    let mut table = vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"].map(String::from)];
    for r in rows {
        table.push([r.id, r.image, r.command, r.running_for, r.status, r.ports, r.names]);
    }
    print!("{}", columns(&table));
    Ok(0)
}

/// Docker's SIZE column: what the container wrote, and with its image.
fn size_line(size: &crate::engine::ContainerSize) -> String {
    format!("{} (virtual {})", human_size(size.writable), human_size(size.writable + size.image))
}

/// "Up 5 seconds (healthy)", "Exited (0) 2 minutes ago", "Restarting (1)
/// 3 seconds ago", "Created".
fn status_line(state: &ContainerState, health: Option<HealthStatus>) -> String {
    let since = |t: Option<u64>| human_duration(now().saturating_sub(t.unwrap_or_else(now)));
    match state.status {
        Status::Created => "Created".into(),
        Status::Running => match health {
            Some(health) => format!("Up {} ({})", since(state.started_at), health.as_str()),
            None => format!("Up {}", since(state.started_at)),
        },
        Status::Restarting => {
            format!("Restarting ({}) {} ago", state.exit_code.unwrap_or(0), since(state.finished_at))
        }
        Status::Exited => {
            let oom = if state.oom_killed { ", OOMKilled" } else { "" };
            format!("Exited ({}{oom}) {} ago", state.exit_code.unwrap_or(0), since(state.finished_at))
        }
    }
}

/// Rows as aligned columns, three spaces apart.
pub(super) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn logs(args: LogsArgs, engine: &Engine) -> Result<i32, Error> {
    let container = engine.container(&args.container)?;
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => {
            Some(n.parse::<usize>().map_err(|_| Error::Usage(format!("--tail {n:?}: expected a number or all")))?)
        }
    };
    let mut reader = LogReader::new(&container.path(log::FILE));
    let read_error = |e: std::io::Error| Error::ReadLog { container: args.container.clone(), source: e };
    let mut records = reader.existing().map_err(read_error)?;
    if let Some(n) = tail {
        records = log::tail(records, n);
    }
    print_records(&records, args.timestamps);
    if !args.follow {
        return Ok(0);
    }
    loop {
        // Asked before reading, so the last output is read after the end.
        let running = container.state().is_running();
        print_records(&reader.next_records().map_err(read_error)?, args.timestamps);
        if !running {
            return Ok(0);
        }
        let _ = container.wait_stopped(Some(Duration::from_millis(100)));
    }
}

fn print_records(records: &[Record], timestamps: bool) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut line_start = true;
    for r in records {
        let sink: &mut dyn Write = match r.stream {
            Stream::Stdout => &mut out,
            Stream::Stderr => &mut err,
        };
        if timestamps && line_start {
            let _ = write!(sink, "{} ", r.time);
        }
        let _ = sink.write_all(&r.text);
        line_start = r.text.ends_with(b"\n");
    }
    let _ = (out.flush(), err.flush());
}

/// Runs `act` on each named container, printing the name as given on
/// success and a line per failure; exit status 1 when any failed, as Docker.
fn each(names: &[String], engine: &Engine, mut act: impl FnMut(&Container) -> Result<(), Error>) -> Result<i32, Error> {
    let containers = engine.containers()?;
    let mut failed = false;
    for name in names {
        match containers.find(name).map_err(Error::from).and_then(|c| act(&c)) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("hutch: {}", super::one_line(&e.to_string()));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn stop(args: StopArgs, engine: &Engine) -> Result<i32, Error> {
    each(&args.containers, engine, |c| c.stop(Duration::from_secs(args.time)).map(drop).map_err(Error::from))
}

pub fn kill(args: KillArgs, engine: &Engine) -> Result<i32, Error> {
    let sig = parse_signal(&args.signal).map_err(Error::Usage)?;
    each(&args.containers, engine, |c| match c.kill(sig)? {
        true => Ok(()),
        false => Err(Error::NotRunning(c.record.name.clone())),
    })
}

pub fn wait(args: ContainersArgs, engine: &Engine) -> Result<i32, Error> {
    let containers = engine.containers()?;
    for name in &args.containers {
        let container = containers.find(name)?;
        let state = container.wait_stopped(None).unwrap_or_else(|| container.state());
        println!("{}", state.exit_code.unwrap_or(0));
    }
    Ok(0)
}

pub fn rm(args: RmArgs, engine: &Engine) -> Result<i32, Error> {
    let removal = if args.force { Removal::Force } else { Removal::IfStopped };
    each(&args.containers, engine, |c| {
        engine.remove(c, removal)?;
        if args.volumes {
            engine.remove_anonymous_volumes(c)?;
        }
        Ok(())
    })
}

pub fn start(args: StartArgs, engine: &Engine) -> Result<i32, Error> {
    if args.attach {
        let [name] = args.containers.as_slice() else {
            return Err(Error::Usage("start -a attaches to one container: name just one".into()));
        };
        let container = engine.container(name)?;
        let exit = engine.start_attached(&container, args.interactive)?;
        super::run::report_oom(&container.record.name, exit.oom_killed);
        return Ok(exit.code);
    }
    each(&args.containers, engine, |c| Ok(engine.start(c)?))
}

pub fn restart(args: StopArgs, engine: &Engine) -> Result<i32, Error> {
    each(&args.containers, engine, |c| Ok(engine.restart(c, Duration::from_secs(args.time))?))
}

/// `inspect NAME`: a container when one has that name or id, else an image.
pub fn inspect(name: &str, engine: &Engine) -> Result<Option<serde_json::Value>, Error> {
    let container = match engine.containers()?.find(name) {
        Ok(c) => c,
        Err(crate::containers::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let state = container.state();
    let spec = container.spec().ok();
    let r = &container.record;
    let time = |t: Option<u64>| t.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    let process = spec.as_ref().and_then(|s| s.process().as_ref());
    Ok(Some(serde_json::json!({
        "Id": r.id,
        "Name": r.name,
        "Created": rfc3339(r.created),
        "Path": r.command.first(),
        "Args": r.command.get(1..).unwrap_or_default(),
        "Image": r.image_id.clone().unwrap_or_default(),
        "ImageName": r.image,
        "State": {
            "Status": state.status.as_str(),
            "Running": state.is_running(),
            "Restarting": state.status == Status::Restarting,
            "Pid": state.pid.filter(|_| state.is_running()).unwrap_or(0),
            "ExitCode": state.exit_code.unwrap_or(0),
            "OOMKilled": state.oom_killed,
            "StartedAt": time(state.started_at),
            "FinishedAt": time(state.finished_at),
            "Health": container.health(),
        },
        "RestartCount": state.restart_count,
        "Config": {
            "Hostname": spec.as_ref().and_then(|s| s.hostname().clone()),
            "Tty": r.tty,
            "OpenStdin": r.interactive,
            "Env": process.and_then(|p| p.env().clone()).unwrap_or_default(),
            "Cmd": r.command,
            "WorkingDir": process.map(|p| p.cwd().display().to_string()),
            "StopSignal": container.stop_signal().as_str(),
            "Labels": r.labels,
            "Healthcheck": r.healthcheck,
        },
        "HostConfig": {
            "AutoRemove": r.auto_remove,
            "RestartPolicy": r.restart,
            "Binds": r.binds,
            "Cgroups": r.cgroups,
            "Resources": limits_json(&spec, &state),
            "LogConfig": { "Type": "k8s-file", "MaxSize": r.log_max_size.unwrap_or(log::DEFAULT_MAX_SIZE) },
        },
        "GraphDriver": graph_driver(&spec),
        "NetworkSettings": { "Ports": r.ports },
        "LogPath": container.path(log::FILE),
        "Spec": spec,
    })))
}

/// The storage driver and where the container's layers are, in Docker's
/// names (null for a container of a root directory).
fn graph_driver(spec: &Option<oci_spec::runtime::Spec>) -> serde_json::Value {
    let Some(spec) = spec else { return serde_json::Value::Null };
    let Ok(Some(layered)) = crate::storage::from_spec(spec) else { return serde_json::Value::Null };
    let lowers: Vec<String> = layered.lowers.iter().map(|l| l.display().to_string()).collect();
    serde_json::json!({
        "Name": layered.driver.name(),
        "Why": layered.why,
        "Volatile": layered.volatile,
        "Data": {
            "LowerDir": lowers.join(":"),
            "UpperDir": layered.upper(),
            "WorkDir": layered.work(),
            "MergedDir": spec.root().as_ref().map(|r| r.path()),
        },
    })
}

/// The limits in Docker's HostConfig names (0: none), and where and
/// whether they are enforced.
fn limits_json(spec: &Option<oci_spec::runtime::Spec>, state: &ContainerState) -> serde_json::Value {
    let resources =
        spec.as_ref().and_then(|s| s.linux().as_ref()).and_then(|l| l.resources().clone()).unwrap_or_default();
    let memory = resources.memory().unwrap_or_default();
    let cpu = resources.cpu().clone().unwrap_or_default();
    let unified = resources.unified().clone().unwrap_or_default();
    serde_json::json!({
        "Memory": memory.limit().unwrap_or(0),
        "MemorySwap": memory.swap().unwrap_or(0),
        "MemoryReservation": memory.reservation().unwrap_or(0),
        "NanoCpus": cpu.quota().map_or(0, |q| {
            let period = i64::try_from(cpu.period().unwrap_or(100_000)).unwrap_or(i64::MAX).max(1);
            q.saturating_mul(1_000_000_000) / period
        }),
        "CpuShares": cpu.shares().unwrap_or(0),
        "CpuWeight": unified.get("cpu.weight").and_then(|w| w.parse::<u64>().ok()).unwrap_or(0),
        "CpusetCpus": cpu.cpus().clone().unwrap_or_default(),
        "PidsLimit": resources.pids().map_or(0, |p| p.limit()),
        "BlkioWeight": resources.block_io().as_ref().and_then(|b| b.weight()).unwrap_or(0),
        "Cgroup": state.cgroup,
        "Enforced": state.cgroup.is_some() && !crate::cgroup::controllers_for(&resources).is_empty(),
    })
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Give the process a terminal
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass yours on)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<std::path::PathBuf>,
    /// User inside the container: NAME|UID[:GROUP|GID]
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The container, then the command and its arguments
    #[arg(value_name = "CONTAINER COMMAND", required = true, num_args = 2.., trailing_var_arg = true)]
    command: Vec<String>,
}

pub fn exec(args: ExecArgs, engine: &Engine) -> Result<i32, Error> {
    let (name, command) = args.command.split_first().ok_or_else(|| Error::Usage("no container given".into()))?;
    let container = engine.container(name)?;
    let options = ExecOptions {
        command: command.to_vec(),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        terminal: args.tty,
        terminal_size: runtime::terminal_size(std::os::fd::AsFd::as_fd(&std::io::stdin())),
    };
    let stdio = StdioMode { terminal: args.tty, interactive: args.interactive, preserve_fds: 0 };
    Ok(engine.exec(&container, &options, stdio)?)
}

#[derive(Args)]
pub struct AttachArgs {
    container: String,
    /// Do not send your input to the container
    #[arg(long)]
    no_stdin: bool,
}

/// `attach`: the caller's terminal or streams joined to a detached
/// container; its exit status once it ends, 0 on detaching (Ctrl-P Ctrl-Q).
pub fn attach(args: AttachArgs, engine: &Engine) -> Result<i32, Error> {
    let container = engine.container(&args.container)?;
    let name = &container.record.name;
    if container.state().live_monitor().is_none() {
        return Err(Error::Usage(format!("container {name} is not running: start it with hutch start -a {name}")));
    }
    attach_to(&container, !args.no_stdin)
}

/// Relays a detached container's streams (stdin too when it keeps one
/// open and `stdin`) until it ends or the user detaches; the status it
/// ended with. A container that restarts ends this at its first end.
pub(super) fn attach_to(container: &Container, stdin: bool) -> Result<i32, Error> {
    let name = &container.record.name;
    let stdin = container.record.interactive && stdin;
    match runtime::attach::attach(&container.dir, container.record.tty, stdin) {
        Ok(runtime::attach::Ended::Detached) => {
            eprintln!("\r\nhutch: detached from {name}, which keeps running (hutch attach {name} to return)");
            Ok(0)
        }
        Ok(runtime::attach::Ended::Container) => {
            let state = match container.record.restart.is_no() {
                true => container.wait_stopped(Some(Duration::from_secs(10))).unwrap_or_else(|| container.state()),
                // Recorded before the monitor closes the attach socket.
                false => container.state(),
            };
            Ok(state.exit_code.unwrap_or(0))
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            Err(Error::Usage(format!(
                "container {name} runs in the foreground of another hutch: attach works with containers started with -d"
            )))
        }
        Err(e) => Err(Error::Attach { container: name.clone(), source: e }),
    }
}

#[derive(Args)]
pub struct PortArgs {
    container: String,
    /// Only this container port: PORT[/PROTO]
    #[arg(value_name = "PORT[/PROTO]")]
    port: Option<String>,
    /// Output format: json, or a Go template ({{.HostPort}}, {{.ContainerPort}}, {{.HostIP}})
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

/// `port`: the published ports, `80/tcp -> 0.0.0.0:8080` per line.
/// A row of `port`, for `--format`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PortRow {
    /// `80/tcp`
    container_port: String,
    #[serde(rename = "HostIP")]
    host_ip: String,
    host_port: String,
}

pub fn port(args: PortArgs, engine: &Engine) -> Result<i32, Error> {
    let container = engine.container(&args.container)?;
    let wanted = args.port.map(|p| if p.contains('/') { p } else { format!("{p}/tcp") });
    let mut rows = Vec::new();
    for mapping in &container.record.ports {
        let Some((host, inside)) = mapping.split_once("->") else { continue };
        if wanted.as_deref().is_none_or(|w| w == inside) {
            let (ip, port) = host.rsplit_once(':').unwrap_or(("", host));
            rows.push(PortRow { container_port: inside.into(), host_ip: ip.into(), host_port: port.into() });
        }
    }
    if let (true, Some(w)) = (rows.is_empty(), wanted) {
        return Err(Error::Usage(format!("container {} does not publish {w}", container.record.name)));
    }
    match args.format.as_deref() {
        Some(format) => print!("{}", Format::parse(format, &|f| f.to_uppercase())?.render(&rows)?),
        None => rows.iter().for_each(|r| println!("{} -> {}:{}", r.container_port, r.host_ip, r.host_port)),
    }
    Ok(0)
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask (hutch never asks: accepted for Docker's sake)
    #[arg(short, long)]
    force: bool,
}

/// `container prune`: removes every container that is not running.
pub fn prune(args: PruneArgs, engine: &Engine) -> Result<i32, Error> {
    let _ = args.force;
    for id in engine.prune_containers()? {
        println!("{id}");
    }
    Ok(0)
}

/// `healthcheck run`: the check once; "unhealthy" and status 1 when it fails.
pub fn healthcheck(args: ContainerArg, engine: &Engine) -> Result<i32, Error> {
    let container = engine.container(&args.container)?;
    let health = engine.check_health(&container)?;
    match health.log.last() {
        Some(last) if last.exit_code == 0 => Ok(0),
        _ => {
            println!("unhealthy");
            Ok(1)
        }
    }
}

/// `top`: the container's processes (every process in its PID namespace),
/// with host pids as Docker shows them.
pub fn top(args: ContainerArg, engine: &Engine) -> Result<i32, Error> {
    let container = engine.container(&args.container)?;
    let mut table = vec![["UID", "PID", "PPID", "TIME", "CMD"].map(String::from)];
    for p in engine.processes(&container)? {
        let cpu = p.cpu_seconds;
        table.push([
            p.uid.map_or_else(|| "?".into(), |u| u.to_string()),
            p.pid.to_string(),
            p.ppid.map_or_else(|| "?".into(), |pp| pp.to_string()),
            format!("{:02}:{:02}:{:02}", cpu / 3600, cpu / 60 % 60, cpu % 60),
            p.command,
        ]);
    }
    print!("{}", columns(&table));
    Ok(0)
}

#[derive(Args)]
pub struct ContainerArg {
    container: String,
}
