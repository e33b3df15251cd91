//! Asking the user's systemd for a delegated cgroup: a transient scope
//! (what `systemd-run --user --scope -p Delegate=yes` makes) that this very
//! process is moved into. `busctl` talks to the user manager on its private
//! socket, so no session bus is needed, only a running `systemd --user`
//! (a login, or lingering).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long systemd may take to move us once the job is queued.
const MOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Moves this process into a new scope `UNIT-PID.scope` with Delegate=yes.
/// On failure, why, in a phrase.
pub(super) fn move_into_new_scope(unit: &str) -> Result<(), String> {
    let socket = user_manager_socket()?;
    let pid = std::process::id();
    let unit = format!("{unit}-{pid}.scope");
    let output = Command::new("busctl")
        .arg(format!("--address=unix:path={}", socket.display()))
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

/// The user manager's private D-Bus socket, if it runs.
fn user_manager_socket() -> Result<PathBuf, String> {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::geteuid())));
    let socket = runtime_dir.join("systemd/private");
    match socket.exists() {
        true => Ok(socket),
        false => Err(format!("no systemd user instance runs for you ({} is missing)", socket.display())),
    }
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
