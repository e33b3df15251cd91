//! Removing images and what no image needs any more: untagging, deleting
//! records, and the layers and blobs no record names. Run in hutch's user
//! namespace (unpacked files may belong to subordinate ids), under the
//! store's exclusive lock.

use super::store::remove_tree;
use super::{Digest, Error, ImageRef, Store};
use std::collections::HashSet;

/// Which containers use an image (their ids), as the caller knows them.
pub type UsersOf<'a> = &'a dyn Fn(&Digest) -> Vec<String>;

/// Removes the images `names` (untagging a name; deleting an image named by
/// id or by its last name) and then everything unreferenced. An image a
/// container uses is refused unless `force`. Returns Docker's lines
/// (`Untagged: …`, `Deleted: …`).
pub fn remove_images(store: &Store, names: &[String], force: bool, users_of: UsersOf) -> Result<Vec<String>, Error> {
    let _lock = store.lock_exclusive()?;
    let mut removed = Vec::new();
    for name in names {
        let image = store.find(name)?;
        if let Some(user) = users_of(&image.id).first().filter(|_| !force) {
            return Err(Error::InUse { image: name.clone(), container: short(user).to_string() });
        }
        let qualified = ImageRef::parse(name).ok().map(|r| r.to_string());
        removed.extend(store.update_images(|images| {
            let mut said = Vec::new();
            for i in images.iter_mut().filter(|i| i.id == image.id) {
                let before = i.names.len();
                i.names.retain(|n| n != name && Some(n) != qualified.as_ref());
                if i.names.len() < before {
                    said.push(format!("Untagged: {}", qualified.clone().unwrap_or(name.clone())));
                }
            }
            // By id, or its last name: the image goes.
            let by_name = !said.is_empty();
            images.retain(|i| {
                let goes = i.id == image.id && (!by_name || i.names.is_empty());
                if goes {
                    said.push(format!("Deleted: {}", i.id));
                }
                !goes
            });
            Ok(said)
        })?);
    }
    remove_unreferenced(store)?;
    Ok(removed)
}

/// `image prune`: removes unnamed images no container uses (but a build's
/// intermediate images, its cache, which `builder prune` removes), what
/// interrupted commands left in `tmp/`, and every unreferenced layer and
/// blob; returns how many layers and blobs went.
pub fn prune(store: &Store, users_of: UsersOf) -> Result<usize, Error> {
    let _lock = store.lock_exclusive()?;
    store.update_images(|images| {
        images.retain(|i| !i.names.is_empty() || i.intermediate || !users_of(&i.id).is_empty());
        Ok(())
    })?;
    store.clean_abandoned()?;
    remove_unreferenced(store)
}

/// Removes layers and blobs no image record names. The caller holds the
/// exclusive lock.
fn remove_unreferenced(store: &Store) -> Result<usize, Error> {
    let images = store.images()?;
    let mut keep: HashSet<String> = HashSet::new();
    for i in &images {
        keep.insert(i.id.hex().to_string());
        keep.insert(i.manifest.hex().to_string());
        for l in &i.layers {
            keep.insert(l.digest.hex().to_string());
            keep.insert(l.diff_id.hex().to_string());
        }
    }
    let mut removed = 0;
    for dir in ["blobs/sha256", "layers"] {
        let path = store.root().join(dir);
        for entry in std::fs::read_dir(&path).map_err(super::io("read", &path))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // A layer's format goes with its layer.
            let owner = name.strip_suffix(super::store::LAYER_FORMAT_SUFFIX).unwrap_or(&name);
            if !keep.contains(owner) {
                remove_tree(&entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
