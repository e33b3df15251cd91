//! `hutch run -it`, driven through a real pseudo-terminal as a person at a
//! terminal would drive it.

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
        let size = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut cmd = h.cmd();
        cmd.args(["run", "--rm"]).args(flags).arg("--rootfs").arg(busybox_rootfs()).arg("--").args(command);
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
