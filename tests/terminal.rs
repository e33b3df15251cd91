//! `hutch run -it`, `exec -it`, `attach` and `login`'s prompts, driven
//! through a real pseudo-terminal as a person at a terminal would drive them.
// The test drives hutch as a shell or a caller would, with pre-exec set-up
// (descriptors, a controlling terminal) that has no safe wrapper: each
// unsafe block says why it is sound.
#![allow(unsafe_code)]

mod common;

use common::*;
use nix::pty::{openpty, Winsize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

nix::ioctl_write_int_bad!(make_controlling_terminal, libc::TIOCSCTTY);
nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);

struct Session {
    child: Child,
    master: std::fs::File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Session {
    /// `hutch run --rm FLAGS --rootfs BUSYBOX -- COMMAND` on a new terminal.
    fn start(h: &Hutch, rows: u16, cols: u16, flags: &[&str], command: &[&str]) -> Session {
        let mut cmd = h.cmd();
        cmd.args(["run", "--rm"]).args(flags).arg("--rootfs").arg(busybox_rootfs()).arg("--").args(command);
        Session::spawn(cmd, rows, cols)
    }

    /// `cmd` on a new terminal of `rows` × `cols`, as its controlling terminal.
    fn spawn(mut cmd: std::process::Command, rows: u16, cols: u16) -> Session {
        let size = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; they make the pty
        // the controlling terminal of hutch, as a login shell's would be.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                make_controlling_terminal(0, 0).map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn hutch");
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Session { child, master, output, seen: String::new() }
    }

    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.seen.contains(want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("never saw {want:?}; the terminal showed:\n{}", self.seen),
            }
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: the master is open; ws is a valid winsize.
        unsafe { set_window_size(self.master.as_raw_fd(), &ws) }.unwrap();
    }

    fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "hutch did not exit; the terminal showed:\n{}", self.seen);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn interactive_shell_on_a_terminal() {
    let h = Hutch::new("tty");
    let mut s = Session::start(&h, 33, 101, &["-it"], &["/bin/sh"]);
    s.send("tty; stty size; echo \"answer-$((6*7))\"\n");
    s.expect("/dev/pts/0");
    s.expect("33 101");
    s.expect("answer-42");
    // Window-size changes reach the container.
    s.resize(50, 132);
    std::thread::sleep(Duration::from_millis(300));
    s.send("stty size\n");
    s.expect("50 132");
    // Ctrl-C interrupts the foreground command inside, not hutch.
    s.send("sleep 30\n");
    std::thread::sleep(Duration::from_millis(500));
    s.send("\x03");
    s.send("echo after-sleep-$?\n");
    s.expect("after-sleep-130");
    s.send("exit 5\n");
    assert_eq!(s.exit_code(), Some(5));
}

#[test]
fn terminal_output_is_complete_when_the_command_ends() {
    let h = Hutch::new("tty-drain");
    let mut s = Session::start(&h, 24, 80, &["-it"], &["/bin/sh", "-c", "seq 1 3000; echo last-line"]);
    s.expect("last-line");
    assert_eq!(s.exit_code(), Some(0));
}

#[test]
fn without_t_the_container_never_holds_the_callers_terminal() {
    // Attack: a descriptor of the caller's terminal lets a container change
    // its modes (stty -echo), resize it, or read keys meant for others.
    // Without -t hutch hands the container pipes and copies them.
    let h = Hutch::new("no-tty");
    let script = "for n in 0 1 2; do [ -t $n ] && echo fd$n-is-a-terminal || echo fd$n-not-a-terminal; done; \
                  stty -echo 2>/dev/null && echo stty-changed-it; \
                  read line; echo got-$line; seq 1 2000 >&2; echo stderr-end >&2";
    let mut s = Session::start(&h, 24, 80, &["-i"], &["/bin/sh", "-c", script]);
    s.expect("fd0-not-a-terminal");
    s.expect("fd1-not-a-terminal");
    s.expect("fd2-not-a-terminal");
    s.send("hello\n");
    s.expect("got-hello");
    s.expect("stderr-end");
    assert!(!s.seen.contains("stty-changed-it"), "the container changed the caller's terminal:\n{}", s.seen);
    assert!(!s.seen.contains("is-a-terminal"), "the container got the caller's terminal:\n{}", s.seen);
    assert_eq!(s.exit_code(), Some(0));
}

