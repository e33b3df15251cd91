//! `--init`: a PID 1 that starts the container's command as its child,
//! forwards signals to it, reaps every orphan, and exits with the child's
//! status. The kernel drops default-action signals sent to a PID 1 that has
//! no handler for them; this makes `hutch stop` and Ctrl-C work for any
//! command, and keeps zombies from piling up.

use super::channel::Channel;
use super::{exit_code, fail, signals, SetupError};
use crate::sys::{exit_now, Forked};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{setpgid, tcsetpgrp, Pid};
use std::os::fd::AsFd;

/// Runs `start` (which execs the command) in a child and supervises it.
/// Signals are still blocked here, inherited from hutch.
pub fn supervise(channel: Channel, terminal: bool, start: impl FnOnce() -> SetupError) -> ! {
    match crate::sys::fork() {
        Err(e) => fail(&channel, e.into()),
        Ok(Forked::Child) => {
            // Own process group, in the foreground of the terminal, so
            // terminal signals reach the command once and not also us.
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if terminal {
                let _ = tcsetpgrp(std::io::stdin().as_fd(), nix::unistd::getpid());
            }
            let err = start();
            fail(&channel, err)
        }
        Ok(Forked::Parent { child }) => {
            drop(channel);
            reap_and_forward(child)
        }
    }
}

fn reap_and_forward(child: Pid) -> ! {
    let waited = signals::forwarded();
    loop {
        match waited.wait() {
            Ok(Signal::SIGCHLD) => loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(status) if status.pid() == Some(child) => exit_now(exit_code(status).unwrap_or(1)),
                    Ok(_) => continue,
                }
            },
            Ok(sig) => {
                let _ = kill(child, sig);
            }
            Err(_) => continue,
        }
    }
}
