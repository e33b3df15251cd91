//! The sandbox a container gets by default, as Docker and Podman users
//! know it, and how flags widen or narrow it.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};
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
}

/// `--cap-add`/`--cap-drop` over Docker's default set, or every capability
/// with `--privileged`.
pub fn capabilities(add: &[String], drop: &[String], privileged: bool) -> Result<LinuxCapabilities, Error> {
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
    // Building with every field set cannot fail.
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set.clone())
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(c: &LinuxCapabilities) -> Capabilities {
        c.effective().clone().unwrap_or_default()
    }

    #[test]
    fn defaults_then_adds_then_drops_as_in_docker() {
        let c = capabilities(&[], &[], false).unwrap();
        assert_eq!(eff(&c).len(), 14);
        let c = capabilities(&["sys_admin".into(), "CAP_NET_ADMIN".into()], &["chown".into()], false).unwrap();
        assert!(eff(&c).contains(&Capability::SysAdmin) && eff(&c).contains(&Capability::NetAdmin));
        assert!(!eff(&c).contains(&Capability::Chown));
        let c = capabilities(&["KILL".into()], &["ALL".into()], false).unwrap();
        assert_eq!(eff(&c), [Capability::Kill].into_iter().collect());
        assert!(capabilities(&["CAP_NOPE".into()], &[], false).is_err());
        assert!(capabilities(&[], &[], true).unwrap().effective().as_ref().unwrap().contains(&Capability::SysAdmin));
    }
}
