//! Containers managed without a daemon, driven as a user would from a
//! shell: run -d, ps, logs, exec, stop, kill, start, restart, wait, rm,
//! create, the monitor killed, and many starts at once.

mod common;

use common::registry::{busybox_layer, Image, Layer, Registry, TarBuilder};
use common::*;
use std::time::{Duration, Instant};

/// What these tests do often, on top of `Env`.
trait Lifecycle {
    fn detach(&self, extra: &[&str], command: &[&str]) -> String;
    fn ps_line(&self, name: &str) -> Option<String>;
    fn state(&self, id: &str) -> serde_json::Value;
    fn busybox_image(&self, name: &str);
}

impl Lifecycle for Env {
    /// `run -d --rootfs <busybox> <extra…> -- <command…>`; the id.
    fn detach(&self, extra: &[&str], command: &[&str]) -> String {
        let rootfs = busybox_rootfs().to_str().unwrap();
        let args: Vec<&str> =
            ["run", "-d", "--rootfs", rootfs].iter().chain(extra).chain(&["--"]).chain(command).copied().collect();
        let id = self.ok(&args).trim().to_string();
        assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");
        id
    }

    /// The `ps -a` line of `name`.
    fn ps_line(&self, name: &str) -> Option<String> {
        self.ok(&["ps", "-a"]).lines().find(|l| l.split_whitespace().last() == Some(name)).map(String::from)
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.store.path().join("containers").join(id).join("state.json"))
            .expect("state.json");
        serde_json::from_str(&text).unwrap()
    }

    /// An image of busybox made with `hutch import`.
    fn busybox_image(&self, name: &str) {
        let tarball = self.store.path().join("busybox.tar.gz");
        std::fs::write(&tarball, Layer::gzip(busybox_layer()).blob).unwrap();
        self.ok(&["import", tarball.to_str().unwrap(), name]);
    }
}

