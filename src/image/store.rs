//! The image store: `$HUTCH_ROOT`, else `$XDG_DATA_HOME/hutch`
//! (`~/.local/share/hutch`).
//!
//! ```text
//! store.lock            shared by pulls and runs, exclusive for removals
//! images.json           the image records (rewritten atomically under index.lock)
//! blobs/sha256/HEX      manifests, configs and compressed layers, verified
//! layers/HEX            unpacked layers by diff_id, OCI whiteouts kept (see fuse-overlay)
//! containers/ID/rootfs  a container's root filesystem
//! tmp/PID@START-…       downloads and unpacks in progress, renamed into place when whole
//! ```
//!
//! Only whole, verified content is ever renamed into `blobs/` and `layers/`,
//! so a pull killed at any point leaves at most entries in `tmp/`, which the
//! next command removes once their process is gone.

use super::digest::Hasher;
use super::{io, Digest, Error};
use crate::files::Lock;
use crate::liveness::ProcessId;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// One image: its config digest is its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// Fully qualified `registry/repository:tag` names.
    pub names: Vec<String>,
    /// `registry/repository@digest` it was pulled as, if any.
    #[serde(default)]
    pub digests: Vec<String>,
    pub manifest: Digest,
    pub layers: Vec<LayerRecord>,
    pub created: Option<String>,
    pub platform: String,
    /// When it was stored (seconds since the epoch).
    pub stored: u64,
    /// A build's step, kept for its cache: not listed among the images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intermediate: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: Digest,
    pub diff_id: Digest,
    /// Compressed size.
    pub size: u64,
    pub media_type: String,
}

/// Next to `layers/HEX`: how it was unpacked (see `storage::LayerFormat`).
pub const LAYER_FORMAT_SUFFIX: &str = ".json";
/// What the kernel overlay can do on this store (see `storage::StoreProbe`).
const STORAGE_PROBE: &str = "storage.json";

impl ImageRecord {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Whether `name` (a qualified name, an id or an id prefix) means this image.
    pub fn matches(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
            || self.digests.iter().any(|d| d == name)
            || (name.len() >= 4 && self.id.hex().starts_with(name.trim_start_matches("sha256:")))
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    images: Vec<ImageRecord>,
}

pub struct Store {
    root: PathBuf,
}

/// What a blob must be, when the caller knows (from a manifest).
pub struct Expected<'a> {
    pub what: &'static str,
    pub digest: &'a Digest,
    pub size: Option<u64>,
}

impl Expected<'_> {
    fn check(&self, digest: &Digest, size: u64) -> Result<(), Error> {
        if let Some(expected) = self.size.filter(|s| *s != size) {
            return Err(Error::SizeMismatch { what: self.what, digest: self.digest.clone(), expected, actual: size });
        }
        if digest != self.digest {
            return Err(Error::DigestMismatch { what: self.what, digest: self.digest.clone(), actual: digest.clone() });
        }
        Ok(())
    }
}

/// A blob being written into `tmp/`, hashed as it goes (so a download can
/// go on where it was cut); renamed into `blobs/` when whole and verified,
/// removed if dropped before.
pub struct BlobWriter<'a> {
    store: &'a Store,
    tmp: PathBuf,
    file: File,
    hasher: Hasher,
    committed: bool,
}

