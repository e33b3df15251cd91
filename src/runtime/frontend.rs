//! hutch's side of a foreground run: it starts the monitor in a new user
//! namespace, then forwards signals, relays the terminal, and returns the
//! container's exit status. One poll loop, no threads.

use super::channel::{Channel, Message};
use super::terminal::{self, RawMode};
use super::{exit_code, signals, RunError, StdioMode};
use crate::userns::{self, Forked, UsernsPlan};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{read, Pid};
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Runs the container described by `spec` in the foreground; returns its
/// exit status.
pub fn run(spec: &Spec, plan: &UsernsPlan, stdio: StdioMode) -> Result<i32, RunError> {
    let sys = |op| move |errno| RunError::Sys { op, errno };
    // Blocked before the fork: the monitor keeps them blocked (a Ctrl-C
    // must not kill it), the container unblocks them before execve.
    let forwarded = signals::forwarded();
    forwarded.thread_block().map_err(sys("sigprocmask"))?;
    let signal_fd =
        SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(sys("signalfd"))?;
    let (ours, theirs) = Channel::pair().map_err(sys("socketpair"))?;
    match userns::fork_into_userns(plan)? {
        Forked::Child => {
            drop((ours, signal_fd));
            crate::monitor::run(spec, stdio, theirs, plan.uses_helpers)
        }
        Forked::Parent { child } => {
            drop(theirs);
            Frontend::new(child, ours, signal_fd, stdio).wait()
        }
    }
}

struct Frontend {
    monitor: Pid,
    channel: Option<Channel>,
    signals: SignalFd,
    container: Option<Pid>,
    queued: Vec<Signal>,
    master: Option<OwnedFd>,
    stdin_open: bool,
    raw_mode: Option<RawMode>,
    failure: Option<(i32, String)>,
    status: Option<i32>,
}

impl Frontend {
    fn new(monitor: Pid, channel: Channel, signals: SignalFd, stdio: StdioMode) -> Frontend {
        Frontend {
            monitor,
            channel: Some(channel),
            signals,
            container: None,
            queued: Vec::new(),
            master: None,
            stdin_open: stdio.interactive,
            raw_mode: None,
            failure: None,
            status: None,
        }
    }

    fn wait(mut self) -> Result<i32, RunError> {
        let status = loop {
            if let Some(status) = self.status {
                break status;
            }
            self.poll_once()?;
        };
        self.drain_terminal();
        while self.channel.is_some() {
            self.read_channel()?;
        }
        drop(self.raw_mode.take());
        match self.failure {
            Some((code, message)) => Err(RunError::Container { code, message }),
            None => Ok(status),
        }
    }

    fn poll_once(&mut self) -> Result<(), RunError> {
        let stdin = std::io::stdin();
        let relay_stdin = self.master.is_some() && self.stdin_open;
        let (channel_ready, signal_ready, master_ready, stdin_ready) = {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let channel_at = self.channel.as_ref().map(|c| {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let master_at = self.master.as_ref().map(|m| {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let stdin_at = relay_stdin.then(|| {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(RunError::Sys { op: "poll", errno }),
            }
            let ready = |i: Option<usize>| i.is_some_and(|i| fds[i].any().unwrap_or(false));
            (ready(channel_at), ready(Some(0)), ready(master_at), ready(stdin_at))
        };
        if channel_ready {
            self.read_channel()?;
        }
        if master_ready {
            self.copy_from_master();
        }
        if stdin_ready {
            self.copy_to_master();
        }
        if signal_ready {
            self.handle_signals()?;
        }
        Ok(())
    }

    fn read_channel(&mut self) -> Result<(), RunError> {
        let Some(channel) = &self.channel else {
            return Ok(());
        };
        match channel.recv() {
            Ok(None) | Err(_) => self.channel = None,
            Ok(Some((Message::ContainerPid(pid), _))) => {
                let pid = Pid::from_raw(pid);
                self.container = Some(pid);
                for sig in self.queued.drain(..) {
                    let _ = kill(pid, sig);
                }
            }
            Ok(Some((Message::TerminalMaster, Some(master)))) => {
                if let Some((rows, cols)) = terminal::size_of(std::io::stdin().as_fd()) {
                    terminal::set_size(master.as_fd(), rows, cols);
                }
                self.raw_mode = RawMode::enable();
                self.master = Some(master);
            }
            Ok(Some((Message::TerminalMaster, None))) => {}
            Ok(Some((Message::Failed { code, message }, _))) => {
                self.failure.get_or_insert((code, message));
            }
        }
        Ok(())
    }

    fn handle_signals(&mut self) -> Result<(), RunError> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match sig {
                Signal::SIGCHLD => self.reap_monitor()?,
                Signal::SIGWINCH if self.master.is_some() => {
                    if let (Some(master), Some((rows, cols))) =
                        (&self.master, terminal::size_of(std::io::stdin().as_fd()))
                    {
                        terminal::set_size(master.as_fd(), rows, cols);
                    }
                }
                sig => match self.container {
                    Some(pid) => {
                        let _ = kill(pid, sig);
                    }
                    None => self.queued.push(sig),
                },
            }
        }
        Ok(())
    }

    fn reap_monitor(&mut self) -> Result<(), RunError> {
        match waitpid(self.monitor, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                self.status = Some(128 + sig as i32);
                if self.failure.is_none() {
                    return Err(RunError::MonitorKilled(sig));
                }
            }
            Ok(status) => self.status = exit_code(status).or(self.status),
            Err(Errno::ECHILD) => self.status = self.status.or(Some(crate::EXIT_HUTCH_ERROR)),
            Err(_) => {}
        }
        Ok(())
    }

    /// Container output to our stdout. EOF or EIO: every slave is closed.
    fn copy_from_master(&mut self) {
        let Some(master) = &self.master else { return };
        let mut buf = [0u8; 16 * 1024];
        match read(master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => self.master = None,
            Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n]),
            Err(_) => {}
        }
    }

    fn copy_to_master(&mut self) {
        let Some(master) = &self.master else { return };
        let mut buf = [0u8; 4096];
        match read(std::io::stdin().as_fd(), &mut buf) {
            Ok(0) => self.stdin_open = false,
            Ok(n) => write_all(master.as_fd(), &buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.stdin_open = false,
        }
    }

    /// What the container wrote just before it ended.
    fn drain_terminal(&mut self) {
        while let Some(master) = &self.master {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                break;
            }
            self.copy_from_master();
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}
