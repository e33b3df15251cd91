//! `commit`: a container's writable layer becomes the top layer of a new
//! image, whose config is the container's (command, environment) with
//! `--change` instructions applied, as in Docker.

use super::{Engine, Error};
use crate::containers::Container;
use crate::image::change::apply_change;
use crate::image::commit::{commit as commit_image, CommitInfo, NewLayer};
use crate::image::config::RunDefaults;
use crate::image::tree_tar::TreeWriter;
use crate::image::{ImageRecord, ImageRef, Store};
use crate::runtime::inside::{self, Root};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What `commit` records besides the layer.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// The new image's name (REPOSITORY[:TAG]); without it, only an id.
    pub name: Option<String>,
    pub author: Option<String>,
    /// Kept in the image's history.
    pub message: Option<String>,
    /// Dockerfile instructions for the new config.
    pub changes: Vec<String>,
    /// Config keys to record instead of the container's command and
    /// environment (a build step says what its image's config is).
    pub config: Option<Map<String, Value>>,
    /// The history line; `hutch commit NAME` when `None`.
    pub created_by: Option<String>,
    /// RFC 3339 (a reproducible build's); now when `None`.
    pub created: Option<String>,
    /// A build's step: kept for the build cache, not listed.
    pub intermediate: bool,
    /// The container is removed next: on the kernel overlay its writable
    /// layer becomes the image's layer as it is, without a copy.
    pub consume_layer: bool,
    /// History lines of build steps that changed no file, before this one's.
    pub history_before: Vec<String>,
    /// File times in the layer no later than this (seconds since the
    /// epoch): a reproducible build's `SOURCE_DATE_EPOCH`.
    pub clamp_times: Option<u64>,
    /// Paths in the container whose changes stay out of the layer: a
    /// RUN's declared VOLUMEs, as buildah and Docker's classic builder do.
    pub discard: Vec<PathBuf>,
}

impl Engine {
    /// Makes a new image of `container`'s changes; returns it.
    pub fn commit(&self, container: &Container, mut options: CommitOptions) -> Result<ImageRecord, Error> {
        let store = Store::open(&self.root)?;
        let name = &container.record.name;
        let Some(image_id) = &container.record.image_id else {
            return Err(Error::NoLayerToCommit { name: name.clone(), rootfs: container.record.image.clone() });
        };
        let base =
            store.find(image_id).map_err(|_| Error::ImageGone { name: name.clone(), image: image_id.clone() })?;
        let base_config = store.read_blob(&base.id)?;
        let config = match options.config.take() {
            Some(config) => config,
            None => container_config(&base, &base_config, container)?,
        };
        let consume = options.consume_layer;
        let clamp = options.clamp_times;
        let discard = options.discard.clone();
        let info = commit_info(options, config, || format!("hutch commit {name}"))?;
        let plan = self.plan()?;
        let state = container.state();
        if let (Some(_), Some(pid)) = (state.live_monitor(), state.pid) {
            flush_running(pid, plan)?;
        }
        let spec = container.spec()?;
        let Some(layered) = crate::storage::from_spec(&spec)? else {
            return Err(Error::NoLayers(name.clone()));
        };
        let upper = layered.upper();
        let mount_points = made_for_mounts(&spec, &layered);
        let discarded: HashSet<PathBuf> = discard
            .iter()
            .map(|p| upper.join(p.strip_prefix("/").unwrap_or(p)))
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        // The kernel overlay's writable layer is in the store's layer format.
        let adopt = consume && layered.driver.name() == crate::storage::KERNEL_DRIVER;
        // In the user namespace, where the layer's files have their owners.
        Ok(crate::userns::in_userns(plan, || {
            let _lock = store.lock_shared().map_err(|e| e.to_string())?;
            let tmp = store.temp_path("commit");
            let leave_out: HashSet<PathBuf> = mount_points.union(&discarded).cloned().collect();
            let written = write_tar_file(&upper, &tmp, &leave_out, clamp);
            let image = written.and_then(|stored_owners| {
                let unpacked = match adopt {
                    true => Some((upper.as_path(), adoptable(&upper, &mount_points, &discarded, stored_owners)?)),
                    false => None,
                };
                let layer = NewLayer { tar: &tmp, unpacked };
                commit_image(&store, &base, &base_config, Some(layer), info).map_err(|e| e.to_string())
            });
            if image.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            image
        })?)
    }
}

impl Engine {
    /// A new image of `base`'s layers with a new config (`options.config`
    /// and `changes` applied) and no new layer: a build's ENV, CMD, LABEL….
    pub fn derive_image(&self, base: &ImageRecord, options: CommitOptions) -> Result<ImageRecord, Error> {
        let store = Store::open(&self.root)?;
        let base_config = store.read_blob(&base.id)?;
        let info = commit_info(options, Map::new(), || "hutch commit".to_string())?;
        let _lock = store.lock_shared()?;
        Ok(commit_image(&store, base, &base_config, None, info)?)
    }
}

/// The new image's name, history line and config keys (`config` with the
/// options' own and their `--change`s applied).
fn commit_info(
    mut options: CommitOptions,
    config: Map<String, Value>,
    created_by: impl FnOnce() -> String,
) -> Result<CommitInfo, Error> {
    let mut config = options.config.take().unwrap_or(config);
    for change in &options.changes {
        apply_change(&mut config, change).map_err(|e| Error::BadChange { change: e.change, why: e.why })?;
    }
    Ok(CommitInfo {
        name: options.name.as_deref().map(tagged_name).transpose()?,
        author: options.author,
        message: options.message,
        created_by: options.created_by.unwrap_or_else(created_by),
        config,
        created: options.created,
        intermediate: options.intermediate,
        history_before: options.history_before,
    })
}

