//! What a Dockerfile build (`crate::build`, a front end like the CLI) needs
//! from the engine besides creating, running and committing containers:
//! the empty image `FROM scratch` starts from, a helper in a container's
//! root to place copied files, the files of an earlier layer linked into a
//! new one, the step cache (which maps a step — its parent image,
//! instruction and inputs, hashed — to the image it made) and its files,
//! and marking the result as a listed image.

use super::{Engine, Error};
use crate::child::Child;
use crate::containers::Container;
use crate::image::pull::Platform;
use crate::image::{Digest, ImageRecord, Store};
use crate::runtime::inside::{self, Root};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The store's directory of cached steps: `build-cache/KEY` holds an image id.
const CACHE_DIR: &str = "build-cache";

impl Engine {
    /// Whether containers get the single-id mapping (no subordinate ids):
    /// only root exists in them.
    pub fn single_id(&self) -> bool {
        self.plan().is_ok_and(|plan| !plan.uses_helpers)
    }

    /// The image `FROM scratch` means: no layers, a config with only the
    /// default PATH.
    pub fn scratch_image(&self, platform: &Platform) -> Result<ImageRecord, Error> {
        let store = Store::open(&self.root)?;
        let _lock = store.lock_shared()?;
        Ok(crate::image::commit::empty_image(&store, &platform.os, &platform.arch)?)
    }

