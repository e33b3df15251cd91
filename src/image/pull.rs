//! `pull`: manifest (and platform) resolution, parallel verified layer
//! downloads, unpacking, and the image record. Runs in the user namespace.
//! Progress shows as one bar per layer on a terminal, as plain lines
//! otherwise, not at all with `-q`.

use super::registry::{
    Client, Endpoint, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use super::store::{Expected, ImageRecord, LayerRecord};
use super::{Digest, Error, ImageRef, Store};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use std::io::{IsTerminal, Read};
use std::sync::Mutex;

/// Layers downloaded at once.
const PARALLEL: usize = 3;
const BLOB_ATTEMPTS: u32 = 3;

/// os/arch[/variant], as in `--platform linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The machine hutch runs on, in Go's names as registries use them.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform { os: "linux".into(), arch: arch.into(), variant: variant.map(Into::into) }
    }

    pub fn parse(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: None })
            }
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: Some(variant.to_string()) })
            }
            _ => Err(Error::Invalid(format!("invalid platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64"))),
        }
    }

    fn accepts(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        os == self.os && arch == self.arch && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

pub struct Puller<'a> {
    pub store: &'a Store,
    pub client: &'a Client,
    pub platform: Platform,
    pub progress: Progress,
}

/// How a pull reports what it does.
pub enum Progress {
    Quiet,
    Lines,
    Bars(MultiProgress),
}

impl Progress {
    /// Bars when stderr is a terminal that can draw them (TERM set and not
    /// `dumb`, as indicatif wants), lines otherwise; nothing if `quiet`.
    pub fn on_stderr(quiet: bool) -> Progress {
        let term = std::env::var("TERM").unwrap_or_default();
        let drawable = std::io::stderr().is_terminal() && !term.is_empty() && term != "dumb";
        match (quiet, drawable) {
            (true, _) => Progress::Quiet,
            (false, true) => Progress::Bars(MultiProgress::new()),
            (false, false) => Progress::Lines,
        }
    }

    /// A bar for a layer download, when bars are shown.
    fn layer_bar(&self, layer: &LayerRecord) -> Option<ProgressBar> {
        let Progress::Bars(bars) = self else { return None };
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = bars.add(ProgressBar::new(layer.size).with_style(style));
        bar.set_prefix(layer.digest.short().to_string());
        Some(bar)
    }
}

