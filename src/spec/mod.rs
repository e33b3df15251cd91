//! From what the user asked for to an OCI runtime Spec. The runtime
//! executes only the Spec, so everything a flag means is visible here.

pub mod annotations;
pub mod device;
pub mod resources;
pub mod security;
mod volume;

pub use volume::{MountArg, Volume, COPY_UP};

use crate::runtime::{inroot, process::DEFAULT_PATH};
use crate::storage::LayeredRoot;
use crate::userns::UsernsPlan;
use netstack::{NetworkMode, PortMapping};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{
    BoxBuilder, LinuxBuilder, LinuxDeviceBuilder, LinuxDeviceType, LinuxIdMappingBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid volume {0:?}: expected HOST-PATH:CONTAINER-PATH[:ro|rw] with an absolute container path")]
    VolumeSyntax(String),
    #[error("invalid volume {0:?}: a volume name has letters, digits, '_', '.' and '-', starting with a letter or digit; a host path is absolute or starts with ./")]
    VolumeName(String),
    #[error("volume source {path}: {source}")]
    VolumeSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown volume option {option:?} in {volume:?} (expected ro, rw, nosuid, nodev, noexec, nocopy)")]
    VolumeOption { volume: String, option: String },
    #[error("invalid --mount {mount:?}: {why}")]
    MountSyntax { mount: String, why: String },
    #[error("the root filesystem {path}: {source}")]
    Rootfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid user {0:?}: expected NAME or UID, optionally followed by :GROUP or :GID")]
    UserSyntax(String),
    #[error("no user {name:?} in the container's /etc/passwd")]
    UnknownUser { name: String },
    #[error("no group {name:?} in the container's /etc/group")]
    UnknownGroup { name: String },
    #[error("{kind} {id} has no host id in this user namespace: {why}")]
    Unmapped { kind: &'static str, id: u32, why: String },
    #[error("invalid environment variable {0:?}: the name must not be empty")]
    Env(String),
    #[error("the working directory {0:?} must be an absolute path")]
    Workdir(PathBuf),
    #[error("no command given: name one after the options (e.g. `-- /bin/sh`)")]
    NoCommand,
    #[error(transparent)]
    Security(#[from] security::Error),
    #[error(transparent)]
    Device(#[from] device::Error),
    #[error("invalid tmpfs {0:?}: expected CONTAINER-PATH[:OPTIONS] with an absolute path")]
    Tmpfs(String),
    #[error("--{flag}: {why}")]
    Limit { flag: String, why: String },
    #[error("building the runtime spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Host files bind-mounted over the container's /etc entries.
#[derive(Clone, Debug)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Which seccomp filter the container gets (`--security-opt seccomp=…`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    #[default]
    Default,
    Unconfined,
    Profile(PathBuf),
}

/// Everything `hutch run` decides about a container.
#[derive(Clone, Debug)]
pub struct ContainerConfig {
    /// The root directory (the mount point, for an image).
    pub rootfs: PathBuf,
    /// An image's root: its layers, mounted with a writable layer on top.
    pub overlay: Option<LayeredRoot>,
    pub command: Vec<String>,
    /// `-e` values: `KEY=VALUE`, or `KEY` to take the caller's value.
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub user: Option<String>,
    pub hostname: String,
    pub volumes: Vec<Volume>,
    /// `--device`: host device nodes bound in.
    pub devices: Vec<device::Device>,
    pub terminal: bool,
    pub terminal_size: Option<(u16, u16)>,
    pub network: NetworkMode,
    /// `-p`: host ports forwarded to the container (by the network helper).
    pub ports: Vec<PortMapping>,
    /// The container's runtime directory (the network helper's files).
    pub state_dir: PathBuf,
    /// The container's directory in the store (its record, state and log).
    pub container_dir: PathBuf,
    pub init: bool,
    pub read_only: bool,
    /// `--tmpfs PATH[:OPTIONS]`
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Every capability, nothing masked (`--privileged`).
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    pub etc_files: EtcFiles,
    /// `--pid host`: the host's PID namespace (its /proc bound in).
    pub pid_host: bool,
    /// `--ipc host`: the host's IPC namespace, /dev/shm and /dev/mqueue.
    pub ipc_host: bool,
}

/// The Spec for `cfg`, with the id maps of `plan`.
pub fn build(cfg: &ContainerConfig, plan: &UsernsPlan) -> Result<Spec, Error> {
    if cfg.command.is_empty() {
        return Err(Error::NoCommand);
    }
    let rootfs =
        std::fs::canonicalize(&cfg.rootfs).map_err(|e| Error::Rootfs { path: cfg.rootfs.clone(), source: e })?;
    let ids = resolve_user(&rootfs, cfg.overlay.as_ref(), cfg.user.as_deref())?;
    let caps = security::capabilities(&cfg.cap_add, &cfg.cap_drop, cfg.privileged, ids.uid == 0)?;
    let seccomp = match (&cfg.seccomp, cfg.privileged) {
        (SeccompChoice::Profile(path), _) => Some(security::seccomp_profile_file(path)?),
        (SeccompChoice::Unconfined, _) | (SeccompChoice::Default, true) => None,
        (SeccompChoice::Default, false) => Some(security::default_seccomp(&caps)?),
    };
    check_mapped(plan, &ids)?;
    let cwd = cfg.workdir.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !cwd.is_absolute() {
        return Err(Error::Workdir(cwd));
    }

    let mut process = ProcessBuilder::default()
        .terminal(cfg.terminal)
        .user(UserBuilder::default().uid(ids.uid).gid(ids.gid).additional_gids(ids.additional_gids.clone()).build()?)
        .args(cfg.command.clone())
        .env(environment(cfg, &ids.home)?)
        .cwd(cwd)
        .capabilities(caps.clone())
        .no_new_privileges(cfg.no_new_privileges);
    if let Some((rows, cols)) = cfg.terminal_size.filter(|_| cfg.terminal) {
        process = process.console_size(BoxBuilder::default().height(rows as u64).width(cols as u64).build()?);
    }
    let mut annotations = HashMap::new();
    if cfg.init {
        annotations.insert(annotations::INIT.to_string(), "true".to_string());
    }
    // The monitor starts the network helper from these.
    if cfg.network.has_helper() {
        annotations.insert(annotations::NETWORK.to_string(), cfg.network.to_string());
        let ports: Vec<String> = cfg.ports.iter().map(ToString::to_string).collect();
        annotations.insert(annotations::PORTS.to_string(), ports.join(","));
    }
    annotations.insert(annotations::STATE_DIR.to_string(), cfg.state_dir.to_string_lossy().into_owned());
    annotations.insert(annotations::CONTAINER_DIR.to_string(), cfg.container_dir.to_string_lossy().into_owned());
    if let Some(layered) = &cfg.overlay {
        crate::storage::annotate(&mut annotations, layered);
    }
    let map = |m: &crate::userns::IdMapping| {
        LinuxIdMappingBuilder::default().container_id(m.container_id).host_id(m.host_id).size(m.size).build()
    };
    let (masked, readonly): (&[&str], &[&str]) =
        if cfg.privileged { (&[], &[]) } else { (security::MASKED_PATHS, security::READONLY_PATHS) };
    let strings = |l: &[&str]| l.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(cfg)?)
        .masked_paths(strings(masked))
        .readonly_paths(strings(readonly))
        .uid_mappings(plan.uid_map.iter().map(map).collect::<Result<Vec<_>, _>>()?)
        .gid_mappings(plan.gid_map.iter().map(map).collect::<Result<Vec<_>, _>>()?)
        .devices(devices()?)
        .build()?;
    linux.set_seccomp(seccomp);
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(rootfs).readonly(cfg.read_only).build()?)
        .hostname(cfg.hostname.clone())
        .process(process.build()?)
        .mounts(mounts(cfg, plan)?)
        .linux(linux)
        .annotations(annotations)
        .build()?)
}

