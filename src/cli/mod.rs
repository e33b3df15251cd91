//! The command line: Docker's verbs and flags. Each verb group has a file.

mod run;
mod unshare;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hutch", version, about = "Rootless containers and sandboxes, without a daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container
    Run(Box<run::RunArgs>),
    /// Run a command in hutch's user namespace, to see files as containers see them
    Unshare(unshare::UnshareArgs),
}

/// Everything a command can fail with. Each message already carries its
/// cause (path, syscall, errno), so the whole error is its Display: one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Run(#[from] crate::runtime::RunError),
    #[error(transparent)]
    Spec(#[from] crate::spec::Error),
    #[error(transparent)]
    State(#[from] crate::state::Error),
    #[error(transparent)]
    Userns(#[from] crate::userns::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Network(#[from] netstack::Error),
    #[error("{0}")]
    Other(String),
}

impl Error {
    fn exit_code(&self) -> i32 {
        match self {
            Error::Run(e) => e.code(),
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
    let result = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Unshare(args) => unshare::run(args),
    };
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

/// The runtime dir and the id mapping every container command starts
/// from. The single-id fallback is worth one note per runtime dir, not one
/// per run.
fn runtime_and_userns() -> Result<(crate::state::RuntimeDir, crate::userns::UsernsPlan), Error> {
    let runtime = crate::state::RuntimeDir::open(|note| eprintln!("hutch: note: {note}"))?;
    let plan = crate::userns::UsernsPlan::for_current_user();
    if let Some(reason) = &plan.fallback_reason {
        runtime.once("single-id-mapping", || eprintln!("hutch: note: {reason}"));
    }
    Ok((runtime, plan))
}
