//! The healthcheck of a running container: a process of the monitor's
//! runs the check every interval, as Docker's daemon does, and records
//! each result in the container's `health.json`.

use crate::containers::{Container, HealthConfig, ProbeResult};
use crate::image::time::rfc3339_nanos_now;
use crate::runtime::probe;
use crate::sys::{die_with_parent, exit_now, Forked};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use std::time::{Duration, Instant};

/// The running checker process.
pub(super) struct Checker(Pid);

impl Checker {
    /// Starts checking `container`, whose first process is `target`, when
    /// it has a healthcheck; its health starts over as "starting".
    pub(super) fn start(spec: &Spec, container: &Container, target: Pid, setgroups_allowed: bool) -> Option<Checker> {
        let config = container.record.healthcheck.clone()?;
        let process = check_process(spec, &config)?;
        let _ = container.reset_health();
        match crate::sys::fork() {
            Err(_) => None,
            Ok(Forked::Parent { child }) => Some(Checker(child)),
            Ok(Forked::Child) => {
                die_with_parent();
                let started = Instant::now();
                loop {
                    std::thread::sleep(config.interval());
                    let result = check(spec, &process, target.as_raw(), setgroups_allowed, config.timeout());
                    if container.record_health(result, started.elapsed() < config.start_period()).is_err() {
                        exit_now(0); // the container is being removed
                    }
                }
            }
        }
    }

    pub(super) fn stop(self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// The container's own process settings (user, environment, directory)
/// with the check's command; None when the check is `NONE`.
pub(crate) fn check_process(spec: &Spec, config: &HealthConfig) -> Option<Process> {
    let mut process = spec.process().clone()?;
    process.set_args(Some(config.command()?));
    process.set_terminal(Some(false));
    process.set_console_size(None);
    Some(process)
}

/// Runs the check once.
pub(crate) fn check(
    spec: &Spec,
    process: &Process,
    target: i32,
    setgroups_allowed: bool,
    timeout: Duration,
) -> ProbeResult {
    let start = rfc3339_nanos_now();
    let outcome = probe::run(spec, process, target, setgroups_allowed, timeout);
    let (exit_code, output) = match outcome.code {
        Some(code) => (code, outcome.output),
        None => (-1, format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64())),
    };
    ProbeResult { start, end: rfc3339_nanos_now(), exit_code, output }
}
