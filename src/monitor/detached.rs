//! The monitor of a detached container (`run -d`, `start`): it leaves
//! hutch (which returns as soon as the container runs), keeps no terminal
//! of the caller's, writes the container's output to its log, forwards
//! signals sent to it, and records the end.

use super::attach::AttachServer;
use super::health::Checker;
use super::{MonitorPlan, Recorder};
use crate::containers::log::{self, LogWriter, Stream};
use crate::containers::restart;
use crate::runtime::channel::{Channel, Message};
use crate::runtime::{container, exit_code, fail, signals, wait_for, SetupError, StdioMode};
use crate::sys::{die_with_parent, exit_now, Forked};
use netstack::Connected;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, pipe2, read, setsid, Pid};
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Forks; the parent exits at once (hutch reaps it) and the child, adopted
/// by init, goes on in a session of its own with /dev/null for streams, so
/// closing the caller's terminal cannot reach it.
pub(super) fn leave_caller(channel: &Channel) {
    match crate::sys::fork() {
        Err(e) => fail(channel, e.into()),
        Ok(Forked::Parent { .. }) => exit_now(0),
        Ok(Forked::Child) => {}
    }
    let _ = setsid();
    if let Ok(null) = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        let _ = (dup2_stdin(&null), dup2_stdout(&null), dup2_stderr(&null));
    }
}

pub(super) fn run(
    spec: &Spec,
    plan: &MonitorPlan,
    channel: Channel,
    network: Option<Connected>,
    record: Recorder,
) -> ! {
    let MonitorPlan { stdio, setgroups_allowed, restarts, .. } = *plan;
    let forwarded = signals::forwarded();
    let setup = forwarded
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK));
    let signals = match setup {
        Ok(signals) => signals,
        Err(e) => fail(&channel, SetupError::sys("monitor setup", "", e)),
    };
    let mut log = record
        .container
        .as_ref()
        .and_then(|c| LogWriter::open(&c.path(log::FILE), c.record.log_max_size.unwrap_or(log::DEFAULT_MAX_SIZE)).ok());
    let run = Run { spec, stdio, setgroups_allowed, network: &network, record: &record, signals: &signals };
    // hutch hears of the first start only; later ones are the policy's.
    let mut caller = Some(channel);
    let mut restarts = restarts;
    let mut pause = None;
    let status = loop {
        let began = Instant::now();
        let (status, attach) = run.once(&mut caller, restarts, &mut log);
        let policy = record.restart_policy();
        if !policy.restarts(status, restarts, record.stopped_by_user()) {
            break (status, attach);
        }
        restarts += 1;
        let wait = restart::delay(pause, began.elapsed());
        pause = Some(wait);
        record.restarting(status, restarts);
        drop(attach);
        if !run.pause(wait) {
            break (status, None);
        }
    };
    let (status, attach) = status;
    drop(network);
    record.exited(status);
    drop(attach);
    if record.auto_remove() {
        record.remove(spec);
    }
    exit_now(status)
}

/// What each start of the container's process shares.
struct Run<'a> {
    spec: &'a Spec,
    stdio: StdioMode,
    setgroups_allowed: bool,
    network: &'a Option<Connected>,
    record: &'a Recorder,
    signals: &'a SignalFd,
}

