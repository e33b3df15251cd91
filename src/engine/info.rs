//! `info` and `version`: what hutch finds on this machine, the page a user
//! pastes into a bug report. Read only: nothing is created but the store's
//! directories and the runtime directory, which every command makes.

use super::{Engine, Error};
use crate::config::Config;
use serde::Serialize;

/// hutch's version and the machine it runs on.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub version: &'static str,
    pub os: &'static str,
    pub arch: &'static str,
    pub kernel: String,
}

impl Version {
    pub fn current() -> Version {
        Version {
            version: env!("CARGO_PKG_VERSION"),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            kernel: nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    pub version: Version,
    pub ids: Ids,
    pub user_namespaces: UserNamespaces,
    pub store: StoreInfo,
    pub runtime_dir: String,
    pub network: NetworkInfo,
    pub cgroups: CgroupInfo,
    pub security: SecurityInfo,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ids {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// "subordinate ids" or "single id".
    pub mapping: &'static str,
    /// Where ranges are looked up.
    pub source: &'static str,
    /// `container-id host-id size`, as /proc/PID/uid_map shows them.
    pub uid_map: Vec<String>,
    pub gid_map: Vec<String>,
    /// Why only the caller's id is mapped, with the fix.
    pub single_id_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserNamespaces {
    pub max_user_namespaces: Option<u64>,
    pub unprivileged_userns_clone: Option<u64>,
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    /// The process holding the kept namespace (`PID@START`), while one does.
    pub keeper: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreInfo {
    pub path: String,
    /// The store's filesystem, as statfs names it.
    pub filesystem: String,
    /// What new containers get: `auto`, or the driver forced.
    pub driver: String,
    /// Whether the kernel overlay works on this store, and why not.
    pub kernel_overlay: String,
    pub images: usize,
    pub containers: usize,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInfo {
    /// The mode `run` uses without `--network`, or why there is none.
    pub default: String,
    /// Each helper's version line, or "not found".
    pub slirp4netns: String,
    pub pasta: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CgroupInfo {
    /// "v2", "hybrid (v1 controllers with a v2 mount)" or "none".
    pub version: String,
    /// hutch's own cgroup.
    pub cgroup: Option<String>,
    /// The controllers it offers, and whether it is delegated to the user.
    pub controllers: Vec<String>,
    pub delegated: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityInfo {
    pub seccomp: String,
    pub apparmor: String,
}

impl Engine {
    /// What hutch finds on this machine.
    pub fn info(&self) -> Result<Info, Error> {
        let plan = self.image_plan();
        let map = |m: &[crate::userns::IdMapping]| {
            m.iter().map(|l| format!("{} {} {}", l.container_id, l.host_id, l.size)).collect::<Vec<_>>()
        };
        let settings = crate::userns::KernelSettings::read();
        let runtime = self.runtime()?;
        let keeper = std::fs::read_to_string(runtime.path().join("userns-keeper")).ok().map(|t| t.trim().to_string());
        let keeper = keeper.filter(|tag| !crate::liveness::abandoned(tag));
        Ok(Info {
            version: Version::current(),
            ids: Ids {
                user: plan.user.clone(),
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
                mapping: if plan.uses_helpers { "subordinate ids" } else { "single id" },
                source: crate::userns::subid_source(),
                uid_map: map(&plan.uid_map),
                gid_map: map(&plan.gid_map),
                single_id_reason: plan.fallback_reason.clone(),
            },
            user_namespaces: UserNamespaces {
                max_user_namespaces: settings.max_user_namespaces,
                unprivileged_userns_clone: settings.unprivileged_userns_clone,
                apparmor_restrict_unprivileged_userns: settings.apparmor_restrict,
                keeper,
            },
            store: self.store_info()?,
            runtime_dir: runtime.path().display().to_string(),
            network: network_info(),
            cgroups: cgroup_info(),
            security: security_info(),
        })
    }

    fn store_info(&self) -> Result<StoreInfo, Error> {
        let images = self.images()?.len();
        let containers = self.containers()?.list()?.len();
        let driver = match self.storage_preference()? {
            crate::storage::Preference::Auto => "auto".to_string(),
            crate::storage::Preference::Named(d) => d.name().to_string(),
        };
        let probe = self.storage_probe(&crate::image::Store::open(&self.root)?);
        let kernel_overlay = match probe.overlay_works {
            true => "works here (overlayfs with userxattr in a user namespace)".to_string(),
            false => format!("refused here: {}", probe.why),
        };
        Ok(StoreInfo {
            path: self.root.display().to_string(),
            filesystem: filesystem_name(&self.root),
            driver,
            kernel_overlay,
            images,
            containers,
        })
    }
}

fn filesystem_name(path: &std::path::Path) -> String {
    use nix::sys::statfs::{statfs, FsType};
    let Ok(fs) = statfs(path) else { return "unknown".into() };
    let magic = fs.filesystem_type();
    let known: &[(FsType, &str)] = &[
        (nix::sys::statfs::EXT4_SUPER_MAGIC, "ext4"),
        (nix::sys::statfs::TMPFS_MAGIC, "tmpfs"),
        (nix::sys::statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (nix::sys::statfs::XFS_SUPER_MAGIC, "xfs"),
        (nix::sys::statfs::NFS_SUPER_MAGIC, "nfs"),
        (nix::sys::statfs::OVERLAYFS_SUPER_MAGIC, "overlay"),
        (nix::sys::statfs::FUSE_SUPER_MAGIC, "fuse"),
    ];
    known.iter().find(|(m, _)| *m == magic).map_or_else(|| format!("{:#x}", magic.0), |(_, name)| name.to_string())
}

fn network_info() -> NetworkInfo {
    let default = Config::load()
        .map_err(|e| e.to_string())
        .and_then(|c| netstack::NetworkMode::default_mode(c.network.default.as_deref()).map_err(|e| e.to_string()));
    NetworkInfo {
        default: default.map_or_else(|e| format!("none usable: {e}"), |m| m.to_string()),
        slirp4netns: first_line_of("slirp4netns", "--version"),
        pasta: first_line_of("pasta", "--version"),
    }
}

/// The first line `program arg` prints, or "not found".
fn first_line_of(program: &str, arg: &str) -> String {
    let out = std::process::Command::new(program).arg(arg).stdin(std::process::Stdio::null()).output();
    match out {
        Ok(out) => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or_default().trim().to_string()
        }
        Err(_) => "not found".into(),
    }
}

fn cgroup_info() -> CgroupInfo {
    let Some(hierarchy) = crate::cgroup::Hierarchy::find() else {
        return CgroupInfo { version: "none".into(), cgroup: None, controllers: Vec::new(), delegated: false };
    };
    let version = if hierarchy.is_hybrid() { "hybrid (v1 controllers with a v2 mount)" } else { "v2" };
    let own = hierarchy.cgroup_of("self");
    let (controllers, delegated) = own.as_deref().map(|dir| hierarchy.delegation(dir)).unwrap_or_default();
    CgroupInfo { version: version.into(), cgroup: own.map(|d| hierarchy.relative(&d)), controllers, delegated }
}

fn security_info() -> SecurityInfo {
    let seccomp = match libseccomp::ScmpVersion::current() {
        Ok(v) => format!(
            "libseccomp {}.{}.{}; Docker's default profile, compiled once per runtime directory",
            v.major, v.minor, v.micro
        ),
        Err(e) => format!("libseccomp unusable: {e}"),
    };
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y");
    let apparmor = if enabled {
        let profile = std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default();
        format!("enabled; hutch runs under {}", profile.trim())
    } else {
        "not enabled".into()
    };
    SecurityInfo { seccomp, apparmor }
}
