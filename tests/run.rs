//! `hutch run` of a root filesystem, as a user sees it.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn root_inside_is_the_caller_outside() {
    let h = Hutch::new("root-inside");
    let out = h.sh(&[], "id -u; id -g; cat /proc/self/uid_map");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], &["0", "0"]);
    let first_map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(first_map, vec!["0", &nix::unistd::getuid().to_string(), "1"]);
    assert_eq!(lines.len() > 3, expect_subids(), "subordinate ranges mapped exactly when the user has them: {out}");
}

#[test]
fn command_is_pid_1_and_host_processes_are_invisible() {
    let h = Hutch::new("pid1");
    let out = h.sh(&[], "echo $$; ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    let pids: Vec<u32> = lines.next().unwrap_or("").split_whitespace().map(|p| p.parse().unwrap()).collect();
    // The shell (1), ls and grep, nothing of the host's.
    assert!(pids.len() <= 4 && pids.contains(&1), "pids visible inside: {pids:?}");
    assert!(!pids.contains(&std::process::id()) || std::process::id() < 5);
}

#[test]
fn hostname_is_the_containers_own() {
    let h = Hutch::new("hostname");
    let host_before = nix::sys::utsname::uname().unwrap().nodename().to_string_lossy().into_owned();
    assert_eq!(
        h.sh(&["--hostname", "box1"], "hostname; cat /etc/hostname; grep box1 /etc/hosts"),
        "box1\nbox1\n127.0.1.1\tbox1\n"
    );
    let generated = h.sh(&[], "hostname");
    let generated = generated.trim();
    assert!(generated.len() == 12 && generated.chars().all(|c| c.is_ascii_hexdigit()), "default hostname: {generated}");
    let host_after = nix::sys::utsname::uname().unwrap().nodename().to_string_lossy().into_owned();
    assert_eq!(host_before, host_after);
}

#[test]
fn file_made_by_a_container_user_belongs_to_its_host_id() {
    let h = Hutch::new("owner");
    let data = Scratch::new("owner-data");
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let vol = format!("{}:/data", data.path().display());
    let out = h.run(&["-v", &vol, "-u", "1000:1000"], &["/bin/sh", "-c", "touch /data/made-by-1000 && id -u"]);
    if expect_subids() {
        assert_success(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\n");
        let base = subordinate_base(&h);
        let meta = std::fs::metadata(data.path().join("made-by-1000")).unwrap();
        assert_eq!(meta.uid(), base + 999, "container uid 1000 is subordinate id base+999");
        assert_eq!(meta.gid(), subordinate_gid_base(&h) + 999);
        // Root inside writes files as the caller.
        h.sh(&["-v", &vol], "touch /data/made-by-root");
        assert_eq!(std::fs::metadata(data.path().join("made-by-root")).unwrap().uid(), nix::unistd::getuid().as_raw());
    } else {
        assert_eq!(out.status.code(), Some(125));
        let err = stderr(&out);
        assert!(err.contains("uid 1000 has no host id") && err.contains("usermod --add-subuids"), "{err}");
        assert!(!data.path().join("made-by-1000").exists());
    }
}

fn subordinate_gid_base(h: &Hutch) -> u32 {
    let map = h.sh(&[], "cat /proc/self/gid_map");
    map.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0] == "1").then(|| f[1].parse().unwrap())
        })
        .unwrap()
}

