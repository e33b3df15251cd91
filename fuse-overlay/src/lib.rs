//! fuse-overlay: the copy-on-write root filesystem of hutch's containers,
//! a FUSE server on fuse-backend-rs with the semantics of Linux overlayfs.
//!
//! Two faces share this crate: the library hutch mounts for each container
//! ([`Mount`], served by threads of the container's monitor), and the
//! `fuse-overlay` binary, which takes fuse-overlayfs' command line.
//!
//! Module map: [`options`] (the `-o` syntax), `layer` (one layer directory,
//! whiteouts, opaque markers), `inode` (stable inode numbers), `overlay`
//! (lookup, listings, copy-up, changes), `dir_cache` (open layer directories
//! reused by the hot requests), `copy` (data and metadata copies),
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
//! - a device node (which unprivileged users cannot make) is an empty
//!   regular file whose xattr `user.hutch.device` holds `c MAJOR:MINOR` or
//!   `b MAJOR:MINOR`; the overlay shows it as that device (stat, `ls -l`,
//!   readdirplus), and `mknod` of a device through the mount writes one.
//!   Opening it is refused as on any unprivileged FUSE mount (nodev). A
//!   plain readdir reports such a file as regular until it is looked up.
//!
//! Names starting with `.wh.` are the format's own: they can be neither
//! seen nor created through the mount.

mod copy;
mod dir_cache;
mod fs;
mod inode;
mod layer;
mod mount;
mod notify;
mod options;
mod overlay;
mod splice;
mod sys;

pub use layer::{device_value, parse_device, parse_owner, DEVICE_XATTR, OPAQUE_MARKER, OWNER_XATTR, WHITEOUT_PREFIX};
pub use mount::{Config, Error as MountError, Mount};
pub use options::{parse_mount_options, Error, OverlayOptions};

/// Reads the file at `path` (relative to the root; `/` is ignored) as a
/// mount of `lowerdirs` would show it — whiteouts and opaque directories
/// applied — without mounting anything: for reading an image's
/// /etc/passwd before its container exists.
pub fn read_merged(lowerdirs: &[std::path::PathBuf], path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let layers = lowerdirs.iter().map(|d| layer::Layer::open(d)).collect::<std::io::Result<Vec<_>>>()?;
    let ov = overlay::Overlay::new(layers, false, None);
    let mut ino = inode::ROOT;
    for part in path.components() {
        if let std::path::Component::Normal(name) = part {
            let name = std::ffi::CString::new(name.as_bytes()).map_err(|_| overlay::errno(libc::EINVAL))?;
            ino = ov.lookup(ino, &name)?.0.ino;
        }
    }
    let node = ov.inodes.get(ino)?;
    let place = ov.place(&node)?;
    let fd = ov.layers[place.top()].open_at(&place.path(), rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty())?;
    let mut data = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut data)?;
    Ok(data)
}
