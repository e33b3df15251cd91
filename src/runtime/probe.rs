//! A short command run in a running container with its output captured
//! and a time limit: what a healthcheck runs. The same path as `exec`
//! (every namespace of the container joined, then a fork into its PID
//! namespace), with a pipe for stdout and stderr instead of hutch's relay.

use super::channel::{Channel, Message};
use super::{exec, exit_code, StdioMode};
use crate::sys::{exit_now, Forked};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdout, pipe2, read, Pid};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How the command ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Its exit status; None when it ran out of time and was killed.
    pub code: Option<i32>,
    /// What it wrote (stdout and stderr together), or why it could not run.
    pub output: String,
}

/// Output kept of the command; the rest is read and dropped.
const KEPT: usize = 8192;

/// Runs `process` in the container whose first process is `target`;
/// kills it after `timeout`.
pub fn run(spec: &Spec, process: &Process, target: i32, setgroups_allowed: bool, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let setup = pipe2(OFlag::O_CLOEXEC).and_then(|pipe| Ok((pipe, Channel::pair()?)));
    let ((output, output_w), (ours, theirs)) = match setup {
        Ok(setup) => setup,
        Err(e) => return Outcome { code: Some(crate::EXIT_HUTCH_ERROR), output: format!("pipe: {e}") },
    };
    let child = match crate::sys::fork() {
        Err(e) => return Outcome { code: Some(crate::EXIT_HUTCH_ERROR), output: e.to_string() },
        Ok(Forked::Child) => {
            drop((ours, output));
            if dup2_stdout(&output_w).and_then(|_| dup2_stderr(&output_w)).is_err() {
                exit_now(crate::EXIT_HUTCH_ERROR);
            }
            drop(output_w);
            exec::join_and_run(spec, process, target, StdioMode::default(), theirs, setgroups_allowed)
        }
        Ok(Forked::Parent { child }) => child,
    };
    drop((theirs, output_w));
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(output.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(millis).unwrap_or(PollTimeout::ZERO)) {
            Ok(0) => break,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => match read(&output, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&buf[..n.min(KEPT.saturating_sub(text.len()))]),
            },
        }
    }
    let code = wait_until(child, deadline);
    if let Ok(Some((Message::Failed { message, .. }, _))) = ours.recv() {
        text.extend_from_slice(message.as_bytes());
    }
    Outcome { code, output: String::from_utf8_lossy(&text).into_owned() }
}

/// The child's status, or None after killing it when `deadline` passed
/// (the command inside dies with it: it has a parent-death signal).
fn wait_until(child: Pid, deadline: Instant) -> Option<i32> {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(WaitStatus::StillAlive) => {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return None;
            }
            Ok(status) => match exit_code(status) {
                Some(code) => return Some(code),
                None => continue,
            },
            Err(Errno::EINTR) => continue,
            Err(_) => return Some(crate::EXIT_HUTCH_ERROR),
        }
    }
}