impl BlobWriter<'_> {
    pub fn written(&self) -> u64 {
        self.hasher.bytes
    }

    /// Back to empty (a source that cannot continue sends it all again).
    pub fn restart(&mut self) -> Result<(), Error> {
        if self.written() > 0 {
            self.file.set_len(0).map_err(io("truncate", &self.tmp))?;
            std::io::Seek::rewind(&mut self.file).map_err(io("seek", &self.tmp))?;
            self.hasher = Hasher::default();
        }
        Ok(())
    }

    /// Appends what `from` yields until it ends; what was read before a
    /// failed read stays.
    pub fn append(
        &mut self,
        mut from: impl Read,
        read_error: impl FnOnce(std::io::Error) -> Error,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            self.file.write_all(&buf[..n]).map_err(io("write", &self.tmp))?;
            self.hasher.update(&buf[..n]);
        }
    }

    /// Checks the blob against `expected`, syncs it and renames it into place.
    pub fn finish(mut self, expected: Option<Expected>) -> Result<(Digest, u64), Error> {
        let size = self.hasher.bytes;
        let digest = std::mem::take(&mut self.hasher).finish();
        if let Some(expected) = &expected {
            expected.check(&digest, size)?;
        }
        self.file.sync_all().map_err(io("sync", &self.tmp))?;
        self.store.commit_file(&self.tmp, &self.store.blob_path(&digest))?;
        self.committed = true;
        Ok((digest, size))
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A held lock on the store; released when dropped.
pub struct StoreLock(#[allow(dead_code)] File);

impl Store {
    /// The store's directory from `--root`/`HUTCH_ROOT`, else the XDG default.
    pub fn default_root() -> Result<PathBuf, Error> {
        if let Some(root) = std::env::var_os("HUTCH_ROOT").filter(|r| !r.is_empty()) {
            return Ok(PathBuf::from(root));
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| crate::files::home_dir().map(|h| h.join(".local/share")))
            .ok_or_else(|| {
                Error::Invalid(
                    "no HUTCH_ROOT, XDG_DATA_HOME, HOME, nor a home in the password database: use --root".into(),
                )
            })?;
        Ok(base.join("hutch"))
    }

    /// Opens the store, creating its directories.
    pub fn open(root: &Path) -> Result<Store, Error> {
        for dir in ["blobs/sha256", "layers", "containers", "tmp"] {
            let path = root.join(dir);
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&path).map_err(io("create", &path))?;
        }
        Ok(Store { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// For pulls and runs: they only add, or read what they hold.
    pub fn lock_shared(&self) -> Result<StoreLock, Error> {
        self.lock("store.lock", Lock::Shared)
    }

    /// For removals, which must not race a pull or run using the content.
    pub fn lock_exclusive(&self) -> Result<StoreLock, Error> {
        self.lock("store.lock", Lock::Exclusive)
    }

    fn lock(&self, name: &str, lock: Lock) -> Result<StoreLock, Error> {
        let path = self.root.join(name);
        Ok(StoreLock(crate::files::lock_file(&path, lock).map_err(io("lock", &path))?))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        Ok(fs::read(&path).map_err(io("read", &path))?)
    }

    /// A fresh name in `tmp/`, `PID@START-N-WHAT`: tagged with this
    /// process (see `liveness`) so a later command can tell abandoned
    /// entries from live ones.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{}-{n}-{what}", ProcessId::current_tag()))
    }

    /// Writes a small blob (manifest, config) after checking its digest.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let actual = Digest::of(bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch { what: "blob", digest: digest.clone(), actual });
        }
        self.write_durably(&self.blob_path(digest), bytes)
    }

    /// Writes a whole file under a temporary name, syncs it, renames it
    /// into place.
    fn write_durably(&self, target: &Path, bytes: &[u8]) -> Result<(), Error> {
        let tmp = self.temp_path("file");
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Io(crate::files::IoError { op: "write", path: tmp, source: e }));
        }
        self.commit_file(&tmp, target)
    }

    /// Renames a whole, synced file into place (and syncs the directory, so
    /// a crash cannot leave a name pointing at nothing).
    pub fn commit_file(&self, tmp: &Path, target: &Path) -> Result<(), Error> {
        fs::rename(tmp, target).map_err(io("rename", target))?;
        sync_parent(target)
    }

    /// How the layer `diff_id` was unpacked (`layers/HEX.json`); None for
    /// a layer an earlier hutch unpacked.
    pub fn layer_format(&self, diff_id: &Digest) -> Option<crate::storage::LayerFormat> {
        let bytes = fs::read(self.layer_format_path(diff_id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_layer_format(&self, diff_id: &Digest, format: &crate::storage::LayerFormat) -> Result<(), Error> {
        let path = self.layer_format_path(diff_id);
        let bytes = serde_json::to_vec(format).unwrap_or_default();
        Ok(crate::files::write_atomic(&path, &bytes).map_err(io("write", &path))?)
    }

    fn layer_format_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(format!("{}{LAYER_FORMAT_SUFFIX}", diff_id.hex()))
    }

    /// What the host lets the kernel overlay do on this store, as last
    /// probed (`storage.json`).
    pub fn storage_probe(&self) -> Option<crate::storage::StoreProbe> {
        serde_json::from_slice(&fs::read(self.root.join(STORAGE_PROBE)).ok()?).ok()
    }

    pub fn write_storage_probe(&self, probe: &crate::storage::StoreProbe) -> Result<(), Error> {
        let path = self.root.join(STORAGE_PROBE);
        let bytes = serde_json::to_vec(probe).unwrap_or_default();
        Ok(crate::files::write_atomic(&path, &bytes).map_err(io("write", &path))?)
    }

    /// Renames an unpacked layer into place. Another pull may have won the
    /// race: then its copy stays and ours is removed.
    pub fn commit_layer(&self, staging: &Path, diff_id: &Digest) -> Result<(), Error> {
        let target = self.layer_path(diff_id);
        match fs::rename(staging, &target) {
            Ok(()) => sync_parent(&target),
            Err(e) if target.is_dir() && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                remove_tree(staging)
            }
            Err(e) => Err(Error::Io(crate::files::IoError { op: "rename", path: target, source: e })),
        }
    }

    /// Takes the directory `dir` (a container's writable layer, already
    /// in the kernel overlay's format) as the unpacked layer `diff_id`,
    /// by renaming it: no second copy of its files. Another copy already
    /// there wins, and `dir` is removed.
    pub fn adopt_layer(&self, dir: &Path, diff_id: &Digest, format: &crate::storage::LayerFormat) -> Result<(), Error> {
        if self.layer_path(diff_id).is_dir() {
            return remove_tree(dir);
        }
        self.commit_layer(dir, diff_id)?;
        self.write_layer_format(diff_id, format)
    }

    /// Unpacks a layer whose blob is in the store, unless already there,
    /// and moves it into place; notes what could not be kept exactly.
    pub fn install_layer(&self, layer: &LayerRecord) -> Result<(), Error> {
        if self.layer_path(&layer.diff_id).is_dir() {
            return Ok(());
        }
        let staging = self.temp_path("layer");
        let report =
            match super::unpack::unpack(&self.blob_path(&layer.digest), &layer.digest, &layer.diff_id, &staging) {
                Ok(report) => report,
                Err(e) => {
                    let _ = remove_tree(&staging);
                    return Err(e);
                }
            };
        self.commit_layer(&staging, &layer.diff_id)?;
        let format = crate::storage::LayerFormat {
            kernel_whiteouts: report.whiteouts_as_files == 0,
            owners_in_xattr: report.owners_in_xattr,
            device_placeholders: report.device_placeholders,
            unmapped_owners: false,
        };
        self.write_layer_format(&layer.diff_id, &format)?;
        if let Some(note) = report.note() {
            eprintln!("hutch: note: layer {}: {note}", layer.digest.short());
        }
        Ok(())
    }

    /// Copies a file into the blobs, checking it against `expected` when
    /// given; returns its digest and size.
    pub fn put_blob_from(&self, source: &Path, expected: Option<Expected>) -> Result<(Digest, u64), Error> {
        let from = File::open(source).map_err(io("open", source))?;
        self.put_blob_stream(from, expected, |e| {
            Error::Io(crate::files::IoError { op: "read", path: source.to_path_buf(), source: e })
        })
    }

    /// Streams a blob into `tmp/`, hashing as it goes, and renames it into
    /// `blobs/` only when it matches `expected`. A failed read becomes
    /// `read_error(e)` (the source's fault, which a caller may retry).
    pub fn put_blob_stream(
        &self,
        from: impl Read,
        expected: Option<Expected>,
        read_error: impl FnOnce(std::io::Error) -> Error,
    ) -> Result<(Digest, u64), Error> {
        let mut blob = self.blob_writer()?;
        blob.append(from, read_error)?;
        blob.finish(expected)
    }

    /// A new blob, written into `tmp/` until it is finished.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>, Error> {
        let tmp = self.temp_path("blob");
        let file = File::create(&tmp).map_err(io("create", &tmp))?;
        Ok(BlobWriter { store: self, tmp, file, hasher: Hasher::default(), committed: false })
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>, Error> {
        let path = self.root.join("images.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Index>(&bytes)
                .map(|i| i.images)
                .map_err(|e| Error::Invalid(format!("{}: {e} (restore it or remove the store)", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::Io(crate::files::IoError { op: "read", path, source: e })),
        }
    }

    /// Changes the image records under the index lock; the new list replaces
    /// the old atomically.
    pub fn update_images<T>(&self, change: impl FnOnce(&mut Vec<ImageRecord>) -> Result<T, Error>) -> Result<T, Error> {
        let _lock = self.lock("index.lock", Lock::Exclusive)?;
        let mut images = self.images()?;
        let result = change(&mut images)?;
        let json = serde_json::to_vec_pretty(&Index { images })
            .map_err(|e| Error::Invalid(format!("serializing the image index: {e}")))?;
        self.write_durably(&self.root.join("images.json"), &json)?;
        Ok(result)
    }

    /// Adds or updates the record; its names move to it from any other image.
    pub fn record(&self, record: ImageRecord) -> Result<ImageRecord, Error> {
        self.update_images(|images| {
            for other in images.iter_mut() {
                other.names.retain(|n| !record.names.contains(n));
            }
            let merged = match images.iter_mut().find(|i| i.id == record.id) {
                Some(existing) => {
                    for n in record.names.iter().chain(&record.digests) {
                        let list = if record.names.contains(n) { &mut existing.names } else { &mut existing.digests };
                        if !list.contains(n) {
                            list.push(n.clone());
                        }
                    }
                    existing.intermediate &= record.intermediate;
                    existing.clone()
                }
                None => {
                    images.push(record.clone());
                    record
                }
            };
            Ok(merged)
        })
    }

    /// Finds an image by name (as typed, normalised), id or id prefix.
    pub fn find(&self, name: &str) -> Result<ImageRecord, Error> {
        let images = self.images()?;
        let qualified = super::ImageRef::parse(name).ok().map(|r| r.to_string());
        images
            .into_iter()
            .find(|i| i.matches(name) || qualified.as_deref().is_some_and(|q| i.matches(q)))
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// What interrupted commands left in `tmp/`: entries whose process is
    /// gone. Cheap (one directory read): callers check before they enter
    /// the user namespace to remove them.
    pub fn abandoned(&self) -> Vec<PathBuf> {
        let tmp = self.root.join("tmp");
        let Ok(entries) = fs::read_dir(&tmp) else { return Vec::new() };
        entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let owner = name.split('-').next().unwrap_or_default();
                // Entries of older hutch versions name a bare pid: gone when
                // that pid runs nothing (or only a zombie).
                match owner.parse::<i32>() {
                    Ok(pid) => ProcessId::of(pid).is_none(),
                    Err(_) => crate::liveness::abandoned(owner),
                }
            })
            .map(|entry| entry.path())
            .collect()
    }

    /// Removes what interrupted commands left in `tmp/`. Must run in the
    /// user namespace (unpacked files may belong to subordinate ids).
    pub fn clean_abandoned(&self) -> Result<(), Error> {
        for path in self.abandoned() {
            remove_tree(&path)?;
        }
        Ok(())
    }
}

/// Removes a file or a whole tree, making directories writable first (an
/// image may hold read-only directories).
pub fn remove_tree(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io(crate::files::IoError { op: "remove", path: path.to_path_buf(), source: e })),
    };
    if !meta.is_dir() {
        return Ok(fs::remove_file(path).map_err(io("remove", path))?);
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(_) => {
            make_dirs_writable(path);
            Ok(fs::remove_dir_all(path).map_err(io("remove", path))?)
        }
    }
}

fn make_dirs_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_dirs_writable(&entry.path());
            }
        }
    }
}

fn sync_parent(path: &Path) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(Path::new("."));
    Ok(File::open(parent).and_then(|d| d.sync_all()).map_err(io("sync", parent))?)
}
