//! hutch's side of a container's start: it starts the monitor in a new
//! user namespace (or, for `exec`, a process that joins a running
//! container), then, in the foreground, forwards signals, relays the
//! terminal, and returns the exit status. One poll loop, no threads.
//!
//! The order of dependence is one way: `launch` → `monitor` → `runtime`.

mod relay;

use crate::containers::log::LogWriter;
use crate::monitor::{self, MonitorPlan};
use crate::runtime::channel::{Channel, Message};
use crate::runtime::terminal::{self, RawMode};
use crate::runtime::{exit_code, fail, signals, RunError, SetupError, StdioMode};
use crate::userns::{self, Forked, UsernsPlan};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use relay::{Copied, Log, Stream, TerminalPipes};
use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

/// Where a foreground run keeps the container's output, as a detached
/// one does.
#[derive(Clone, Debug)]
pub struct LogTarget {
    pub path: std::path::PathBuf,
    /// The log rotates at this size.
    pub max_size: u64,
}

/// Runs the container described by `spec` in the foreground; returns its
/// exit status.
pub fn run(spec: &Spec, plan: &UsernsPlan, stdio: StdioMode, log: Option<LogTarget>) -> Result<i32, RunError> {
    foreground(
        stdio,
        log.and_then(|target| open_log(&target)),
        || Ok(userns::fork_into_userns(plan)?),
        |channel| monitor::run(spec, &MonitorPlan::foreground(stdio, plan), channel),
    )
}

/// Runs `process` in the running container whose first process is
/// `target` (host pid), in the foreground; returns its exit status.
pub fn exec(spec: &Spec, process: &Process, target: i32, plan: &UsernsPlan, stdio: StdioMode) -> Result<i32, RunError> {
    foreground(stdio, None, crate::runtime::fork_here, |channel| {
        crate::runtime::exec::join_and_run(spec, process, target, stdio, channel, plan.uses_helpers)
    })
}

/// hutch's side of a foreground process: `fork` makes the child that
/// `child` then runs (given its end of the channel); hutch relays streams
/// and signals until the child exits, and returns its status.
fn foreground(
    stdio: StdioMode,
    log: Option<Log>,
    fork: impl FnOnce() -> Result<Forked, RunError>,
    child: impl FnOnce(Channel),
) -> Result<i32, RunError> {
    let sys = |op| move |errno| RunError::Sys { op, errno };
    // Blocked before the fork: the monitor keeps them blocked (a Ctrl-C
    // must not kill it), the container unblocks them before execve.
    let forwarded = signals::forwarded();
    forwarded.thread_block().map_err(sys("sigprocmask"))?;
    let signal_fd =
        SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(sys("signalfd"))?;
    let (ours, theirs) = Channel::pair().map_err(sys("socketpair"))?;
    let pipes = TerminalPipes::new(stdio, log.is_some()).map_err(sys("pipe"))?;
    match fork()? {
        Forked::Child => {
            drop((ours, signal_fd));
            if let Err(e) = pipes.install() {
                fail(&theirs, SetupError::sys("dup2", "", e));
            }
            child(theirs);
            crate::sys::exit_now(crate::EXIT_HUTCH_ERROR) // `child` does not return
        }
        Forked::Parent { child } => {
            drop(theirs);
            let streams = pipes.streams(log.as_ref());
            Frontend::new(child, ours, signal_fd, stdio, streams, log).wait()
        }
    }
}

fn open_log(target: &LogTarget) -> Option<Log> {
    let writer = LogWriter::open(&target.path, target.max_size).ok()?;
    Some(Rc::new(RefCell::new(writer)))
}

