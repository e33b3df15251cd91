//! The user namespace every container and `hutch unshare` lives in.
//!
//! Container id 0 is the caller; ids 1.. are the caller's subordinate ranges,
//! found the way shadow finds them (`getsubids`, which sees LDAP/sssd
//! providers, then /etc/subuid and /etc/subgid) and written by the setuid
//! `newuidmap`/`newgidmap`. Without ranges or helpers, only the caller's own
//! id is mapped, which the kernel lets an unprivileged process write itself.

pub mod keeper;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{getgid, getuid, Pid, User};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Refused(String),
    #[error("{tool} {pid} failed ({status}): {stderr}; check the ranges of {user} in /etc/subuid and /etc/subgid")]
    Helper { tool: &'static str, pid: Pid, status: String, stderr: String, user: String },
    #[error("cannot run {tool}: {source}")]
    HelperSpawn {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}{hint}")]
    WriteMap {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    #[error(transparent)]
    Fork(#[from] crate::sys::ForkError),
    #[error("pipe: {0}")]
    Pipe(#[source] Errno),
    #[error("the process entering the user namespace died before its maps were written")]
    ChildDied,
    #[error(transparent)]
    Child(#[from] crate::child::Error),
}

/// One line of a uid_map or gid_map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// A range of subordinate ids granted to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubidRange {
    pub start: u32,
    pub count: u32,
}

impl SubidRange {
    fn end(self) -> u64 {
        self.start as u64 + self.count as u64
    }
    fn overlaps(self, other: SubidRange) -> bool {
        (self.start as u64) < other.end() && (other.start as u64) < self.end()
    }
}

/// How the namespace of this user will be mapped.
#[derive(Clone, Debug)]
pub struct UsernsPlan {
    pub user: String,
    pub uid_map: Vec<IdMapping>,
    pub gid_map: Vec<IdMapping>,
    /// Whether the maps are written by newuidmap/newgidmap (and so
    /// setgroups stays allowed); otherwise only the caller's id is mapped.
    pub uses_helpers: bool,
    /// Why the single-id fallback was chosen, with the fix, when it was.
    pub fallback_reason: Option<String>,
    /// The runtime directory, where a kept namespace of these maps is
    /// found (see `keeper`); without it every command maps its own.
    pub keeper_dir: Option<PathBuf>,
    /// That namespace, once found.
    kept: std::sync::OnceLock<Option<std::sync::Arc<std::os::fd::OwnedFd>>>,
}

const NEWUIDMAP: &str = "newuidmap";
const NEWGIDMAP: &str = "newgidmap";

impl UsernsPlan {
    /// The plan for the calling user: subordinate ranges when there are
    /// usable ones, else the single-id fallback with the reason.
    pub fn for_current_user() -> UsernsPlan {
        let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
        let user = User::from_uid(getuid()).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string());
        match subordinate_maps(&user, uid, gid) {
            Ok((uid_map, gid_map)) => UsernsPlan {
                user,
                uid_map,
                gid_map,
                uses_helpers: true,
                fallback_reason: None,
                keeper_dir: None,
                kept: Default::default(),
            },
            Err(reason) => UsernsPlan {
                uid_map: vec![IdMapping { container_id: 0, host_id: uid, size: 1 }],
                gid_map: vec![IdMapping { container_id: 0, host_id: gid, size: 1 }],
                user,
                uses_helpers: false,
                fallback_reason: Some(reason),
                keeper_dir: None,
                kept: Default::default(),
            },
        }
    }

    /// Whether container uid `id` has a host id.
    pub fn maps_uid(&self, id: u32) -> bool {
        maps(&self.uid_map, id)
    }

    /// Whether container gid `id` has a host id.
    pub fn maps_gid(&self, id: u32) -> bool {
        maps(&self.gid_map, id)
    }

    /// Whether host uid `id` appears in the container (as some uid).
    pub fn maps_host_uid(&self, id: u32) -> bool {
        self.uid_map.iter().any(|m| id >= m.host_id && id - m.host_id < m.size)
    }

    /// Whether host gid `id` appears in the container (as some gid).
    pub fn maps_host_gid(&self, id: u32) -> bool {
        self.gid_map.iter().any(|m| id >= m.host_id && id - m.host_id < m.size)
    }

    /// The host uid that container uid `id` is stored as.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        self.uid_map
            .iter()
            .find(|m| id >= m.container_id && id - m.container_id < m.size)
            .map(|m| m.host_id + (id - m.container_id))
    }

    /// Writes the maps of the process `pid`, which has just entered a new
    /// user namespace.
    pub fn write_maps(&self, pid: Pid) -> Result<(), Error> {
        if self.uses_helpers {
            // Both at once: each is a setuid process start of a few ms.
            let uid_helper = self.spawn_helper(NEWUIDMAP, pid, &self.uid_map)?;
            let gid_helper = self.spawn_helper(NEWGIDMAP, pid, &self.gid_map);
            let uid_result = self.finish_helper(NEWUIDMAP, pid, uid_helper);
            uid_result.and(self.finish_helper(NEWGIDMAP, pid, gid_helper?))
        } else {
            // An unprivileged process may map only its own ids, and only
            // after giving up setgroups (else it could drop a deny-group).
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            write_proc(&proc_dir.join("setgroups"), "deny")?;
            write_proc(&proc_dir.join("uid_map"), &map_text(&self.uid_map))?;
            write_proc(&proc_dir.join("gid_map"), &map_text(&self.gid_map))
        }
    }

    fn spawn_helper(&self, tool: &'static str, pid: Pid, map: &[IdMapping]) -> Result<std::process::Child, Error> {
        let mut cmd = Command::new(tool);
        cmd.arg(pid.to_string());
        for m in map {
            cmd.args([m.container_id.to_string(), m.host_id.to_string(), m.size.to_string()]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.spawn().map_err(|source| Error::HelperSpawn { tool, source })
    }

    fn finish_helper(&self, tool: &'static str, pid: Pid, child: std::process::Child) -> Result<(), Error> {
        let out = child.wait_with_output().map_err(|source| Error::HelperSpawn { tool, source })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(Error::Helper {
            tool,
            pid,
            status: out.status.to_string(),
            stderr: stderr.trim().replace('\n', "; "),
            user: self.user.clone(),
        })
    }
}

fn maps(map: &[IdMapping], id: u32) -> bool {
    map.iter().any(|m| id >= m.container_id && id - m.container_id < m.size)
}

fn map_text(map: &[IdMapping]) -> String {
    map.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
}

fn write_proc(path: &Path, text: &str) -> Result<(), Error> {
    fs::write(path, text).map_err(|source| {
        let hint = if source.raw_os_error() == Some(libc::EPERM) {
            KernelSettings::read().restriction_hint().map(|h| format!(" ({h})")).unwrap_or_default()
        } else {
            String::new()
        };
        Error::WriteMap { path: path.to_path_buf(), source, hint }
    })
}

/// Where this user's subordinate ranges are looked up.
pub fn subid_source() -> &'static str {
    if nss_subid_provider() {
        "getsubids (an nsswitch subid provider), then /etc/subuid and /etc/subgid"
    } else {
        "/etc/subuid and /etc/subgid"
    }
}

/// Container maps from the subordinate ranges, or why they cannot be used.
fn subordinate_maps(user: &str, uid: u32, gid: u32) -> Result<(Vec<IdMapping>, Vec<IdMapping>), String> {
    const FIX: &str =
        "an administrator can add ranges with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535`";
    let ask_nss = nss_subid_provider();
    let uids = find_ranges(IdKind::Uid, user, uid, ask_nss)?;
    let gids = find_ranges(IdKind::Gid, user, uid, ask_nss)?;
    if uids.is_empty() || gids.is_empty() {
        let which = if uids.is_empty() { "/etc/subuid" } else { "/etc/subgid" };
        return Err(format!("{user} has no subordinate ids in {which} (nor from getsubids): only your own id is mapped, so containers see a single user; {FIX}"));
    }
    for tool in [NEWUIDMAP, NEWGIDMAP] {
        helper_usable(tool)?;
    }
    Ok((container_map(uid, &uids), container_map(gid, &gids)))
}

/// 0 → the caller's id, then the ranges one after the other from 1.
fn container_map(own: u32, ranges: &[SubidRange]) -> Vec<IdMapping> {
    let mut map = vec![IdMapping { container_id: 0, host_id: own, size: 1 }];
    let mut next = 1u32;
    for r in ranges {
        // The kernel takes at most 340 lines; ids beyond u32 do not exist.
        if map.len() == 340 {
            break;
        }
        let size = r.count.min(u32::MAX - next);
        if size == 0 {
            break;
        }
        map.push(IdMapping { container_id: next, host_id: r.start, size });
        next += size;
    }
    map
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdKind {
    Uid,
    Gid,
}

impl IdKind {
    fn file(self) -> &'static str {
        match self {
            IdKind::Uid => "/etc/subuid",
            IdKind::Gid => "/etc/subgid",
        }
    }
}

/// The user's ranges: from `getsubids` when it names any (nsswitch providers
/// included), else from the file. Overlaps with another user's ranges in the
/// file are refused: two users would share ids.
fn find_ranges(kind: IdKind, user: &str, uid: u32, ask_nss: bool) -> Result<Vec<SubidRange>, String> {
    let file = fs::read_to_string(kind.file()).unwrap_or_default();
    let entries = parse_subid_file(&file);
    let from_getsubids = if ask_nss { getsubids(kind, user) } else { None };
    let mine: Vec<SubidRange> = match from_getsubids {
        Some(r) if !r.is_empty() => r,
        _ => entries.iter().filter(|(who, _)| is_user(who, user, uid)).map(|(_, r)| *r).collect(),
    };
    for r in &mine {
        if let Some((other, o)) = entries.iter().find(|(who, o)| !is_user(who, user, uid) && r.overlaps(*o)) {
            return Err(format!(
                "the subordinate range {}-{} of {user} in {} overlaps {other}'s {}-{}: not using it, only your own id is mapped; an administrator must give each user its own range",
                r.start, r.end() - 1, kind.file(), o.start, o.end() - 1
            ));
        }
    }
    Ok(mine)
}

fn is_user(who: &str, user: &str, uid: u32) -> bool {
    who == user || who.parse::<u32>() == Ok(uid)
}

/// Parses /etc/subuid syntax: `name-or-uid:start:count`, `#` comments.
fn parse_subid_file(text: &str) -> Vec<(String, SubidRange)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let who = f.next()?;
            let start = f.next()?.trim().parse().ok()?;
            let count = f.next()?.trim().parse().ok()?;
            (count > 0).then(|| (who.to_string(), SubidRange { start, count }))
        })
        .collect()
}

