//! User-mode networking with real slirp4netns and pasta, as the
//! unprivileged user. Only loopback addresses and addresses inside the
//! namespaces hutch makes are used: nothing leaves the machine.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DRIVERS: [&str; 2] = ["slirp4netns", "pasta"];

/// A busybox rootfs with /bin/udp (tests/probes/udp.c), one per test process.
fn udp_rootfs() -> &'static std::path::Path {
    static ROOTFS: std::sync::OnceLock<(Scratch, std::path::PathBuf)> = std::sync::OnceLock::new();
    let (_, rootfs) = ROOTFS.get_or_init(|| {
        let dir = Scratch::new("udp-rootfs");
        let rootfs = rootfs_with_probe(&dir, "udp", include_str!("probes/udp.c"));
        (dir, rootfs)
    });
    rootfs
}

fn free_port() -> u16 {
    // A port both TCP and UDP have free right now.
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A background container whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(h: &Hutch, extra: &[&str], script: &str) -> Running {
        let mut cmd = h.cmd();
        cmd.args(["run", "--rm", "--rootfs"]).arg(udp_rootfs()).args(extra).args(["--", "/bin/sh", "-c", script]);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running { child, lines }
    }

    fn expect_line(&self, want: &str) {
        let line = self.lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no line {want:?}"));
        assert_eq!(line, want);
    }

    /// The processes below hutch (monitor, helper, container), by name.
    fn descendants(&self) -> Vec<(u32, String)> {
        let mut found = Vec::new();
        let mut queue = vec![self.child.id()];
        while let Some(pid) = queue.pop() {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                let name = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                found.push((child, name.trim().to_string()));
                queue.push(child);
            }
        }
        found
    }

    fn helper_pid(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((pid, _)) =
                self.descendants().into_iter().find(|(_, n)| n == "slirp4netns" || n.starts_with("passt"))
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "no helper below hutch: {:?}", self.descendants());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait(mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a TCP server at `port` says, once it answers with something.
fn tcp_greeting(port: u16) -> String {
    let mut said = String::new();
    eventually(&format!("127.0.0.1:{port} answers"), || {
        said.clear();
        TcpStream::connect(("127.0.0.1", port))
            .is_ok_and(|mut s| s.read_to_string(&mut said).is_ok() && !said.is_empty())
    });
    said
}

fn gone(pid: u32) -> bool {
    // A zombie counts as gone: it holds no ports.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

#[test]
fn published_tcp_and_udp_ports_reach_the_container() {
    for driver in DRIVERS {
        let h = Hutch::new(&format!("publish-{driver}"));
        let (tcp, udp) = (free_port(), free_port());
        let publish = [format!("127.0.0.1:{tcp}:8080"), format!("127.0.0.1:{udp}:9090/udp")];
        let c = Running::start(
            &h,
            &["--network", driver, "-p", &publish[0], "-p", &publish[1]],
            "echo tcp-hello | nc -l -p 8080 & udp listen 9090",
        );
        let helper = c.helper_pid();
        assert_eq!(tcp_greeting(tcp), "tcp-hello\n", "{driver}");
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while rx.try_recv().is_err() {
                let _ = sender.send_to(b"udp-hello", ("127.0.0.1", udp));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        c.expect_line("listening");
        c.expect_line("got-udp-hello");
        let _ = tx.send(());
        assert_eq!(c.wait(), Some(0), "{driver}");
        // The helper ended with the container and its ports are free.
        assert!(gone(helper), "{driver} helper {helper} outlived its container");
        assert!(port_is_free(tcp) && UdpSocket::bind(("127.0.0.1", udp)).is_ok(), "{driver} left a port bound");
    }
}

#[test]
fn a_published_port_cannot_be_taken_twice() {
    for driver in DRIVERS {
        let h = Hutch::new(&format!("taken-{driver}"));
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:80");
        let first = Running::start(&h, &["--network", driver, "-p", &publish], "echo up; sleep 30");
        first.expect_line("up");
        let out = h.run(&["--network", driver, "-p", &publish], &["true"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            error_line(&out).starts_with(&format!("hutch: host port 127.0.0.1:{port}/tcp is already in use")),
            "{driver}: {}",
            error_line(&out)
        );
        let mut first = first;
        let _ = first.child.kill();
        let _ = first.child.wait();
    }
}

#[test]
fn killing_hutch_takes_the_helper_and_its_ports_down() {
    for driver in DRIVERS {
        let h = Hutch::new(&format!("kill-{driver}"));
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:80");
        let mut c = Running::start(&h, &["--network", driver, "-p", &publish], "echo up; sleep 60");
        c.expect_line("up");
        let below = c.descendants();
        let helper = c.helper_pid();
        assert!(!port_is_free(port), "{driver} does not hold the published port");
        c.child.kill().unwrap(); // SIGKILL: no chance to clean up
        c.child.wait().unwrap();
        eventually(&format!("every process below hutch is gone ({below:?})"), || below.iter().all(|(p, _)| gone(*p)));
        assert!(gone(helper));
        eventually("the port is free", || port_is_free(port));
    }
}

#[test]
fn the_container_reaches_host_loopback_only_when_allowed() {
    // Servers on the host's loopback: TCP greets, UDP echoes.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in tcp.incoming().map_while(Result::ok) {
            let _ = s.write_all(b"host-tcp\n");
        }
    });
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&[b"echo-", &buf[..n]].concat(), from);
        }
    });
    let h = Hutch::new("host-loopback");
    let probe = |target: &str| {
        format!("nc -w 3 {target} {tcp_port} </dev/null; udp ask {target} {udp_port} udp-ping; echo done")
    };
    let sh = |network: &str, script: &str| {
        let out = h.run_in(udp_rootfs(), &["--network", network], &["/bin/sh", "-c", script]);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // slirp4netns: the host is 10.0.2.2, named host.containers.internal.
    let named = format!("host=$(grep -w host.containers.internal /etc/hosts | cut -f1); {}", probe("$host"));
    let out = sh("slirp4netns:allow_host_loopback=true", &named);
    assert_eq!(out, "host-tcp\necho-udp-ping\ndone\n");
    let out = sh("slirp4netns", &probe("10.0.2.2"));
    assert_eq!(out, "done\n", "host loopback must be closed by default");
    // pasta: -T/-U forward the container's loopback ports to the host's.
    let allow = format!("pasta:-T,{tcp_port},-U,{udp_port}");
    let out = sh(&allow, &probe("127.0.0.1"));
    assert_eq!(out, "host-tcp\necho-udp-ping\ndone\n");
    let out = sh("pasta", &probe("127.0.0.1"));
    assert_eq!(out, "done\n", "host loopback must be closed by default");
}