/// hutch with its own store, on a terminal: `hutch ARGS`.
fn session(env: &Env, rows: u16, cols: u16, args: &[&str]) -> Session {
    let mut cmd = env.h.cmd();
    cmd.env("HUTCH_ROOT", env.store.path()).args(args);
    Session::spawn(cmd, rows, cols)
}

#[test]
fn exec_it_gives_a_shell_on_a_new_terminal_inside_the_running_container() {
    let env = Env::new("exec-it");
    let rootfs = busybox_rootfs().to_str().unwrap();
    env.ok(&["run", "-d", "--name", "box", "--rootfs", rootfs, "--", "sleep", "1000"]);
    let mut s = session(&env, 30, 90, &["exec", "-it", "box", "/bin/sh"]);
    s.send("tty; stty size; echo \"pid-$$\"\n");
    s.expect("/dev/pts/");
    s.expect("30 90");
    s.expect("pid-2"); // the container's PID namespace: its first process is 1
    s.send("exit 7\n");
    assert_eq!(s.exit_code(), Some(7));
    env.ok(&["rm", "-f", "box"]);
}

#[test]
fn attach_joins_a_detached_terminal_and_ctrl_p_ctrl_q_leaves_it_running() {
    let env = Env::new("attach");
    let rootfs = busybox_rootfs().to_str().unwrap();
    env.ok(&["run", "-dit", "--name", "shell", "--rootfs", rootfs, "--", "/bin/sh"]);
    let mut s = session(&env, 40, 100, &["attach", "shell"]);
    s.send("stty size; echo \"answer-$((6*7))\"\n");
    s.expect("40 100");
    s.expect("answer-42");
    s.resize(45, 120);
    std::thread::sleep(Duration::from_millis(300));
    s.send("stty size\n");
    s.expect("45 120");
    s.send("\x10\x11");
    assert_eq!(s.exit_code(), Some(0), "detaching is not an error");
    assert!(env.ok(&["ps"]).contains("shell"), "the container runs on after a detach");

    let mut s = session(&env, 24, 80, &["attach", "shell"]);
    s.send("echo back-again\n");
    s.expect("back-again");
    s.send("exit 4\n");
    assert_eq!(s.exit_code(), Some(4), "attach returns the container's status");
    assert!(env.ok(&["ps", "-a"]).contains("Exited (4)"));
    assert!(env.ok(&["logs", "shell"]).contains("answer-42"), "the log has what was shown");
    env.ok(&["rm", "shell"]);
}

#[test]
fn login_asks_for_the_user_and_the_password_without_echoing_it() {
    use common::registry::{Registry, SECRET_BCRYPT};
    let reg = Registry::start_with_login("tty-login", "tester", "hutch-secret", SECRET_BCRYPT);
    let env = Env::new("tty-login");
    let auth_file = env.store.path().join("auth.json");
    let mut cmd = env.h.cmd();
    cmd.env("HUTCH_ROOT", env.store.path()).env("REGISTRY_AUTH_FILE", &auth_file).args(["login", &reg.addr]);
    let mut s = Session::spawn(cmd, 24, 80);
    s.expect("Username: ");
    s.send("tester\n");
    s.expect("Password: ");
    s.send("hutch-secret\n");
    s.expect("Login Succeeded");
    assert!(!s.seen.contains("hutch-secret"), "the password was echoed:\n{}", s.seen);
    assert_eq!(s.exit_code(), Some(0));
    assert!(std::fs::read_to_string(&auth_file).unwrap().contains(&reg.addr));
}

#[test]
fn pull_on_a_terminal_shows_a_progress_bar_per_layer() {
    use common::registry::{busybox_layer, sha256, Image, Layer, Registry};
    let reg = Registry::start("tty-pull");
    let layer = Layer::gzip(busybox_layer());
    let digest = sha256(&layer.blob);
    reg.push_image("test/box", "1", &Image::new(vec![layer], &["true"]));
    let env = Env::new("tty-pull");
    let mut cmd = env.h.cmd();
    let name = format!("{}/test/box:1", reg.addr);
    cmd.env("HUTCH_ROOT", env.store.path()).env("TERM", "xterm").args(["pull", &name]);
    let mut s = Session::spawn(cmd, 24, 120);
    s.expect(&digest["sha256:".len().."sha256:".len() + 12]); // the layer's short digest
    s.expect("[==============================]");
    s.expect("done");
    assert_eq!(s.exit_code(), Some(0));
}