/// Whether /etc/nsswitch.conf names a subordinate-id provider (sssd, LDAP…)
/// besides the files: the condition under which shadow's libsubid, and so
/// newuidmap, looks beyond /etc/subuid. Spawning getsubids costs ~10 ms,
/// so it is asked only then.
fn nss_subid_provider() -> bool {
    let conf = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    conf.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.strip_prefix("subid:").is_some_and(|sources| sources.split_whitespace().any(|s| s != "files"))
    })
}

/// Ranges reported by shadow's `getsubids` (`0: alice 100000 65536`), or
/// None when the tool is missing or knows no ranges.
fn getsubids(kind: IdKind, user: &str) -> Option<Vec<SubidRange>> {
    let mut cmd = Command::new("getsubids");
    if kind == IdKind::Gid {
        cmd.arg("-g");
    }
    let out = cmd.arg(user).stderr(std::process::Stdio::null()).output().ok()?;
    out.status.success().then(|| parse_getsubids(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_getsubids(text: &str) -> Vec<SubidRange> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [_, _, start, count] => Some(SubidRange { start: start.parse().ok()?, count: count.parse().ok()? }),
                _ => None,
            }
        })
        .filter(|r| r.count > 0)
        .collect()
}

/// newuidmap/newgidmap must be on PATH and able to gain privilege: setuid
/// root (Debian) or carrying file capabilities (Fedora).
fn helper_usable(tool: &str) -> Result<(), String> {
    let Some(path) = find_in_path(tool) else {
        return Err(format!(
            "{tool} is not installed: only your own id is mapped; install the uidmap package (shadow-utils on Fedora)"
        ));
    };
    let setuid_root = fs::metadata(&path).is_ok_and(|m| m.uid() == 0 && m.mode() & libc::S_ISUID != 0);
    if setuid_root || has_file_capabilities(&path) {
        return Ok(());
    }
    Err(format!(
        "{} is neither setuid root nor given file capabilities, so it cannot write id maps: only your own id is mapped; an administrator can run `chmod u+s {}`",
        path.display(),
        path.display()
    ))
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

fn has_file_capabilities(path: &Path) -> bool {
    xattr::get(path, "security.capability").is_ok_and(|value| value.is_some_and(|v| !v.is_empty()))
}

/// The kernel settings that decide whether unprivileged user namespaces
/// may be created.
#[derive(Debug, Default, Clone)]
pub struct KernelSettings {
    pub max_user_namespaces: Option<u64>,
    pub unprivileged_userns_clone: Option<u64>,
    pub apparmor_restrict: Option<u64>,
}

impl KernelSettings {
    pub fn read() -> KernelSettings {
        let read = |p: &str| fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok());
        KernelSettings {
            max_user_namespaces: read("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict: read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        }
    }

    /// The setting that forbids unprivileged user namespaces, and the one
    /// command an administrator runs to allow them.
    pub fn restriction_hint(&self) -> Option<String> {
        if self.max_user_namespaces == Some(0) {
            return Some("the kernel allows no user namespaces (user.max_user_namespaces=0); an administrator can run `sysctl -w user.max_user_namespaces=15000`".into());
        }
        if self.unprivileged_userns_clone == Some(0) {
            return Some("unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); an administrator can run `sysctl -w kernel.unprivileged_userns_clone=1`".into());
        }
        if self.apparmor_restrict == Some(1) {
            return Some("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1); an administrator can run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or install an AppArmor profile that allows userns for hutch".into());
        }
        None
    }

    /// One line that says why unshare(CLONE_NEWUSER) failed with `errno`.
    pub fn explain_unshare_failure(&self, errno: Errno) -> String {
        if let Some(hint) = self.restriction_hint() {
            return format!("cannot create a user namespace: {hint}");
        }
        match errno {
            Errno::ENOSPC | Errno::EUSERS => format!(
                "cannot create a user namespace: the limit of user namespaces is reached (user.max_user_namespaces={}); an administrator can raise it with `sysctl -w user.max_user_namespaces=N`",
                self.max_user_namespaces.map_or("?".into(), |n| n.to_string())
            ),
            Errno::EINVAL | Errno::ENOSYS => "cannot create a user namespace: this kernel is built without user namespaces (CONFIG_USER_NS)".into(),
            Errno::EPERM => "cannot create a user namespace: permission denied (inside a chroot, or a container whose seccomp policy forbids unshare?)".into(),
            e => format!("cannot create a user namespace: unshare: {e}"),
        }
    }
}

pub use crate::sys::Forked;

/// Runs `work` in a child process inside a new user namespace mapped by
/// `plan`, where the store's unpacked files have their in-image owners, and
/// hands back its outcome. Call it while the process has one thread.
pub fn in_userns<T>(plan: &UsernsPlan, work: impl FnOnce() -> Result<T, String>) -> Result<T, Error>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    crate::child::run("user-namespace helper", || fork_into_userns(plan), work)
}

/// Forks a process that enters the user namespace of `plan`: the kept one
/// (see `keeper`) when it can be had, else a new one. The child dies with
/// the parent (PR_SET_PDEATHSIG).
///
/// Call it while the process has a single thread.
pub fn fork_into_userns(plan: &UsernsPlan) -> Result<Forked, Error> {
    if let Some(ns) = keeper::namespace(plan) {
        // A kept namespace that cannot be joined after all: a new one.
        if let Ok(forked) = fork_into(plan, Enter::Join(ns)) {
            crate::trace::mark("user namespace joined");
            return Ok(forked);
        }
    }
    let forked = fork_into(plan, Enter::New)?;
    crate::trace::mark("user namespace mapped");
    Ok(forked)
}

/// How a forked child gets into its user namespace.
enum Enter {
    /// A new one, whose maps the parent writes (spawning
    /// newuidmap/newgidmap) while the child waits on a pipe.
    New,
    /// An existing one, mapped already.
    Join(std::sync::Arc<std::os::fd::OwnedFd>),
}

fn fork_into(plan: &UsernsPlan, enter: Enter) -> Result<Forked, Error> {
    let (to_parent_r, to_parent_w) = nix::unistd::pipe().map_err(Error::Pipe)?;
    let (to_child_r, to_child_w) = nix::unistd::pipe().map_err(Error::Pipe)?;
    match crate::sys::fork()? {
        Forked::Child => {
            drop((to_parent_r, to_child_w));
            crate::sys::die_with_parent();
            let entered = match &enter {
                Enter::New => unshare(CloneFlags::CLONE_NEWUSER),
                Enter::Join(ns) => nix::sched::setns(ns.as_ref(), CloneFlags::CLONE_NEWUSER),
            };
            drop(enter);
            let result: i32 = match entered {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            let _ = nix::unistd::write(&to_parent_w, &result.to_ne_bytes());
            if result != 0 {
                crate::sys::exit_now(crate::EXIT_HUTCH_ERROR);
            }
            // Wait until the parent wrote our maps; EOF means it gave up.
            let mut go = [0u8; 1];
            match nix::unistd::read(&to_child_r, &mut go) {
                Ok(1) => Ok(Forked::Child),
                _ => crate::sys::exit_now(crate::EXIT_HUTCH_ERROR),
            }
        }
        Forked::Parent { child } => {
            drop((to_parent_w, to_child_r));
            let mut buf = [0u8; 4];
            let result = match nix::unistd::read(&to_parent_r, &mut buf) {
                Ok(4) => i32::from_ne_bytes(buf),
                _ => {
                    let _ = waitpid(child, None);
                    return Err(Error::ChildDied);
                }
            };
            if result != 0 {
                let _ = waitpid(child, None);
                return Err(Error::Refused(KernelSettings::read().explain_unshare_failure(Errno::from_raw(result))));
            }
            if let Enter::New = enter {
                if let Err(e) = plan.write_maps(child) {
                    drop(to_child_w); // the child exits on EOF
                    let _ = waitpid(child, None);
                    return Err(e);
                }
            }
            nix::unistd::write(&to_child_w, &[1]).map_err(Error::Pipe)?;
            Ok(Forked::Parent { child })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subid_files_with_comments_names_and_uids() {
        let text = "# ranges\nalice:100000:65536\n\n1001:200000:1000\nbob:300000:0\nbad line\n alice:400000:10 \n";
        let e = parse_subid_file(text);
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|(who, _)| who != "bob"), "zero-sized ranges are ignored");
        let alice: Vec<_> = e.iter().filter(|(w, _)| is_user(w, "alice", 1000)).map(|(_, r)| *r).collect();
        assert_eq!(alice, vec![SubidRange { start: 100000, count: 65536 }, SubidRange { start: 400000, count: 10 }]);
        assert!(is_user("1001", "carol", 1001));
    }

    #[test]
    fn parses_getsubids_output() {
        let r = parse_getsubids("0: alice 100000 65536\n1: alice 300000 10\n");
        assert_eq!(r, vec![SubidRange { start: 100000, count: 65536 }, SubidRange { start: 300000, count: 10 }]);
    }

    #[test]
    fn maps_own_id_to_root_then_ranges_in_order() {
        let m =
            container_map(1000, &[SubidRange { start: 100000, count: 65536 }, SubidRange { start: 300000, count: 10 }]);
        assert_eq!(
            m,
            vec![
                IdMapping { container_id: 0, host_id: 1000, size: 1 },
                IdMapping { container_id: 1, host_id: 100000, size: 65536 },
                IdMapping { container_id: 65537, host_id: 300000, size: 10 },
            ]
        );
        let plan = UsernsPlan {
            user: "a".into(),
            uid_map: m,
            gid_map: vec![],
            uses_helpers: true,
            fallback_reason: None,
            keeper_dir: None,
            kept: Default::default(),
        };
        assert_eq!(plan.host_uid(1000), Some(100999));
        assert_eq!(plan.host_uid(65538), Some(300001));
        assert!(!plan.maps_uid(65547));
    }

    #[test]
    fn overlap_is_detected() {
        let a = SubidRange { start: 100000, count: 65536 };
        assert!(a.overlaps(SubidRange { start: 165535, count: 1 }));
        assert!(!a.overlaps(SubidRange { start: 165536, count: 1 }));
    }

    #[test]
    fn names_the_setting_that_forbids_user_namespaces() {
        let s = KernelSettings { max_user_namespaces: Some(0), ..Default::default() };
        assert!(s.explain_unshare_failure(Errno::ENOSPC).contains("sysctl -w user.max_user_namespaces=15000"));
        let s =
            KernelSettings { max_user_namespaces: Some(100), unprivileged_userns_clone: Some(0), ..Default::default() };
        assert!(s.explain_unshare_failure(Errno::EPERM).contains("kernel.unprivileged_userns_clone=1"));
        let s = KernelSettings { max_user_namespaces: Some(100), apparmor_restrict: Some(1), ..Default::default() };
        assert!(s.explain_unshare_failure(Errno::EPERM).contains("apparmor_restrict_unprivileged_userns=0"));
        let s = KernelSettings { max_user_namespaces: Some(100), ..Default::default() };
        assert!(s.explain_unshare_failure(Errno::ENOSPC).contains("limit of user namespaces is reached"));
    }
}