fn namespaces(cfg: &ContainerConfig) -> Result<Vec<oci_spec::runtime::LinuxNamespace>, Error> {
    let mut types =
        vec![LinuxNamespaceType::User, LinuxNamespaceType::Mount, LinuxNamespaceType::Uts, LinuxNamespaceType::Cgroup];
    if !cfg.pid_host {
        types.push(LinuxNamespaceType::Pid);
    }
    if !cfg.ipc_host {
        types.push(LinuxNamespaceType::Ipc);
    }
    if cfg.network.needs_namespace() {
        types.push(LinuxNamespaceType::Network);
    }
    Ok(types.into_iter().map(|t| LinuxNamespaceBuilder::default().typ(t).build()).collect::<Result<_, _>>()?)
}

/// The device nodes every container has, bound from the host (device nodes
/// cannot be created in a user namespace).
fn devices() -> Result<Vec<oci_spec::runtime::LinuxDevice>, Error> {
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
        .into_iter()
        .map(|(name, major, minor)| {
            LinuxDeviceBuilder::default()
                .path(format!("/dev/{name}"))
                .typ(LinuxDeviceType::C)
                .major(major)
                .minor(minor)
                .file_mode(0o666u32)
                .build()
                .map_err(Error::from)
        })
        .collect()
}

