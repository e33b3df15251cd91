//! The overlay's inodes: one number per file for the life of the mount,
//! whatever layer the file lives in and however often it is copied up.
//!
//! A file is known by the `(st_dev, st_ino)` of its copies in the layers; all
//! of them map to one overlay inode, so lower hardlinks stay one inode and a
//! copy-up keeps the number. A file's node (names, layers) lives while the
//! kernel holds references to it; when the kernel forgets it, only the
//! small key-to-number map keeps it, so memory follows the kernel's cache
//! rather than every file ever seen, and the file gets its number back when
//! it is looked up again. Directory nodes stay (they are few, and every
//! path is built from them).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub const ROOT: u64 = fuse_backend_rs::api::filesystem::ROOT_ID;

/// Where one file of the overlay is: its names and the layers holding it.
pub struct NodeState {
    /// `(parent inode, name)` of every name known for this inode; the first
    /// is the one its path is built from. Empty once unlinked.
    pub aliases: Vec<(u64, CString)>,
    /// Layers holding this entry, topmost first (index 0 is the upper layer
    /// when there is one). A directory lists every layer merged into it; a
    /// copied-up file keeps the lower layer it came from after the upper.
    pub layers: Vec<usize>,
    /// The owner kept in the owner xattr, presented instead of the real one.
    pub owner: Option<(u32, u32)>,
    /// The device (type, rdev) a placeholder file stands for.
    pub device: Option<(u32, u64)>,
    /// Kept even when the kernel forgets it: a lower hardlink copied up,
    /// whose other lower names must still be led to the copy.
    pub pinned: bool,
}

impl NodeState {
    pub fn new(aliases: Vec<(u64, CString)>, layers: Vec<usize>) -> NodeState {
        NodeState { aliases, layers, owner: None, device: None, pinned: false }
    }
}

pub struct Node {
    pub ino: u64,
    /// The file type bits (`S_IFMT`) of the entry.
    pub kind: u32,
    state: Mutex<NodeState>,
    /// Held for the whole copy-up of this node, so two writers copy once.
    pub copy_up: Mutex<()>,
    /// References the kernel holds (entries sent, not yet forgotten).
    lookups: AtomicU64,
}

impl Node {
    pub fn state(&self) -> MutexGuard<'_, NodeState> {
        lock(&self.state)
    }

    pub fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
}

pub struct Inodes {
    nodes: RwLock<HashMap<u64, Arc<Node>>>,
    keys: Mutex<HashMap<(u64, u64), u64>>,
    next: AtomicU64,
}

impl Inodes {
    pub fn new(root_layers: Vec<usize>) -> Inodes {
        let root = Node::new(ROOT, libc::S_IFDIR, NodeState::new(Vec::new(), root_layers));
        Inodes {
            nodes: RwLock::new(HashMap::from([(ROOT, Arc::new(root))])),
            keys: Mutex::new(HashMap::new()),
            next: AtomicU64::new(ROOT + 1),
        }
    }

    pub fn get(&self, ino: u64) -> io::Result<Arc<Node>> {
        read(&self.nodes).get(&ino).cloned().ok_or_else(|| io::Error::from_raw_os_error(libc::ESTALE))
    }

    /// The overlay inode number of the layer file `key`, given one if new.
    pub fn number(&self, key: (u64, u64)) -> u64 {
        *lock(&self.keys).entry(key).or_insert_with(|| self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// The node already known for the layer file `key`, if any.
    pub fn known(&self, key: (u64, u64)) -> Option<Arc<Node>> {
        let ino = *lock(&self.keys).get(&key)?;
        read(&self.nodes).get(&ino).cloned()
    }

    /// Records that the layer file `key` is (a copy of) inode `ino`.
    pub fn bind(&self, key: (u64, u64), ino: u64) {
        lock(&self.keys).insert(key, ino);
    }

    /// Forgets the layer file `key` (it was removed; the number may be reused
    /// by the filesystem below for something else).
    pub fn unbind(&self, key: (u64, u64)) {
        lock(&self.keys).remove(&key);
    }

    /// The node for layer file `key` of type `kind`: the known one, or a new
    /// one made by `state`. A known number of another type means the layer
    /// reused an inode number behind our back: the file gets a new number.
    pub fn node(&self, key: (u64, u64), kind: u32, state: impl FnOnce() -> NodeState) -> (Arc<Node>, bool) {
        let ino = self.number(key);
        if let Some(node) = read(&self.nodes).get(&ino) {
            if node.kind == kind {
                return (node.clone(), false);
            }
        }
        let mut nodes = write(&self.nodes);
        let ino = match nodes.get(&ino) {
            Some(node) if node.kind == kind => return (node.clone(), false),
            Some(_) => {
                let fresh = self.next.fetch_add(1, Ordering::Relaxed);
                self.bind(key, fresh);
                fresh
            }
            None => ino,
        };
        let node = Arc::new(Node::new(ino, kind, state()));
        nodes.insert(ino, node.clone());
        (node, true)
    }

    /// Counts a reference the kernel takes (an entry sent to it). A node a
    /// racing forget took out of the table goes back in.
    pub fn hold(&self, node: Arc<Node>) -> Arc<Node> {
        if read(&self.nodes).get(&node.ino).is_some_and(|n| Arc::ptr_eq(n, &node)) {
            node.lookups.fetch_add(1, Ordering::Relaxed);
            return node;
        }
        let held = write(&self.nodes).entry(node.ino).or_insert(node).clone();
        held.lookups.fetch_add(1, Ordering::Relaxed);
        held
    }

    /// The kernel dropped references: a file it no longer holds leaves the
    /// table (its number stays bound to its layer files).
    pub fn forget(&self, dropped: impl IntoIterator<Item = (u64, u64)>) {
        let mut nodes = write(&self.nodes);
        for (ino, count) in dropped {
            let Some(node) = nodes.get(&ino) else { continue };
            // The write lock keeps `hold` out between the load and the store.
            let left = node.lookups.load(Ordering::Relaxed).saturating_sub(count);
            node.lookups.store(left, Ordering::Relaxed);
            if left == 0 && !node.is_dir() && !node.state().pinned {
                nodes.remove(&ino);
            }
        }
    }

    /// How many nodes are in the table.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        read(&self.nodes).len()
    }

    /// Every node (for the rare sweeps after a directory moves).
    pub fn all(&self) -> Vec<Arc<Node>> {
        read(&self.nodes).values().cloned().collect()
    }
}

impl Node {
    fn new(ino: u64, kind: u32, state: NodeState) -> Node {
        Node { ino, kind, state: Mutex::new(state), copy_up: Mutex::new(()), lookups: AtomicU64::new(0) }
    }
}

/// Locks that survive a panicking holder: the filesystem must keep serving.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
