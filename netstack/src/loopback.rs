//! Bringing up `lo` in a new network namespace (it starts down).

use crate::Error;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use std::os::fd::AsRawFd;

nix::ioctl_read_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Sets IFF_UP on `lo` of the calling thread's network namespace.
pub fn bring_up_loopback() -> Result<(), Error> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|source| Error::Loopback { op: "socket", source })?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `sock` is an open socket and `req` a valid ifreq naming "lo";
    // SIOCGIFFLAGS fills ifru_flags.
    unsafe { get_interface_flags(sock.as_raw_fd(), &mut req) }
        .map_err(|source| Error::Loopback { op: "SIOCGIFFLAGS", source })?;
    // SAFETY: ifru_flags is the union member SIOCGIFFLAGS just wrote.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads the request.
    unsafe { set_interface_flags(sock.as_raw_fd(), &req) }
        .map_err(|source| Error::Loopback { op: "SIOCSIFFLAGS", source })?;
    Ok(())
}
