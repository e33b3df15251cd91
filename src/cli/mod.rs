//! The command line: Docker's verbs and flags. Each verb group has a file.

mod build;
mod commit;
mod containers;
mod cp;
mod filter;
mod format;
mod images;
mod limits;
mod run;
mod stats;
mod system;
mod unshare;
mod volumes;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hutch", version, about = "Rootless containers and sandboxes, without a daemon")]
struct Cli {
    /// The image store (default: $HUTCH_ROOT, else $XDG_DATA_HOME/hutch)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// Storage driver for new containers: auto (the kernel overlay where it works, else fuse-overlay), overlay or fuse-overlay
    #[arg(long, global = true, value_name = "DRIVER")]
    storage_driver: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container
    Run(Box<run::RunArgs>),
    /// Create a container without starting it
    Create(Box<run::RunArgs>),
    /// Start stopped containers
    Start(containers::StartArgs),
    /// Stop containers: their stop signal, then SIGKILL
    Stop(containers::StopArgs),
    /// Stop and start containers again
    Restart(containers::StopArgs),
    /// Send a signal to containers
    Kill(containers::KillArgs),
    /// Wait for containers to stop and print their exit codes
    Wait(containers::ContainersArgs),
    /// Remove containers
    Rm(containers::RmArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Show a container's output
    Logs(containers::LogsArgs),
    /// Run a command in a running container
    Exec(containers::ExecArgs),
    /// Connect your terminal to a detached container (Ctrl-P Ctrl-Q detaches)
    Attach(containers::AttachArgs),
    /// List a container's published ports
    Port(containers::PortArgs),
    /// List a container's processes
    Top(containers::ContainerArg),
    /// Show containers' use of CPU, memory, network, block I/O and processes
    Stats(stats::StatsArgs),
    /// Build an image from a Dockerfile
    Build(Box<build::BuildArgs>),
    /// Manage `hutch build`'s cache
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Make a new image of a container's changes
    Commit(commit::CommitArgs),
    /// Copy files between a container and the host
    Cp(cp::CpArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Pull an image from a registry
    Pull(images::PullArgs),
    /// Push an image to a registry (or oci-archive:FILE, docker-archive:FILE)
    Push(images::PushArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove images
    Rmi(images::RmiArgs),
    /// Show a container's or an image's configuration and state (JSON)
    Inspect(images::InspectArgs),
    /// Show how an image was built
    History(images::HistoryArgs),
    /// Give an image another name
    Tag(images::TagArgs),
    /// Load images from a docker-archive or oci-archive tarball, or an OCI layout
    Load(images::LoadArgs),
    /// Save images to a tarball (OCI layout with Docker's manifest.json)
    Save(images::SaveArgs),
    /// Make an image of a root filesystem tarball
    Import(images::ImportArgs),
    /// Log in to a registry (checked, then kept in auth.json)
    Login(images::LoginArgs),
    /// Forget the login for a registry
    Logout(images::LogoutArgs),
    /// Manage images
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Run a command in hutch's user namespace, to see files as containers see them
    Unshare(unshare::UnshareArgs),
    /// Show what hutch finds on this machine (ids, namespaces, store, network, cgroups)
    Info(system::FormatArgs),
    /// Show hutch's version
    Version(system::FormatArgs),
    /// Print a shell's completion script: hutch completion bash > ~/.local/share/bash-completion/completions/hutch
    Completion(system::CompletionArgs),
    /// Write man pages (hutch.1, hutch-run.1, …) to a directory
    Man(system::ManArgs),
    /// Manage hutch itself
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage named volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Run containers' healthchecks
    #[command(subcommand)]
    Healthcheck(HealthcheckCommand),
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Remove the build cache: intermediate images, cached steps and files, RUN's cache mounts
    Prune(BuilderPruneArgs),
}

#[derive(clap::Args)]
struct BuilderPruneArgs {
    /// Accepted for Docker's sake: all of the cache goes anyway
    #[arg(short, long)]
    all: bool,
    /// Do not ask (hutch never asks before a prune)
    #[arg(short, long)]
    force: bool,
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// Remove every container that is not running
    Prune(containers::PruneArgs),
    /// List containers
    #[command(alias = "list")]
    Ls(containers::PsArgs),
    /// Remove containers
    Rm(containers::RmArgs),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Remove stopped containers, unnamed (-a: all) images no container uses, and what killed commands left
    Prune(system::SystemPruneArgs),
    /// Show what hutch finds on this machine
    Info(system::FormatArgs),
    /// Show what images, containers and volumes take on disk
    Df(system::FormatArgs),
    /// Remove every container, image and volume, and the store
    Reset(system::ResetArgs),
}

#[derive(Subcommand)]
enum HealthcheckCommand {
    /// Run a container's healthcheck once: exits 0 when healthy, 1 when not
    Run(containers::ContainerArg),
}

/// Everything a command can fail with. Each message already carries its
/// cause (path, syscall, errno), so the whole error is its Display: one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    #[error(transparent)]
    Build(#[from] crate::build::Error),
    /// A flag's value or a combination of flags the command cannot take.
    #[error("{0}")]
    Usage(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("reading the log of {container}: {source}")]
    ReadLog {
        container: String,
        #[source]
        source: std::io::Error,
    },
    #[error("attaching to {container}: {source}")]
    Attach {
        container: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hutch login: no terminal to ask for the {what} ({source}): give {flag}")]
    NoTerminal {
        what: &'static str,
        flag: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the password: {source}")]
    ReadPassword {
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The library's errors reach the CLI through the engine's.
macro_rules! through_engine {
    ($($error:ty),*) => {$(
        impl From<$error> for Error {
            fn from(e: $error) -> Error {
                Error::Engine(e.into())
            }
        }
    )*};
}
through_engine!(crate::spec::Error, crate::image::Error, crate::containers::Error, netstack::Error);

impl Error {
    fn exit_code(&self) -> i32 {
        match self {
            Error::Engine(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            _ => crate::EXIT_HUTCH_ERROR,
        }
    }
}

/// Parses the command line, runs the command, prints any error as one line
/// (`hutch: …`), and returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout and succeed.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        // Usage errors are hutch's own errors (125), as in Docker.
        Err(e) => {
            eprintln!("hutch: {} (see --help)", usage_error_line(&e.render().to_string()));
            return crate::EXIT_HUTCH_ERROR;
        }
    };
    crate::trace::mark("arguments parsed");
    let notes = |note: &str| eprintln!("hutch: note: {note}");
    let storage_driver = cli.storage_driver;
    let engine =
        store_root(cli.root).map(|root| crate::engine::Engine::new(root, notes).with_storage_driver(storage_driver));
    let result = engine.and_then(|engine| {
        let root = &engine;
        match cli.command {
            Command::Run(args) => run::run(*args, root),
            Command::Info(args) => system::info(args, root),
            Command::Version(args) => system::version(args),
            Command::Completion(args) => system::completion(args, Cli::command()),
            Command::Man(args) => system::man(args, Cli::command()),
            Command::System(SystemCommand::Prune(args)) => system::prune(args, root),
            Command::Volume(command) => volumes::run(command, root),
            Command::System(SystemCommand::Info(args)) => system::info(args, root),
            Command::System(SystemCommand::Df(args)) => system::df(args, root),
            Command::System(SystemCommand::Reset(args)) => system::reset(args, root),
            Command::Healthcheck(HealthcheckCommand::Run(args)) => containers::healthcheck(args, root),
            Command::Create(args) => run::create(*args, root),
            Command::Start(args) => containers::start(args, root),
            Command::Stop(args) => containers::stop(args, root),
            Command::Restart(args) => containers::restart(args, root),
            Command::Kill(args) => containers::kill(args, root),
            Command::Wait(args) => containers::wait(args, root),
            Command::Rm(args) => containers::rm(args, root),
            Command::Ps(args) => containers::ps(args, root),
            Command::Logs(args) => containers::logs(args, root),
            Command::Exec(args) => containers::exec(args, root),
            Command::Attach(args) => containers::attach(args, root),
            Command::Commit(args) => commit::commit(args, root),
            Command::Build(args) => build::build(*args, root),
            Command::Builder(BuilderCommand::Prune(args)) => {
                let _ = (args.all, args.force);
                images::prune_build_cache(root)
            }
            Command::Cp(args) => cp::cp(args, root),
            Command::Port(args) => containers::port(args, root),
            Command::Top(args) => containers::top(args, root),
            Command::Stats(args) => stats::stats(args, root),
            Command::Container(ContainerCommand::Prune(args)) => containers::prune(args, root),
            Command::Container(ContainerCommand::Ls(args)) => containers::ps(args, root),
            Command::Container(ContainerCommand::Rm(args)) => containers::rm(args, root),
            Command::Pull(args) => images::pull(args, root),
            Command::Push(args) => images::push(args, root),
            Command::Images(args) => images::images(args, root),
            Command::Rmi(args) => images::rmi(args, root),
            Command::Inspect(args) => images::inspect(args, root),
            Command::History(args) => images::history(args, root),
            Command::Tag(args) => images::tag(args, root),
            Command::Load(args) => images::load(args, root),
            Command::Import(args) => images::import(args, root),
            Command::Login(args) => images::login(args, root),
            Command::Logout(args) => images::logout(args, root),
            Command::Save(args) => images::save(args, root),
            Command::Image(command) => images::image(command, root),
            Command::Unshare(args) => unshare::run(args, root),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hutch: {}", one_line(&e.to_string()));
            e.exit_code()
        }
    }
}

/// clap's message without its usage block, on one line.
fn usage_error_line(rendered: &str) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .collect();
    message.join(" ")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn store_root(flag: Option<std::path::PathBuf>) -> Result<std::path::PathBuf, Error> {
    match flag {
        Some(root) => Ok(root),
        None => Ok(crate::image::Store::default_root()?),
    }
}
