//! Messages the server sends the kernel unasked.

use fuse_backend_rs::abi::fuse_abi::NotifyOpcode;
use std::fs::File;

/// fuse_out_header (len, error = the notification, unique = 0) and
/// fuse_notify_inval_inode_out (ino, off, len).
const INVAL_INODE_LEN: usize = 16 + 24;

/// A descriptor of the mount's device, for notifications; none when the
/// filesystem is driven without one (the crate's unit tests).
pub struct Notifier(Option<File>);

impl Notifier {
    pub fn new(device: Option<File>) -> Notifier {
        Notifier(device)
    }

    /// The kernel's cached attributes of `ino` are stale: a change it did
    /// not make itself. Sent while the request that made the change is
    /// still pending, so its caller's next stat asks again. Best effort:
    /// the kernel may have forgotten the inode (ENOENT), and then it has
    /// nothing cached.
    pub fn attributes_changed(&self, ino: u64) {
        let Some(device) = &self.0 else { return };
        let mut msg = [0u8; INVAL_INODE_LEN];
        msg[..4].copy_from_slice(&u32::try_from(INVAL_INODE_LEN).unwrap_or(u32::MAX).to_ne_bytes());
        msg[4..8].copy_from_slice(&(NotifyOpcode::InvalInode as i32).to_ne_bytes());
        msg[16..24].copy_from_slice(&ino.to_ne_bytes());
        // off < 0: the attributes only, the page cache stays.
        msg[24..32].copy_from_slice(&(-1i64).to_ne_bytes());
        let _ = rustix::io::write(device, &msg);
    }
}
