//! `HUTCH_TRACE=1`: a line on stderr as each phase of a command ends —
//! milliseconds since hutch started, the process (hutch, its user-namespace
//! helper, the monitor, the container's first process) and the phase — so
//! anyone can see where a start spends its time.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Starts the clock when `HUTCH_TRACE` is set (and not 0); first thing in
/// `main`. Forked processes keep the clock: `Instant` is the system's
/// monotonic clock.
pub fn init() {
    START.get_or_init(|| {
        let wanted = std::env::var_os("HUTCH_TRACE").is_some_and(|v| !v.is_empty() && v != "0");
        wanted.then(Instant::now)
    });
}

/// Prints `phase` as done now, when tracing.
pub fn mark(phase: &str) {
    if let Some(Some(start)) = START.get() {
        let ms = start.elapsed().as_secs_f64() * 1e3;
        // A closed stderr must not end the command.
        let line = format!("hutch: trace: {ms:8.2} ms  [{}] {phase}\n", std::process::id());
        // One write: lines of several processes do not interleave.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