#[test]
fn users_are_resolved_by_name_in_the_image() {
    let h = Hutch::new("username");
    let out = h.run(&["-u", "app"], &["/bin/sh", "-c", "id; echo $HOME"]);
    if expect_subids() {
        assert_success(&out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n/home/app\n"
        );
    } else {
        assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    }
    let out = h.run(&["-u", "nosuchuser"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(error_line(&out), "hutch: no user \"nosuchuser\" in the container's /etc/passwd");
}

#[test]
fn bind_mounts_are_writable_or_read_only_as_asked() {
    let h = Hutch::new("binds");
    let data = Scratch::new("bind-data");
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();
    let rw = format!("{}:/data", data.path().display());
    let ro = format!("{}:/data:ro", data.path().display());
    assert_eq!(h.sh(&["-v", &rw], "cat /data/hello; echo back > /data/reply"), "from the host\n");
    assert_eq!(std::fs::read_to_string(data.path().join("reply")).unwrap(), "back\n");

    let out = h.run(&["-v", &ro], &["/bin/sh", "-c", "cat /data/hello; touch /data/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    assert!(!data.path().join("nope").exists());
    // Remounting it read-write from inside is refused too.
    let out = h.run(&["-v", &ro], &["/bin/sh", "-c", "mount -o remount,rw /data && touch /data/nope"]);
    assert!(!out.status.success());
    assert!(!data.path().join("nope").exists());
}

#[test]
fn read_only_root_filesystem() {
    let h = Hutch::new("readonly");
    let out = h.run(&["--read-only"], &["/bin/sh", "-c", "touch /tmp/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Read-only file system"));
    // /dev stays writable.
    h.sh(&["--read-only"], "echo ok > /dev/shm/x");
}

#[test]
fn exit_status_is_the_containers() {
    let h = Hutch::new("exit");
    assert_eq!(h.run(&[], &["/bin/sh", "-c", "exit 42"]).status.code(), Some(42));
    assert_eq!(h.run(&[], &["true"]).status.code(), Some(0));
    // Killed by a signal: 128 + N (the shell is PID 2 under --init).
    assert_eq!(h.run(&["--init"], &["/bin/sh", "-c", "kill -TERM $$; sleep 5"]).status.code(), Some(143));
}

#[test]
fn missing_and_unrunnable_commands_exit_like_docker() {
    let h = Hutch::new("notfound");
    let out = h.run(&[], &["/bin/nope"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        error_line(&out),
        "hutch: cannot start /bin/nope: no such file in the container (or the interpreter it names is missing)"
    );
    let out = h.run(&[], &["nope"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(error_line(&out), "hutch: cannot start nope: executable file not found in $PATH inside the container");
    // /etc/passwd is there but not executable.
    let out = h.run(&[], &["/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(error_line(&out), "hutch: cannot start /etc/passwd: permission denied");
}

#[test]
fn bad_flags_and_paths_are_one_line_errors() {
    let h = Hutch::new("badflags");
    let out = h.cmd().args(["run", "--bogus", "--rootfs", "/", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("--bogus"));

    let out = h.cmd().args(["run", "--rootfs", "/nonexistent/rootfs", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        error_line(&out),
        "hutch: the root filesystem /nonexistent/rootfs: No such file or directory (os error 2)"
    );

    let out = h.run(&["-v", "/nonexistent/dir:/data"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(error_line(&out), "hutch: volume source /nonexistent/dir: No such file or directory (os error 2)");

    let out = h.run(&["-v", "not a name:/data"], &["true"]);
    assert!(stderr(&out).contains("a volume name has letters, digits"), "{}", stderr(&out));
    let out = h.run(&["--network", "bridge"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("unknown network mode \"bridge\""), "{}", stderr(&out));
    assert_eq!(error_line(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn environment_workdir_and_defaults() {
    let h = Hutch::new("env");
    let out = h
        .cmd()
        .env("FROM_HOST", "passed-on")
        .args(["run", "--rm", "--rootfs"])
        .arg(busybox_rootfs())
        .args(["-e", "FOO=bar", "-e", "FROM_HOST", "-e", "UNSET_ON_HOST_X", "-e", "HOME=/elsewhere", "-w", "/work/dir"])
        .args(["--", "/bin/sh", "-c", "echo $FOO $FROM_HOST ${UNSET_ON_HOST_X-unset} $HOME; pwd; echo $PATH"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bar passed-on unset /elsewhere\n/work/dir\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    // The host's environment does not leak in.
    let env = h.sh(&[], "env | cut -d= -f1 | sort | tr '\\n' ' '");
    assert_eq!(env, "HOME HOSTNAME PATH PWD SHLVL ");
}

#[test]
fn stdin_is_passed_only_with_interactive() {
    let h = Hutch::new("stdin");
    let run = |extra: &[&str]| {
        let mut c = h.cmd();
        c.args(["run", "--rm", "--rootfs"]).arg(busybox_rootfs()).args(extra).args(["--", "cat"]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
    };
    assert_eq!(run(&["-i"]), "typed\n");
    assert_eq!(run(&[]), "");
}

#[test]
fn signals_to_hutch_reach_the_container() {
    let h = Hutch::new("signals");
    for (sig, flag) in [
        (nix::sys::signal::Signal::SIGTERM, "TERM"),
        (nix::sys::signal::Signal::SIGUSR1, "USR1"),
        (nix::sys::signal::Signal::SIGHUP, "HUP"),
    ] {
        let script = format!("trap 'echo got-{flag}; exit 7' {flag}; echo ready; while :; do sleep 0.05; done");
        let mut c = h.cmd();
        c.args(["run", "--rm", "--rootfs"]).arg(busybox_rootfs()).args(["--", "/bin/sh", "-c", &script]);
        c.stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        wait_for_line(child.stdout.as_mut().unwrap(), "ready");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().cast_signed()), sig).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(7), "signal {flag}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("got-{flag}\n"));
    }
}

#[test]
fn init_forwards_signals_and_reaps() {
    let h = Hutch::new("init");
    // Without a handler, PID 1 ignores SIGTERM; --init's PID 1 forwards it
    // to sleep, which dies of it.
    let mut c = h.cmd();
    c.args(["run", "--rm", "--init", "--rootfs"]).arg(busybox_rootfs()).args([
        "--",
        "/bin/sh",
        "-c",
        "echo ready; exec sleep 60",
    ]);
    c.stdout(Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    wait_for_line(child.stdout.as_mut().unwrap(), "ready");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().cast_signed()), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(started.elapsed() < Duration::from_secs(30));
    // Orphans are reaped: no zombie left behind by a double fork.
    let out = h.sh(&["--init"], "(sleep 0.1 &) ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true");
    assert_eq!(out.trim(), "0");
    assert_eq!(h.sh(&["--init"], "echo $$"), "2\n", "the command runs as PID 2 under --init");
}

#[test]
fn network_none_has_only_loopback_up() {
    let h = Hutch::new("netnone");
    let out = h.sh(
        &["--network", "none"],
        "ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok",
    );
    assert_eq!(out, "lo\nunknown\nping-ok\n");
    let host = h.sh(&["--network", "host"], "ls /sys/class/net | wc -l");
    let host_count: usize = host.trim().parse().unwrap();
    assert_eq!(host_count, std::fs::read_dir("/sys/class/net").unwrap().count());
}

#[test]
fn rm_removes_the_container_and_without_it_the_container_stays() {
    let env = Env::new("rm");
    let rootfs = busybox_rootfs().to_str().unwrap();
    let runtime = env.h.runtime_dir.path().join("hutch/containers");
    let stored = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(env.store.path().join("containers"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() && !p.ends_with(".names"))
            .collect()
    };
    env.ok(&["run", "--rm", "--rootfs", rootfs, "--", "true"]);
    let runtime_files = std::fs::read_dir(&runtime).map(|d| d.count()).unwrap_or(0);
    assert_eq!(runtime_files, 0, "--rm leaves no runtime files");
    assert!(stored().is_empty(), "--rm leaves no container in the store");
    env.ok(&["run", "--name", "kept", "--rootfs", rootfs, "--", "true"]);
    let kept = stored();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].join("config.json").is_file(), "the OCI spec is kept with the container");
    assert!(env.ok(&["ps", "-a"]).contains("Exited (0)"));
}

#[test]
fn hostile_rootfs_symlinks_cannot_redirect_mount_points_to_the_host() {
    let h = Hutch::new("hostile");
    let root = Scratch::new("hostile-root");
    make_busybox_rootfs(&root.path().join("rootfs"));
    let rootfs = root.path().join("rootfs");
    // The image says /etc is the host's victim directory, absolutely.
    let victim = root.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::remove_dir_all(rootfs.join("etc")).unwrap();
    std::os::unix::fs::symlink(&victim, rootfs.join("etc")).unwrap();
    let out = h
        .cmd()
        .args(["run", "--rm", "--rootfs"])
        .arg(&rootfs)
        .args(["--", "/bin/cat", "/etc/hostname"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "nothing was created in the host directory");
    assert!(
        rootfs.join(victim.strip_prefix("/").unwrap()).join("hosts").exists(),
        "mount points were made inside the root"
    );
}

#[test]
fn single_id_note_is_said_once() {
    let h = Hutch::new("note");
    let first = h.run(&[], &["true"]);
    let second = h.run(&[], &["true"]);
    assert_success(&first);
    assert_success(&second);
    if expect_subids() {
        assert_eq!(stderr(&first), "");
    } else {
        assert!(
            stderr(&first).contains("has no subordinate ids") && stderr(&first).contains("usermod --add-subuids"),
            "{}",
            stderr(&first)
        );
        assert_eq!(stderr(&first).lines().count(), 1);
        assert_eq!(stderr(&second), "");
    }
}

#[test]
fn commands_share_one_kept_user_namespace_whose_keeper_ends_once_idle() {
    let h = Hutch::new("keeper");
    let namespace_inside = || h.sh(&[], "readlink /proc/self/ns/user").trim().to_string();
    let first = namespace_inside();
    let tag = std::fs::read_to_string(h.runtime_dir.path().join("hutch/userns-keeper")).unwrap();
    let keeper: u32 = tag.split('@').next().unwrap().parse().unwrap();
    let keepers = std::fs::read_link(format!("/proc/{keeper}/ns/user")).unwrap();
    assert_eq!(keepers.to_string_lossy(), first, "the container runs in the keeper's namespace");
    assert_eq!(namespace_inside(), first, "and the next command's container too");
    // Out of the way of the command that made it: a session of its own
    // (a Ctrl-C at the terminal does not reach it), none of its environment.
    let stat = std::fs::read_to_string(format!("/proc/{keeper}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    assert_eq!(fields[3], keeper.to_string(), "the keeper leads its own session");
    assert!(std::fs::read(format!("/proc/{keeper}/environ")).unwrap().is_empty(), "with no environment");
    let fds = std::fs::read_dir(format!("/proc/{keeper}/fd")).unwrap().count();
    assert_eq!(fds, 3, "and none of its descriptors but /dev/null as 0, 1 and 2");
    // Idle, it ends by itself; the next command makes a new one.
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{keeper}/stat")).unwrap_or_default();
        stat.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(gone(), "the keeper ends once its namespace has been idle");
    assert_eq!(h.sh(&[], "echo ok"), "ok\n");
    let next = std::fs::read_to_string(h.runtime_dir.path().join("hutch/userns-keeper")).unwrap();
    assert_ne!(next, tag, "a later command starts a new keeper");
}

#[test]
fn info_version_completions_and_man_pages_describe_this_hutch() {
    let env = Env::new("info");
    env.ok(&["create", "--rootfs", busybox_rootfs().to_str().unwrap(), "--", "true"]);
    let info: serde_json::Value = serde_json::from_str(&env.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Store"]["Path"], env.store.path().to_str().unwrap());
    assert_eq!(info["Store"]["Containers"], 1);
    assert_eq!(info["Store"]["Driver"], "auto");
    assert_eq!(info["Store"]["KernelOverlay"], "works here (overlayfs with userxattr in a user namespace)");
    assert_eq!(info["Ids"]["Uid"], nix::unistd::getuid().as_raw());
    assert_eq!(info["Ids"]["Mapping"], if expect_subids() { "subordinate ids" } else { "single id" });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(info["Version"]["Kernel"], kernel.trim());
    assert_eq!(info["RuntimeDir"], env.h.runtime_dir.path().join("hutch").to_str().unwrap());
    assert_eq!(env.ok(&["info", "--format", "{{.Store.Driver}} {{.Store.Containers}}"]), "auto 1\n");
    let human = env.ok(&["info"]);
    assert!(human.contains("Storage driver:  auto (") && human.contains("Containers:      1"), "{human}");
    let forced = env.ok(&["--storage-driver", "fuse-overlay", "info"]);
    assert!(forced.contains("Storage driver:  fuse-overlay (forced)"), "{forced}");
    let version: serde_json::Value = serde_json::from_str(&env.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(version["Version"], env!("CARGO_PKG_VERSION"));
    let bad = env.hutch(&["info", "--format", "{{.Host"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(error_line(&bad).starts_with("hutch: --format \"{{.Host\": "), "{}", error_line(&bad));

    let bash = env.ok(&["completion", "bash"]);
    assert!(bash.contains("complete -F _hutch") && bash.contains("pull"), "a bash completion script");
    assert!(env.ok(&["completion", "zsh"]).starts_with("#compdef hutch"));
    assert!(env.ok(&["completion", "fish"]).contains("complete -c hutch"));
    let pages = Scratch::new("man");
    env.ok(&["man", "--output", pages.path().to_str().unwrap()]);
    let run = std::fs::read_to_string(pages.path().join("hutch-run.1")).unwrap();
    assert!(run.contains(".TH hutch-run") && run.contains("network"), "hutch-run.1 documents run's flags");
    assert!(pages.path().join("hutch.1").is_file() && pages.path().join("hutch-image-pull.1").is_file());
}

#[test]
fn unshare_shows_the_store_as_containers_see_it() {
    let h = Hutch::new("unshare");
    let out = h.cmd().args(["unshare", "--", "/bin/sh", "-c", "id -u; echo $HUTCH_UNSHARE"]).output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n");
    let out = h.cmd().args(["unshare", "--", "/nonexistent-cmd"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    if expect_subids() {
        // A file a container user made is owned by that user in the namespace.
        let data = Scratch::new("unshare-data");
        std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let vol = format!("{}:/data", data.path().display());
        h.sh(&["-v", &vol, "-u", "1000"], "touch /data/f");
        let out = h.cmd().args(["unshare", "stat", "-c", "%u"]).arg(data.path().join("f")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\n");
    }
}

fn wait_for_line(out: &mut impl std::io::Read, want: &str) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 {
        if byte[0] == b'\n' {
            if seen == want.as_bytes() {
                return;
            }
            seen.clear();
        } else {
            seen.push(byte[0]);
        }
    }
    panic!("the container never printed {want:?}");
}

#[test]
fn a_kernel_refusing_user_namespaces_is_named_in_one_line() {
    // user.max_user_namespaces is per user namespace: set to 0 inside
    // hutch's own namespace, it forbids hutch run there as an admin's
    // sysctl would on the host.
    let h = Hutch::new("refused");
    let script =
        format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {} run --rootfs / -- true", hutch_bin().display());
    let out = h.cmd().args(["unshare", "--", "/bin/sh", "-c", &script]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    let mut lines: Vec<&str> = err.lines().collect();
    let last = lines.pop().unwrap_or_default();
    // Inside the namespace hutch has no subordinate ids: its note may precede.
    assert!(lines.iter().all(|l| l.starts_with("hutch: note: ")), "{err}");
    assert_eq!(
        last,
        "hutch: cannot create a user namespace: the kernel allows no user namespaces (user.max_user_namespaces=0); \
         an administrator can run `sysctl -w user.max_user_namespaces=15000`"
    );
}

#[test]
fn a_newuidmap_without_privilege_falls_back_with_the_fix() {
    // A copy of newuidmap the user made is neither setuid nor capable, as
    // on a machine where packaging lost the bit.
    let h = Hutch::new("nosetuid");
    let bin = Scratch::new("nosetuid-bin");
    for tool in ["newuidmap", "newgidmap"] {
        std::fs::copy(format!("/usr/bin/{tool}"), bin.path().join(tool)).unwrap();
    }
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut c = h.cmd();
    c.env("PATH", path).args(["run", "--rm", "--rootfs"]).arg(busybox_rootfs()).args([
        "--",
        "/bin/sh",
        "-c",
        "wc -l < /proc/self/uid_map",
    ]);
    let out = c.output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "only the caller's id is mapped");
    if expect_subids() {
        let note = stderr(&out);
        let want = format!("{}/newuidmap is neither setuid root nor given file capabilities", bin.path().display());
        assert!(note.contains(&want) && note.contains("chmod u+s"), "{note}");
    }
}

/// The release package: `packaging/deb.sh`'s output (CI makes it from the
/// binaries under test; otherwise it is made here from the checkout).
/// The scratch directory it was made in, if any, lives as long as it is used.
fn release_package() -> (std::path::PathBuf, Option<Scratch>) {
    let (dir, made_here) = match std::env::var_os("HUTCH_TEST_DEB_DIR") {
        Some(dir) => (std::path::PathBuf::from(dir), None),
        None => {
            let out = Scratch::new("deb");
            let bin_dir = hutch_bin().parent().unwrap().to_path_buf();
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/deb.sh");
            let made = std::process::Command::new("bash")
                .arg(script)
                .args(["--bin-dir".as_ref(), bin_dir.as_os_str(), "--out".as_ref(), out.path().as_os_str()])
                .output()
                .unwrap();
            assert_success(&made);
            (out.path().to_path_buf(), Some(out))
        }
    };
    let debs: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(debs.len(), 1, "one package in {}", dir.display());
    (debs[0].clone(), made_here)
}

#[test]
fn the_deb_package_holds_both_binaries_man_pages_completions_and_the_runtime_dependencies() {
    let (deb, _made_here) = release_package();
    let field = |name: &str| {
        let out = std::process::Command::new("dpkg-deb")
            .args(["-f".as_ref(), deb.as_os_str(), name.as_ref()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "hutch");
    let depends = field("Depends");
    for needed in ["uidmap", "fuse3", "passt | slirp4netns", "libseccomp2"] {
        assert!(depends.contains(needed), "{depends}");
    }
    let root = Scratch::new("deb-root");
    assert_success(&std::process::Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()).output().unwrap());
    let packaged = root.path().join("usr/bin/hutch");
    let version = |bin: &std::path::Path| {
        let out = std::process::Command::new(bin).args(["version", "--format", "{{.Version}}"]).output().unwrap();
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(version(&packaged), version(&hutch_bin()));
    assert!(root.path().join("usr/bin/fuse-overlay").is_file());
    assert!(root.path().join("usr/share/man/man1/hutch-run.1.gz").is_file());
    let bash = std::fs::read_to_string(root.path().join("usr/share/bash-completion/completions/hutch")).unwrap();
    assert!(bash.contains("hutch"), "a bash completion script");
    assert!(root.path().join("usr/share/zsh/vendor-completions/_hutch").is_file());
    assert!(root.path().join("usr/share/fish/vendor_completions.d/hutch.fish").is_file());
    assert!(deb.file_name().unwrap().to_string_lossy().ends_with(".deb"));
}

#[test]
fn a_root_directory_the_user_cannot_write_gets_a_writable_layer_over_it() {
    let env = Env::new("readonly-root");
    let dir = Scratch::new("readonly-root-dir");
    let root = dir.path().join("rootfs");
    make_busybox_rootfs(&root);
    let before = |p: &std::path::Path| std::fs::read_dir(p).unwrap().count();
    let (top, etc) = (before(&root), before(&root.join("etc")));
    for d in [root.join("etc"), root.clone()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let rootfs = root.to_str().unwrap();
    let script = "cat /etc/hostname >/dev/null && echo x > /made && cat /made && grep -c ' / ' /proc/mounts";
    let out = env.ok(&["run", "--rm", "--rootfs", rootfs, "sh", "-c", script]);
    assert_eq!(out, "x\n1\n", "mount points and changes go to a layer over the root");
    assert_eq!((before(&root), before(&root.join("etc"))), (top, etc), "nothing was written into the directory");
    env.ok(&["create", "--name", "ro", "--rootfs", rootfs, "true"]);
    let driver = env.ok(&["inspect", "--format", "{{.GraphDriver.Name}}", "ro"]);
    assert_eq!(driver, "overlay\n", "the user's own directory: the kernel overlay");
    env.ok(&["rm", "ro"]);
    for d in [root.clone(), root.join("etc")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Another user's tree (here the host's /usr, owned by root, which on a
    // merged-/usr system holds a shell and its libraries where a root
    // would): fuse-overlay lets the container's root change it, and
    // nothing reaches the host.
    let name = format!("hutch-test-{}", std::process::id());
    let script = format!("echo y > /{name} && cat /{name} && test -s /etc/hostname && echo has-etc");
    let out = env.ok(&["run", "--rm", "--rootfs", "/usr", "/bin/sh", "-c", &script]);
    assert_eq!(out, "y\nhas-etc\n");
    assert!(!std::path::Path::new("/usr").join(&name).exists(), "the host's /usr is untouched");
    env.ok(&["create", "--name", "foreign", "--rootfs", "/usr", "true"]);
    let why = env.ok(&["inspect", "--format", "{{.GraphDriver.Name}}: {{.GraphDriver.Why}}", "foreign"]);
    assert_eq!(why, "fuse-overlay: the root directory belongs to ids outside your mapping: only fuse-overlay lets the container change it\n");
    env.ok(&["rm", "foreign"]);
}

#[test]
fn pid_and_ipc_host_share_the_hosts_processes_and_shared_memory() {
    let env = Env::new("pid-ipc-host");
    let rootfs = busybox_rootfs().to_str().unwrap();
    let shm = format!("hutch-test-{}", std::process::id());
    let writer = format!("echo from-a > /dev/shm/{shm}; exec sleep 100");
    env.ok(&["run", "-d", "--name", "a", "--pid", "host", "--ipc", "host", "--rootfs", rootfs, "sh", "-c", &writer]);
    let pid = env.ok(&["inspect", "--format", "{{.State.Pid}}", "a"]).trim().to_string();
    let shared = std::path::Path::new("/dev/shm").join(&shm);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.exists() {
        assert!(Instant::now() < deadline, "the first container wrote its shared memory");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A second container sees the first's memory and its process, by host pid.
    let reader = format!(
        "cat /dev/shm/{shm}; test -d /proc/{pid} && echo sees-a; grep -c . /proc/self/status >/dev/null; echo $$"
    );
    let out = env.ok(&["run", "--rm", "--pid", "host", "--ipc", "host", "--rootfs", rootfs, "sh", "-c", &reader]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["from-a", "sees-a"], "{out}");
    assert_ne!(lines[2], "1", "not PID 1 of a namespace of its own");
    let top = env.ok(&["top", "a"]);
    assert_eq!(top.lines().count(), 2, "top lists the container's processes, not the host's: {top}");
    assert!(top.lines().nth(1).unwrap().contains("sleep 100"), "{top}");
    // Without them: its own.
    let private = format!("test -e /dev/shm/{shm} || echo own-shm; test -d /proc/{pid} || echo own-pids; echo $$");
    let out = env.ok(&["run", "--rm", "--rootfs", rootfs, "sh", "-c", &private]);
    assert_eq!(out, "own-shm\nown-pids\n1\n");
    env.ok(&["rm", "-f", "a"]);
    let _ = std::fs::remove_file(&shared);
    let bad = env.hutch(&["run", "--rm", "--pid", "container:a", "--rootfs", rootfs, "true"]);
    assert_eq!(error_line(&bad), "hutch: --pid \"container:a\": use host or private");
}

#[test]
fn env_host_passes_the_callers_environment_but_not_what_would_break_the_image() {
    let h = Hutch::new("env-host");
    let mut c = h.cmd();
    c.env("SLURM_PROCID", "3").env("PMI_RANK", "3").env("MY_SETTING", "host").env("LD_PRELOAD", "/nonexistent.so");
    c.env("PATH", "/host/only/bin:/usr/bin:/bin");
    c.args(["run", "--rm", "--env-host", "-e", "MY_SETTING=flag", "--rootfs"]).arg(busybox_rootfs());
    c.args(["--", "/bin/sh", "-c", "echo $SLURM_PROCID $PMI_RANK $MY_SETTING ${LD_PRELOAD:-no-preload} $HOME $PATH"]);
    let out = c.output().unwrap();
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3 3 flag no-preload /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let plain = h.sh(&[], "echo ${SLURM_PROCID:-unset}");
    assert_eq!(plain, "unset\n", "without --env-host nothing passes");
}

#[test]
fn without_home_in_the_environment_the_store_is_found_from_the_password_database() {
    let h = Hutch::new("no-home");
    let home = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().dir;
    let mut c = h.cmd();
    c.env_remove("HOME").env_remove("HUTCH_ROOT").env_remove("XDG_DATA_HOME").env_remove("USER");
    c.args(["info", "--format", "{{.Store.Path}}"]);
    let out = c.output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), home.join(".local/share/hutch").to_str().unwrap());
    let mut c = h.cmd();
    c.env_remove("HOME").env_remove("HUTCH_ROOT").env_remove("XDG_DATA_HOME");
    c.args(["run", "--rm", "--rootfs"]).arg(busybox_rootfs()).args(["--", "echo", "ran"]);
    let out = c.output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n", "a Slurm task with --export=NONE runs");
}
