//! `push`: an image's layers and config to a registry, then its manifest,
//! last, so a tag never names a half-pushed image. A blob the repository
//! has already is not sent again. Layers stored uncompressed (`commit`,
//! `build`) are compressed once, with gzip, and the compressed blob is kept
//! in the store beside them, so pushing again compresses nothing.

use super::registry::{Client, MEDIA_OCI_MANIFEST};
use super::store::{ImageRecord, LayerRecord, Store};
use super::{Digest, Error, ImageRef};
use serde_json::json;

const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MEDIA_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Where the gzip blob of an uncompressed layer is named: `compressed/HEX`
/// holds the compressed blob's digest.
const COMPRESSED_DIR: &str = "compressed";

/// A blob as the manifest names it.
struct Blob {
    digest: Digest,
    size: u64,
    media_type: &'static str,
}

/// Pushes `image` as `target`; `progress` gets a line per blob. Returns
/// the manifest's digest.
pub fn push(
    store: &Store,
    client: &Client,
    image: &ImageRecord,
    target: &ImageRef,
    progress: &dyn Fn(&str),
) -> Result<Digest, Error> {
    let ep = client.push_endpoint(target)?;
    let layers = image.layers.iter().map(|l| pushable(store, l)).collect::<Result<Vec<_>, _>>()?;
    let config = store.read_blob(&image.id)?;
    let config_blob = Blob { digest: image.id.clone(), size: config.len() as u64, media_type: MEDIA_OCI_CONFIG };
    for blob in layers.iter().chain([&config_blob]) {
        if client.blob_exists(&ep, &blob.digest)? {
            progress(&format!("Blob {} already there", blob.digest.short()));
            continue;
        }
        client.upload_blob(&ep, &blob.digest, &store.blob_path(&blob.digest))?;
        progress(&format!("Copied blob {} ({} bytes)", blob.digest.short(), blob.size));
    }
    let descriptor = |b: &Blob| json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": descriptor(&config_blob),
        "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    let digest = Digest::of(&bytes);
    let reference = target.tag_or_digest().to_string();
    client.put_manifest(&ep, &reference, MEDIA_OCI_MANIFEST, &bytes)?;
    progress(&format!("Writing manifest {reference}"));
    Ok(digest)
}

/// The layer's blob as it goes to a registry: as stored when compressed;
/// an uncompressed one compressed with gzip (once: kept in the store).
fn pushable(store: &Store, layer: &LayerRecord) -> Result<Blob, Error> {
    if layer.media_type.ends_with("gzip") {
        return Ok(Blob { digest: layer.digest.clone(), size: layer.size, media_type: MEDIA_LAYER_GZIP });
    }
    if layer.media_type.ends_with("zstd") {
        return Ok(Blob { digest: layer.digest.clone(), size: layer.size, media_type: MEDIA_LAYER_ZSTD });
    }
    let note = store.root().join(COMPRESSED_DIR).join(layer.digest.hex());
    let known = std::fs::read_to_string(&note).ok().and_then(|d| Digest::parse(d.trim()).ok());
    if let Some(digest) = known.filter(|d| store.blob_path(d).is_file()) {
        let size = std::fs::metadata(store.blob_path(&digest)).map_err(super::io("stat", &note))?.len();
        return Ok(Blob { digest, size, media_type: MEDIA_LAYER_GZIP });
    }
    let (digest, size) = compress(store, &layer.digest)?;
    let dir = store.root().join(COMPRESSED_DIR);
    std::fs::create_dir_all(&dir).map_err(super::io("create", &dir))?;
    crate::files::write_atomic(&note, digest.as_str().as_bytes()).map_err(super::io("write", &note))?;
    Ok(Blob { digest, size, media_type: MEDIA_LAYER_GZIP })
}

/// The blob `digest` compressed with gzip into a new blob: its digest and size.
fn compress(store: &Store, digest: &Digest) -> Result<(Digest, u64), Error> {
    let path = store.blob_path(digest);
    let input = std::fs::File::open(&path).map_err(super::io("open", &path))?;
    let gzip = flate2::read::GzEncoder::new(std::io::BufReader::new(input), flate2::Compression::fast());
    let mut writer = store.blob_writer()?;
    writer.append(gzip, |e| Error::Invalid(format!("compressing layer {}: {e}", digest.short())))?;
    writer.finish(None)
}
