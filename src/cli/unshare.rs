//! `hutch unshare`: a command in hutch's user namespace (with a mount
//! namespace of its own), like `podman unshare`, to look at files as
//! containers see them.

use super::{runtime_and_userns, Error};
use crate::runtime::exit_code;
use crate::sys::exit_now;
use crate::userns::{fork_into_userns, Forked};
use crate::{EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND};
use clap::Args;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::waitpid;
use std::os::unix::process::CommandExt;

#[derive(Args)]
pub struct UnshareArgs {
    /// The command to run (default: $SHELL)
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(args: UnshareArgs) -> Result<i32, Error> {
    let (_runtime, plan) = runtime_and_userns()?;
    let mut command = args.command.clone();
    if command.is_empty() {
        command.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
    }
    match fork_into_userns(&plan)? {
        Forked::Child => exec(&command),
        Forked::Parent { child } => {
            // Like a shell waiting for its foreground job: the terminal's
            // signals are for the command, which shares our process group.
            let mut terminal_signals = SigSet::empty();
            terminal_signals.add(Signal::SIGINT);
            terminal_signals.add(Signal::SIGQUIT);
            let _ = terminal_signals.thread_block();
            loop {
                match waitpid(child, None) {
                    Ok(status) => match exit_code(status) {
                        Some(code) => return Ok(code),
                        None => continue,
                    },
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Other(format!("waitpid: {e}"))),
                }
            }
        }
    }
}

fn exec(command: &[String]) -> ! {
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        eprintln!("hutch: unshare of the mount namespace: {e}");
        exit_now(crate::EXIT_HUTCH_ERROR);
    }
    let err = std::process::Command::new(&command[0]).args(&command[1..]).env("HUTCH_UNSHARE", "1").exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_INVOKE };
    eprintln!("hutch: cannot run {}: {err}", command[0]);
    exit_now(code)
}