impl Run<'_> {
    /// Starts the container's process and keeps it until it ends; its
    /// status. A first start that fails is reported to hutch (`caller`),
    /// and the monitor ends with it.
    fn once(
        &self,
        caller: &mut Option<Channel>,
        restarts: u32,
        log: &mut Option<LogWriter>,
    ) -> (i32, Option<AttachServer>) {
        let mut failed = |e: SetupError| match caller.take() {
            Some(channel) => fail(&channel, e),
            None => (e.code(), None),
        };
        let (pipes, (ours, theirs)) = match OutputPipes::new(self.stdio).and_then(|p| Ok((p, Channel::pair()?))) {
            Ok(setup) => setup,
            Err(e) => return failed(SetupError::sys("monitor setup", "", e)),
        };
        let child = match super::fork_container(self.spec) {
            Err(e) => return failed(e.into()),
            Ok(Forked::Child) => {
                die_with_parent();
                drop((ours, caller.take()));
                if let Err(e) = pipes.install() {
                    fail(&theirs, SetupError::sys("dup2", "", e));
                }
                let netns = self.network.as_ref().map(|n| n.netns());
                container::start(self.spec, self.stdio, theirs, self.setgroups_allowed, netns)
            }
            Ok(Forked::Parent { child }) => child,
        };
        drop(theirs);
        let (mut sources, mut input) = pipes.monitor_ends();
        let mut terminal = None;
        // The container's end of the channel closes when its command starts
        // (close-on-exec) or after it reported why it could not.
        while let Ok(Some((message, fd))) = ours.recv() {
            match (message, fd) {
                (Message::TerminalMaster, Some(master)) => {
                    terminal = master.try_clone().ok();
                    if self.stdio.interactive {
                        input = master.try_clone().ok();
                    }
                    sources.push((master, Stream::Stdout));
                }
                (Message::Failed { code, message }, _) => {
                    if let Some(channel) = caller.take() {
                        let _ = channel.send(&Message::Failed { code, message }, None);
                        let status = wait_for(child);
                        self.record.exited(status);
                        exit_now(status)
                    }
                    return (wait_for(child), None);
                }
                _ => {}
            }
        }
        let record = self.record;
        // Bound before `run -d` returns, so an `attach` right after finds it.
        let attach = AttachServer::new(record.container.as_ref().map(|c| c.dir.as_path()), input, terminal);
        record.started(child, restarts);
        if let Some(channel) = caller.take() {
            let _ = channel.send(&Message::ContainerPid(child.as_raw()), None);
        }
        let checker =
            record.container.as_ref().and_then(|c| Checker::start(self.spec, c, child, self.setgroups_allowed));
        let (status, attach) = Capture { child, signals: self.signals, sources, log, attach }.until_exit();
        if let Some(checker) = checker {
            checker.stop();
        }
        (status, Some(attach))
    }

    /// Waits `wait` before a restart; false when a signal came meanwhile
    /// (`stop` or `kill` of a restarting container: no restart then).
    fn pause(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return !self.record.stopped_by_user();
            }
            let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Ok(1..) = poll(&mut fds, PollTimeout::try_from(millis).unwrap_or(PollTimeout::ZERO)) {
                while let Ok(Some(info)) = self.signals.read_signal() {
                    let ending = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT];
                    if ending.iter().any(|&sig| info.ssi_signo == sig as u32) {
                        return false;
                    }
                }
            }
        }
    }
}

/// Pipes for the container's stdout and stderr, and for its stdin with
/// `-i` (the monitor keeps the writing end, so the container's reads wait
/// instead of ending). None with `-t`: the terminal carries everything.
struct OutputPipes {
    stdout: Option<(OwnedFd, OwnedFd)>,
    stderr: Option<(OwnedFd, OwnedFd)>,
    stdin: Option<(OwnedFd, OwnedFd)>,
}

impl OutputPipes {
    fn new(stdio: StdioMode) -> Result<OutputPipes, Errno> {
        let pipe = || pipe2(OFlag::O_CLOEXEC);
        if stdio.terminal {
            return Ok(OutputPipes { stdout: None, stderr: None, stdin: None });
        }
        Ok(OutputPipes {
            stdout: Some(pipe()?),
            stderr: Some(pipe()?),
            stdin: stdio.interactive.then(pipe).transpose()?,
        })
    }

    /// In the container process.
    fn install(&self) -> Result<(), Errno> {
        if let Some((_, w)) = &self.stdout {
            dup2_stdout(w)?;
        }
        if let Some((_, w)) = &self.stderr {
            dup2_stderr(w)?;
        }
        if let Some((r, _)) = &self.stdin {
            dup2_stdin(r)?;
        }
        Ok(())
    }

