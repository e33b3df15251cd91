//! A network namespace made for a container by a short-lived child, so the
//! caller stays in the host's network namespace (it must: a user namespace
//! cannot setns back into the host's) and can start the helper there.

use crate::forward::{self, TcpForward};
use crate::Error;
use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, read, write, ForkResult, Pid};
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// The namespace, and the child that made it and lives in it until
/// released: its /proc/PID/net shows the namespace, and it forwards ports.
pub struct NetNs {
    fd: OwnedFd,
    holder: Pid,
    release: Option<OwnedFd>,
}

impl NetNs {
    /// Creates the namespace with loopback up and ping allowed for the
    /// container's group ids `0..=max_gid`. The holder serves `forwards`
    /// (host listeners) by connecting to `target` inside, until released.
    ///
    /// Forks: call only from a single-threaded process (hutch's monitor).
    pub fn create(max_gid: u32, forwards: Vec<TcpForward>, target: IpAddr) -> Result<NetNs, Error> {
        let sys = |op: &'static str| move |source| Error::Netns { op, source };
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
        let (release_r, release_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
        match crate::sys::fork().map_err(sys("fork"))? {
            ForkResult::Child => {
                drop((ready_r, release_w));
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                let report = match enter_new_namespace(max_gid) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.to_string(),
                };
                if report == "ok" {
                    forward::serve(forwards, target);
                }
                let _ = write(&ready_w, report.as_bytes());
                let _ = read(&release_r, &mut [0u8; 1]); // until released
                crate::sys::exit_now(0)
            }
            ForkResult::Parent { child } => {
                drop((ready_w, release_r, forwards)); // the holder has them
                let mut buf = [0u8; 512];
                let n = read(&ready_r, &mut buf).unwrap_or(0);
                let opened = match &buf[..n] {
                    b"ok" => open_namespace_of(child),
                    b"" => Err(Error::NetnsSetup("the process making it died".into())),
                    report => Err(Error::NetnsSetup(String::from_utf8_lossy(report).into_owned())),
                };
                match opened {
                    Ok(fd) => Ok(NetNs { fd, holder: child, release: Some(release_w) }),
                    Err(e) => {
                        drop(release_w);
                        let _ = waitpid(child, None);
                        Err(e)
                    }
                }
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The namespace's /proc/net: routes, sockets (while the holder lives).
    pub(crate) fn proc_net(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/net", self.holder))
    }
}

impl Drop for NetNs {
    /// Lets the holder go (its forwarding ends with it) and reaps it; the
    /// namespace lives on while anything holds it.
    fn drop(&mut self) {
        if self.release.take().is_some() {
            let _ = waitpid(self.holder, None);
        }
    }
}

fn open_namespace_of(pid: Pid) -> Result<OwnedFd, Error> {
    let path = format!("/proc/{pid}/ns/net");
    std::fs::File::open(&path).map(OwnedFd::from).map_err(|e| Error::NetnsSetup(format!("{path}: {e}")))
}

fn enter_new_namespace(max_gid: u32) -> Result<(), Error> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::Netns { op: "unshare(CLONE_NEWNET)", source })?;
    crate::bring_up_loopback()?;
    // Unprivileged ICMP echo sockets (ping without CAP_NET_RAW) for exactly
    // the container's groups.
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", format!("0 {max_gid}"))
        .map_err(|e| Error::NetnsSetup(format!("net.ipv4.ping_group_range: {e}")))
}
