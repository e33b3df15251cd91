//! The sandbox a container gets by default, as Docker and Podman users
//! know it, and how flags widen or narrow it.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxSeccomp};
use serde_json::json;
use std::str::FromStr;

/// Docker's default capability set.
const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from the container: /dev/null over files, an empty
/// read-only tmpfs over directories (Docker's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not change.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown capability {0:?} (names as in capabilities(7), with or without CAP_, or ALL)")]
    UnknownCapability(String),
    #[error("seccomp profile {0}")]
    SeccompProfile(String),
}

/// `--cap-add`/`--cap-drop` over Docker's default set, or every capability
/// with `--privileged`.
/// The capability sets of the container's process. A non-root user gets
/// them in the bounding set only, as Docker gives them: nothing permitted
/// that a capability-aware program could raise, nor that a file
/// capability could keep through no_new_privs.
pub fn capabilities(add: &[String], drop: &[String], privileged: bool, root: bool) -> Result<LinuxCapabilities, Error> {
    let add = parse_names(add)?;
    let drop = parse_names(drop)?;
    let mut set: Capabilities =
        if privileged || add.all { all_capabilities() } else { DEFAULT_CAPABILITIES.iter().copied().collect() };
    if drop.all {
        set.clear();
    }
    set.extend(add.names.iter().copied());
    for cap in &drop.names {
        set.remove(cap);
    }
    let held = if root { set.clone() } else { Capabilities::new() };
    // Building with every field set cannot fail.
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(set)
        .effective(held.clone())
        .permitted(held)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .unwrap_or_default())
}

/// The container's capabilities for another user (`exec -u`): root holds
/// the whole bounding set, anyone else none (as after execve of a non-root
/// program).
pub fn for_user(mut caps: LinuxCapabilities, root: bool) -> LinuxCapabilities {
    let held = if root { caps.bounding().clone().unwrap_or_default() } else { Capabilities::new() };
    caps.set_effective(Some(held.clone()));
    caps.set_permitted(Some(held));
    caps.set_inheritable(Some(Capabilities::new()));
    caps.set_ambient(Some(Capabilities::new()));
    caps
}

struct Names {
    all: bool,
    names: Vec<Capability>,
}

fn parse_names(list: &[String]) -> Result<Names, Error> {
    let mut names = Names { all: false, names: Vec::new() };
    for raw in list {
        let upper = raw.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if bare == "ALL" {
            names.all = true;
        } else {
            names.names.push(Capability::from_str(bare).map_err(|_| Error::UnknownCapability(raw.clone()))?);
        }
    }
    Ok(names)
}

/// Every capability this kernel knows (and oci-spec names).
fn all_capabilities() -> Capabilities {
    caps::runtime::thread_all_supported()
        .into_iter()
        .filter_map(|c| Capability::from_str(c.to_string().trim_start_matches("CAP_")).ok())
        .collect()
}

/// Syscalls Docker's default profile refuses to a container without extra
/// capabilities: kernel keyring, BPF, perf, userfaultfd, module and kexec
/// loading, handle-based opens, clock and swap changes, io_uring, accounting.
const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "query_module",
    "quotactl",
    "request_key",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "syslog",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// Refused unless CAP_SYS_ADMIN was added: mounts, namespaces, pivot_root.
const DENIED_WITHOUT_SYS_ADMIN: &[&str] = &[
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "pivot_root",
    "setns",
    "umount",
    "umount2",
    "unshare",
];

/// clone flags that create namespaces (refused without CAP_SYS_ADMIN).
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// The default seccomp filter, with the semantics of Docker's default
/// profile: what it refuses fails with EPERM; clone3, whose flags a filter
/// cannot read, fails with ENOSYS so libc falls back to clone.
pub fn default_seccomp(caps: &LinuxCapabilities) -> Result<LinuxSeccomp, Error> {
    let has = |c: Capability| caps.bounding().as_ref().is_some_and(|b| b.contains(&c));
    let mut syscalls = vec![json!({"names": DENIED_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM})];
    if !has(Capability::SysAdmin) {
        syscalls.push(json!({"names": DENIED_WITHOUT_SYS_ADMIN, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}));
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
        for flag in NAMESPACE_FLAGS {
            syscalls.push(json!({
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
                // s390x passes clone's flags second; everywhere else first.
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]
            }));
        }
    }
    if !has(Capability::SysPtrace) {
        syscalls
            .push(json!({"names": ["kcmp", "process_madvise"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}));
    }
    if !has(Capability::SysNice) {
        syscalls.push(json!({"names": ["get_mempolicy", "mbind", "set_mempolicy"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}));
    }
    let profile =
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": native_architectures(), "syscalls": syscalls});
    serde_json::from_value(profile).map_err(|e| Error::SeccompProfile(format!("the built-in profile: {e}")))
}

/// The native architecture and the compat ones its kernel also runs
/// (32-bit binaries are common in old images).
fn native_architectures() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        &["SCMP_ARCH_NATIVE"]
    }
}

/// A profile file in the OCI (or Docker) JSON format. Docker's conditional
/// `includes`/`excludes` are not evaluated.
pub fn seccomp_profile_file(path: &std::path::Path) -> Result<LinuxSeccomp, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::SeccompProfile(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::SeccompProfile(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(c: &LinuxCapabilities) -> Capabilities {
        c.effective().clone().unwrap_or_default()
    }

    #[test]
    fn defaults_then_adds_then_drops_as_in_docker() {
        let c = capabilities(&[], &[], false, true).unwrap();
        assert_eq!(eff(&c).len(), 14);
        let c = capabilities(&["sys_admin".into(), "CAP_NET_ADMIN".into()], &["chown".into()], false, true).unwrap();
        assert!(eff(&c).contains(&Capability::SysAdmin) && eff(&c).contains(&Capability::NetAdmin));
        assert!(!eff(&c).contains(&Capability::Chown));
        let c = capabilities(&["KILL".into()], &["ALL".into()], false, true).unwrap();
        assert_eq!(eff(&c), [Capability::Kill].into_iter().collect());
        assert!(capabilities(&["CAP_NOPE".into()], &[], false, true).is_err());
        assert!(capabilities(&[], &[], true, true)
            .unwrap()
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
    }

    #[test]
    fn sys_admin_lifts_the_namespace_rules() {
        let names = |p: &LinuxSeccomp| -> Vec<String> {
            p.syscalls().iter().flatten().flat_map(|r| r.names().clone()).collect()
        };
        let default = default_seccomp(&capabilities(&[], &[], false, true).unwrap()).unwrap();
        assert!(names(&default).contains(&"unshare".to_string()) && names(&default).contains(&"keyctl".to_string()));
        let admin = default_seccomp(&capabilities(&["SYS_ADMIN".into()], &[], false, true).unwrap()).unwrap();
        assert!(!names(&admin).contains(&"unshare".to_string()) && names(&admin).contains(&"keyctl".to_string()));
    }
}