fn process_exists(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_detached_container_is_listed_logged_stopped_and_removed() {
    let env = Env::new("detach");
    let id = env.detach(
        &["--name", "web", "--init"],
        &["sh", "-c", "echo hello; echo oops >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"],
    );
    let line = env.ps_line("web").expect("ps lists the container by name");
    assert!(line.starts_with(&id[..12]) && line.contains("Up "), "{line}");
    assert!(env.ok(&["ps"]).contains("web"), "running containers show without -a");

    eventually("three ticks in the log", || env.ok(&["logs", "web"]).contains("tick 3"));
    let out = env.hutch(&["logs", "web"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("hello\ntick 1\n") && !stdout.contains("oops"), "{stdout}");
    assert_eq!(stderr, "oops\n", "stderr stays stderr");
    assert_eq!(env.ok(&["logs", "--tail", "1", &id[..5]]).lines().count(), 1, "--tail 1 by id prefix");
    let stamped = env.ok(&["logs", "-t", "web"]);
    let first = stamped.lines().next().unwrap();
    assert!(first.len() > 31 && first.as_bytes()[4] == b'-' && first.contains("Z hello"), "{first}");

    let started = Instant::now();
    assert_eq!(env.ok(&["stop", "web"]), "web\n");
    assert!(started.elapsed() < Duration::from_secs(5), "SIGTERM through --init stops it at once");
    let line = env.ps_line("web").unwrap();
    assert!(line.contains("Exited (143)"), "{line}");
    assert!(!env.ok(&["ps"]).contains("web"), "stopped containers show only with -a");
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "web"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 143);

    assert_eq!(env.ok(&["rm", "web"]), "web\n");
    assert!(env.ps_line("web").is_none());
    assert!(!env.store.path().join("containers").join(&id).exists(), "rm removes the container's files");
}

#[test]
fn exec_joins_every_namespace_of_the_running_container() {
    let env = Env::new("exec");
    env.detach(&["--name", "box", "--hostname", "boxy", "-e", "FOO=bar"], &["sleep", "1000"]);
    let out = env.ok(&["exec", "box", "sh", "-c", "echo $$ $(hostname) $FOO $(id -u) $(pwd); cat /proc/1/cmdline"]);
    assert_eq!(out, "2 boxy bar 0 /\nsleep\u{0}1000\u{0}", "PID namespace, UTS, env and root of the container");
    let out = env.ok(&["exec", "-w", "/etc", "-e", "A=1", "box", "sh", "-c", "pwd; echo $A $HOME"]);
    assert_eq!(out, "/etc\n1 /root\n");
    if expect_subids() {
        let out = env.ok(&["exec", "-u", "app", "box", "sh", "-c", "id -u; echo $HOME; grep CapEff /proc/self/status"]);
        assert_eq!(out, "1000\n/home/app\nCapEff:\t0000000000000000\n", "a non-root exec holds no capabilities");
    } else {
        let out = env.hutch(&["exec", "-u", "app", "box", "true"]);
        assert!(error_line(&out).contains("uid 1000 has no host id"), "{}", error_line(&out));
    }

    let top = env.ok(&["top", "box"]);
    assert!(top.starts_with("UID") && top.lines().count() == 2 && top.contains("sleep 1000"), "{top}");

    assert_eq!(env.hutch(&["exec", "box", "sh", "-c", "exit 7"]).status.code(), Some(7));
    let missing = env.hutch(&["exec", "box", "nosuch"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(error_line(&missing).contains("nosuch"), "{}", error_line(&missing));

    env.ok(&["rm", "-f", "box"]);
    let gone = env.hutch(&["exec", "box", "true"]);
    assert_eq!(gone.status.code(), Some(125));
    assert!(error_line(&gone).contains("no such container: box"), "{}", error_line(&gone));
}

#[test]
fn exec_into_a_stopped_container_says_to_start_it() {
    let env = Env::new("exec-stopped");
    env.detach(&["--name", "done"], &["true"]);
    eventually("the container ends", || env.ps_line("done").is_some_and(|l| l.contains("Exited (0)")));
    let out = env.hutch(&["exec", "done", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("is not running: start it first"), "{}", error_line(&out));
}

#[test]
fn names_are_unique_and_id_prefixes_must_be_unambiguous() {
    let env = Env::new("names");
    let id = env.detach(&["--name", "one"], &["sleep", "100"]);
    let rootfs = busybox_rootfs().to_str().unwrap();
    let taken = env.hutch(&["run", "-d", "--name", "one", "--rootfs", rootfs, "--", "true"]);
    assert_eq!(taken.status.code(), Some(125));
    assert!(error_line(&taken).contains("the name \"one\" is in use"), "{}", error_line(&taken));
    let bad = env.hutch(&["run", "--name", "a/b", "--rootfs", rootfs, "--", "true"]);
    assert!(error_line(&bad).contains("invalid container name"), "{}", error_line(&bad));

    env.detach(&[], &["sleep", "100"]);
    let listing = env.ok(&["ps", "--no-trunc"]);
    assert_eq!(listing.lines().count(), 3, "{listing}");
    let generated = listing.lines().find(|l| !l.ends_with(" one") && !l.starts_with("CONTAINER")).unwrap();
    assert!(generated.split_whitespace().last().unwrap().contains('_'), "a generated name: {generated}");

    let unknown = env.hutch(&["kill", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(error_line(&unknown).contains("no such container: nosuch"), "{}", error_line(&unknown));
    assert_eq!(env.ok(&["kill", &id[..6]]), format!("{}\n", &id[..6]), "a unique prefix names it");
    let ids = env.ok(&["ps", "-a", "-q"]);
    assert_eq!(ids.lines().count(), 2);
    let ids: Vec<&str> = ids.lines().collect();
    env.ok(&[&["rm", "-f"], ids.as_slice()].concat());
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
    // A removed container's name is free again; a store made before names
    // were kept aside (no containers/.names) still refuses a name in use.
    env.detach(&["--name", "one"], &["sleep", "100"]);
    std::fs::remove_dir_all(env.store.path().join("containers/.names")).unwrap();
    let taken = env.hutch(&["run", "-d", "--name", "one", "--rootfs", rootfs, "--", "true"]);
    assert!(error_line(&taken).contains("the name \"one\" is in use"), "{}", error_line(&taken));
    env.ok(&["rm", "-f", "one"]);
}

#[test]
fn stop_sends_sigkill_when_the_stop_signal_is_ignored() {
    let env = Env::new("stop-kill");
    let script = "trap '' TERM; echo ready; while true; do sleep 0.1; done";
    env.detach(&["--name", "stubborn", "--init"], &["sh", "-c", script]);
    // Stopping before the shell has set its trap would end it by SIGTERM.
    eventually("the trap is set", || env.ok(&["logs", "stubborn"]) == "ready\n");
    let started = Instant::now();
    env.ok(&["stop", "-t", "1", "stubborn"]);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(6), "{took:?}");
    let line = env.ps_line("stubborn").unwrap();
    assert!(line.contains("Exited (137)"), "{line}");
    assert_eq!(env.ok(&["wait", "stubborn"]), "137\n");
}

#[test]
fn a_killed_monitor_takes_its_container_along_and_the_container_shows_as_exited() {
    let env = Env::new("monitor-killed");
    let id = env.detach(&["--name", "victim"], &["sleep", "1000"]);
    let state = env.state(&id);
    let (monitor, pid) = (state["monitor"]["pid"].as_i64().unwrap(), state["pid"].as_i64().unwrap());
    assert!(process_exists(monitor) && process_exists(pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(monitor).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the container dies with its monitor", || !process_exists(pid));
    let line = env.ps_line("victim").unwrap();
    assert!(line.contains("Exited (137)"), "{line}");
    eventually("no FUSE or helper process of the container is left", || {
        let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
        !String::from_utf8_lossy(&ps.stdout).contains(&id[..12])
    });
    env.ok(&["rm", "victim"]);
}

#[test]
fn a_killed_foreground_hutch_leaves_an_exited_container() {
    let env = Env::new("fg-killed");
    let rootfs = busybox_rootfs().to_str().unwrap();
    let mut c = env.h.cmd();
    c.env("HUTCH_ROOT", env.store.path()).args(["run", "--name", "fg", "--rootfs", rootfs, "--", "sleep", "1000"]);
    let mut child = c.spawn().unwrap();
    eventually("the container runs", || env.ps_line("fg").is_some_and(|l| l.contains("Up ")));
    child.kill().unwrap();
    child.wait().unwrap();
    eventually("it shows as exited", || env.ps_line("fg").is_some_and(|l| l.contains("Exited (137)")));
    env.ok(&["rm", "fg"]);
}

#[test]
fn twenty_containers_started_at_once_all_run_with_distinct_names() {
    let env = Env::new("parallel");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| env.detach(&[], &["sleep", "1000"]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let listing = env.ok(&["ps"]);
    let names: std::collections::HashSet<&str> =
        listing.lines().skip(1).filter_map(|l| l.split_whitespace().last()).collect();
    assert_eq!(names.len(), 20, "{listing}");
    for id in &ids {
        assert!(listing.contains(&id[..12]), "{id} missing from\n{listing}");
    }
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    env.ok(&[&["rm", "-f"], all.as_slice()].concat());
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn a_restarted_container_keeps_the_files_it_wrote() {
    let env = Env::new("restart");
    env.busybox_image("local/box:1");
    let id =
        env.ok(&["run", "-d", "--name", "keep", "--init", "local/box:1", "sh", "-c", "echo $$ >> /runs; sleep 1000"]);
    let id = id.trim();
    eventually("the first run wrote", || env.ok(&["exec", "keep", "cat", "/runs"]).lines().count() == 1);
    env.ok(&["restart", "-t", "1", "keep"]);
    eventually("the second run wrote", || env.ok(&["exec", "keep", "cat", "/runs"]).lines().count() == 2);
    env.ok(&["stop", "keep"]);
    env.ok(&["start", "keep"]);
    eventually("the third run wrote", || env.ok(&["exec", "keep", "cat", "/runs"]).lines().count() == 3);
    env.ok(&["rm", "-f", "keep"]);
    assert!(!env.store.path().join("containers").join(id).exists());
    assert!(env.ok(&["rmi", "local/box:1"]).contains("Untagged") || env.ok(&["images", "-q"]).is_empty());
}

#[test]
fn run_rm_detached_removes_the_container_when_it_exits() {
    let env = Env::new("rm-detached");
    env.busybox_image("local/box:1");
    let id = env.ok(&["run", "-d", "--rm", "local/box:1", "sh", "-c", "echo x > /file; sleep 0.2"]);
    let dir = env.store.path().join("containers").join(id.trim());
    eventually("the container is removed", || !dir.exists());
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn create_then_start_attached_returns_the_status_and_logs_follow_to_the_end() {
    let env = Env::new("create");
    let rootfs = busybox_rootfs().to_str().unwrap();
    env.ok(&["create", "--name", "later", "--rootfs", rootfs, "--", "sh", "-c", "echo ran; exit 3"]);
    assert!(env.ps_line("later").unwrap().contains("Created"));
    let out = env.hutch(&["start", "-a", "later"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert!(env.ps_line("later").unwrap().contains("Exited (3)"));

    env.detach(&["--name", "counter"], &["sh", "-c", "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done"]);
    let started = Instant::now();
    assert_eq!(env.ok(&["logs", "-f", "counter"]), "1\n2\n3\n4\n5\n", "-f follows until the container ends");
    assert!(started.elapsed() < Duration::from_secs(5));
    env.ok(&["rm", "later", "counter"]);
}

#[test]
fn removing_a_running_container_needs_force() {
    let env = Env::new("rm-running");
    env.detach(&["--name", "busy"], &["sleep", "1000"]);
    let out = env.hutch(&["rm", "busy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).contains("is running: stop it first"), "{}", error_line(&out));
    assert!(env.ps_line("busy").unwrap().contains("Up "));
    env.ok(&["rm", "-f", "busy"]);
    assert!(env.ps_line("busy").is_none());
}

#[test]
fn publish_all_maps_the_exposed_ports_and_stop_uses_the_images_stop_signal() {
    let reg = Registry::start("life-ports");
    let mut image = Image::new(
        vec![Layer::gzip(busybox_layer())],
        &["sh", "-c", "trap 'echo got usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done"],
    );
    image.exposed_ports = vec!["8080/tcp".into()];
    image.stop_signal = "SIGUSR1".into();
    reg.push_image("test/ports", "1", &image);
    let name = format!("{}/test/ports:1", reg.addr);
    let env = Env::new("ports");
    env.ok(&["run", "-d", "-P", "--name", "srv", "-p", "127.0.0.1::9090/udp", &name]);

    let ports = env.ok(&["port", "srv"]);
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 2, "{ports}");
    assert!(lines[0].starts_with("9090/udp -> 127.0.0.1:"), "{ports}");
    assert!(lines[1].starts_with("8080/tcp -> 0.0.0.0:"), "{ports}");
    let host_port: u16 = lines[1].rsplit(':').next().unwrap().parse().unwrap();
    assert!(host_port > 0);
    assert_eq!(env.ok(&["port", "srv", "8080"]), format!("{}\n", lines[1]));
    assert!(env.ps_line("srv").unwrap().contains(&format!("0.0.0.0:{host_port}->8080/tcp")));
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "srv"])).unwrap();
    assert_eq!(inspect[0]["Config"]["StopSignal"], "SIGUSR1");

    eventually("the container is ready", || env.ok(&["logs", "srv"]).contains("ready"));
    let started = Instant::now();
    env.ok(&["stop", "srv"]);
    assert!(started.elapsed() < Duration::from_secs(5), "the stop signal was handled: no 10 s wait for SIGKILL");
    assert!(env.ok(&["logs", "srv"]).contains("got usr1"));
    assert!(env.ps_line("srv").unwrap().contains("Exited (0)"));
    assert_eq!(env.ok(&["container", "prune"]).lines().count(), 1);
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
}

/// A failed command: its exit status and its one line on stderr.
fn fails(env: &Env, args: &[&str]) -> String {
    let out = env.hutch(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn commit_makes_an_image_of_the_containers_changes_deletions_included() {
    let env = Env::new("commit");
    env.busybox_image("local/box:1");
    // Without subordinate ids the container has one user: no chown to another.
    let owner = if expect_subids() { "1000" } else { "0" };
    let script = format!("echo hi > /new; rm /etc/group; mkdir /d; echo x > /d/f; ln /d/f /d/hl; chown {owner} /d/f");
    env.ok(&["run", "--name", "changed", "-e", "MODE=test", "local/box:1", "sh", "-c", &script]);

    let id = env.ok(&["commit", "-m", "my change", "changed", "local/box:2"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let check = "cat /new; test -e /etc/group || echo group gone; stat -c '%u %h' /d/f; echo $MODE";
    let out = env.ok(&["run", "--rm", "local/box:2", "sh", "-c", check]);
    assert_eq!(
        out,
        format!("hi\ngroup gone\n{owner} 2\ntest\n"),
        "files, whiteout, owner, hardlink and env carried over"
    );
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "local/box:2"])).unwrap();
    let text = inspect.to_string();
    assert!(text.contains(&script), "the container's command is the new image's: {text}");
    assert!(env.ok(&["history", "local/box:2"]).contains("hutch commit changed"));

    env.ok(&["commit", "-c", r#"CMD ["cat", "/new"]"#, "-c", "WORKDIR /d", "changed", "local/box:3"]);
    assert_eq!(env.ok(&["run", "--rm", "local/box:3"]), "hi\n");
    assert_eq!(env.ok(&["run", "--rm", "local/box:3", "pwd"]), "/d\n");
    // The base image is untouched.
    assert_eq!(env.ok(&["run", "--rm", "local/box:1", "cat", "/etc/group"]), "root:x:0:\napp:x:1000:\n");

    // A running container's writes to a file it still holds open (still in
    // the kernel's write cache) go into the image too.
    // (No process may close a descriptor of the file: every close writes
    // the cache out.)
    let script = "exec >/open; printf '%100000s' unclosed; exec sleep 1000";
    env.ok(&["run", "-d", "--name", "busy", "local/box:1", "sh", "-c", script]);
    eventually("the container wrote", || env.ok(&["exec", "busy", "stat", "-c", "%s", "/open"]) == "100000\n");
    env.ok(&["commit", "busy", "local/box:4"]);
    assert_eq!(env.ok(&["run", "--rm", "local/box:4", "stat", "-c", "%s", "/open"]), "100000\n");
    env.ok(&["rm", "-f", "busy"]);

    let rootfs = busybox_rootfs().to_str().unwrap();
    env.ok(&["run", "--name", "plain", "--rootfs", rootfs, "true"]);
    assert!(fails(&env, &["commit", "plain", "local/x"]).contains("not an image"));
    assert!(fails(&env, &["commit", "-c", "RUN true", "changed", "local/x"]).contains("--change"));
}

#[test]
fn cp_copies_in_and_out_of_running_and_stopped_containers() {
    let env = Env::new("cp");
    env.busybox_image("local/box:1");
    let host = env.store.path().join("host");
    std::fs::create_dir_all(host.join("src/sub")).unwrap();
    std::fs::write(host.join("src/a"), "a\n").unwrap();
    std::fs::write(host.join("src/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink("a", host.join("src/link")).unwrap();
    let at = |p: &str| host.join(p).to_str().unwrap().to_string();
    env.ok(&["run", "-d", "--name", "box", "local/box:1", "sleep", "1000"]);

    // Into a running container: a directory, a directory's contents, a file over a file.
    env.ok(&["cp", &at("src"), "box:/tmp"]);
    env.ok(&["cp", &at("src/."), "box:/fresh"]);
    env.ok(&["cp", &at("src/a"), "box:/etc/passwd"]);
    let listing = "cat /tmp/src/sub/b /fresh/a /etc/passwd; readlink /fresh/link; stat -c %u /tmp/src/a";
    assert_eq!(env.ok(&["exec", "box", "sh", "-c", listing]), "b\na\na\na\n0\n", "copied files belong to root");

    // Out of it: a directory under a new name, a file into a directory.
    env.ok(&["exec", "box", "sh", "-c", "mkdir -p /out/deep; echo made > /out/deep/f"]);
    env.ok(&["cp", "box:/out", &at("got")]);
    assert_eq!(std::fs::read_to_string(host.join("got/deep/f")).unwrap(), "made\n");
    env.ok(&["cp", "box:/out/deep/f", &at("src/sub")]);
    assert_eq!(std::fs::read_to_string(host.join("src/sub/f")).unwrap(), "made\n");

    // Mistakes: one line each, nothing written.
    assert!(fails(&env, &["cp", "box:/missing", &at("x")]).contains("/missing"));
    assert!(fails(&env, &["cp", &at("src"), "box:/etc/passwd"]).contains("directory onto a file"));
    assert!(fails(&env, &["cp", &at("src/a"), "box:/no/such/dir"]).contains("must exist"));
    assert!(fails(&env, &["cp", &at("src"), &at("got")]).contains("CONTAINER:PATH"));
    assert!(!host.join("x").exists());

    // A stopped container: its root is mounted for the copy alone.
    env.ok(&["stop", "-t", "0", "box"]);
    env.ok(&["cp", &at("src/a"), "box:/while-stopped"]);
    env.ok(&["cp", "box:/tmp/src/link", &at("link-out")]);
    assert_eq!(std::fs::read_link(host.join("link-out")).unwrap(), std::path::Path::new("a"));
    env.ok(&["start", "box"]);
    assert_eq!(env.ok(&["exec", "box", "cat", "/while-stopped"]), "a\n");
    env.ok(&["rm", "-f", "box"]);
}

#[test]
fn attach_without_a_terminal_sends_input_and_returns_the_status() {
    let env = Env::new("attach-pipes");
    let script = "while read l; do echo got-$l; echo err-$l >&2; [ $l = quit ] && exit 3; done";
    env.detach(&["-i", "--name", "reader"], &["sh", "-c", script]);
    let mut attach = env.h.cmd();
    attach.env("HUTCH_ROOT", env.store.path()).args(["attach", "reader"]);
    attach
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = attach.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"hello\nquit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-hello\ngot-quit\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err-hello\nerr-quit\n", "stderr stays stderr");
    assert!(fails(&env, &["attach", "reader"]).contains("not running"));
}

#[test]
fn logs_show_foreground_runs_too() {
    let env = Env::new("fg-logs");
    let rootfs = busybox_rootfs().to_str().unwrap();
    let out =
        env.hutch(&["run", "--name", "fg", "--rootfs", rootfs, "--", "sh", "-c", "echo out; echo err >&2; exit 2"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n", "the caller still gets stdout");
    assert!(stderr(&out).ends_with("err\n"), "and stderr, apart: {}", stderr(&out));
    let logs = env.hutch(&["logs", "fg"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\n");
    assert_eq!(stderr(&logs), "err\n");
}

/// The limits themselves are enforced on a systemd host (tests/vm.rs);
/// here, without delegation, is what a user of a plain machine sees.
#[test]
fn limit_flags_without_delegation_fail_in_one_line_and_cgroups_disabled_runs_without_them() {
    let env = Env::new("limits");
    let rootfs = busybox_rootfs().to_str().unwrap();
    let run =
        |extra: &[&str], command: &[&str]| env.hutch(&[&["run"], extra, &["--rootfs", rootfs, "--"], command].concat());
    let refused = run(&["--name", "limited", "--memory", "64m", "--pids-limit", "20"], &["true"]);
    assert_eq!(refused.status.code(), Some(125));
    let line = error_line(&refused);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("hutch: --memory, --pids-limit needs a cgroup v2 subtree delegated to you, and "),
        "{line}"
    );
    assert!(line.contains("systemd-run --user --scope -p Delegate=yes"), "{line}");
    assert!(line.contains("--cgroups=disabled runs without limits"), "{line}");
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "", "nothing is left of the refused container");

    let unlimited =
        run(&["-d", "--name", "free", "--memory", "64m", "--cpus", "0.5", "--cgroups", "disabled"], &["sleep", "100"]);
    assert_success(&unlimited);
    assert!(stderr(&unlimited).contains("--cgroups=disabled: the container runs without its limits"));
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "free"])).unwrap();
    let limits = &inspect[0]["HostConfig"]["Resources"];
    assert_eq!(limits["Memory"], 64 << 20);
    assert_eq!(limits["NanoCpus"], 500_000_000);
    assert_eq!(limits["Enforced"], false);
    let stats = env.ok(&["stats", "--no-stream", "free"]);
    let row: Vec<&str> = stats.lines().nth(1).unwrap_or_default().split("   ").map(str::trim).collect();
    assert_eq!((row[1], row[2]), ("free", "--"), "no cgroup, no CPU figure: {stats}");
    env.ok(&["rm", "-f", "free"]);

    let quiet = run(&["--rm"], &["echo", "quiet"]);
    assert_success(&quiet);
    assert!(!stderr(&quiet).contains("cgroup"), "without limit flags cgroups are not mentioned: {}", stderr(&quiet));

    for (flag, value, want) in [
        ("--memory", "lots", "--memory: \"lots\" is not a size"),
        ("--memory-swap", "1g", "--memory-swap: needs --memory as well"),
        ("--cpus", "0", "--cpus: 0 is out of range"),
        ("--blkio-weight", "5", "--blkio-weight: 5 is out of range"),
        ("--cgroups", "maybe", "invalid value 'maybe' for '--cgroups <MODE>' [possible values: enabled, disabled]"),
    ] {
        let out = run(&["--rm", flag, value], &["true"]);
        assert_eq!(out.status.code(), Some(125), "{flag} {value}");
        assert!(error_line(&out).starts_with(&format!("hutch: {want}")), "{}", error_line(&out));
    }
}

#[test]
fn a_run_d_killed_at_any_moment_leaves_a_listed_container_or_nothing() {
    let env = Env::new("killed-create");
    env.busybox_image("killed/box");
    let containers = env.store.path().join("containers");
    let run_d = ["run", "-d", "killed/box", "sleep", "100"];
    // Killed at each of its first renames (the record written aside, put
    // in place, the /etc files, the Spec): the moments a half-made
    // container could be left behind.
    for nth in 1..=6 {
        let mut c = env.h.under_strace(&format!("rename:signal=KILL:when={nth}"), Follow::OwnProcess);
        let status = c.args(run_d).env("HUTCH_ROOT", env.store.path()).status();
        let status = status.expect("strace (tests/host-setup.sh installs it)");
        if nth == 1 {
            assert!(!status.success(), "strace kills hutch at its first rename: {status:?}");
        }
    }
    // Then at moments spread over the whole of `run -d`: before the
    // record, while the layer and Spec are made, while the monitor starts.
    for round in 0..24u64 {
        let mut c = env.h.cmd();
        c.env("HUTCH_ROOT", env.store.path()).args(run_d);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let mut child = c.spawn().expect("spawn hutch");
        std::thread::sleep(Duration::from_millis(round * 37 % 150));
        let _ = child.kill();
        let _ = child.wait();
    }
    let all_listed = || {
        let listed: Vec<String> = env.ok(&["ps", "-a", "-q", "--no-trunc"]).lines().map(String::from).collect();
        for dir in &directories(&containers) {
            assert!(listed.contains(dir), "containers/{dir} is in the store but ps -a does not list it: {listed:?}");
        }
        listed
    };
    // `rm -f` killed during its course (the container killed, its runtime
    // files, its directory deleted): a container stays listed or goes. At
    // its n-th deletion of a file where strace can follow its children,
    // else at moments spread over it.
    for (round, id) in all_listed().iter().enumerate() {
        if !expect_subids() {
            let mut c = env.h.under_strace(&format!("unlinkat:signal=KILL:when={}", round + 1), Follow::Children);
            let _ = c.env("HUTCH_ROOT", env.store.path()).args(["rm", "-f", id]).status();
            continue;
        }
        let mut c = env.h.cmd();
        c.env("HUTCH_ROOT", env.store.path()).args(["rm", "-f", id]);
        let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(round as u64 * 11 % 90));
        let _ = child.kill();
        let _ = child.wait();
    }
    for id in &all_listed() {
        env.ok(&["rm", "-f", id]);
    }
    let left = directories(&containers);
    assert!(left.is_empty(), "rm -f of every listed container leaves nothing: {left:?}");
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "", "and nothing is listed");
    let runtime = directories(&env.h.runtime_dir.path().join("hutch/containers"));
    assert!(runtime.is_empty(), "nor any container's runtime directory: {runtime:?}");
    let processes = wait_for_no_process_using(env.store.path());
    assert!(processes.is_empty(), "nor any process: {processes:?}");
}

#[test]
fn ps_images_and_inspect_take_go_templates() {
    let env = Env::new("format");
    let id = env.detach(&["--name", "fmt"], &["sleep", "100"]);
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]), "fmt\n");
    let line = env.ok(&["ps", "--format", "{{.ID}} {{.State}} {{upper .Names}} {{printf \"%.3s\" .Status}}"]);
    assert_eq!(line, format!("{} running FMT Up \n", &id[..12]));
    let table = env.ok(&["ps", "--format", "table {{.Names}}\\t{{.Status}}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("NAMES   STATUS"), "a header from the fields: {table}");
    assert!(lines[1].starts_with("fmt     Up "), "aligned under it: {table}");
    let json: serde_json::Value = serde_json::from_str(env.ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!((json["Names"].as_str(), json["State"].as_str()), (Some("fmt"), Some("running")));
    let pid: u32 = env.ok(&["inspect", "--format", "{{.State.Pid}}", "fmt"]).trim().parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container's host pid");
    let env_json = env.ok(&["inspect", "--format", "{{json .Config.Env}}", "fmt"]);
    assert!(env_json.starts_with('[') && env_json.contains("PATH="), "{env_json}");
    let bad = env.hutch(&["ps", "--format", "{{.Names"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(error_line(&bad).starts_with("hutch: --format \"{{.Names\": "), "{}", error_line(&bad));
    // Filters: one key's values are alternatives, keys must all match.
    env.detach(&["--name", "done"], &["true"]);
    let names = |filters: &[&str]| {
        let args: Vec<&str> = ["ps", "--format", "{{.Names}}"].iter().chain(filters).copied().collect();
        let mut names: Vec<String> = env.ok(&args).lines().map(String::from).collect();
        names.sort();
        names
    };
    let wait_exited = Instant::now() + Duration::from_secs(10);
    while names(&["--filter", "status=exited"]).is_empty() && Instant::now() < wait_exited {}
    assert_eq!(names(&["--filter", "status=exited"]), ["done"], "a state filter shows stopped ones without -a");
    assert_eq!(names(&["-a", "--filter", "name=fm"]), ["fmt"]);
    assert_eq!(names(&["-a", "--filter", "exited=0"]), ["done"]);
    assert_eq!(names(&["-a", "--filter", "status=running", "--filter", "status=exited"]), ["done", "fmt"]);
    assert_eq!(names(&["-a", "--filter", "status=running", "--filter", "name=done"]), Vec::<String>::new());
    assert_eq!(names(&["--last", "1"]), ["done"], "the one created last, whatever its state");
    assert_eq!(names(&["-l"]), ["done"]);
    assert_eq!(names(&["-n", "2"]), ["done", "fmt"]);
    let bad = env.hutch(&["ps", "--filter", "colour=red"]);
    assert_eq!(bad.status.code(), Some(125));
    assert_eq!(
        error_line(&bad),
        "hutch: --filter colour=red: the filters here are name, id, status, exited, ancestor, volume, label, health"
    );
    env.ok(&["stop", "-t", "0", "fmt"]);
    // system prune: every stopped container, and what no image needs.
    let pruned = env.ok(&["system", "prune", "-f"]);
    assert!(pruned.contains(&id) && pruned.contains("unused layers and blobs"), "{pruned}");
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");

    env.busybox_image("format/box:7");
    env.ok(&["tag", "format/box:7", "other/thing:1"]);
    let images =
        env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{len .ID}}", "--filter", "reference=format/*"]);
    assert_eq!(images, "docker.io/format/box:7 12\n");
    assert_eq!(env.ok(&["images", "-q", "--filter", "dangling=true"]), "", "every image here has a name");
}

#[test]
fn named_volumes_outlive_containers_and_go_only_when_unused() {
    let env = Env::new("volumes");
    let rootfs = busybox_rootfs().to_str().unwrap();
    let run = |args: &[&str]| {
        let all: Vec<&str> = ["run", "--rm"].iter().chain(args).copied().collect();
        env.hutch(&all)
    };
    assert_eq!(env.ok(&["volume", "create", "data"]), "data\n");
    let again = env.hutch(&["volume", "create", "data"]);
    assert_eq!((again.status.code(), error_line(&again)), (Some(125), "hutch: volume data exists already".into()));
    // One container writes, the next reads; read-only is honoured.
    assert_success(&run(&["-v", "data:/data", "--rootfs", rootfs, "--", "sh", "-c", "echo kept > /data/f"]));
    let read = run(&["-v", "data:/data:ro", "--rootfs", rootfs, "--", "cat", "/data/f"]);
    assert_eq!(String::from_utf8_lossy(&read.stdout), "kept\n");
    assert!(!run(&["-v", "data:/data:ro", "--rootfs", rootfs, "--", "sh", "-c", "echo x > /data/g"]).status.success());
    // run makes a volume it does not find, as Docker does.
    assert_success(&run(&["-v", "fresh:/x", "--rootfs", rootfs, "--", "true"]));
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "data\nfresh\n");
    let mountpoint = env.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]);
    let mountpoint = std::path::Path::new(mountpoint.trim());
    assert!(mountpoint.starts_with(env.store.path()), "{}", mountpoint.display());
    assert_eq!(std::fs::read_to_string(mountpoint.join("f")).unwrap(), "kept\n");
    // In use, even by a stopped container: kept.
    env.detach(&["--name", "user", "-v", "data:/data"], &["true"]);
    let refused = env.hutch(&["volume", "rm", "data"]);
    assert_eq!(error_line(&refused), "hutch: volume data is in use by container user: remove the container first");
    assert_eq!(env.ok(&["ps", "-a", "--filter", "volume=data", "--format", "{{.Names}}"]), "user\n");
    assert_eq!(env.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]), "fresh\n");
    assert_eq!(env.ok(&["volume", "prune", "-f"]), "fresh\n");
    env.ok(&["rm", "-f", "user"]);
    assert_eq!(env.ok(&["volume", "rm", "data"]), "data\n");
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");
    let left = std::fs::read_dir(env.store.path().join("volumes")).unwrap().count();
    assert_eq!(left, 0, "nothing of the volumes is left in the store");
    let missing = env.hutch(&["volume", "inspect", "data"]);
    assert_eq!(error_line(&missing), "hutch: no such volume: data");
}

#[test]
fn a_rm_container_whose_run_was_killed_is_removed_by_the_next_listing() {
    let env = Env::new("killed-rm");
    let mut c = env.h.cmd();
    c.env("HUTCH_ROOT", env.store.path()).args(["run", "--rm", "--rootfs"]).arg(busybox_rootfs());
    let mut run =
        c.args(["--", "/bin/sh", "-c", "echo up; sleep 100"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 3];
    std::io::Read::read_exact(run.stdout.as_mut().unwrap(), &mut first).unwrap();
    // Killed with its monitor (and so its container): nothing removed it.
    let _ = run.kill();
    let _ = run.wait();
    let containers = env.store.path().join("containers");
    assert_eq!(wait_for_no_process_using(env.store.path()), Vec::<String>::new(), "its monitor died with it");
    assert_eq!(directories(&containers).len(), 1, "the killed run left its container");
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "", "ps -a removes it instead of listing it");
    assert_eq!(directories(&containers), Vec::<String>::new());
}

/// The names of the directories in `dir`.
fn directories(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let entries = entries.flatten();
    entries
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != ".names")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// `inspect --format TEMPLATE NAME`, trimmed.
fn inspected(env: &Env, template: &str, name: &str) -> String {
    env.ok(&["inspect", "--format", template, name]).trim().to_string()
}

#[test]
fn restart_policies_start_the_process_again_until_the_count_or_a_stop() {
    let env = Env::new("restart");
    // on-failure:2: three runs in all, then it stays exited with its status.
    env.detach(&["--name", "fails", "--restart", "on-failure:2"], &["sh", "-c", "echo run; exit 3"]);
    eventually("two restarts, then the end", || {
        inspected(&env, "{{.State.Status}} {{.RestartCount}}", "fails") == "exited 2"
    });
    assert_eq!(env.ok(&["logs", "fails"]), "run\nrun\nrun\n", "one log across the restarts");
    assert_eq!(
        inspected(&env, "{{.State.ExitCode}} {{json .HostConfig.RestartPolicy}}", "fails"),
        r#"3 {"MaximumRetryCount":2,"Name":"on-failure"}"#
    );
    // on-failure leaves a clean end alone.
    env.detach(&["--name", "fine", "--restart", "on-failure"], &["true"]);
    eventually("the clean end", || inspected(&env, "{{.State.Status}}", "fine") == "exited");
    assert_eq!(inspected(&env, "{{.RestartCount}}", "fine"), "0");

    // always: restarted after every end, until stopped; then it stays down.
    env.detach(&["--name", "loop", "--restart", "always"], &["sh", "-c", "echo up; sleep 0.2"]);
    eventually("two restarts", || inspected(&env, "{{.RestartCount}}", "loop").parse::<u32>().unwrap() >= 2);
    let status = env.ok(&["ps", "--filter", "name=loop", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Up ") || status.starts_with("Restarting (0) "), "{status}");
    env.ok(&["stop", "-t", "1", "loop"]);
    let stopped = inspected(&env, "{{.State.Status}} {{.RestartCount}}", "loop");
    assert!(stopped.starts_with("exited "), "{stopped}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspected(&env, "{{.State.Status}} {{.RestartCount}}", "loop"), stopped, "a stop is for good");
    // start begins again, and kill ends it for good too.
    env.ok(&["start", "loop"]);
    eventually("running again", || inspected(&env, "{{.State.Status}}", "loop") != "exited");
    env.ok(&["kill", "loop"]);
    eventually("killed", || inspected(&env, "{{.State.Status}}", "loop") == "exited");
    let killed = inspected(&env, "{{.RestartCount}}", "loop");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(inspected(&env, "{{.State.Status}} {{.RestartCount}}", "loop"), format!("exited {killed}"));

    // In the foreground: the first run's output and status, restarts after.
    let rootfs = busybox_rootfs().to_str().unwrap();
    let fg = env.hutch(&[
        "run",
        "--name",
        "fg",
        "--restart",
        "on-failure:1",
        "--rootfs",
        rootfs,
        "--",
        "sh",
        "-c",
        "echo fg; exit 4",
    ]);
    assert_eq!((fg.status.code(), String::from_utf8_lossy(&fg.stdout).into_owned()), (Some(4), "fg\n".into()));
    eventually("one restart", || inspected(&env, "{{.State.Status}} {{.RestartCount}}", "fg") == "exited 1");

    for (flags, message) in [
        (
            &["--restart", "on-failure:-1"][..],
            "hutch: invalid --restart \"on-failure:-1\": the retry count must be a whole number of at least 0",
        ),
        (
            &["--restart", "sometimes"][..],
            "hutch: invalid --restart \"sometimes\": use no, on-failure[:MAX-RETRIES], always or unless-stopped",
        ),
        (
            &["--restart", "always", "--rm"][..],
            "hutch: --restart and --rm conflict: a container removed when it ends cannot restart",
        ),
    ] {
        let args: Vec<&str> = ["run"].iter().chain(flags).chain(&["--rootfs", rootfs, "true"]).copied().collect();
        let bad = env.hutch(&args);
        assert_eq!((bad.status.code(), error_line(&bad)), (Some(125), message.to_string()));
    }
    env.ok(&["rm", "-f", "fails", "fine", "loop", "fg"]);
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert!(wait_for_no_process_using(env.store.path()).is_empty());
}

#[test]
fn healthchecks_run_every_interval_and_ps_inspect_and_healthcheck_run_show_them() {
    let env = Env::new("health");
    let check = [
        "--health-cmd",
        "test -e /tmp/ok || { echo missing; exit 1; }",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
    ];
    let flags: Vec<&str> = ["--name", "svc"].iter().chain(&check).copied().collect();
    env.detach(&flags, &["sleep", "100"]);
    let status = |name: &str| env.ok(&["ps", "-a", "--filter", &format!("name={name}"), "--format", "{{.Status}}"]);
    assert!(status("svc").contains("(starting)"), "{}", status("svc"));
    eventually("unhealthy after two failures", || status("svc").ends_with("(unhealthy)\n"));
    let health: serde_json::Value = serde_json::from_str(&inspected(&env, "{{json .State.Health}}", "svc")).unwrap();
    assert_eq!(health["Status"], "unhealthy");
    assert!(health["FailingStreak"].as_u64().unwrap() >= 2, "{health}");
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["ExitCode"].as_i64(), last["Output"].as_str()), (Some(1), Some("missing\n")));
    assert_eq!(env.ok(&["ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"]), "svc\n");

    env.ok(&["exec", "svc", "touch", "/tmp/ok"]);
    eventually("healthy again after one pass", || status("svc").ends_with("(healthy)\n"));
    assert_eq!(inspected(&env, "{{.State.Health.FailingStreak}}", "svc"), "0");
    assert_eq!(env.hutch(&["healthcheck", "run", "svc"]).status.code(), Some(0));
    env.ok(&["exec", "svc", "rm", "/tmp/ok"]);
    let failed = env.hutch(&["healthcheck", "run", "svc"]);
    assert_eq!(
        (failed.status.code(), String::from_utf8_lossy(&failed.stdout).into_owned()),
        (Some(1), "unhealthy\n".into())
    );

    // A check that takes too long is killed and counts as a failure.
    env.detach(
        &[
            "--name",
            "slow",
            "--health-cmd",
            "sleep 5",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
        ],
        &["sleep", "100"],
    );
    eventually("unhealthy by timeout", || status("slow").ends_with("(unhealthy)\n"));
    let last = inspected(&env, "{{json (index .State.Health.Log 0)}}", "slow");
    assert!(last.contains("\"ExitCode\":-1") && last.contains("exceeded timeout"), "{last}");

    let plain = env.detach(&["--name", "plain"], &["sleep", "100"]);
    let none = env.hutch(&["healthcheck", "run", &plain]);
    assert_eq!(
        error_line(&none),
        "hutch: container plain has no healthcheck: give one with --health-cmd when creating it"
    );
    let bad = env.hutch(&["run", "--health-interval", "5", "--rootfs", busybox_rootfs().to_str().unwrap(), "true"]);
    assert_eq!(error_line(&bad), "hutch: --health-interval \"5\": give a duration such as 30s, 1m30s or 500ms");
    env.ok(&["rm", "-f", "svc", "slow", "plain"]);
    assert!(wait_for_no_process_using(env.store.path()).is_empty(), "no checker left behind");
}

#[test]
fn an_images_healthcheck_is_used_unless_the_run_replaces_or_disables_it() {
    let reg = Registry::start("life-health");
    let mut image = Image::new(vec![Layer::gzip(busybox_layer())], &["sleep", "100"]);
    image.healthcheck =
        serde_json::json!({"Test": ["CMD-SHELL", "echo from image"], "Interval": 200_000_000u64, "Retries": 1});
    reg.push_image("test/health", "1", &image);
    let name = format!("{}/test/health:1", reg.addr);
    let env = Env::new("image-health");
    env.ok(&["run", "-d", "--name", "img", &name]);
    eventually("the image's check passes", || inspected(&env, "{{.State.Health.Status}}", "img") == "healthy");
    assert!(inspected(&env, "{{json .State.Health.Log}}", "img").contains("from image"));
    // --health-cmd replaces the test; the image's interval stays.
    env.ok(&["run", "-d", "--name", "mine", "--health-cmd", "exit 1", &name]);
    eventually("the run's check fails", || inspected(&env, "{{.State.Health.Status}}", "mine") == "unhealthy");
    assert_eq!(
        inspected(&env, "{{json .Config.Healthcheck}}", "mine"),
        r#"{"Interval":200000000,"Retries":1,"StartPeriod":0,"Test":["CMD-SHELL","exit 1"],"Timeout":0}"#
    );
    env.ok(&["run", "-d", "--name", "off", "--no-healthcheck", &name]);
    assert_eq!(inspected(&env, "{{json .State.Health}}", "off"), "null");
    assert!(!env.ok(&["ps", "--filter", "name=off", "--format", "{{.Status}}"]).contains('('));
    env.ok(&["rm", "-f", "img", "mine", "off"]);
}

#[test]
fn labels_env_files_sizes_disk_usage_and_system_prune_and_reset() {
    let env = Env::new("system");
    let env_file = env.store.path().join("app.env");
    std::fs::write(&env_file, "# settings\nA=from-file\n\nB=\"quoted\"\n").unwrap();
    env.busybox_image("local/sys:1");
    let out = env.ok(&[
        "run",
        "--name",
        "big",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "A=from-flag",
        "--label",
        "team=data",
        "-l",
        "tier",
        "-v",
        "keep:/data",
        "local/sys:1",
        "sh",
        "-c",
        "echo $A $B; head -c 300000 /dev/zero > /big",
    ]);
    assert_eq!(out, "from-flag \"quoted\"\n", "-e wins over the file; quotes are kept, as Docker does");
    let names = |filter: &str| env.ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    assert_eq!(names("label=team=data"), "big\n");
    assert_eq!(names("label=tier"), "big\n");
    assert_eq!(names("label=team=web"), "");
    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Labels}}"]), "team=data,tier=\n");
    assert_eq!(inspected(&env, "{{json .Config.Labels}}", "big"), r#"{"team":"data","tier":""}"#);
    env.ok(&["commit", "-c", "LABEL team=data", "big", "local/labelled:1"]);
    let labelled = |filter: &str| env.ok(&["images", "--filter", filter, "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(labelled("label=team=data"), "docker.io/local/labelled:1\n");
    assert_eq!(labelled("label=team"), "docker.io/local/labelled:1\n");
    assert_eq!(labelled("label=team=web"), "");
    env.ok(&["rmi", "local/labelled:1"]);
    let size = env.ok(&["ps", "-a", "-s", "--format", "{{.Size}}"]);
    assert!(size.starts_with("300.0 kB (virtual "), "{size}");
    assert!(env.ok(&["ps", "-a", "-s"]).lines().next().unwrap().ends_with("SIZE"));

    let df = env.ok(&["system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Active}}"]);
    // As Docker: a volume any container uses, even a stopped one, is active.
    assert_eq!(df, "Images: 1 1\nContainers: 1 0\nLocal Volumes: 1 1\nBuild Cache: 0 0\n");
    let table = env.ok(&["system", "df"]);
    assert!(table.starts_with("TYPE") && table.contains("RECLAIMABLE"), "{table}");
    // Without -a the named image stays; with -a and --volumes all goes.
    env.ok(&["system", "prune", "-f"]);
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "keep\n");
    env.ok(&["system", "prune", "-a", "--volumes", "-f"]);
    assert_eq!((env.ok(&["images", "-q"]), env.ok(&["volume", "ls", "-q"])), (String::new(), String::new()));

    // reset: everything, running containers included, after asking.
    env.busybox_image("local/sys:2");
    env.ok(&["run", "-d", "--name", "up", "-v", "vol:/v", "local/sys:2", "sleep", "100"]);
    let unasked = env.hutch(&["system", "reset"]);
    assert_eq!(unasked.status.code(), Some(125));
    assert!(error_line(&unasked).contains("give -f to reset without asking"), "{}", error_line(&unasked));
    env.ok(&["system", "reset", "-f"]);
    assert!(wait_for_no_process_using(env.store.path()).is_empty());
    assert_eq!(
        (env.ok(&["ps", "-aq"]), env.ok(&["images", "-q"]), env.ok(&["volume", "ls", "-q"])),
        (String::new(), String::new(), String::new())
    );
}

#[test]
fn volumes_are_filled_from_the_image_mounted_by_mount_shared_by_volumes_from_and_removed_by_rm_v() {
    let reg = Registry::start("life-vols");
    let seeded = TarBuilder::new()
        .dir("data/")
        .file_mode("data/seed", b"seed\n", 0o640, 1000, 1000)
        .dir("cache/")
        .file("cache/c", b"cached\n")
        .finish();
    let mut image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(seeded)], &["sleep", "100"]);
    image.volumes = vec!["/cache".into()];
    reg.push_image("test/vols", "1", &image);
    let name = format!("{}/test/vols:1", reg.addr);
    let env = Env::new("vols");
    let volumes = || env.ok(&["volume", "ls", "-q"]).lines().map(String::from).collect::<Vec<_>>();
    let run = |args: &[&str], script: &str| {
        let all: Vec<&str> =
            ["run", "--rm"].iter().chain(args).chain(&[name.as_str(), "sh", "-c", script]).copied().collect();
        env.ok(&all)
    };

    // A new volume gets the image's files there, owners and modes kept.
    let owner = if expect_subids() { "1000:1000" } else { "0:0" };
    assert_eq!(
        run(&["-v", "seeded:/data"], "cat /data/seed; stat -c %u:%g:%a /data/seed"),
        format!("seed\n{owner}:640\n")
    );
    // Not empty any more: left as the containers made it.
    run(&["-v", "seeded:/data"], "rm /data/seed; echo mine > /data/own");
    assert_eq!(run(&["-v", "seeded:/data"], "ls /data"), "own\n");
    assert_eq!(run(&["-v", "bare:/data:nocopy"], "ls /data"), "", "nocopy: the volume stays empty");
    assert_eq!(
        volumes(),
        ["bare", "seeded"],
        "--rm removes no named volume, and the image's VOLUME's anonymous one went"
    );

    // --mount, in its three kinds.
    let host = env.store.path().join("host-dir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("h"), "from host\n").unwrap();
    let bind = format!("type=bind,src={},dst=/h,readonly", host.display());
    let out = run(
        &["--mount", "type=volume,src=m1,dst=/m", "--mount", &bind, "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"],
        "echo x > /m/f && cat /h/h && (echo y > /h/g 2>/dev/null || echo read-only) && grep ' /t ' /proc/mounts | cut -d' ' -f3",
    );
    assert_eq!(out, "from host\nread-only\ntmpfs\n");
    let bad = env.hutch(&["run", "--mount", "type=bind,dst=/x", &name]);
    assert_eq!(error_line(&bad), "hutch: invalid --mount \"type=bind,dst=/x\": a bind needs a source (src=/host/path)");

    // Anonymous volumes (-v /path, the image's VOLUME), shared by --volumes-from.
    env.ok(&["run", "-d", "--name", "owner", "-v", "/scratch", "-v", "seeded:/data", &name]);
    let binds: Vec<String> = serde_json::from_str(&inspected(&env, "{{json .HostConfig.Binds}}", "owner")).unwrap();
    assert_eq!(binds.len(), 3, "{binds:?}");
    assert_eq!(volumes().len(), 5, "two anonymous ones: {:?}", volumes());
    env.ok(&["exec", "owner", "sh", "-c", "echo shared > /scratch/s"]);
    let out = run(
        &["--volumes-from", "owner:ro"],
        "cat /scratch/s /cache/c /data/own; touch /scratch/t 2>/dev/null || echo read-only",
    );
    assert_eq!(out, "shared\ncached\nmine\nread-only\n");
    env.ok(&["stop", "-t", "0", "owner"]);
    env.ok(&["rm", "-v", "owner"]);
    assert_eq!(volumes(), ["bare", "m1", "seeded"], "rm -v removes the anonymous volumes only");
}
