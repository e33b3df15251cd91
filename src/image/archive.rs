//! Image archives: `load` reads OCI layouts (a directory or an
//! oci-archive tarball) and Docker archives (`docker save`); `save` writes
//! one tarball that is both (an OCI layout plus Docker's manifest.json), as
//! Docker 25 does, so either tool loads it. Runs in the user namespace.

use super::store::{remove_tree, Expected, ImageRecord, LayerRecord};
use super::time::now;
use super::{io, Digest, Error, ImageRef, Store};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Loads every image in `input` (a tarball or an OCI layout directory).
pub fn load(store: &Store, input: &Path) -> Result<Vec<ImageRecord>, Error> {
    if input.is_dir() {
        return load_dir(store, input);
    }
    let staging = store.temp_path("load");
    let result = extract(input, &staging).and_then(|()| load_dir(store, &staging));
    let _ = remove_tree(&staging);
    result
}

/// The archive's files (blobs and a few JSON documents) into `dir`; the tar
/// crate refuses `..`, absolute names and writes through symlinks.
fn extract(input: &Path, dir: &Path) -> Result<(), Error> {
    let file = File::open(input).map_err(io("open", input))?;
    fs::create_dir(dir).map_err(io("create", dir))?;
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
    for entry in archive.entries().map_err(|e| bad(input, e))? {
        let mut entry = entry.map_err(|e| bad(input, e))?;
        // Only files and directories belong in an image archive.
        if matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Directory) {
            entry.unpack_in(dir).map_err(|e| bad(input, e))?;
        }
    }
    Ok(())
}

fn bad(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: not a readable image archive: {e}", path.display()))
}

fn load_dir(store: &Store, dir: &Path) -> Result<Vec<ImageRecord>, Error> {
    if dir.join("index.json").is_file() {
        load_oci(store, dir)
    } else if dir.join("manifest.json").is_file() {
        load_docker(store, dir)
    } else {
        Err(bad(dir, "neither index.json (OCI) nor manifest.json (Docker) in it"))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let bytes = fs::read(path).map_err(io("read", path))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, e))
}

/// A blob of an OCI layout by digest (validated: it names a file).
fn layout_blob(dir: &Path, digest: &str) -> Result<(Digest, PathBuf), Error> {
    let digest = Digest::parse(digest)?;
    let path = dir.join("blobs/sha256").join(digest.hex());
    Ok((digest, path))
}

fn load_oci(store: &Store, dir: &Path) -> Result<Vec<ImageRecord>, Error> {
    let index: ImageIndex = read_json(&dir.join("index.json"))?;
    let mut loaded = Vec::new();
    for desc in index.manifests() {
        let (digest, path) = layout_blob(dir, desc.digest().as_ref())?;
        store.put_blob_from(&path, Some(Expected { what: "manifest", digest: &digest, size: None }))?;
        let manifest: ImageManifest = read_json(&path)?;
        let (config_digest, config_path) = layout_blob(dir, manifest.config().digest().as_ref())?;
        let mut layers = Vec::new();
        for layer in manifest.layers() {
            let (d, p) = layout_blob(dir, layer.digest().as_ref())?;
            layers.push((p, Some(d), layer.media_type().to_string()));
        }
        let name = desc.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(|n| full_name(n));
        loaded.push(store_image(
            store,
            &config_path,
            Some(&config_digest),
            layers,
            name.into_iter().flatten().collect(),
            Some(digest),
        )?);
    }
    Ok(loaded)
}

/// `docker.io/library/x:1` for `x:1`; a bare tag (as some OCI tools write)
/// names nothing.
fn full_name(name: &str) -> Option<String> {
    if !name.contains([':', '/']) && !name.contains('.') {
        return None;
    }
    ImageRef::parse(name).ok().and_then(|r| r.tagged_name())
}

fn load_docker(store: &Store, dir: &Path) -> Result<Vec<ImageRecord>, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = read_json(&dir.join("manifest.json"))?;
    let mut loaded = Vec::new();
    for entry in entries {
        let inside = |name: &str| -> Result<PathBuf, Error> {
            if name.starts_with('/') || name.split('/').any(|p| p == "..") {
                return Err(bad(dir, format!("manifest.json names {name:?}, outside the archive")));
            }
            Ok(dir.join(name))
        };
        let layers = entry
            .layers
            .iter()
            .map(|l| Ok((inside(l)?, None, "application/vnd.oci.image.layer.v1.tar".to_string())))
            .collect::<Result<Vec<_>, Error>>()?;
        let names = entry.repo_tags.unwrap_or_default().iter().filter_map(|n| full_name(n)).collect();
        loaded.push(store_image(store, &inside(&entry.config)?, None, layers, names, None)?);
    }
    Ok(loaded)
}

