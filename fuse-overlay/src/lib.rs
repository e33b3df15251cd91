//! fuse-overlay: the copy-on-write root filesystem of hutch's containers,
//! a FUSE server on fuse-backend-rs with the semantics of Linux overlayfs.
//!
//! Two faces share this crate: the library hutch mounts for each container
//! ([`Mount`], served by threads of the container's monitor), and the
//! `fuse-overlay` binary, which takes fuse-overlayfs' command line.
//!
//! Module map: [`options`] (the `-o` syntax), `layer` (one layer directory,
//! whiteouts, opaque markers), `inode` (stable inode numbers), `overlay`
//! (lookup, listings, copy-up, changes), `copy` (data and metadata copies),
//! `fs` (the FUSE requests), `mount` (session and threads), `sys` (the only
//! `unsafe`).
//!
//! # The layer format (agreed with hutch's image store)
//!
//! Each lower directory is one image layer exactly as its OCI tar holds it,
//! unpacked by `hutch::image::unpack` (`$HUTCH_ROOT/layers/DIFF_ID`); the
//! upper layer is written in the same format, so it can become an image
//! layer as it is:
//!
//! - a whiteout is an empty regular file `.wh.NAME`: NAME from lower layers
//!   is hidden; the `.wh.NAME` file itself is never shown (the kernel
//!   overlay's `c 0 0` nodes are read as whiteouts too);
//! - an opaque directory holds an empty file `.wh..wh..opq`: nothing of the
//!   lower layers' directory of that name shows through (the
//!   `user.overlay.opaque`/`trusted.overlay.opaque` xattrs are read too);
//! - owners are real ids when the user namespace maps them; otherwise the
//!   file is owned by the mapped root and the xattr `user.hutch.owner`
//!   holds `UID:GID` (the overlay presents it, and `chown` to an unmapped id
//!   writes it);
//! - device nodes are absent (unprivileged users cannot make them).
//!
//! Names starting with `.wh.` are the format's own: they can be neither
//! seen nor created through the mount.

mod copy;
mod fs;
mod inode;
mod layer;
mod mount;
mod options;
mod overlay;
mod sys;

pub use mount::{Config, Error as MountError, Mount};
pub use options::{parse_mount_options, Error, OverlayOptions};
