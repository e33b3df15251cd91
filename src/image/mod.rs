//! Images: references, the registry client, the layer store and safe
//! unpacking (a container's root joins the layers through fuse-overlay).
//!
//! A pull runs inside hutch's user namespace (see `engine/images.rs`), so that
//! unpacked files get their in-image owners as subordinate ids, and the
//! store's files can be removed again by the same user.

pub mod archive;
pub mod change;
pub mod commit;
pub mod config;
pub mod digest;
pub mod gc;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod time;
pub(crate) mod tree;
pub mod tree_tar;
pub mod unpack;

pub use digest::Digest;
pub use reference::ImageRef;
pub use store::{ImageRecord, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::files::IoError),
    #[error("invalid image reference {0:?}: {1}")]
    Reference(String, String),
    #[error("invalid digest {0:?}: expected sha256: and 64 hex digits")]
    Digest(String),
    #[error("{0}")]
    Registry(String),
    #[error("{what} {digest}: content has digest {actual}, expected {digest} (the registry or the network corrupted it; nothing was kept, pull again)")]
    DigestMismatch { what: &'static str, digest: Digest, actual: Digest },
    #[error("{what} {digest}: got {actual} bytes, expected {expected} (download cut short or wrong size in the manifest; nothing was kept, pull again)")]
    SizeMismatch { what: &'static str, digest: Digest, expected: u64, actual: u64 },
    #[error("{manifest}: no image for platform {wanted}; available: {available} (choose one with --platform)")]
    NoPlatform { manifest: String, wanted: String, available: String },
    #[error("layer {layer}: {path:?}: {reason} (the image is malformed or hostile; nothing was unpacked)")]
    HostileEntry { layer: Digest, path: String, reason: String },
    #[error("layer {layer}: {message}")]
    Layer { layer: Digest, message: String },
    #[error("image {image} is used by container {container} (remove the container first, or rmi -f)")]
    InUse { image: String, container: String },
    #[error("no such image: {0} (see hutch images, or pull it)")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) use crate::files::io;