/// Starts the container described by `spec` with a detached monitor;
/// returns once it runs (its pid), or with why it could not start.
/// `restarts`: how often its restart policy restarted it before (a
/// foreground run it takes over from).
pub fn start_detached(spec: &Spec, plan: &UsernsPlan, stdio: StdioMode, restarts: u32) -> Result<i32, RunError> {
    let (ours, theirs) = Channel::pair().map_err(|errno| RunError::Sys { op: "socketpair", errno })?;
    match userns::fork_into_userns(plan)? {
        Forked::Child => {
            drop(ours);
            monitor::run(spec, &MonitorPlan::detached(stdio, plan, restarts), theirs)
        }
        Forked::Parent { child } => {
            drop(theirs);
            // The monitor's first half exits as soon as its second half
            // (which the channel now connects to) is on its own.
            while let Err(Errno::EINTR) = waitpid(child, None) {}
            loop {
                match ours.recv() {
                    Ok(Some((Message::ContainerPid(pid), _))) => return Ok(pid),
                    Ok(Some((Message::Failed { code, message }, _))) => {
                        return Err(RunError::Container { code, message })
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => {
                        return Err(RunError::Container {
                            code: crate::EXIT_HUTCH_ERROR,
                            message: "the container's monitor ended before the container started".into(),
                        })
                    }
                }
            }
        }
    }
}

struct Frontend {
    monitor: Pid,
    channel: Option<Channel>,
    signals: SignalFd,
    container: Option<Pid>,
    queued: Vec<Signal>,
    interactive: bool,
    /// The container's terminal (`-t`), for window-size changes.
    master: Option<Rc<OwnedFd>>,
    streams: Vec<Stream>,
    raw_mode: Option<RawMode>,
    log: Option<Log>,
    failure: Option<(i32, String)>,
    status: Option<i32>,
}

impl Frontend {
    fn new(
        monitor: Pid,
        channel: Channel,
        signals: SignalFd,
        stdio: StdioMode,
        streams: Vec<Stream>,
        log: Option<Log>,
    ) -> Frontend {
        Frontend {
            monitor,
            channel: Some(channel),
            signals,
            container: None,
            queued: Vec::new(),
            interactive: stdio.interactive,
            master: None,
            streams,
            raw_mode: None,
            log,
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
        self.drain_output();
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
        let (channel_ready, signal_ready, streams_ready) = {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Some(c) = &self.channel {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            let first_stream = fds.len();
            fds.extend(self.streams.iter().map(|s| PollFd::new(s.source(), PollFlags::POLLIN)));
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(RunError::Sys { op: "poll", errno }),
            }
            let ready = |fd: &PollFd| fd.any().unwrap_or(false);
            let streams_ready: Vec<bool> = fds[first_stream..].iter().map(ready).collect();
            (self.channel.is_some() && ready(&fds[1]), ready(&fds[0]), streams_ready)
        };
        if channel_ready {
            self.read_channel()?;
        }
        self.copy_ready(&streams_ready);
        if signal_ready {
            self.handle_signals()?;
        }
        Ok(())
    }

    /// One copy step for each stream poll found ready; finished ones go.
    fn copy_ready(&mut self, ready: &[bool]) {
        let mut i = 0;
        self.streams.retain(|stream| {
            let keep = !ready.get(i).copied().unwrap_or(false) || stream.copy() == Copied::More;
            i += 1;
            keep
        });
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
                let (master, streams) = relay::terminal_streams(master, self.interactive, self.log.clone());
                self.master = Some(master);
                self.streams.extend(streams);
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
            let Ok(sig) = Signal::try_from(info.ssi_signo.cast_signed()) else {
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

    /// What the container wrote just before it ended: everything still
    /// buffered in its terminal or pipes (their writers are all gone).
    fn drain_output(&mut self) {
        self.streams.retain(|s| s.is_output());
        loop {
            let mut fds: Vec<PollFd> =
                self.streams.iter().map(|s| PollFd::new(s.source(), PollFlags::POLLIN)).collect();
            if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                break;
            }
            let ready: Vec<bool> = fds.iter().map(|fd| fd.any().unwrap_or(false)).collect();
            drop(fds);
            self.copy_ready(&ready);
        }
    }
}
