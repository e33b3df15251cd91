//! The default driver: fuse-overlay, served by a child of the caller (the
//! container's monitor) that lives as long as the caller does. The caller
//! stays single-threaded, and a killed monitor takes the mount with it.

use super::{Driver, Error, LayeredRoot};
use crate::child;
use crate::sys::die_with_parent;
use std::path::Path;

#[derive(Debug)]
pub struct FuseOverlay;

impl FuseOverlay {
    pub const NAME: &'static str = "fuse-overlay";

    fn failed(why: impl Into<String>) -> Error {
        Error::Mount { driver: Self::NAME, why: why.into() }
    }
}

impl Driver for FuseOverlay {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn mount(&self, root: &LayeredRoot, target: &Path) -> Result<(), Error> {
        let config = fuse_overlay::Config::new(root.lowers.clone(), Some(root.upper()), Some(root.work()));
        // The server is a child of the caller (single-threaded: the trait's
        // contract) that answers once mounted, then serves until unmounted.
        let fork = || crate::sys::fork().map_err(child::Error::from);
        let mut server = child::spawn("fuse-overlay server", fork, |reply| {
            die_with_parent();
            match fuse_overlay::Mount::new(&config, target) {
                Ok(mount) => {
                    // The monitor ends with its container; unmounted, this
                    // process lets go of the layers at once.
                    let _ = reply.send(Ok(()));
                    mount.serve_then_exit()
                }
                Err(e) => reply.send(Err(e.to_string())),
            }
        })
        .map_err(|e| Self::failed(e.to_string()))?;
        server.answer().map_err(|e| Self::failed(e.to_string()))
    }
}
