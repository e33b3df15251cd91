//! Starting containers: in the foreground (hutch relays the streams and
//! signals and returns the exit status) or detached (a monitor keeps the
//! container and its log), each in its cgroup when there is one to give.

use super::create::Created;
use super::{Engine, Error};
use crate::containers::Container;
use crate::runtime::StdioMode;
use crate::spec;
use crate::trace;
use oci_spec::runtime::Spec;
use std::time::Duration;

/// How a foreground container ended.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// Its exit status, the shell's way (128 + signal when killed).
    pub code: i32,
    /// The OOM killer ended it: its `--memory` limit was reached.
    pub oom_killed: bool,
}

impl Engine {
    /// Runs a created container in the foreground; removes it afterwards
    /// when it was created with `auto_remove`.
    pub fn run(&self, created: Created, stdio: StdioMode) -> Result<Exit, Error> {
        let Created { container, mut spec } = created;
        if let Err(e) = self.place_in_cgroup(&container, &mut spec) {
            self.remove_files(&container);
            return Err(e);
        }
        trace::mark("cgroup placed");
        let result = crate::launch::run(&spec, self.plan()?, stdio, foreground_log(&container));
        trace::mark("monitor ended");
        let oom_killed = container.state().oom_killed;
        if container.record.auto_remove {
            self.remove_files(&container);
            self.remove_anonymous_volumes(&container)?;
            trace::mark("container removed");
        }
        let code = result?;
        self.restart_in_background(&container, code)?;
        Ok(Exit { code, oom_killed })
    }

    /// After a foreground run whose restart policy asks for more: a
    /// detached monitor restarts it (after the first pause), as Docker's
    /// daemon would once its client has shown the first run.
    fn restart_in_background(&self, container: &Container, code: i32) -> Result<(), Error> {
        let policy = container.record.restart;
        if !policy.restarts(code, 0, container.stopped_by_user()) {
            return Ok(());
        }
        std::thread::sleep(crate::containers::restart::delay(None, Duration::ZERO));
        if container.stopped_by_user() {
            return Ok(());
        }
        self.start_monitor(container, 1)
    }

    /// Starts a created container with a detached monitor; returns once it
    /// runs. One that cannot start is removed when it was to be removed
    /// on exit anyway.
    pub fn run_detached(&self, created: Created, stdio: StdioMode) -> Result<(), Error> {
        let Created { container, mut spec, .. } = created;
        let started = self
            .place_in_cgroup(&container, &mut spec)
            .and_then(|()| Ok(crate::launch::start_detached(&spec, self.plan()?, stdio, 0)?));
        trace::mark("container started");
        if started.is_err() && container.record.auto_remove {
            self.remove_files(&container);
        }
        started.map(drop)
    }

    /// Starts a stopped container in the background (a running one, or
    /// one its monitor is about to restart, is left be).
    pub fn start(&self, container: &Container) -> Result<(), Error> {
        if container.state().monitor_alive().is_some() {
            return Ok(());
        }
        self.start_monitor(container, 0)
    }

    /// A detached monitor for a stopped container, with the streams it was
    /// created with; `restarts`: how often its policy restarted it before.
    fn start_monitor(&self, container: &Container, restarts: u32) -> Result<(), Error> {
        let spec = self.prepare_start(container)?;
        let stdio =
            StdioMode { terminal: container.record.tty, interactive: container.record.interactive, preserve_fds: 0 };
        crate::launch::start_detached(&spec, self.plan()?, stdio, restarts)?;
        Ok(())
    }

    /// Starts a stopped container in the foreground (`start -a`).
    pub fn start_attached(&self, container: &Container, interactive: bool) -> Result<Exit, Error> {
        if container.state().monitor_alive().is_some() {
            return Err(Error::AlreadyRunning(container.record.name.clone()));
        }
        let spec = self.prepare_start(container)?;
        let stdio = StdioMode { terminal: container.record.tty, interactive, preserve_fds: 0 };
        let code = crate::launch::run(&spec, self.plan()?, stdio, foreground_log(container))?;
        Ok(Exit { code, oom_killed: container.state().oom_killed })
    }

    /// Stops a container (its stop signal, then SIGKILL after `timeout`)
    /// and starts it again.
    pub fn restart(&self, container: &Container, timeout: Duration) -> Result<(), Error> {
        container.stop(timeout)?;
        self.start(container)
    }

    /// A stopped container's Spec and its cgroup.
    fn prepare_start(&self, container: &Container) -> Result<Spec, Error> {
        self.keep_userns()?;
        let mut spec = container.spec()?;
        self.place_in_cgroup(container, &mut spec)?;
        Ok(spec)
    }

    /// Gives the container its cgroup, when there is one to give (see
    /// `cgroup::setup`), and names it in the Spec the monitor runs.
    fn place_in_cgroup(&self, container: &Container, spec: &mut Spec) -> Result<(), Error> {
        let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
        if container.record.cgroups == crate::cgroup::Mode::Disabled && resources.is_some() {
            self.note("--cgroups=disabled: the container runs without its limits");
        }
        if let Some(cgroups_path) =
            crate::cgroup::setup(&container.record.id, resources.as_ref(), container.record.cgroups)?
        {
            spec::run_in_cgroup(spec, &cgroups_path)?;
        }
        Ok(())
    }
}

/// The log a foreground run writes, as a detached one does: for a container
/// that is kept after it ends (not `--rm`).
fn foreground_log(container: &Container) -> Option<crate::launch::LogTarget> {
    if container.record.auto_remove {
        return None;
    }
    let max_size = container.record.log_max_size.unwrap_or(crate::containers::log::DEFAULT_MAX_SIZE);
    Some(crate::launch::LogTarget { path: container.path(crate::containers::log::FILE), max_size })
}