/// `hutch import`: a root filesystem tarball (plain, gzip or zstd) as a
/// one-layer image with an empty config for this machine's platform.
pub fn import(store: &Store, tarball: &Path, name: Option<String>) -> Result<ImageRecord, Error> {
    let diff_id = super::unpack::diff_id_of(tarball)?;
    let platform = super::pull::Platform::host();
    let config = serde_json::json!({
        "created": super::time::rfc3339_now(),
        "architecture": platform.arch,
        "os": platform.os,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": format!("hutch import {}", tarball.display())}],
    });
    let bytes = serde_json::to_vec(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    let config_digest = Digest::of(&bytes);
    store.put_blob(&config_digest, &bytes)?;
    let layer = (tarball.to_path_buf(), None, "application/vnd.oci.image.layer.v1.tar".to_string());
    let config_path = store.blob_path(&config_digest);
    store_image(store, &config_path, Some(&config_digest), vec![layer], name.into_iter().collect(), None)
}

/// Copies config and layers into the store (verified), unpacks the layers
/// and records the image. Without a manifest (Docker archives) an OCI one
/// is written for it.
fn store_image(
    store: &Store,
    config_path: &Path,
    config_digest: Option<&Digest>,
    layer_files: Vec<(PathBuf, Option<Digest>, String)>,
    names: Vec<String>,
    manifest: Option<Digest>,
) -> Result<ImageRecord, Error> {
    let (id, config_size) = store
        .put_blob_from(config_path, config_digest.map(|digest| Expected { what: "config", digest, size: None }))?;
    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&id)?).map_err(|e| bad(config_path, e))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != layer_files.len() {
        return Err(bad(config_path, format!("{} layers but {} diff_ids", layer_files.len(), diff_ids.len())));
    }
    let mut layers = Vec::new();
    for ((path, digest, media_type), diff_id) in layer_files.into_iter().zip(diff_ids) {
        let expected = digest.as_ref().map(|digest| Expected { what: "layer", digest, size: None });
        let (digest, size) = store.put_blob_from(&path, expected)?;
        let layer = LayerRecord { digest, diff_id: Digest::parse(diff_id)?, size, media_type };
        store.install_layer(&layer)?;
        layers.push(layer);
    }
    let manifest = match manifest {
        Some(m) => m,
        None => write_manifest(store, &id, config_size, &layers)?,
    };
    let record = ImageRecord {
        id,
        names,
        digests: Vec::new(),
        manifest,
        layers,
        created: config.created().clone(),
        platform: format!("{}/{}", config.os(), config.architecture()),
        stored: now(),
        intermediate: false,
    };
    store.record(record)
}

pub(super) fn write_manifest(
    store: &Store,
    config: &Digest,
    config_size: u64,
    layers: &[LayerRecord],
) -> Result<Digest, Error> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    let digest = Digest::of(&bytes);
    store.put_blob(&digest, &bytes)?;
    Ok(digest)
}

/// Writes `images` to `output` as one tarball: an OCI layout (index.json
/// with ref names, blobs) plus Docker's manifest.json.
pub fn save(store: &Store, images: &[(ImageRecord, Option<String>)], output: &Path) -> Result<(), Error> {
    // What an earlier save to the same file left when it was killed goes.
    crate::files::sweep_temp_siblings(output);
    let tmp = crate::files::temp_sibling(output);
    let result =
        write_archive(store, images, &tmp).and_then(|()| Ok(fs::rename(&tmp, output).map_err(io("rename", output))?));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_archive(store: &Store, images: &[(ImageRecord, Option<String>)], path: &Path) -> Result<(), Error> {
    let file = File::create(path).map_err(io("create", path))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut blobs = std::collections::BTreeSet::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for (image, name) in images {
        blobs.insert(image.manifest.clone());
        blobs.insert(image.id.clone());
        blobs.extend(image.layers.iter().map(|l| l.digest.clone()));
        let manifest_size = fs::metadata(store.blob_path(&image.manifest)).map_or(0, |m| m.len());
        let mut desc =
            serde_json::json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": image.manifest, "size": manifest_size});
        if let Some(name) = name {
            desc["annotations"] = serde_json::json!({ REF_NAME: name });
        }
        index.push(desc);
        docker.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", image.id.hex()),
            "RepoTags": name.iter().collect::<Vec<_>>(),
            "Layers": image.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let w = |e: std::io::Error| Error::Io(crate::files::IoError { op: "write", path: path.to_path_buf(), source: e });
    for digest in &blobs {
        let blob = store.blob_path(digest);
        let mut f = File::open(&blob).map_err(io("open", &blob))?;
        tar.append_file(format!("blobs/sha256/{}", digest.hex()), &mut f).map_err(w)?;
    }
    let documents = [
        ("oci-layout", serde_json::json!({"imageLayoutVersion": "1.0.0"})),
        ("index.json", serde_json::json!({"schemaVersion": 2, "manifests": index})),
        ("manifest.json", serde_json::json!(docker)),
    ];
    for (name, doc) in documents {
        let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(now());
        tar.append_data(&mut header, name, &bytes[..]).map_err(w)?;
    }
    let out = tar.into_inner().map_err(w)?;
    let file = out.into_inner().map_err(|e| w(e.into_error()))?;
    file.sync_all().map_err(w)
}
