//! Shared by the integration tests: the hutch binary, a busybox root
//! filesystem built from Debian's busybox-static, and per-test state dirs.
//! Tests run as whoever runs them; CI runs them as unprivileged users, once
//! with subordinate ids and once without.
#![allow(dead_code)]

pub mod proxy;
pub mod registry;
pub mod token;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The hutch binary: $HUTCH_BIN (CI copies it where the test users can
/// read it), else the one cargo built.
pub fn hutch_bin() -> PathBuf {
    std::env::var_os("HUTCH_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hutch")))
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = base_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Files a container made as a subordinate id are not ours to
        // delete from outside: remove them from inside the namespace.
        let _ = Command::new(hutch_bin()).args(["unshare", "rm", "-rf"]).arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn base_dir() -> PathBuf {
    std::env::var_os("HUTCH_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join("hutch-tests")
}

/// A root filesystem with busybox and its applets, shared by the tests of
/// one process (containers get it read-write; tests do not change it).
pub fn busybox_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = base_dir().join(format!("rootfs-{}", std::process::id()));
        make_busybox_rootfs(&dir);
        dir
    })
}

pub fn make_busybox_rootfs(dir: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "missing prerequisite: /bin/busybox (apt-get install busybox-static)");
    let _ = std::fs::remove_dir_all(dir);
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\ntty:x:5:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n")
        .unwrap();
}

/// Which processes `Hutch::under_strace` traces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    OwnProcess,
    Children,
}

/// The processes of this user still working on the store `store`: hutch
/// and the helpers it forks carry `HUTCH_ROOT` in their environment.
pub fn processes_using(store: &Path) -> Vec<String> {
    let wanted = format!("HUTCH_ROOT={}", store.display());
    let me = std::process::id().to_string();
    let pids = std::fs::read_dir("/proc").unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned());
    pids.filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && *pid != me)
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environ.split(|b| *b == 0).any(|var| var == wanted.as_bytes())
        })
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{pid}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

/// Waits (up to 10 s) until no process uses `store`; those left, if any.
pub fn wait_for_no_process_using(store: &Path) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = processes_using(store);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A hutch command with its own runtime dir (so per-runtime-dir notes and
/// leftovers can be checked), stdin closed.
pub struct Hutch {
    pub runtime_dir: Scratch,
}

impl Hutch {
    pub fn new(test: &str) -> Hutch {
        let runtime_dir = Scratch::new(&format!("xdg-{test}"));
        std::fs::set_permissions(runtime_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Hutch { runtime_dir }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(hutch_bin());
        c.env("XDG_RUNTIME_DIR", self.runtime_dir.path()).stdin(Stdio::null());
        // The test's own config file (absent unless a test writes it).
        c.env("HUTCH_CONFIG", self.config_file());
        c
    }

    /// hutch under strace, which injects `fault` (strace's
    /// `-e inject=…` syntax): a kill at an exact system call of hutch's
    /// own process, or of every process it forks with `Follow::Children`
    /// (which only works without subordinate ids: a traced newuidmap runs
    /// without its setuid bit).
    pub fn under_strace(&self, fault: &str, follow: Follow) -> Command {
        let hutch = self.cmd();
        let mut c = Command::new("strace");
        if follow == Follow::Children {
            c.arg("-f");
        }
        c.args(["-qq", "-o", "/dev/null", "-e", &format!("inject={fault}")]).arg(hutch.get_program());
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        for (key, value) in hutch.get_envs() {
            if let Some(value) = value {
                c.env(key, value);
            }
        }
        c
    }

    pub fn config_file(&self) -> PathBuf {
        self.runtime_dir.path().join("config.toml")
    }

    /// `hutch run --rm --rootfs <busybox> <extra…> -- <command…>`
    pub fn run(&self, extra: &[&str], command: &[&str]) -> Output {
        self.run_in(busybox_rootfs(), extra, command)
    }

    /// `hutch run --rm --rootfs <rootfs> <extra…> -- <command…>`
    pub fn run_in(&self, rootfs: &Path, extra: &[&str], command: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(["run", "--rm", "--rootfs"]).arg(rootfs).args(extra).arg("--").args(command);
        c.output().expect("spawn hutch")
    }

    /// Runs `sh -c script` and returns stdout, asserting success.
    pub fn sh(&self, extra: &[&str], script: &str) -> String {
        let out = self.run(extra, &["/bin/sh", "-c", script]);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "hutch failed with {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stderr without hutch's one-time notes: the error line(s) a test checks.
pub fn error_line(out: &Output) -> String {
    stderr(out).lines().filter(|l| !l.starts_with("hutch: note: ")).collect::<Vec<_>>().join("\n")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether this user is expected to have subordinate ids: CI says so
/// (HUTCH_TEST_SUBIDS=yes|no) for each of its two users; by hand, the
/// user's entry in /etc/subuid decides.
pub fn expect_subids() -> bool {
    match std::env::var("HUTCH_TEST_SUBIDS").as_deref() {
        Ok("yes") => true,
        Ok("no") => false,
        _ => {
            let me =
                nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name).unwrap_or_default();
            let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
            subuid.lines().any(|l| l.split(':').next() == Some(me.as_str()))
        }
    }
}

/// The first host id of the subordinate range mapped at container id 1,
/// read from the namespace itself.
pub fn subordinate_base(h: &Hutch) -> u32 {
    let map = h.sh(&[], "cat /proc/self/uid_map");
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"1"))
        .and_then(|f| f[1].parse().ok())
        .expect("a mapping for container uid 1")
}

/// A busybox rootfs in `dir` with a static C program `/bin/NAME` built from `source`.
pub fn rootfs_with_probe(dir: &Scratch, name: &str, source: &str) -> PathBuf {
    let rootfs = dir.path().join("rootfs");
    make_busybox_rootfs(&rootfs);
    let src = dir.path().join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let built = Command::new("gcc").args(["-static", "-o"]).arg(rootfs.join("bin").join(name)).arg(&src).status();
    assert!(
        built.is_ok_and(|s| s.success()),
        "missing prerequisite: gcc and libc6-dev (static libc) to build the probe"
    );
    rootfs
}

/// hutch with its own store (`HUTCH_ROOT`) and runtime dir, in scratch dirs.
pub struct Env {
    pub h: Hutch,
    pub store: Scratch,
}

impl Env {
    pub fn new(test: &str) -> Env {
        Env { h: Hutch::new(test), store: Scratch::new(&format!("store-{test}")) }
    }

    pub fn hutch(&self, args: &[&str]) -> Output {
        let mut c = self.h.cmd();
        c.env("HUTCH_ROOT", self.store.path()).args(args);
        c.output().expect("spawn hutch")
    }

    /// Runs hutch, asserting success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hutch(args);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
