//! `hutch commit`: a new image made of a base image and one more layer (a
//! container's writable layer), its config the base's with the container's
//! settings and `--change`s applied.

use super::archive::write_manifest;
use super::store::{LayerRecord, Store};
use super::time::{now, rfc3339_now};
use super::{Digest, Error, ImageRecord};
use serde_json::{json, Map, Value};
use std::path::Path;

const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// What the new image says about itself beyond its layers.
#[derive(Debug, Default)]
pub struct CommitInfo {
    pub name: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// The history line (`hutch commit CONTAINER`).
    pub created_by: String,
    /// Keys of the config's `config` object to replace (`Cmd`, `Env`, …).
    pub config: Map<String, Value>,
    /// RFC 3339; now when `None`.
    pub created: Option<String>,
    /// A build's step: kept for the cache, not listed as an image.
    pub intermediate: bool,
    /// History lines of steps that changed no file, before this one's.
    pub history_before: Vec<String>,
}

/// A new layer: its uncompressed tarball (a file in the store's `tmp/`,
/// moved into the blobs), and the same files as a directory in the layer
/// format, taken as they are, when there is one; else the tarball is unpacked.
pub struct NewLayer<'a> {
    pub tar: &'a Path,
    pub unpacked: Option<(&'a Path, crate::storage::LayerFormat)>,
}

/// Records an image of `base`'s layers (its config `base_config`, as
/// stored) plus `layer`, or no new layer when `None`.
pub fn commit(
    store: &Store,
    base: &ImageRecord,
    base_config: &[u8],
    layer: Option<NewLayer<'_>>,
    info: CommitInfo,
) -> Result<ImageRecord, Error> {
    let layer = layer.map(|layer| store_layer(store, layer)).transpose()?;
    let mut config: Value = serde_json::from_slice(base_config)
        .map_err(|e| Error::Invalid(format!("the config of image {}: {e}", base.id.short())))?;
    let created = info.created.clone().unwrap_or_else(rfc3339_now);
    update_config(&mut config, layer.as_ref().map(|l| &l.diff_id), &created, &info);
    let bytes = serde_json::to_vec(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    let id = Digest::of(&bytes);
    store.put_blob(&id, &bytes)?;
    let layers: Vec<LayerRecord> = base.layers.iter().cloned().chain(layer).collect();
    let manifest = write_manifest(store, &id, bytes.len() as u64, &layers)?;
    let platform = base.platform.clone();
    let names = info.name.into_iter().collect();
    let record = ImageRecord {
        id,
        names,
        digests: Vec::new(),
        manifest,
        layers,
        created: Some(created),
        platform,
        stored: now(),
        intermediate: info.intermediate,
    };
    store.record(record)
}

/// Moves the tarball into the blobs (its digest is also its diff_id, being
/// uncompressed) and the unpacked layer into place (or unpacks the tarball).
fn store_layer(store: &Store, new: NewLayer<'_>) -> Result<LayerRecord, Error> {
    let digest = super::unpack::diff_id_of(new.tar)?;
    let size = std::fs::metadata(new.tar).map_err(super::io("stat", new.tar))?.len();
    store.commit_file(new.tar, &store.blob_path(&digest))?;
    let layer = LayerRecord { digest: digest.clone(), diff_id: digest, size, media_type: MEDIA_LAYER_TAR.into() };
    match new.unpacked {
        Some((dir, format)) => store.adopt_layer(dir, &layer.diff_id, &format)?,
        None => store.install_layer(&layer)?,
    }
    Ok(layer)
}

fn update_config(config: &mut Value, diff_id: Option<&Digest>, created: &str, info: &CommitInfo) {
    let (author, message) = (info.author.as_deref(), info.message.as_deref());
    let Some(top) = config.as_object_mut() else { return };
    top.insert("created".into(), json!(created));
    if let Some(author) = author {
        top.insert("author".into(), json!(author));
    }
    let run_config = top.entry("config").or_insert_with(|| json!({}));
    if let Some(run_config) = run_config.as_object_mut() {
        run_config.extend(info.config.clone());
    }
    let rootfs = top.entry("rootfs").or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if let (Some(ids), Some(diff_id)) = (rootfs.get_mut("diff_ids").and_then(Value::as_array_mut), diff_id) {
        ids.push(json!(diff_id));
    }
    let earlier =
        info.history_before.iter().map(|line| json!({"created": created, "created_by": line, "empty_layer": true}));
    let mut steps: Vec<Value> = earlier.collect();
    let mut step = json!({"created": created, "created_by": info.created_by});
    if diff_id.is_none() {
        step["empty_layer"] = json!(true);
    }
    if let Some(author) = author {
        step["author"] = json!(author);
    }
    if let Some(message) = message {
        step["comment"] = json!(message);
    }
    steps.push(step);
    match top.get_mut("history").and_then(Value::as_array_mut) {
        Some(history) => history.extend(steps),
        None => {
            top.insert("history".into(), json!(steps));
        }
    }
}

/// An image with no layers and a config with only the default PATH
/// (`FROM scratch`, as BuildKit and buildah make it), kept as a build's
/// intermediate image.
pub fn empty_image(store: &Store, os: &str, arch: &str) -> Result<ImageRecord, Error> {
    let config = json!({
        "architecture": arch,
        "os": os,
        "config": {"Env": [format!("PATH={}", crate::runtime::process::DEFAULT_PATH)]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    let bytes = serde_json::to_vec(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    let id = Digest::of(&bytes);
    store.put_blob(&id, &bytes)?;
    let manifest = write_manifest(store, &id, bytes.len() as u64, &[])?;
    let record = ImageRecord {
        id,
        names: Vec::new(),
        digests: Vec::new(),
        manifest,
        layers: Vec::new(),
        created: None,
        platform: format!("{os}/{arch}"),
        stored: now(),
        intermediate: true,
    };
    store.record(record)
}