/// Names the container's cgroup (`cgroups_path`, relative to the cgroup2
/// mount) in `spec`, and, as Docker does, mounts it at /sys/fs/cgroup so the
/// container sees its own cgroup and limits there.
pub fn run_in_cgroup(spec: &mut Spec, cgroups_path: &str) -> Result<(), Error> {
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(Some(PathBuf::from(cgroups_path)));
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount("/sys/fs/cgroup", "cgroup2", "cgroup2", &["nosuid", "noexec", "nodev", "ro"])?);
    spec.set_mounts(Some(mounts));
    Ok(())
}

fn mount(dest: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Result<Mount, Error> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.into())
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn mounts(cfg: &ContainerConfig, plan: &UsernsPlan) -> Result<Vec<Mount>, Error> {
    // devpts may name the tty group only when gid 5 exists in the namespace.
    let devpts_opts: &[&str] = if plan.maps_gid(5) {
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    } else {
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    };
    // A fresh sysfs needs a network namespace of our own; else bind the host's.
    let sys = if cfg.network.needs_namespace() {
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?
    } else {
        mount("/sys", "bind", "/sys", &["rbind", "nosuid", "noexec", "nodev", "ro"])?
    };
    // A fresh procfs, shm and mqueue need PID and IPC namespaces of our
    // own; sharing the host's, the host's are bound in.
    let proc = if cfg.pid_host {
        mount("/proc", "bind", "/proc", &["rbind", "nosuid", "noexec", "nodev"])?
    } else {
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?
    };
    let host = ["rbind", "nosuid", "noexec", "nodev"];
    let ipc = if cfg.ipc_host {
        // The host's mqueue filesystem, where it has one mounted.
        let mqueue = Path::new("/dev/mqueue").is_dir().then(|| mount("/dev/mqueue", "bind", "/dev/mqueue", &host));
        std::iter::once(mount("/dev/shm", "bind", "/dev/shm", &host)).chain(mqueue).collect::<Result<Vec<_>, _>>()?
    } else {
        vec![
            mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        ]
    };
    let mut list = vec![
        proc,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount("/dev/pts", "devpts", "devpts", devpts_opts)?,
    ];
    list.extend(ipc);
    list.extend([
        sys,
        mount("/etc/hosts", "bind", &cfg.etc_files.hosts, &["bind"])?,
        mount("/etc/hostname", "bind", &cfg.etc_files.hostname, &["bind"])?,
        mount("/etc/resolv.conf", "bind", &cfg.etc_files.resolv_conf, &["bind"])?,
    ]);
    for d in &cfg.devices {
        list.push(mount(&d.container.to_string_lossy(), "bind", &d.host, &["bind", "nosuid", "noexec"])?);
    }
    for v in &cfg.volumes {
        let opts: Vec<&str> = std::iter::once("rbind").chain(v.options.iter().map(String::as_str)).collect();
        list.push(mount(&v.destination.to_string_lossy(), "bind", &v.source, &opts)?);
    }
    for t in &cfg.tmpfs {
        let (dest, opts) = t.split_once(':').unwrap_or((t, ""));
        if !dest.starts_with('/') {
            return Err(Error::Tmpfs(t.clone()));
        }
        // Docker's defaults, then the user's options (the kernel takes the last).
        let opts: Vec<&str> =
            ["nosuid", "nodev", "noexec"].into_iter().chain(opts.split(',').filter(|o| !o.is_empty())).collect();
        list.push(mount(dest, "tmpfs", "tmpfs", &opts)?);
    }
    Ok(list)
}

