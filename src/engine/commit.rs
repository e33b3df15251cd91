//! `commit`: a container's writable layer becomes the top layer of a new
//! image, whose config is the container's (command, environment) with
//! `--change` instructions applied, as in Docker.

use super::{Engine, Error};
use crate::containers::Container;
use crate::image::change::apply_change;
use crate::image::commit::{commit as commit_image, CommitInfo};
use crate::image::config::RunDefaults;
use crate::image::tree_tar::TreeWriter;
use crate::image::{ImageRecord, ImageRef, Store};
use crate::runtime::inside::{self, Root};
use serde_json::{json, Map, Value};
use std::io::{BufWriter, Write};
use std::path::Path;

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
}

impl Engine {
    /// Makes a new image of `container`'s changes; returns it.
    pub fn commit(&self, container: &Container, options: CommitOptions) -> Result<ImageRecord, Error> {
        let store = Store::open(&self.root)?;
        let name = &container.record.name;
        let Some(image_id) = &container.record.image_id else {
            return Err(Error::NoLayerToCommit { name: name.clone(), rootfs: container.record.image.clone() });
        };
        let base =
            store.find(image_id).map_err(|_| Error::ImageGone { name: name.clone(), image: image_id.clone() })?;
        let tagged = options.name.as_deref().map(tagged_name).transpose()?;
        let base_config = store.read_blob(&base.id)?;
        let mut config = container_config(&base, &base_config, container)?;
        for change in &options.changes {
            apply_change(&mut config, change).map_err(|e| Error::BadChange { change: e.change, why: e.why })?;
        }
        let info = CommitInfo {
            name: tagged,
            author: options.author,
            message: options.message,
            created_by: format!("hutch commit {name}"),
            config,
        };
        let plan = self.plan()?;
        let state = container.state();
        if let (Some(_), Some(pid)) = (state.live_monitor(), state.pid) {
            flush_running(pid, plan)?;
        }
        let upper = match crate::storage::from_spec(&container.spec()?)? {
            Some(layered) => layered.upper(),
            None => return Err(Error::NoLayers(name.clone())),
        };
        // In the user namespace, where the layer's files have their owners.
        Ok(crate::userns::in_userns(plan, || {
            let _lock = store.lock_shared().map_err(|e| e.to_string())?;
            let tmp = store.temp_path("commit");
            let written = write_tar_file(&upper, &tmp);
            let image =
                written.and_then(|()| commit_image(&store, &base, &base_config, &tmp, info).map_err(|e| e.to_string()));
            if image.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            image
        })?)
    }
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

fn write_tar_file(upper: &Path, tmp: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("writing the layer of {}: {e}", upper.display());
    let mut out = BufWriter::new(std::fs::File::create(tmp).map_err(fail)?);
    let mut tar = TreeWriter::for_layer(&mut out);
    tar.append_contents(upper).map_err(fail)?;
    tar.finish().map_err(fail)?;
    out.flush().map_err(fail)?;
    out.get_ref().sync_all().map_err(fail)
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
