//! Asking the user's systemd for a delegated cgroup: a transient scope
//! (what `systemd-run --user --scope -p Delegate=yes` makes) that this very
//! process is moved into, through `busctl` (part of systemd), so hutch
//! links no D-Bus library. It needs a running `systemd --user` (a login,
//! or lingering).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long systemd may take to move us once the job is queued.
const MOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Moves this process into a new scope `UNIT-PID.scope` with Delegate=yes.
/// On failure, why, in a phrase.
pub(super) fn move_into_new_scope(unit: &str) -> Result<(), String> {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::geteuid())));
    let pid = std::process::id();
    let unit = format!("{unit}-{pid}.scope");
    let mut busctl = Command::new("busctl");
    // The user bus first: through it the user manager can move a process
    // from outside its own subtree (a system service, a cron job), by
    // asking the system manager. Its private socket cannot.
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() || runtime_dir.join("bus").exists() {
        busctl.arg("--user").env("XDG_RUNTIME_DIR", &runtime_dir);
    } else if runtime_dir.join("systemd/private").exists() {
        busctl.arg(format!("--address=unix:path={}", runtime_dir.join("systemd/private").display()));
    } else {
        return Err(format!("no systemd user instance runs for you (nothing in {})", runtime_dir.display()));
    }
    let output = busctl
        .args(["call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"])
        .args(["StartTransientUnit", "ssa(sv)a(sa(sv))", &unit, "fail"])
        .args(["3", "PIDs", "au", "1", &pid.to_string(), "Delegate", "b", "true"])
        .args(["CollectMode", "s", "inactive-or-failed", "0"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("busctl: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("busctl: {}", stderr.lines().next().unwrap_or("failed")));
    }
    wait_until_moved(&unit)
}

/// The job moves us asynchronously: wait until /proc/self/cgroup says so.
fn wait_until_moved(unit: &str) -> Result<(), String> {
    let deadline = Instant::now() + MOVE_TIMEOUT;
    loop {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if cgroup.lines().any(|l| l.starts_with("0::") && l.ends_with(&format!("/{unit}"))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("systemd did not move hutch into {unit} within {}s", MOVE_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