/// Writes what the running container `pid` has cached in the kernel into
/// its writable layer, from a helper inside its namespaces.
fn flush_running(pid: i32, plan: &crate::userns::UsernsPlan) -> Result<(), Error> {
    let work = || crate::storage::flush_open_files().map_err(|e| e.to_string());
    let helper = inside::spawn(Root::Running(pid), plan, work)?;
    helper.wait().map_err(|why| Error::Helper(format!("writing the container's cached writes out: {why}")))
}

/// `NAME[:TAG]`, fully qualified; a digest is refused.
pub(crate) fn tagged_name(name: &str) -> Result<String, Error> {
    ImageRef::parse(name)?.tagged_name().ok_or_else(|| Error::NotATag(name.to_string()))
}

/// Writes the layer's tarball; how many entries had their owner from the
/// owner xattr.
fn write_tar_file(upper: &Path, tmp: &Path, leave_out: &HashSet<PathBuf>, clamp: Option<u64>) -> Result<u64, String> {
    let fail = |e: std::io::Error| format!("writing the layer of {}: {e}", upper.display());
    let mut out = BufWriter::new(std::fs::File::create(tmp).map_err(fail)?);
    let leave_out = leave_out.clone();
    let mut tar =
        TreeWriter::for_layer(&mut out).keeping(move |path, _| !leave_out.contains(path)).with_times_clamped(clamp);
    tar.append_contents(upper).map_err(fail)?;
    let stored_owners = tar.stored_owners();
    tar.finish().map_err(fail)?;
    out.flush().map_err(fail)?;
    out.get_ref().sync_all().map_err(fail)?;
    Ok(stored_owners)
}

/// Makes a kernel overlay's writable layer what unpacking its tarball
/// would give: without what the tarball leaves out (mount points, discarded paths), its top
/// directory 0755; returns its layer format.
fn adoptable(
    upper: &Path,
    mount_points: &HashSet<PathBuf>,
    discarded: &HashSet<PathBuf>,
    stored_owners: u64,
) -> Result<crate::storage::LayerFormat, String> {
    for path in discarded {
        let removed = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        removed.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // Children before their parents (longer paths first).
    let mut made: Vec<&PathBuf> = mount_points.iter().collect();
    made.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for path in made {
        let removed = if path.is_dir() { std::fs::remove_dir(path) } else { std::fs::remove_file(path) };
        removed.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(upper, mode).map_err(|e| format!("{}: {e}", upper.display()))?;
    Ok(crate::storage::LayerFormat { kernel_whiteouts: true, owners_in_xattr: stored_owners, ..Default::default() })
}

/// What the runtime made in the writable layer only to mount over it
/// (`/proc`, `/etc/hosts`, a bind's target, and parents it had to make)
/// and that is still empty: not part of the image, as in Docker.
fn made_for_mounts(spec: &oci_spec::runtime::Spec, layered: &crate::storage::LayeredRoot) -> HashSet<PathBuf> {
    let upper = layered.upper();
    // The image's own entry at `rel` (the top layer's that has one).
    let in_image = |rel: &Path| layered.lowers.iter().find_map(|lower| lower.join(rel).symlink_metadata().ok());
    let mut made = HashSet::new();
    for mount in spec.mounts().iter().flatten() {
        let rel = mount.destination().strip_prefix("/").unwrap_or(mount.destination());
        for path in rel.ancestors().filter(|p| !p.as_os_str().is_empty()) {
            let host = upper.join(path);
            let Ok(meta) = host.symlink_metadata() else { break };
            let empty = match meta.is_dir() {
                true => std::fs::read_dir(&host)
                    .is_ok_and(|mut list| list.all(|entry| entry.is_ok_and(|entry| made.contains(&entry.path())))),
                false => meta.is_file() && meta.len() == 0,
            };
            // A directory of the image copied up only to hold mount points
            // stays out too, unless its owner or mode changed.
            let unchanged = |image: std::fs::Metadata| {
                use std::os::unix::fs::MetadataExt;
                meta.is_dir() && (image.mode(), image.uid(), image.gid()) == (meta.mode(), meta.uid(), meta.gid())
            };
            if !empty || !in_image(path).is_none_or(unchanged) {
                break;
            }
            made.insert(host);
        }
    }
    made
}

/// The settings a container ran with, as image config keys: its command
/// (split into the image's Entrypoint and a new Cmd where it starts with
/// that entrypoint) and its environment (less what hutch adds per run).
fn container_config(
    base: &ImageRecord,
    base_config: &[u8],
    container: &Container,
) -> Result<Map<String, Value>, Error> {
    let image_config: oci_spec::image::ImageConfiguration = serde_json::from_slice(base_config)
        .map_err(|e| Error::BadImageConfig { image: base.id.short().to_string(), why: e.to_string() })?;
    let defaults = RunDefaults::from_config(&image_config);
    let mut config = Map::new();
    let command = &container.record.command;
    if Some(command) != defaults.command(None, &[]).as_ref() {
        match command.strip_prefix(defaults.entrypoint.as_slice()) {
            Some(cmd) if !defaults.entrypoint.is_empty() => config.insert("Cmd".into(), json!(cmd)),
            _ => {
                config.insert("Entrypoint".into(), Value::Null);
                config.insert("Cmd".into(), json!(command))
            }
        };
    }
    let spec = container.spec()?;
    let image_sets = |key: &str| defaults.env.iter().any(|e| e.split('=').next() == Some(key));
    let env: Vec<&String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .into_iter()
        .flatten()
        .filter(|e| {
            let key = e.split('=').next().unwrap_or_default();
            !matches!(key, "HOSTNAME" | "TERM" | "HOME") || image_sets(key)
        })
        .collect();
    config.insert("Env".into(), json!(env));
    Ok(config)
}
