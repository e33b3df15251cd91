//! The default sandbox and attempts to get out of it, each run as the
//! unprivileged user and each asserting the exact refusal.
// The test drives hutch as a shell or a caller would, with pre-exec set-up
// (descriptors, a controlling terminal) that has no safe wrapper: each
// unsafe block says why it is sound.
#![allow(unsafe_code)]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

fn status_field(h: &Hutch, extra: &[&str], field: &str) -> String {
    let out = h.sh(extra, &format!("grep '^{field}:' /proc/self/status | cut -f2"));
    out.trim().to_string()
}

#[test]
fn default_capabilities_are_dockers() {
    let h = Hutch::new("caps-default");
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&h, &[], field), DOCKER_DEFAULT_CAPS, "{field}");
    }
    assert_eq!(status_field(&h, &[], "CapInh"), "0000000000000000");
    assert_eq!(status_field(&h, &[], "CapAmb"), "0000000000000000");
    if expect_subids() {
        // A non-root user has none effective; the bounding set still limits setuid files.
        assert_eq!(status_field(&h, &["-u", "1000"], "CapEff"), "0000000000000000");
        assert_eq!(status_field(&h, &["-u", "1000"], "CapBnd"), DOCKER_DEFAULT_CAPS);
    }
}

#[test]
fn capabilities_are_added_and_dropped_by_name() {
    let h = Hutch::new("caps-flags");
    assert_eq!(status_field(&h, &["--cap-drop", "ALL", "--cap-add", "net_admin"], "CapEff"), "0000000000001000");
    assert_eq!(status_field(&h, &["--cap-drop", "CAP_CHOWN"], "CapEff"), "00000000a80425fa");
    assert_eq!(status_field(&h, &["--cap-add", "SYS_ADMIN"], "CapEff"), "00000000a82425fb");
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap().trim().parse().unwrap();
    let all = format!("{:016x}", (1u64 << (last + 1)) - 1);
    assert_eq!(status_field(&h, &["--privileged"], "CapEff"), all);

    let out = h.run(&["--cap-add", "CAP_BOGUS"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        error_line(&out),
        "hutch: unknown capability \"CAP_BOGUS\" (names as in capabilities(7), with or without CAP_, or ALL)"
    );
}

#[test]
fn no_new_privileges_is_on_unless_turned_off() {
    let h = Hutch::new("nnp");
    assert_eq!(status_field(&h, &[], "NoNewPrivs"), "1");
    assert_eq!(status_field(&h, &["--security-opt", "no-new-privileges=false"], "NoNewPrivs"), "0");
    let out = h.run(&["--security-opt", "apparmor=x"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("unknown --security-opt \"apparmor=x\""), "{}", stderr(&out));
}

#[test]
fn a_setuid_binary_in_the_image_gains_nothing() {
    // Attack: the image ships a setuid-root program; a non-root user runs it.
    let h = Hutch::new("setuid");
    let dir = Scratch::new("setuid-root");
    let rootfs = rootfs_with_probe(
        &dir,
        "euid",
        "#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"%d\\n\",(int)geteuid());return 0;}\n",
    );
    // Owned by the caller = container root; setuid bit set.
    std::fs::set_permissions(rootfs.join("bin/euid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let run = |extra: &[&str]| h.run_in(&rootfs, extra, &["/bin/euid"]);
    if expect_subids() {
        let out = run(&["-u", "1000"]);
        assert_success(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\n", "no_new_privs ignores the setuid bit");
        // The same binary does elevate once no_new_privs is off: the test can tell.
        let out = run(&["-u", "1000", "--security-opt", "no-new-privileges=false"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    } else {
        // Only the caller's id exists: nobody to escalate from; the flag is still set.
        let out = run(&[]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
        assert_eq!(status_field(&h, &[], "NoNewPrivs"), "1");
    }
}

#[test]
fn masked_paths_are_empty_inside() {
    let h = Hutch::new("masked");
    let present: Vec<&str> =
        ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts", "/proc/acpi", "/sys/firmware"]
            .into_iter()
            .filter(|p| Path::new(p).exists())
            .collect();
    assert!(!present.is_empty(), "this kernel has none of the masked paths to check");
    for path in &present {
        let probe = if Path::new(path).is_dir() { format!("ls -A {path} | wc -l") } else { format!("wc -c < {path}") };
        assert_eq!(h.sh(&[], &probe).trim(), "0", "{path} is hidden");
    }
    // --privileged unmasks them.
    let visible = h.sh(&["--privileged"], "cat /proc/interrupts /proc/keys /proc/timer_list 2>/dev/null | wc -c");
    assert_ne!(visible.trim(), "0");
}

#[test]
fn proc_sys_is_read_only_and_stays_so() {
    let h = Hutch::new("procsys");
    let out = h.run(&[], &["/bin/sh", "-c", "echo 12345 > /proc/sys/kernel/ns_last_pid"]);
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    // Attack: remount it read-write (needs CAP_SYS_ADMIN, which is not given).
    let out = h.run(&[], &["/bin/sh", "-c", "mount -o remount,rw /proc/sys"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Operation not permitted") || stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn mounting_needs_privileged() {
    let h = Hutch::new("mount");
    // Attack: mount over part of the rootfs.
    let out = h.run(&[], &["/bin/sh", "-c", "mount -t tmpfs none /tmp"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("permission denied"), "{}", stderr(&out));
    assert_eq!(h.sh(&["--privileged"], "mount -t tmpfs none /tmp && grep -c ' /tmp tmpfs' /proc/mounts"), "1\n");
}

#[test]
fn another_users_private_file_stays_private() {
    // Attack: bind the host's /etc and read /etc/shadow (root:shadow 0640),
    // even with every capability of the user namespace.
    let h = Hutch::new("shadow");
    assert!(Path::new("/etc/shadow").exists());
    for extra in [&[][..], &["--privileged"][..]] {
        let mut args = vec!["-v", "/etc:/hostetc:ro"];
        args.extend_from_slice(extra);
        let out = h.run(&args, &["cat", "/hostetc/shadow"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stderr(&out).lines().last().unwrap_or(""), "cat: can't open '/hostetc/shadow': Permission denied");
    }
}

#[test]
fn host_processes_cannot_be_signalled() {
    // Attack: kill a host process by its pid (this test's own).
    let h = Hutch::new("kill");
    let out = h.run(&[], &["/bin/sh", "-c", &format!("kill -0 {}", std::process::id())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No such process"), "{}", stderr(&out));
}

const PTRACE_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
int main(int argc, char **argv) {
    long r = ptrace(PTRACE_ATTACH, atoi(argv[1]), 0, 0);
    printf("%s\n", r < 0 ? strerrorname_np(errno) : "attached");
    return 0;
}
"#;

#[test]
fn host_processes_cannot_be_traced() {
    // Attack: attach to a host process of the same user (this test).
    let dir = Scratch::new("ptrace");
    let rootfs = rootfs_with_probe(&dir, "attach", PTRACE_PROBE);
    let h = Hutch::new("ptrace");
    let pid = std::process::id().to_string();
    let out = h.run_in(&rootfs, &[], &["/bin/attach", &pid]);
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ESRCH\n", "the host pid must not exist inside");
}

#[test]
fn proc_links_lead_back_into_the_container() {
    // Attack: reach the host's files through /proc/1/root, /proc/self/root
    // or the monitor's descriptors.
    let secret = Scratch::new("proc-root");
    let file = secret.path().join("host-only");
    std::fs::write(&file, "host data").unwrap();
    let h = Hutch::new("proc-root");
    let script = format!(
        "for p in /proc/1/root{f} /proc/self/root{f} /proc/1/cwd{f}; do cat $p 2>/dev/null && echo LEAK; done; \
         echo /proc/[0-9]*; ls /proc/1/fd; true",
        f = file.display()
    );
    // No pipes: a pipeline's shell briefly holds pipe ends and its children
    // come and go, which made the counts racy.
    let out = h.sh(&[], &script);
    assert_eq!(out, "/proc/1\n0\n1\n2\n", "only the shell itself and its own descriptors are visible");
}

const CAPEFF_PROBE: &str = r#"
#include <stdio.h>
#include <string.h>
int main(void) {
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7)) fputs(line, stdout);
    return 0;
}
"#;

#[test]
fn a_file_capability_in_the_image_gains_nothing() {
    // Attack: a binary in the image carrying cap_setuid+ep, run as a user
    // without capabilities. no_new_privs makes execve ignore file caps.
    let dir = Scratch::new("filecap");
    let rootfs = rootfs_with_probe(&dir, "capeff", CAPEFF_PROBE);
    let probe = rootfs.join("bin/capeff");
    // The xattr is written inside hutch's user namespace, as an image
    // unpacked there would carry it (v2 format: CAP_SETUID, effective).
    let set = Command::new(hutch_bin())
        .args(["unshare", "python3", "-c"])
        .arg("import os,struct,sys; os.setxattr(sys.argv[1], 'security.capability', struct.pack('<5I', 0x02000001, 1 << 7, 0, 0, 0))")
        .arg(&probe)
        .status()
        .unwrap();
    assert!(set.success(), "could not set the file capability");
    let h = Hutch::new("filecap");
    let run = |extra: &[&str]| h.run_in(&rootfs, extra, &["/bin/capeff"]);
    if expect_subids() {
        // uid 1000 holds no capabilities; no_new_privs keeps it so.
        let out = run(&["-u", "1000"]);
        assert_success(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "CapEff:\t0000000000000000\n");
        // The attack is real: without no_new_privs the capability is granted.
        let out = run(&["-u", "1000", "--security-opt", "no-new-privileges=false"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "CapEff:\t0000000000000080\n");
    } else {
        // Only root exists: with the capability out of its bounding set,
        // the kernel refuses to run a program that needs it.
        let out = run(&["--cap-drop", "SETUID"]);
        assert_eq!(out.status.code(), Some(126));
        assert_eq!(error_line(&out), "hutch: cannot start /bin/capeff: operation not permitted");
    }
}

#[test]
fn tmpfs_and_bind_options_are_honoured() {
    let h = Hutch::new("tmpfs");
    let out = h.sh(&["--tmpfs", "/scratch:size=1m"], "grep ' /scratch ' /proc/mounts");
    assert!(out.starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec"), "{out}");
    assert!(out.contains("size=1024k"), "{out}");
    // noexec on a bind: a program there cannot run.
    let dir = Scratch::new("noexec-bind");
    std::fs::copy("/bin/busybox", dir.path().join("bb")).unwrap();
    let vol = format!("{}:/mnt:noexec", dir.path().display());
    let out = h.run(&["-v", &vol], &["/mnt/bb", "true"]);
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(error_line(&out), "hutch: cannot start /mnt/bb: permission denied");
    let out = h.run(&["--tmpfs", "relative"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
}

const SYSCALL_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
static void probe(const char *name, long r) { printf("%s %s\n", name, r == -1 ? strerrorname_np(errno) : "ok"); }
int main(void) {
    probe("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    probe("add_key", syscall(SYS_add_key, "user", "k", "v", 1, -3));
    probe("bpf", syscall(SYS_bpf, 0, 0, 0));
    probe("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
    probe("userfaultfd", syscall(SYS_userfaultfd, 0));
    probe("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, 0, 0));
    probe("clone3", syscall(SYS_clone3, 0, 0));
    return 0;
}
"#;

#[test]
fn the_default_filter_refuses_dockers_dangerous_syscalls() {
    let h = Hutch::new("seccomp-default");
    let dir = Scratch::new("seccomp-probe");
    let rootfs = rootfs_with_probe(&dir, "probe", SYSCALL_PROBE);
    let run = |extra: &[&str]| {
        let out = h.run_in(&rootfs, extra, &["/bin/probe"]);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        run(&[]),
        "keyctl EPERM\nadd_key EPERM\nbpf EPERM\nperf_event_open EPERM\nuserfaultfd EPERM\nopen_by_handle_at EPERM\nclone3 ENOSYS\n"
    );
    // Without the filter the kernel answers for itself: the test can tell.
    let unconfined = run(&["--security-opt", "seccomp=unconfined"]);
    assert!(
        unconfined.contains("keyctl ok") && unconfined.contains("bpf EINVAL") && unconfined.contains("clone3 EINVAL"),
        "{unconfined}"
    );
}

#[test]
fn nested_user_namespaces_are_refused() {
    // Attack: a new user namespace inside, to gain a full capability set
    // there and mount over the rootfs.
    let h = Hutch::new("nested-userns");
    let attack = "unshare -U -r -m sh -c 'mount -t tmpfs none /bin && echo mounted'";
    let out = h.run(&[], &["/bin/sh", "-c", attack]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_line(&out), "unshare: unshare(0x10020000): Operation not permitted");
    // Without the filter it would work (inside its own namespace only).
    assert_eq!(h.sh(&["--security-opt", "seccomp=unconfined"], attack), "mounted\n");
    assert_eq!(h.sh(&["--privileged"], attack), "mounted\n");
}

#[test]
fn seccomp_profiles_in_oci_json_are_applied() {
    let h = Hutch::new("seccomp-profile");
    let dir = Scratch::new("seccomp-profile");
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = h.run(&["--security-opt", &opt], &["mkdir", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    // The profile replaces the default: unshare is no longer refused by it.
    h.sh(&["--security-opt", &opt], "unshare -U true");

    let out = h.run(&["--security-opt", "seccomp=/nonexistent.json"], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(error_line(&out), "hutch: seccomp profile /nonexistent.json: No such file or directory (os error 2)");
}

#[test]
fn devices_are_given_only_as_the_caller_may_open_them() {
    let h = Hutch::new("devices");
    // /dev/fuse is 0666 on distributions (CI makes it so): usable inside.
    let out = h.sh(&["--device", "/dev/fuse"], "[ -c /dev/fuse ] && exec 3<>/dev/fuse && echo opened");
    assert_eq!(out.trim(), "opened");
    // Under another name.
    let out = h.sh(&["--device", "/dev/zero:/dev/myzero:rw"], "head -c 3 /dev/myzero | wc -c");
    assert_eq!(out.trim(), "3");
    // Read-only cannot be enforced rootless (no device cgroup): refused, not ignored.
    let out = h.run(&["--device", "/dev/zero:r"], &["/bin/true"]);
    assert!(error_line(&out).starts_with("hutch: --device \"/dev/zero:r\": read-only devices cannot be enforced"));
    // A root-only device is refused before the container starts, in one line.
    let root_only = ["/dev/loop-control", "/dev/console", "/dev/kvm"]
        .into_iter()
        .find(|d| Path::new(d).exists() && nix::unistd::access(*d, nix::unistd::AccessFlags::R_OK).is_err());
    let device = root_only.expect(
        "a device node this user may not open (/dev/loop-control, console or kvm): run the tests as an unprivileged user",
    );
    let out = h.run(&["--device", device], &["/bin/true"]);
    assert_eq!(out.status.code(), Some(125));
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!("hutch: --device {device}: you may not open it for reading and writing")),
        "{line}"
    );
    let out = h.run(&["--device", "/etc/hostname"], &["/bin/true"]);
    assert_eq!(error_line(&out), "hutch: --device /etc/hostname: not a device node");
}

/// `hutch run --rm --rootfs BUSYBOX EXTRA -- sh -c SCRIPT` with `file` as descriptor 3.
fn run_with_fd3(h: &Hutch, file: &std::fs::File, extra: &[&str], script: &str) -> std::process::Output {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let mut cmd = h.cmd();
    cmd.args(["run", "--rm", "--rootfs"]).arg(busybox_rootfs()).args(extra).args(["--", "/bin/sh", "-c", script]);
    let fd = file.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe; `fd` stays open in the
    // parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("spawn hutch")
}

#[test]
fn descriptors_beyond_stderr_are_closed_unless_preserved() {
    let h = Hutch::new("fds");
    let dir = Scratch::new("fds");
    let path = dir.path().join("fd3");
    let file = std::fs::File::create(&path).unwrap();
    // Attack: write through a descriptor hutch's caller happened to hold.
    let out = run_with_fd3(&h, &file, &[], "echo leaked >&3 && echo wrote || echo refused; ls /proc/self/fd");
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "refused\n0\n1\n2\n3\n", "only 0-2 (and ls's own 3) are open");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    // Passed on when asked.
    let out = run_with_fd3(&h, &file, &["--preserve-fds", "1"], "echo through-fd3 >&3");
    assert_success(&out);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "through-fd3\n");
    // Asking for one that is not open is a one-line error.
    let out = run_with_fd3(&h, &file, &["--preserve-fds", "2"], "true");
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        error_line(&out),
        "hutch: --preserve-fds 2: descriptor 4 is not open (pass 2 open descriptors from 3 up)"
    );
}

#[test]
fn a_racing_symlink_cannot_send_a_bind_mount_outside_the_root() {
    // Attack: a container flips /mnt/t between a directory and a symlink to
    // a host directory while other containers of the same rootfs start with
    // a volume under /mnt/t; a runtime resolving the path on the host would
    // create (and mount on) the host directory.
    let h = Hutch::new("race");
    let dir = Scratch::new("race");
    let rootfs = dir.path().join("rootfs");
    make_busybox_rootfs(&rootfs);
    std::fs::create_dir_all(rootfs.join("mnt")).unwrap();
    let victim = dir.path().join("victim");
    let source = dir.path().join("source");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("data"), "ok").unwrap();
    let flip = format!(
        "while :; do rm -rf /mnt/t; mkdir /mnt/t; rm -rf /mnt/t; ln -s {} /mnt/t; rm -f /mnt/t; ln -s /proc/1/root/{} /mnt/t; rm -f /mnt/t; done",
        victim.display(),
        victim.display()
    );
    let mut attacker = h
        .cmd()
        .args(["run", "--rm", "--rootfs"])
        .arg(&rootfs)
        .args(["--", "/bin/sh", "-c", &flip])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let volume = format!("{}:/mnt/t/x", source.display());
    let mut started = 0;
    for _ in 0..20 {
        let out = h.run_in(&rootfs, &["-v", &volume], &["cat", "/mnt/t/x/data"]);
        // The attacker may delete the mount point under the command (cat
        // then fails): what counts is that setup got past the mounts.
        started += (out.status.code() != Some(125)) as u32;
    }
    let _ = attacker.kill();
    let _ = attacker.wait();
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "something was made in the host directory");
    assert!(started > 0, "no container got past its mounts while the symlink flipped");
}
