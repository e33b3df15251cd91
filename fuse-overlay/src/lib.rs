//! fuse-overlay: the copy-on-write root filesystem of hutch's containers.
//!
//! The filesystem itself (on fuse-backend-rs) arrives with the fuse-overlay
//! issue. What stands here now is the part both faces share: the
//! fuse-overlayfs-compatible mount options (`-o lowerdir=L1:L2,upperdir=U,workdir=W`),
//! so hutch and the standalone binary describe a mount the same way.
//!
//! # The lower-layer format (agreed with hutch's image store)
//!
//! Each lower directory is one image layer exactly as its OCI tar holds it,
//! unpacked by `hutch::image::unpack` (`$HUTCH_ROOT/layers/DIFF_ID`):
//!
//! - a whiteout is an empty regular file `.wh.NAME`: NAME from lower layers
//!   is hidden; the `.wh.NAME` file itself is never shown;
//! - an opaque directory holds an empty file `.wh..wh..opq`: nothing of the
//!   lower layers' directory of that name shows through;
//! - owners are real ids when the user namespace maps them; otherwise the
//!   file is owned by the mapped root and the xattr `user.hutch.owner`
//!   holds `UID:GID` as the image had it (the overlay presents those);
//! - device nodes are absent (unprivileged users cannot make them).
//!
//! The format works on any filesystem (NFS homes included), needs no
//! privilege, and is what fuse-overlayfs also reads; the kernel overlayfs'
//! `c 0 0` whiteouts would need a conversion for a kernel fast path.

mod options;

pub use options::{parse_mount_options, Error, OverlayOptions};
