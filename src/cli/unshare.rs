//! `hutch unshare`: a command in hutch's user namespace, like `podman
//! unshare`, to look at files as containers see them.

use super::Error;
use crate::engine::Engine;
use clap::Args;

#[derive(Args)]
pub struct UnshareArgs {
    /// The command to run (default: $SHELL)
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(args: UnshareArgs, engine: &Engine) -> Result<i32, Error> {
    let mut command = args.command;
    if command.is_empty() {
        command.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
    }
    Ok(engine.unshare(&command)?)
}