/// Docker's environment: PATH and HOSTNAME, HOME from the user's entry,
/// TERM with a terminal, then `-e` in order (later wins).
fn environment(cfg: &ContainerConfig, home: &str) -> Result<Vec<String>, Error> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), cfg.hostname.clone()),
        ("HOME".into(), home.into()),
    ];
    if cfg.terminal {
        env.push(("TERM".into(), "xterm".into()));
    }
    apply_env(&mut env, &cfg.env)?;
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// `-e KEY=VALUE` sets, `-e KEY` passes the caller's value on; later wins.
fn apply_env(env: &mut Vec<(String, String)>, flags: &[String]) -> Result<(), Error> {
    for e in flags {
        let (key, value) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue, // `-e NAME` of an unset variable sets nothing, as in Docker
            },
        };
        if key.is_empty() {
            return Err(Error::Env(e.clone()));
        }
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    Ok(())
}

/// What `hutch exec` sets for its process; the rest is the container's.
#[derive(Clone, Debug, Default)]
pub struct ExecConfig {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub user: Option<String>,
    pub terminal: bool,
    pub terminal_size: Option<(u16, u16)>,
}

/// The process `hutch exec` starts: the container's own (environment,
/// capabilities, no_new_privs, user) with the exec's changes. `root` shows
/// the running container's root filesystem (its /proc/PID/root), where
/// `-u` names are looked up.
pub fn exec_process(
    base: &oci_spec::runtime::Process,
    cfg: &ExecConfig,
    root: &Path,
    plan: &UsernsPlan,
) -> Result<oci_spec::runtime::Process, Error> {
    if cfg.command.is_empty() {
        return Err(Error::NoCommand);
    }
    let mut process = base.clone();
    process.set_args(Some(cfg.command.clone()));
    process.set_terminal(Some(cfg.terminal));
    process.set_console_size(match cfg.terminal_size.filter(|_| cfg.terminal) {
        Some((rows, cols)) => Some(BoxBuilder::default().height(rows as u64).width(cols as u64).build()?),
        None => None,
    });
    let mut env: Vec<(String, String)> = base
        .env()
        .iter()
        .flatten()
        .map(|e| e.split_once('=').map_or((e.clone(), String::new()), |(k, v)| (k.into(), v.into())))
        .collect();
    if let Some(user) = &cfg.user {
        let ids = resolve_user(root, None, Some(user))?;
        check_mapped(plan, &ids)?;
        process.set_user(
            UserBuilder::default().uid(ids.uid).gid(ids.gid).additional_gids(ids.additional_gids.clone()).build()?,
        );
        process.set_capabilities(base.capabilities().clone().map(|caps| security::for_user(caps, ids.uid == 0)));
        apply_env(&mut env, &[format!("HOME={}", ids.home)])?;
    }
    if cfg.terminal && !env.iter().any(|(k, _)| k == "TERM") {
        env.push(("TERM".into(), "xterm".into()));
    }
    apply_env(&mut env, &cfg.env)?;
    process.set_env(Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()));
    if let Some(dir) = &cfg.workdir {
        if !dir.is_absolute() {
            return Err(Error::Workdir(dir.clone()));
        }
        process.set_cwd(dir.clone());
    }
    Ok(process)
}

/// The container user's ids.
#[derive(Debug, PartialEq, Eq)]
struct UserIds {
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    home: String,
}

/// `-u NAME|UID[:GROUP|GID]`, names looked up in the rootfs's own
/// /etc/passwd and /etc/group (read as the container would, in-root).
fn resolve_user(rootfs: &Path, overlay: Option<&LayeredRoot>, spec: Option<&str>) -> Result<UserIds, Error> {
    let root = nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok();
    // An image's root is not mounted yet: read its layers as the mount will show them.
    let read = |path: &str| match overlay {
        Some(o) => fuse_overlay::read_merged(&o.lowers, Path::new(path))
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .unwrap_or_default(),
        None => root.as_ref().map(|r| read_in_root(r.as_fd(), path)).unwrap_or_default(),
    };
    user_ids(&read("/etc/passwd"), &read("/etc/group"), spec.unwrap_or("0"))
}

