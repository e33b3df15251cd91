//! The socket between hutch and the processes it starts (monitor, container
//! init): one message per datagram, optionally carrying a file descriptor.

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Message {
    /// The container's first process started; its pid as hutch sees it.
    ContainerPid(i32),
    /// The master side of the container's terminal comes with this message.
    TerminalMaster,
    /// Setup failed; the container process exits with `code`.
    Failed { code: i32, message: String },
}

pub struct Channel {
    fd: OwnedFd,
}

const MAX_MESSAGE: usize = 64 * 1024;

impl Channel {
    /// Two connected ends, both close-on-exec so a container process never
    /// inherits one.
    pub fn pair() -> Result<(Channel, Channel), Errno> {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Message, fd: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
        let bytes = serde_json::to_vec(msg).map_err(|_| Errno::EINVAL)?;
        let iov = [IoSlice::new(&bytes)];
        let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
        Ok(())
    }

    /// The next message, or None once every sender has closed its end.
    pub fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>, Errno> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut cmsg_space = nix::cmsg_space!(RawFd);
        let (len, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg_space), MsgFlags::MSG_CMSG_CLOEXEC) {
                    Err(Errno::EINTR) => continue,
                    r => break r?,
                }
            };
            let mut fd = None;
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for raw in fds {
                        let owned = crate::sys::own_received_fd(raw);
                        fd.get_or_insert(owned);
                    }
                }
            }
            (msg.bytes, fd)
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len]).map_err(|_| Errno::EBADMSG)?;
        Ok(Some((msg, fd)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