impl Puller<'_> {
    /// Pulls the first of `candidates` that a registry has.
    pub fn pull(&self, candidates: &[ImageRef]) -> Result<ImageRecord, Error> {
        let mut last = None;
        for image in candidates {
            for ep in self.client.endpoints(image) {
                match self.pull_from(image, &ep) {
                    Ok(record) => return Ok(record),
                    // Content errors are final; another mirror may be up.
                    Err(e @ Error::Registry(_)) => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Invalid("no registry to pull from".into())))
    }

    fn pull_from(&self, image: &ImageRef, ep: &Endpoint) -> Result<ImageRecord, Error> {
        self.say(&format!("Pulling {image} from {}", ep.host));
        let top = self.client.manifest(ep, image.tag_or_digest())?;
        let manifest_digest_ref = top.digest.clone();
        let fetched = match top.media_type.as_str() {
            MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => {
                let index: ImageIndex = serde_json::from_slice(&top.bytes)
                    .map_err(|e| Error::Invalid(format!("{image}: malformed index: {e}")))?;
                let digest = self.choose(image, &index)?;
                self.client.manifest(ep, digest.as_str())?
            }
            MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => top,
            other => {
                return Err(Error::Invalid(format!(
                    "{image}: unsupported manifest type {other:?} (schema 1 images are gone from registries; rebuild or re-push it)"
                )))
            }
        };
        let manifest: ImageManifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| Error::Invalid(format!("{image}: malformed manifest: {e}")))?;
        self.store.put_blob(&fetched.digest, &fetched.bytes)?;
        let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
        let config_bytes = self.small_blob(ep, &config_digest, manifest.config().size())?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::Invalid(format!("{image}: malformed image config: {e}")))?;
        let layers = layer_records(image, &manifest, &config)?;
        self.fetch_layers(ep, &layers)?;
        let record = ImageRecord {
            id: config_digest,
            names: image.tagged_name().into_iter().collect(),
            digests: vec![format!("{}@{manifest_digest_ref}", image.repository_name())],
            manifest: fetched.digest,
            layers,
            created: config.created().clone(),
            platform: format!("{}/{}", config.os(), config.architecture()),
            stored: super::time::now(),
            intermediate: false,
        };
        let record = self.store.record(record)?;
        self.say(&format!("Stored {image} as {}", record.id.short()));
        Ok(record)
    }

    /// The manifest for our platform from an index, or an error listing
    /// what the index offers.
    fn choose(&self, image: &ImageRef, index: &ImageIndex) -> Result<Digest, Error> {
        let mut available = Vec::new();
        for m in index.manifests() {
            let Some(p) = m.platform() else { continue };
            let (os, arch) = (p.os().to_string(), p.architecture().to_string());
            let variant = p.variant().clone();
            if self.platform.accepts(&os, &arch, variant.as_deref()) {
                return Digest::parse(m.digest().as_ref());
            }
            if os != "unknown" {
                available.push(match variant {
                    Some(v) => format!("{os}/{arch}/{v}"),
                    None => format!("{os}/{arch}"),
                });
            }
        }
        Err(Error::NoPlatform {
            manifest: image.to_string(),
            wanted: self.platform.to_string(),
            available: if available.is_empty() { "none".into() } else { available.join(", ") },
        })
    }

    fn small_blob(&self, ep: &Endpoint, digest: &Digest, size: u64) -> Result<Vec<u8>, Error> {
        if let Ok(bytes) = self.store.read_blob(digest) {
            return Ok(bytes);
        }
        if size > 16 << 20 {
            return Err(Error::Invalid(format!("config {digest}: {size} bytes is too large for an image config")));
        }
        let mut bytes = Vec::new();
        self.client
            .blob_from(ep, digest, 0)?
            .0
            .take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Registry(format!("{}: blob {digest}: {e}", ep.host)))?;
        if bytes.len() as u64 != size {
            return Err(Error::SizeMismatch {
                what: "config",
                digest: digest.clone(),
                expected: size,
                actual: bytes.len() as u64,
            });
        }
        self.store.put_blob(digest, &bytes)?;
        Ok(bytes)
    }

    /// Downloads and unpacks the layers not yet in the store, a few at a time.
    fn fetch_layers(&self, ep: &Endpoint, layers: &[LayerRecord]) -> Result<(), Error> {
        let missing: Vec<&LayerRecord> =
            layers.iter().filter(|l| !self.store.layer_path(&l.diff_id).is_dir()).collect();
        let queue = Mutex::new(missing.into_iter());
        let first_error = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..PARALLEL {
                s.spawn(|| loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(layer) = next else { break };
                    if let Err(e) = self.fetch_layer(ep, layer) {
                        first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        break;
                    }
                    if first_error.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                        break;
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fetch_layer(&self, ep: &Endpoint, layer: &LayerRecord) -> Result<(), Error> {
        let bar = self.progress.layer_bar(layer);
        let blob = self.store.blob_path(&layer.digest);
        if !blob.is_file() {
            self.download(ep, layer, bar.as_ref())?;
        }
        if let Some(bar) = &bar {
            bar.set_position(layer.size);
            bar.set_message("unpacking");
        }
        self.store.install_layer(layer)?;
        match bar {
            Some(bar) => bar.finish_with_message("done"),
            None => self.say(&format!("Layer {} done ({})", layer.digest.short(), human_size(layer.size))),
        }
        Ok(())
    }

    /// Streams a layer blob into the store (verified there). A cut
    /// connection or short body resumes where it stopped (a Range request;
    /// from the start if the registry ignores it), a few times.
    fn download(&self, ep: &Endpoint, layer: &LayerRecord, bar: Option<&ProgressBar>) -> Result<(), Error> {
        let mut blob = self.store.blob_writer()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.client.blob_from(ep, &layer.digest, blob.written()).and_then(|(body, resumed)| {
                if !resumed {
                    blob.restart()?;
                }
                // One byte more than expected tells an oversized blob from an exact one.
                let body = body.take(layer.size + 1 - blob.written().min(layer.size));
                let body: Box<dyn Read> = match bar {
                    Some(bar) => {
                        bar.set_position(blob.written());
                        Box::new(bar.wrap_read(body))
                    }
                    None => Box::new(body),
                };
                blob.append(body, |e| {
                    Error::Registry(format!("{}: blob {}: download cut short: {e}", ep.host, layer.digest))
                })
            });
            match result {
                Err(e) if !matches!(e, Error::Registry(_)) || attempt >= BLOB_ATTEMPTS => return Err(e),
                // Whole (or oversized), or out of attempts: the check says which.
                Ok(()) if blob.written() >= layer.size || attempt >= BLOB_ATTEMPTS => {
                    let expected = Expected { what: "layer", digest: &layer.digest, size: Some(layer.size) };
                    return blob.finish(Some(expected)).map(drop);
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(500 << attempt)),
            }
        }
    }

    fn say(&self, line: &str) {
        match &self.progress {
            Progress::Quiet => {}
            Progress::Lines => eprintln!("{line}"),
            Progress::Bars(bars) => {
                let _ = bars.println(line);
            }
        }
    }
}

/// The manifest's layers paired with the config's diff_ids.
fn layer_records(
    image: &ImageRef,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Vec<LayerRecord>, Error> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::Invalid(format!(
            "{image}: the manifest has {} layers but the config {} diff_ids (malformed image)",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let media_type = layer.media_type().to_string();
            if !media_type.contains("tar") {
                return Err(Error::Invalid(format!(
                    "{image}: layer {} has unsupported media type {media_type}",
                    layer.digest()
                )));
            }
            Ok(LayerRecord {
                digest: Digest::parse(layer.digest().as_ref())?,
                diff_id: Digest::parse(diff_id)?,
                size: layer.size(),
                media_type,
            })
        })
        .collect()
}

pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1000 => format!("{bytes} B"),
        1000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}
