//! The sandbox comparison table in the README, measured: the same probe
//! (tests/probes/sandbox-probe.c) runs under hutch's defaults, rootless
//! podman's and bubblewrap's `--unshare-all`, as the unprivileged user,
//! with a terminal as its stdout. The README's table must be what this
//! measures; on a difference the test prints the measured table.

mod common;

use common::*;
use nix::pty::openpty;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

const README: &str = include_str!("../README.md");
const BEGIN: &str = "<!-- sandbox-table: measured by tests/compare.rs -->\n";
const END: &str = "<!-- sandbox-table end -->";

/// Runs `cmd` with a new terminal as its stdout; returns what it printed.
fn output_on_a_terminal(mut cmd: Command) -> String {
    let pty = openpty(None, None).expect("openpty");
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::from(pty.slave)).stderr(Stdio::piped()).spawn().unwrap();
    let program = format!("{cmd:?}");
    drop(cmd); // closes our copy of the slave, so the master ends when the child's does
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = master.read_to_end(&mut out); // ends with EIO once the slave is closed everywhere
        String::from_utf8_lossy(&out).replace('\r', "")
    });
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    assert!(status.success(), "{program} failed: {status:?}\n{err}");
    out
}

/// (attack, verdict) pairs in the probe's order.
fn verdicts(output: &str) -> Vec<(String, String)> {
    output.lines().filter_map(|l| l.split_once('\t')).map(|(a, v)| (a.to_string(), v.to_string())).collect()
}

fn podman(rootfs: &Path) -> Command {
    let mut cmd = Command::new("podman");
    // crun refuses hybrid cgroup layouts such as the development machines'.
    if std::fs::read_to_string("/proc/mounts").unwrap_or_default().contains(" /sys/fs/cgroup tmpfs") {
        cmd.args(["--runtime", "runc"]);
    }
    cmd.args(["run", "--rm", "--network", "none", "--rootfs"]).arg(rootfs).arg("/bin/probe");
    cmd
}

fn bwrap(rootfs: &Path) -> Command {
    let mut cmd = Command::new("bwrap");
    cmd.args(["--unshare-all", "--die-with-parent", "--bind"])
        .arg(rootfs)
        .args(["/", "--proc", "/proc", "--dev", "/dev"]);
    cmd.args(["--", "/bin/probe"]);
    cmd
}

#[test]
fn the_readme_table_is_what_the_sandboxes_do() {
    let h = Hutch::new("compare");
    let dir = Scratch::new("compare");
    let rootfs = rootfs_with_probe(&dir, "probe", include_str!("probes/sandbox-probe.c"));
    let mut hutch = h.cmd();
    hutch.args(["run", "--rm", "--network", "none", "--rootfs"]).arg(&rootfs).args(["--", "/bin/probe"]);
    let columns = [hutch, podman(&rootfs), bwrap(&rootfs)].map(|c| verdicts(&output_on_a_terminal(c)));

    let mut table = String::from(
        "| the container tries to | hutch | podman (rootless, runc) | bwrap --unshare-all |\n|---|---|---|---|\n",
    );
    for (row, (attack, ours)) in columns[0].iter().enumerate() {
        let cell = |col: usize| {
            let (their_attack, verdict) = &columns[col][row];
            assert_eq!(their_attack, attack, "the probe printed different rows");
            verdict.as_str()
        };
        table += &format!("| {attack} | {ours} | {} | {} |\n", cell(1), cell(2));
    }
    let documented = README
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(table, _)| table)
        .expect("README.md has the sandbox table between its markers");
    assert_eq!(documented, table, "README.md's sandbox table differs from what was measured:\n{table}");
}