    /// In the monitor: the reading ends, tagged with their stream, and the
    /// stdin pipe's writing end (kept for the monitor's life, so the
    /// container's reads wait for `attach` instead of ending).
    fn monitor_ends(self) -> (Vec<(OwnedFd, Stream)>, Option<OwnedFd>) {
        let mut ends = Vec::new();
        ends.extend(self.stdout.map(|(r, _)| (r, Stream::Stdout)));
        ends.extend(self.stderr.map(|(r, _)| (r, Stream::Stderr)));
        (ends, self.stdin.map(|(_, w)| w))
    }
}

/// The monitor's loop while its container runs.
struct Capture<'a> {
    child: Pid,
    signals: &'a SignalFd,
    sources: Vec<(OwnedFd, Stream)>,
    log: &'a mut Option<LogWriter>,
    attach: AttachServer,
}

/// How long the output of a finished container is still read: processes
/// left in its PID namespace may hold the pipes for a moment while the
/// kernel kills them.
const DRAIN_TIME: Duration = Duration::from_secs(1);

impl Capture<'_> {
    /// The container's status, and the attach server, kept open until
    /// that status is recorded (an attached client reads it then).
    fn until_exit(mut self) -> (i32, AttachServer) {
        let mut status = None;
        let mut deadline = None;
        loop {
            let timeout = match deadline {
                Some(d) => {
                    let left = d - Instant::now().min(d);
                    if left.is_zero() || self.sources.is_empty() {
                        break;
                    }
                    PollTimeout::try_from(i32::try_from(left.as_millis()).unwrap_or(i32::MAX))
                        .unwrap_or(PollTimeout::ZERO)
                }
                None => PollTimeout::NONE,
            };
            let ready = self.poll(timeout);
            let sources = 1 + self.sources.len();
            self.copy_ready(&ready[1..sources]);
            self.attach.serve(&ready[sources..]);
            if ready[0] && status.is_none() {
                status = self.handle_signals();
                if status.is_some() {
                    deadline = Some(Instant::now() + DRAIN_TIME);
                }
            }
        }
        (status.unwrap_or(crate::EXIT_HUTCH_ERROR), self.attach)
    }

    /// Readiness of the signal descriptor, of each source, then of the
    /// attach socket and its clients.
    fn poll(&self, timeout: PollTimeout) -> Vec<bool> {
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        fds.extend(self.sources.iter().map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
        fds.extend(self.attach.fds().into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        match poll(&mut fds, timeout) {
            Ok(_) => fds.iter().map(|f| f.any().unwrap_or(false)).collect(),
            Err(_) => vec![false; fds.len()],
        }
    }

    fn copy_ready(&mut self, ready: &[bool]) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut i = 0;
        let (log, attach) = (&mut *self.log, &mut self.attach);
        self.sources.retain(|(fd, stream)| {
            let was_ready = ready.get(i).copied().unwrap_or(false);
            i += 1;
            if !was_ready {
                return true;
            }
            match read(fd, &mut buf) {
                Ok(0) => false,
                Ok(n) => {
                    if let Some(log) = log.as_mut() {
                        let _ = log.write(*stream, &buf[..n]);
                    }
                    attach.broadcast(*stream, &buf[..n]);
                    true
                }
                Err(Errno::EINTR | Errno::EAGAIN) => true,
                // EIO: the terminal's last slave closed.
                Err(_) => false,
            }
        });
    }

    /// Forwards signals to the container; its status once it ended.
    fn handle_signals(&mut self) -> Option<i32> {
        let mut status = None;
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo.cast_signed()) {
                Ok(Signal::SIGCHLD) => {
                    if let Ok(s) = waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
                        if !matches!(s, WaitStatus::StillAlive) {
                            status = exit_code(s).or(status);
                        }
                    }
                }
                Ok(sig) => {
                    let _ = kill(self.child, sig);
                }
                Err(_) => {}
            }
        }
        status
    }
}
