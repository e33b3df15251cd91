//! The default driver: fuse-overlay, served by a child of the caller (the
//! container's monitor) that lives as long as the caller does. The caller
//! stays single-threaded, and a killed monitor takes the mount with it.

use super::{Driver, Error, LayeredRoot};
use crate::sys::{die_with_parent, exit_now};
use nix::unistd::{fork, ForkResult};
use std::io::{Read, Write};
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
        let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| Self::failed(format!("pipe: {e}")))?;
        // SAFETY: the caller is single-threaded (the trait's contract); the
        // child only mounts, reports on the pipe and serves.
        match unsafe { fork() }.map_err(|e| Self::failed(format!("fork: {e}")))? {
            ForkResult::Child => {
                die_with_parent();
                drop(ready_r);
                let mut ready = std::fs::File::from(ready_w);
                match fuse_overlay::Mount::new(&config, target) {
                    Ok(mount) => {
                        let _ = ready.write_all(b"ok");
                        drop(ready);
                        mount.wait();
                        exit_now(0)
                    }
                    Err(e) => {
                        let _ = ready.write_all(e.to_string().as_bytes());
                        exit_now(crate::EXIT_HUTCH_ERROR)
                    }
                }
            }
            ForkResult::Parent { .. } => {
                drop(ready_w);
                let mut answer = String::new();
                let _ = std::fs::File::from(ready_r).read_to_string(&mut answer);
                match answer.as_str() {
                    "ok" => Ok(()),
                    "" => Err(Self::failed("the server ended before mounting")),
                    why => Err(Self::failed(why)),
                }
            }
        }
    }
}
