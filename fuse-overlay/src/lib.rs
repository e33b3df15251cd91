//! fuse-overlay: the copy-on-write root filesystem of hutch's containers.
//!
//! The filesystem itself (on fuse-backend-rs) arrives with the fuse-overlay
//! issue. What stands here now is the part both faces share: the
//! fuse-overlayfs-compatible mount options (`-o lowerdir=L1:L2,upperdir=U,workdir=W`),
//! so hutch and the standalone binary describe a mount the same way.

mod options;

pub use options::{parse_mount_options, Error, OverlayOptions};
