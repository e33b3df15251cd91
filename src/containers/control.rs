//! Acting on a running container from outside: signals, stopping, waiting
//! for the end. hutch reaches the container's first process directly (it
//! owns the container's user namespace, so it may signal it), and learns of
//! the end from the monitor, which records the status before it exits.

use super::{Container, ContainerState, Error, Status};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Marks a container its user stopped or killed: its monitor does not
/// restart it.
const STOPPED_BY_USER: &str = "stopped-by-user";

impl Container {
    /// Sends `sig` to the container's first process; Ok(false) when the
    /// container is not running.
    pub fn signal(&self, sig: Signal) -> Result<bool, Error> {
        let state = self.state();
        let (Some(monitor), Some(pid)) = (state.live_monitor(), state.pid) else { return Ok(false) };
        // The pid still names the monitor's child: not a process that got it since.
        if parent_of(pid) != Some(monitor.pid) {
            return Ok(false);
        }
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(e) => Err(Error::Io(crate::files::IoError { op: "kill", path: self.dir.clone(), source: e.into() })),
        }
    }

    /// `kill`: `sig` to the container's first process, as a user's end:
    /// its restart policy does not start it again. A container waiting
    /// to restart stops waiting. Ok(false) when it is not running.
    pub fn kill(&self, sig: Signal) -> Result<bool, Error> {
        if self.record.restart.is_no() {
            return self.signal(sig);
        }
        let path = self.path(STOPPED_BY_USER);
        std::fs::write(&path, b"").map_err(super::io("write", &path))?;
        if self.signal(sig)? {
            return Ok(true);
        }
        let state = self.state();
        match state.monitor_alive() {
            // Its monitor reads the mark and ends.
            Some(monitor) if state.status == Status::Restarting => {
                let _ = kill(Pid::from_raw(monitor.pid), Signal::SIGTERM);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether the user stopped or killed it since it was last started.
    pub fn stopped_by_user(&self) -> bool {
        self.path(STOPPED_BY_USER).exists()
    }

    /// A new start: a stop before it no longer counts.
    pub fn clear_stopped_by_user(&self) {
        let _ = std::fs::remove_file(self.path(STOPPED_BY_USER));
    }

    /// Waits until the container is no longer running (at most `timeout`);
    /// returns the final state, or None when the time ran out.
    pub fn wait_stopped(&self, timeout: Option<Duration>) -> Option<ContainerState> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let state = self.state();
        let Some(monitor) = state.monitor_alive() else { return Some(state) };
        let Ok(pidfd) = crate::sys::pidfd_open(monitor.pid) else { return Some(self.state()) };
        // Opened after the check: make sure it is the same process.
        if !monitor.alive() {
            return Some(self.state());
        }
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let timeout = match left {
                Some(left) => PollTimeout::try_from(i32::try_from(left.as_millis()).unwrap_or(i32::MAX))
                    .unwrap_or(PollTimeout::ZERO),
                None => PollTimeout::NONE,
            };
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => return None,
                Ok(_) => return Some(self.state()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Some(self.state()),
            }
        }
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout`. Returns the
    /// final state.
    pub fn stop(&self, timeout: Duration) -> Result<ContainerState, Error> {
        let sig = self.stop_signal();
        if !self.kill(sig)? {
            return Ok(self.state());
        }
        if let Some(state) = self.wait_stopped(Some(timeout)) {
            return Ok(state);
        }
        self.kill(Signal::SIGKILL)?;
        Ok(self.wait_stopped(None).unwrap_or_else(|| self.state()))
    }

    /// The image's StopSignal, else SIGTERM.
    pub fn stop_signal(&self) -> Signal {
        self.record.stop_signal.as_deref().and_then(|s| parse_signal(s).ok()).unwrap_or(Signal::SIGTERM)
    }
}

/// `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let bad = || format!("invalid signal {text:?} (a name such as TERM or SIGKILL, or a number)");
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map_err(|_| bad())
}

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    super::stat_fields(&stat)?.get(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL"), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("15"), Ok(Signal::SIGTERM));
        assert!(parse_signal("NOPE").is_err() && parse_signal("999").is_err());
    }
}
