//! The `fuse-overlay` binary as rootless podman's `mount_program`, in the
//! place of fuse-overlayfs: podman mounts every container's root with it,
//! from its own layer format (the kernel overlay's `c 0 0` whiteouts), and
//! commits what the container changed, read back from our upper layer.
//! Runs as the unprivileged user, with or without subordinate ids.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fuse_overlay_bin() -> PathBuf {
    std::env::var_os("FUSE_OVERLAY_BIN").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_fuse-overlay").into())
}

/// A scratch directory removed (through podman's namespace) at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = podman(&self.0).args(["system", "reset", "--force"]).output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// podman with its own store in `dir`, overlay driven by fuse-overlay.
fn podman(dir: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root").arg(dir.join("storage")).arg("--runroot").arg(dir.join("run"));
    cmd.args(["--storage-driver", "overlay", "--storage-opt"]);
    cmd.arg(format!("overlay.mount_program={}", fuse_overlay_bin().display()));
    // runc: crun refuses the hybrid cgroup layout of some hosts.
    cmd.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]);
    cmd
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("podman runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox root filesystem, owned by root, as a tar file.
fn busybox_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "echo", "grep", "ls", "rm", "mv", "mkdir", "ln", "stat", "test"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/base"), "base\n").unwrap();
    let tar = dir.join("rootfs.tar");
    let mut cmd = Command::new("tar");
    cmd.args(["--owner=0", "--group=0", "--numeric-owner", "-C"]).arg(&root).arg("-cf").arg(&tar).arg(".");
    ok(&mut cmd);
    tar
}

#[test]
fn podman_runs_and_commits_containers_on_fuse_overlay() {
    let base = std::env::var_os("HUTCH_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).unwrap();
    let dir = Scratch(base.join(format!("podman-fo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let tar = busybox_tar(&dir.0);
    ok(podman(&dir.0).arg("import").arg(&tar).arg("localhost/bb:1"));
    let changes = "grep -c ' / fuse' /proc/mounts; echo hi > /new; rm /etc/passwd; echo more >> /etc/base; \
                   mkdir /d; mv /etc/base /d/base; ln /d/base /d/link; stat -c %h /d/base";
    let out =
        ok(podman(&dir.0).args(["run", "--name", "c1", "--network", "none", "localhost/bb:1", "sh", "-c", changes]));
    assert_eq!(out, "1\n2\n", "the root is one FUSE mount; a hardlink counts two names");
    ok(podman(&dir.0).args(["commit", "-q", "c1", "localhost/bb:2"]));
    // The committed layer is what our upper layer held: the new image's
    // second layer, under podman's first.
    let check = "cat /new /d/link; test -e /etc/passwd || echo passwd gone; test -e /etc/base || echo base moved";
    let out = ok(podman(&dir.0).args(["run", "--rm", "--network", "none", "localhost/bb:2", "sh", "-c", check]));
    assert_eq!(out, "hi\nbase\nmore\npasswd gone\nbase moved\n");
}
