//! A user namespace kept for reuse. Mapping a new one costs a start of the
//! setuid newuidmap and newgidmap each time (about 2 ms, the largest part
//! of a container's start); a small process that only holds one namespace
//! lets later commands join it with setns instead (microseconds), as
//! podman's pause process does. Unlike that one it ends by itself once no
//! process has been in its namespace for a while, leaving nothing behind.
//!
//! The keeper's tag (`PID@START`) is the runtime directory's
//! `userns-keeper`. A joiner checks the tag names a live process, opens
//! its namespace, then checks the tag again (the pid may have been reused
//! meanwhile) and that the namespace has the plan's maps (subordinate
//! ranges change); otherwise it starts a new keeper, under a lock so that
//! starts at once make one.

use super::{fork_into, Enter, IdMapping, UsernsPlan};
use crate::files::{lock_file, write_atomic, Lock};
use crate::liveness::ProcessId;
use crate::sys::{exit_now, Forked};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const TAG_FILE: &str = "userns-keeper";
const LOCK_FILE: &str = "userns-keeper.lock";
/// The keeper's `argv[1]` (see `main`).
pub const ROLE: &str = "__hutch-userns-keeper";
/// How often the keeper looks for processes in its namespace, and how many
/// looks finding none end it.
const IDLE_CHECK: Duration = Duration::from_secs(5);
const IDLE_CHECKS_TO_END: u32 = 2;

/// The namespace to join: a live keeper's, started first when there is
/// none; found once per plan (the open namespace stays usable even after
/// its keeper ends). `None` when no keeper can be had (no runtime
/// directory, a kernel that refuses): the caller then makes a namespace of
/// its own, and reports what goes wrong there.
pub fn namespace(plan: &UsernsPlan) -> Option<Arc<OwnedFd>> {
    plan.kept.get_or_init(|| find_or_start(plan).map(Arc::new)).clone()
}

fn find_or_start(plan: &UsernsPlan) -> Option<OwnedFd> {
    let dir = plan.keeper_dir.as_deref()?;
    if let Some(ns) = join(dir, plan) {
        return Some(ns);
    }
    let _lock = lock_file(&dir.join(LOCK_FILE), Lock::Exclusive).ok()?;
    // Another start may have made one while this one waited.
    join(dir, plan).or_else(|| start(dir, plan).and_then(|()| join(dir, plan)))
}

fn join(dir: &Path, plan: &UsernsPlan) -> Option<OwnedFd> {
    let tag = fs::read_to_string(dir.join(TAG_FILE)).ok()?;
    let keeper = ProcessId::from_tag(tag.trim()).filter(ProcessId::alive)?;
    let path = format!("/proc/{}/ns/user", keeper.pid);
    let ns = File::open(&path).ok()?;
    // Checked again once open: the pid may have been reused meanwhile. A
    // namespace the caller is in already (`hutch unshare -- hutch …`)
    // cannot be joined.
    let ours = fs::read_link("/proc/self/ns/user").ok();
    let fresh = keeper.alive() && ours != fs::read_link(&path).ok() && maps_match(keeper.pid, plan);
    fresh.then(|| ns.into())
}

/// Whether the namespace of `pid` maps ids as `plan` would.
fn maps_match(pid: i32, plan: &UsernsPlan) -> bool {
    let read = |name: &str| fs::read_to_string(format!("/proc/{pid}/{name}")).ok().map(|t| parse_map(&t));
    read("uid_map") == Some(plan.uid_map.clone()) && read("gid_map") == Some(plan.gid_map.clone())
}

fn parse_map(text: &str) -> Vec<IdMapping> {
    let line = |l: &str| {
        let n: Vec<u32> = l.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        match n[..] {
            [container_id, host_id, size] => Some(IdMapping { container_id, host_id, size }),
            _ => None,
        }
    };
    text.lines().map_while(line).collect()
}

/// Starts a keeper in a new namespace mapped by `plan` and records its tag.
/// The keeper is a grandchild in a session of its own, so hutch need not
/// reap it and a Ctrl-C at hutch's terminal does not reach it.
fn start(dir: &Path, plan: &UsernsPlan) -> Option<()> {
    let (mut from_child, to_parent) = std::io::pipe().ok()?;
    match fork_into(plan, Enter::New).ok()? {
        Forked::Child => {
            drop(from_child);
            let _ = nix::sys::prctl::set_pdeathsig(None);
            match crate::sys::fork() {
                Ok(Forked::Child) => {
                    let _ = nix::unistd::setsid();
                    // Nothing of the caller's is kept open (a pipe it reads
                    // to its end, say); the write end closes at exec too,
                    // which ends the parent's read.
                    let _ = crate::sys::cloexec_from(3);
                    let mut exe = Command::new("/proc/self/exe");
                    exe.arg0("hutch").arg(ROLE).env_clear().current_dir("/");
                    let _ = exe.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).exec();
                    exit_now(crate::EXIT_HUTCH_ERROR)
                }
                Ok(Forked::Parent { child }) => {
                    let _ = (&to_parent).write_all(child.as_raw().to_string().as_bytes());
                    exit_now(0)
                }
                Err(_) => exit_now(crate::EXIT_HUTCH_ERROR),
            }
        }
        Forked::Parent { child } => {
            drop(to_parent);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut said = Vec::new();
            from_child.read_to_end(&mut said).ok()?;
            let pid = std::str::from_utf8(&said).ok()?.trim().parse().ok()?;
            let keeper = ProcessId::of(pid)?;
            write_atomic(&dir.join(TAG_FILE), keeper.tag().as_bytes()).ok()
        }
    }
}

/// The keeper's life (`hutch __hutch-userns-keeper`, exec'd by [`start`]):
/// it sleeps, and ends once its namespace has held no other process at
/// [`IDLE_CHECKS_TO_END`] looks in a row.
pub fn keep() -> ! {
    crate::sys::reset_signals();
    let Ok(own) = fs::read_link("/proc/self/ns/user") else { exit_now(0) };
    let mut idle = 0;
    while idle < IDLE_CHECKS_TO_END {
        std::thread::sleep(IDLE_CHECK);
        idle = if others_in(&own) { 0 } else { idle + 1 };
    }
    exit_now(0)
}

/// Whether a process other than this one is in the user namespace `ns`.
fn others_in(ns: &PathBuf) -> bool {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else { return true };
    entries.flatten().any(|e| {
        let pid = e.file_name();
        let pid = pid.to_string_lossy();
        pid.bytes().all(|b| b.is_ascii_digit())
            && pid != me
            && fs::read_link(e.path().join("ns/user")).ok().as_ref() == Some(ns)
    })
}
