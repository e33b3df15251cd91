//! `unshare`: a command in hutch's user namespace (with a mount namespace
//! of its own), to look at files as containers see them.

use super::{Engine, Error};
use crate::runtime::{exit_code, RunError};
use crate::sys::exit_now;
use crate::userns::{fork_into_userns, Forked};
use crate::{EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::waitpid;
use std::os::unix::process::CommandExt;

impl Engine {
    /// Runs `command` in hutch's user namespace; returns its exit status.
    pub fn unshare(&self, command: &[String]) -> Result<i32, Error> {
        let plan = self.plan()?;
        match fork_into_userns(plan)? {
            Forked::Child => exec(command),
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
                        Err(errno) => return Err(RunError::Sys { op: "waitpid", errno }.into()),
                    }
                }
            }
        }
    }
}

fn exec(command: &[String]) -> ! {
    let Some((program, args)) = command.split_first() else { exit_now(EXIT_NOT_FOUND) };
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        eprintln!("hutch: unshare of the mount namespace: {e}");
        exit_now(crate::EXIT_HUTCH_ERROR);
    }
    let err = std::process::Command::new(program).args(args).env("HUTCH_UNSHARE", "1").exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_INVOKE };
    eprintln!("hutch: cannot run {program}: {err}");
    exit_now(code)
}
