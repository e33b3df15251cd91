//! `push`: an image's layers and config to a registry, then its manifest,
//! last, so a tag never names a half-pushed image. A blob the repository
//! has already is not sent again. Layers stored uncompressed (`commit`,
//! `build`) are compressed once, with gzip, and the compressed blob is kept
//! in the store beside them, so pushing again compresses nothing.

use super::registry::{Client, UploadStart, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST};
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

/// Blobs uploaded at once.
const PARALLEL: usize = 3;

/// The manifest's format: OCI, or Docker's schema 2 (`v2s2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    #[default]
    Oci,
    DockerV2S2,
}

impl ManifestFormat {
    /// (manifest, config, gzip layer, zstd layer) media types.
    fn media_types(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            ManifestFormat::Oci => (MEDIA_OCI_MANIFEST, MEDIA_OCI_CONFIG, MEDIA_LAYER_GZIP, MEDIA_LAYER_ZSTD),
            ManifestFormat::DockerV2S2 => (
                MEDIA_DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.diff.tar.zstd",
            ),
        }
    }
}

/// Pushes `image` as `target`; `progress` gets a line per blob. Returns
/// the manifest's digest.
pub fn push(
    store: &Store,
    client: &Client,
    image: &ImageRecord,
    target: &ImageRef,
    format: ManifestFormat,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Digest, Error> {
    let (manifest_type, config_type, _, _) = format.media_types();
    let ep = client.push_endpoint(target)?;
    let layers = image.layers.iter().map(|l| pushable(store, l, format)).collect::<Result<Vec<_>, _>>()?;
    let config = store.read_blob(&image.id)?;
    let config_blob = Blob { digest: image.id.clone(), size: config.len() as u64, media_type: config_type };
    let known = KnownRepositories::load(store, target.registry());
    let blobs: Vec<&Blob> = layers.iter().chain([&config_blob]).collect();
    for batch in blobs.chunks(PARALLEL) {
        let sent: Vec<Result<(), Error>> = std::thread::scope(|scope| {
            let workers: Vec<_> = batch
                .iter()
                .map(|blob| {
                    let from = known.repository_of(&blob.digest, target);
                    let ep = &ep;
                    scope.spawn(move || send_blob(store, client, ep, blob, from.as_deref(), progress))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(Error::Invalid("an upload thread died".into()))))
                .collect()
        });
        sent.into_iter().collect::<Result<Vec<()>, Error>>()?;
    }
    let descriptor = |b: &Blob| json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(&config_blob),
        "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    let digest = Digest::of(&bytes);
    let reference = target.tag_or_digest().to_string();
    client.put_manifest(&ep, &reference, manifest_type, &bytes)?;
    progress(&format!("Writing manifest {reference}"));
    known.remember(store, blobs.iter().map(|b| &b.digest), target.repository());
    Ok(digest)
}

/// One blob to the repository: nothing when it has it, a mount from
/// `from` (another repository of the registry that has it) when the
/// registry takes it, else an upload.
fn send_blob(
    store: &Store,
    client: &Client,
    ep: &super::registry::Endpoint,
    blob: &Blob,
    from: Option<&str>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), Error> {
    if client.blob_exists(ep, &blob.digest)? {
        progress(&format!("Blob {} already there", blob.digest.short()));
        return Ok(());
    }
    match client.start_upload(ep, from.map(|f| (&blob.digest, f)))? {
        UploadStart::Mounted => progress(&format!("Mounted blob {} from {}", blob.digest.short(), from.unwrap_or("?"))),
        UploadStart::Upload(location) => {
            client.finish_upload(ep, &location, &blob.digest, &store.blob_path(&blob.digest))?;
            progress(&format!("Copied blob {} ({} bytes)", blob.digest.short(), blob.size));
        }
    }
    Ok(())
}

/// Which repository of a registry has which blob: from earlier pushes
/// (`pushed/REGISTRY.json` in the store) and from where the store's images
/// were pulled.
struct KnownRepositories {
    path: std::path::PathBuf,
    pushed: std::collections::HashMap<String, String>,
    pulled: std::collections::HashMap<String, String>,
}

impl KnownRepositories {
    fn load(store: &Store, registry: &str) -> KnownRepositories {
        let path = store.root().join("pushed").join(format!("{}.json", registry.replace('/', "_")));
        let pushed = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let mut pulled = std::collections::HashMap::new();
        for image in store.images().unwrap_or_default() {
            let repositories =
                image.digests.iter().filter_map(|d| d.split_once('@')?.0.strip_prefix(registry)?.strip_prefix('/'));
            for repository in repositories {
                for digest in image.layers.iter().map(|l| &l.digest).chain([&image.id]) {
                    pulled.insert(digest.to_string(), repository.to_string());
                }
            }
        }
        KnownRepositories { path, pushed, pulled }
    }

    /// A repository other than `target`'s that has `digest`, if one is known.
    fn repository_of(&self, digest: &Digest, target: &ImageRef) -> Option<String> {
        [&self.pushed, &self.pulled]
            .into_iter()
            .filter_map(|known| known.get(digest.as_str()))
            .find(|repo| *repo != target.repository())
            .cloned()
    }

    /// Notes that `repository` has `digests` (a cache: failures are ignored).
    fn remember<'a>(mut self, store: &Store, digests: impl Iterator<Item = &'a Digest>, repository: &str) {
        for digest in digests {
            self.pushed.insert(digest.to_string(), repository.to_string());
        }
        let _ = std::fs::create_dir_all(store.root().join("pushed"));
        if let Ok(bytes) = serde_json::to_vec(&self.pushed) {
            let _ = crate::files::write_atomic(&self.path, &bytes);
        }
    }
}

/// The layer's blob as it goes to a registry: as stored when compressed;
/// an uncompressed one compressed with gzip (once: kept in the store).
fn pushable(store: &Store, layer: &LayerRecord, format: ManifestFormat) -> Result<Blob, Error> {
    let (_, _, gzip, zstd) = format.media_types();
    if layer.media_type.ends_with("gzip") {
        return Ok(Blob { digest: layer.digest.clone(), size: layer.size, media_type: gzip });
    }
    if layer.media_type.ends_with("zstd") {
        return Ok(Blob { digest: layer.digest.clone(), size: layer.size, media_type: zstd });
    }
    let note = store.root().join(COMPRESSED_DIR).join(layer.digest.hex());
    let known = std::fs::read_to_string(&note).ok().and_then(|d| Digest::parse(d.trim()).ok());
    if let Some(digest) = known.filter(|d| store.blob_path(d).is_file()) {
        let size = std::fs::metadata(store.blob_path(&digest)).map_err(super::io("stat", &note))?.len();
        return Ok(Blob { digest, size, media_type: gzip });
    }
    let (digest, size) = compress(store, &layer.digest)?;
    let dir = store.root().join(COMPRESSED_DIR);
    std::fs::create_dir_all(&dir).map_err(super::io("create", &dir))?;
    crate::files::write_atomic(&note, digest.as_str().as_bytes()).map_err(super::io("write", &note))?;
    Ok(Blob { digest, size, media_type: gzip })
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