const PING_PROBE: &str = r#"
#include <arpa/inet.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
/* ping 127.0.0.1 with an ICMP datagram socket: no CAP_NET_RAW needed,
   only a group inside net.ipv4.ping_group_range. */
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (s < 0) { perror("socket"); return 1; }
    struct icmphdr req = { .type = ICMP_ECHO, .un.echo.sequence = htons(1) };
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (sendto(s, &req, sizeof req, 0, (struct sockaddr *)&to, sizeof to) < 0) { perror("sendto"); return 1; }
    struct icmphdr reply;
    if (recv(s, &reply, sizeof reply, 0) < 0) { perror("recv"); return 1; }
    printf(reply.type == ICMP_ECHOREPLY ? "pong\n" : "other\n");
    return 0;
}
"#;

#[test]
fn names_resolve_and_ping_works_without_raw_sockets() {
    let dir = Scratch::new("ping");
    let rootfs = rootfs_with_probe(&dir, "icmp-ping", PING_PROBE);
    let h = Hutch::new("names");
    // A non-root user when there are ids for one; root otherwise (it has
    // CAP_NET_RAW, which the drop below takes away).
    let user = if expect_subids() { "1000:1000" } else { "0:0" };
    let range = if expect_subids() { "0\t65536" } else { "0\t0" };
    for driver in DRIVERS {
        let flags = ["--hostname", "box7", "--network", driver, "--cap-drop", "NET_RAW", "-u", user];
        let script = "cat /proc/sys/net/ipv4/ping_group_range; grep -w box7 /etc/hosts | cut -f1; \
                      grep -w localhost /etc/hosts | head -1 | cut -f1; /bin/icmp-ping";
        let out = h.run_in(&rootfs, &flags, &["/bin/sh", "-c", script]);
        assert_success(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{range}\n127.0.1.1\n127.0.0.1\npong\n"), "{driver}");
    }
}

#[test]
fn dns_goes_to_the_helper() {
    let h = Hutch::new("dns");
    assert_eq!(h.sh(&["--network", "slirp4netns"], "grep nameserver /etc/resolv.conf"), "nameserver 10.0.2.3\n");
    assert_eq!(h.sh(&["--network", "pasta"], "grep nameserver /etc/resolv.conf"), "nameserver 169.254.1.1\n");
}

#[test]
fn the_default_is_pasta_and_the_config_file_changes_it() {
    let h = Hutch::new("default-net");
    let interfaces = |h: &Hutch| h.sh(&[], "ls /sys/class/net | sort | tr '\\n' ' '");
    assert_eq!(interfaces(&h), "eth0 lo ");
    std::fs::write(h.config_file(), "[network]\ndefault = \"slirp4netns\"\n").unwrap();
    assert_eq!(interfaces(&h), "lo tap0 ");
    std::fs::write(h.config_file(), "[network]\ndefault = \"none\"\n").unwrap();
    assert_eq!(interfaces(&h), "lo ");
    std::fs::write(h.config_file(), "[network]\ndefualt = \"none\"\n").unwrap();
    let out = h.run(&[], &["true"]);
    assert_eq!(out.status.code(), Some(125));
    let line = error_line(&out);
    assert!(line.starts_with("hutch: config ") && line.contains("line 2: unknown field `defualt`"), "{line}");
}

#[test]
fn missing_helpers_and_bad_flags_are_one_line_errors() {
    let h = Hutch::new("net-errors");
    // A PATH without the helpers.
    let empty = Scratch::new("empty-path");
    let out = h
        .cmd()
        .env("PATH", empty.path())
        .args(["run", "--rm", "--rootfs"])
        .arg(busybox_rootfs())
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(error_line(&out), "hutch: no user-mode network helper: install passt (pasta) or slirp4netns, or run with --network host or --network none");
    for (flags, want) in [
        (&["--network", "bridge"][..], "hutch: unknown network mode \"bridge\" (expected pasta[:OPTIONS], slirp4netns[:OPTIONS], host or none)"),
        (&["-p", "80/sctp"][..], "hutch: invalid -p \"80/sctp\": the protocol must be tcp or udp (expected [HOST-IP:][HOST-PORT:]CONTAINER-PORT[/tcp|/udp])"),
        (&["--network", "none", "-p", "8080:80"][..], "hutch: -p needs a network: --network none has only loopback"),
    ] {
        let out = h.run(flags, &["true"]);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        assert_eq!(error_line(&out), want);
    }
}