    /// Runs `work` in a helper whose root is the (stopped) container's,
    /// as root of its user namespace; `wait` on the result gives its outcome.
    pub fn in_container<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        container: &Container,
        work: impl FnOnce() -> Result<T, String>,
    ) -> Result<Child<T>, Error> {
        let plan = self.plan()?;
        let state = container.state();
        let spec; // a stopped container's root is mounted from its spec
        let target = match (state.live_monitor(), state.pid) {
            (Some(_), Some(pid)) => Root::Running(pid),
            _ => {
                spec = container.spec()?;
                Root::Stopped(&spec)
            }
        };
        let name = container.record.name.clone();
        Ok(inside::spawn(target, plan, move || work().map_err(|e| format!("container {name}: {e}")))?)
    }

    /// The image a step with this cache key made before, if it is still stored.
    pub fn cached_step(&self, key: &Digest) -> Option<ImageRecord> {
        let id = std::fs::read_to_string(self.cache_path(key)).ok()?;
        Store::open(&self.root).ok()?.find(id.trim()).ok()
    }

    /// Remembers that the step `key` made `image`.
    pub fn remember_step(&self, key: &Digest, image: &ImageRecord) -> Result<(), Error> {
        let path = self.cache_path(key);
        let dir = self.root.join(CACHE_DIR);
        std::fs::create_dir_all(&dir).map_err(super::error::io("create", &dir))?;
        crate::files::write_atomic(&path, image.id.as_str().as_bytes()).map_err(super::error::io("write", &path))?;
        Ok(())
    }

    /// A build's result: listed as an image from now on, with `tags`
    /// (moved from any other image). Returns it as recorded.
    pub fn keep_built(&self, image: &ImageRecord, tags: &[String]) -> Result<ImageRecord, Error> {
        let names = tags.iter().map(|t| super::commit::tagged_name(t)).collect::<Result<Vec<_>, _>>()?;
        let store = Store::open(&self.root)?;
        Ok(store.update_images(|images| {
            for other in images.iter_mut() {
                other.names.retain(|n| !names.contains(n));
            }
            let found = images.iter_mut().find(|i| i.id == image.id);
            let record = found.ok_or_else(|| crate::image::Error::NotFound(image.id.to_string()))?;
            record.intermediate = false;
            record.names.extend(names.iter().cloned());
            Ok(record.clone())
        })?)
    }

    /// A new directory in the store's `tmp/` (removed with the returned
    /// guard, or by the next command if this one is killed): a build's
    /// unpacked context, its downloads.
    pub fn scratch_dir(&self, what: &str) -> Result<ScratchDir, Error> {
        let path = Store::open(&self.root)?.temp_path(what);
        std::fs::create_dir_all(&path).map_err(super::error::io("create", &path))?;
        Ok(ScratchDir(path))
    }

    /// A file of the build cache named for `what` (a context's content
    /// hashes, say), in a directory that exists.
    pub fn build_cache_file(&self, what: &str) -> Result<PathBuf, Error> {
        let dir = self.root.join(CACHE_DIR).join("files");
        std::fs::create_dir_all(&dir).map_err(super::error::io("create", &dir))?;
        Ok(dir.join(Digest::of(what.as_bytes()).hex()))
    }

    /// A directory RUN `--mount=type=cache,id=ID` keeps between builds.
    pub fn cache_mount_dir(&self, id: &str) -> Result<PathBuf, Error> {
        let path = self.root.join(CACHE_DIR).join("mounts").join(Digest::of(id.as_bytes()).hex());
        std::fs::create_dir_all(&path).map_err(super::error::io("create", &path))?;
        Ok(path)
    }

    /// Before a COPY into `dest` (absolute, in the container): the files
    /// `names` (paths below `dest`) are the ones the COPY that made
    /// `previous`'s top layer put there. They are hard-linked from that
    /// layer into `container`'s writable layer — layers never change, so
    /// both may share them — with the directories on the way made as that
    /// layer has them. Returns the names linked; the COPY sends the rest.
    pub fn link_from_layer(
        &self,
        container: &Container,
        previous: &ImageRecord,
        dest: &Path,
        names: Vec<String>,
    ) -> Result<HashSet<String>, Error> {
        let Some(top) = previous.layers.last() else { return Ok(HashSet::new()) };
        let layer = Store::open(&self.root)?.layer_path(&top.diff_id);
        let Some(layered) = crate::storage::from_spec(&container.spec()?)? else { return Ok(HashSet::new()) };
        let upper = layered.upper();
        let below = dest.strip_prefix("/").unwrap_or(dest).to_path_buf();
        // A destination reached through a symlink put its files elsewhere.
        if !layer.join(&below).symlink_metadata().is_ok_and(|m| m.is_dir()) {
            return Ok(HashSet::new());
        }
        Ok(crate::userns::in_userns(self.plan()?, move || {
            let mut linked = HashSet::new();
            for name in names {
                let rel = below.join(&name);
                if !layer.join(&rel).symlink_metadata().is_ok_and(|m| m.is_file()) {
                    continue;
                }
                if let Some(parent) = rel.parent() {
                    make_dirs_like(&layer, &upper, parent)?;
                }
                let (from, to) = (layer.join(&rel), upper.join(&rel));
                std::fs::hard_link(&from, &to).map_err(|e| format!("linking {}: {e}", to.display()))?;
                linked.insert(name);
            }
            Ok(linked)
        })?)
    }

    pub(super) fn build_cache_dir(&self) -> PathBuf {
        self.root.join(CACHE_DIR)
    }

    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.root.join(CACHE_DIR).join(key.hex())
    }
}

/// Makes the directories of `rel` missing in `upper` with the mode, owner
/// and kept owner of the same directories in `layer`.
fn make_dirs_like(layer: &Path, upper: &Path, rel: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut at = PathBuf::new();
    for part in rel.components() {
        at.push(part);
        let made = upper.join(&at);
        if made.symlink_metadata().is_ok() {
            continue;
        }
        let model = layer.join(&at);
        let meta = model.symlink_metadata().map_err(|e| format!("{}: {e}", model.display()))?;
        std::fs::create_dir(&made).map_err(|e| format!("creating {}: {e}", made.display()))?;
        let file = std::fs::File::open(&made).map_err(|e| format!("{}: {e}", made.display()))?;
        match xattr::get(&model, fuse_overlay::OWNER_XATTR).ok().flatten() {
            Some(kept) => xattr::FileExt::set_xattr(&file, fuse_overlay::OWNER_XATTR, &kept),
            None => std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())),
        }
        .map_err(|e| format!("chown {}: {e}", made.display()))?;
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| format!("chmod {}: {e}", made.display()))?;
    }
    Ok(())
}

/// A directory removed when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