/// The ids a `USER`, `--chown` or `WORKDIR` owner names (`NAME|UID[:GROUP|GID]`),
/// given the container's /etc/passwd and /etc/group; a uid without a passwd
/// entry and without a group gets `lone_uid_gid(uid)` as its group.
pub fn owner_ids(passwd: &str, group: &str, spec: &str, lone_uid_gid: fn(u32) -> u32) -> Result<(u32, u32), Error> {
    let ids = user_ids(passwd, group, spec)?;
    let known = spec.split(':').next().is_some_and(|u| passwd_entry(passwd, u).is_some());
    Ok((ids.uid, if known || spec.contains(':') { ids.gid } else { lone_uid_gid(ids.uid) }))
}

fn user_ids(passwd: &str, group: &str, spec: &str) -> Result<UserIds, Error> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp == Some("") {
        return Err(Error::UserSyntax(spec.into()));
    }
    let entry = passwd_entry(passwd, user);
    let uid = match user.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.as_ref().map(|e| e.1).ok_or_else(|| Error::UnknownUser { name: user.into() })?,
    };
    let gid = match grp {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_id(group, g).ok_or_else(|| Error::UnknownGroup { name: g.into() })?,
        },
        // Docker's rule: a uid without a passwd entry runs with gid 0.
        None => entry.as_ref().map_or(0, |e| e.2),
    };
    let name = entry.as_ref().map(|e| e.0.clone());
    let additional_gids = match (&name, grp) {
        (Some(n), None) => supplementary_groups(group, n, gid),
        _ => Vec::new(),
    };
    let home = entry.map(|e| e.3).unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    Ok(UserIds { uid, gid, additional_gids, home })
}

/// (name, uid, gid, home) of the passwd line whose name or uid is `who`.
fn passwd_entry(passwd: &str, who: &str) -> Option<(String, u32, u32, String)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || (f[0] != who && f[2] != who) {
            return None;
        }
        Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string()))
    })
}

fn group_id(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok()).flatten()
    })
}

fn supplementary_groups(group: &str, user: &str, primary: u32) -> Vec<u32> {
    group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let member = f.len() >= 4 && f[3].split(',').any(|m| m == user);
            member.then(|| f[2].parse().ok()).flatten()
        })
        .filter(|g| *g != primary)
        .collect()
}

fn read_in_root(root: std::os::fd::BorrowedFd<'_>, path: &str) -> String {
    let Ok(fd) = inroot::open(root, Path::new(path), OFlag::O_RDONLY) else {
        return String::new();
    };
    let mut text = String::new();
    let _ = std::fs::File::from(fd).take(4 << 20).read_to_string(&mut text);
    text
}

fn check_mapped(plan: &UsernsPlan, ids: &UserIds) -> Result<(), Error> {
    let why = || plan.fallback_reason.clone().unwrap_or_else(|| "it is beyond your subordinate ranges".to_string());
    if !plan.maps_uid(ids.uid) {
        return Err(Error::Unmapped { kind: "uid", id: ids.uid, why: why() });
    }
    for gid in std::iter::once(ids.gid).chain(ids.additional_gids.iter().copied()) {
        if !plan.maps_gid(gid) {
            return Err(Error::Unmapped { kind: "gid", id: gid, why: why() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app\nstaff:x:50:app,other\napp:x:1000:\n";

    #[test]
    fn users_resolve_by_name_and_number() {
        assert_eq!(passwd_entry(PASSWD, "app").map(|e| (e.1, e.2)), Some((1000, 1000)));
        assert_eq!(passwd_entry(PASSWD, "1000").map(|e| e.0), Some("app".into()));
        assert_eq!(group_id(GROUP, "staff"), Some(50));
        assert_eq!(supplementary_groups(GROUP, "app", 1000), vec![10, 50]);
    }
}
