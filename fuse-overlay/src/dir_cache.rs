//! Descriptors of recently used layer directories, so the hot requests
//! (lookup, getattr, open) on the files of one directory resolve its path
//! once rather than each time.
//!
//! Entries are keyed by (layer, overlay inode of the directory). Both name
//! a directory object, not a path: a renamed directory's entry stays right,
//! a directory new in a layer (a copy-up) has no entry yet, and a new
//! directory always gets a new overlay inode. Only directories that opened
//! are kept; absence is never cached.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

/// Enough for the directories a build or an unpack works in at once, far
/// below the descriptor limit.
const CAPACITY: usize = 512;

#[derive(Default)]
pub struct DirCache(Mutex<Entries>);

#[derive(Default)]
struct Entries {
    fds: HashMap<(usize, u64), Arc<OwnedFd>>,
    /// Insertion order: the oldest entry goes first.
    order: VecDeque<(usize, u64)>,
}

impl DirCache {
    /// The directory `dir` of layer `layer`, opened by `open` if not kept.
    pub fn get_or_open(
        &self,
        layer: usize,
        dir: u64,
        open: impl FnOnce() -> io::Result<OwnedFd>,
    ) -> io::Result<Arc<OwnedFd>> {
        let key = (layer, dir);
        if let Some(fd) = crate::inode::lock(&self.0).fds.get(&key) {
            return Ok(fd.clone());
        }
        let fd = Arc::new(open()?);
        let mut entries = crate::inode::lock(&self.0);
        if entries.fds.insert(key, fd.clone()).is_none() {
            entries.order.push_back(key);
        }
        while entries.order.len() > CAPACITY {
            if let Some(old) = entries.order.pop_front() {
                entries.fds.remove(&old);
            }
        }
        Ok(fd)
    }
}
