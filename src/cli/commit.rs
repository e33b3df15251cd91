//! `hutch commit`: a container's writable layer becomes the top layer of a
//! new image, whose config is the container's (command, environment) with
//! `--change` instructions applied, as in Docker.

use super::{in_userns, runtime_and_userns, Error};
use crate::containers::{Container, Containers};
use crate::image::commit::{commit as commit_image, CommitInfo};
use crate::image::config::RunDefaults;
use crate::image::tree_tar::TreeWriter;
use crate::image::{ImageRecord, ImageRef, Store};
use crate::runtime::inside::{self, Root};
use clap::Args;
use serde_json::{json, Map, Value};
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Args)]
pub struct CommitArgs {
    /// Author of the new image
    #[arg(short, long)]
    author: Option<String>,
    /// Commit message, kept in the image's history
    #[arg(short, long)]
    message: Option<String>,
    /// A Dockerfile instruction for the new config: CMD, ENTRYPOINT, ENV,
    /// WORKDIR, USER, EXPOSE, LABEL or STOPSIGNAL
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    container: String,
    /// The new image's name (REPOSITORY[:TAG]); without it, only an id
    image: Option<String>,
}

pub fn commit(args: CommitArgs, root: &Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let container = Containers::open(root)?.find(&args.container)?;
    let Some(image_id) = &container.record.image_id else {
        return Err(Error::Other(format!(
            "container {} runs a root directory ({}), not an image: there is no writable layer to commit",
            container.record.name, container.record.image
        )));
    };
    let base = store.find(image_id).map_err(|_| {
        Error::Other(format!("container {}: its image {image_id} is no longer stored", container.record.name))
    })?;
    let name = args.image.as_deref().map(tagged_name).transpose()?;
    let base_config = store.read_blob(&base.id)?;
    let mut config = container_config(&base, &base_config, &container)?;
    for change in &args.change {
        apply_change(&mut config, change)?;
    }
    let info = CommitInfo {
        name,
        author: args.author,
        message: args.message,
        created_by: format!("hutch commit {}", container.record.name),
        config,
    };
    let (_runtime, plan) = runtime_and_userns()?;
    let state = container.state();
    if let (Some(_), Some(pid)) = (state.live_monitor(), state.pid) {
        flush_running(pid, &plan)?;
    }
    let upper = match crate::storage::from_spec(&container.spec()?)? {
        Some(layered) => layered.upper(),
        None => return Err(Error::Other(format!("container {}: its spec names no layers", container.record.name))),
    };
    // In the user namespace, where the layer's files have their owners.
    let image = in_userns(&plan, || {
        let _lock = store.lock_shared()?;
        let tmp = store.temp_path("commit");
        let written = write_tar_file(&upper, &tmp);
        let image = written.and_then(|()| Ok(commit_image(&store, &base, &base_config, &tmp, info)?));
        if image.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        image
    })?;
    println!("{}", image.id);
    Ok(0)
}

/// Writes what the running container `pid` has cached in the kernel into
/// its writable layer, from a helper inside its namespaces.
fn flush_running(pid: i32, plan: &crate::userns::UsernsPlan) -> Result<(), Error> {
    let work = || crate::storage::flush_open_files().map_err(|e| e.to_string());
    let helper = inside::spawn(Root::Running(pid), plan, work)?;
    helper.wait().map_err(|why| Error::Other(format!("writing the container's cached writes out: {why}")))
}

fn tagged_name(name: &str) -> Result<String, Error> {
    ImageRef::parse(name)?.tagged_name().ok_or_else(|| Error::Other(format!("{name}: a tag, not a digest")))
}

fn write_tar_file(upper: &Path, tmp: &Path) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Other(format!("writing the layer of {}: {e}", upper.display()));
    let mut out = BufWriter::new(std::fs::File::create(tmp).map_err(fail)?);
    let mut tar = TreeWriter::new(&mut out);
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
        .map_err(|e| Error::Other(format!("the config of image {}: {e}", base.id.short())))?;
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

/// One `--change` instruction, Dockerfile syntax: JSON arrays or the
/// shell form for CMD and ENTRYPOINT, `KEY=VALUE` pairs for ENV and LABEL.
fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::Other(format!("--change {change:?}: {why}"));
    let (instruction, rest) = change.trim().split_once(char::is_whitespace).ok_or_else(|| bad("no value"))?;
    let rest = rest.trim();
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => config.insert("Cmd".into(), json!(command_form(rest))),
        "ENTRYPOINT" => config.insert("Entrypoint".into(), json!(command_form(rest))),
        "WORKDIR" => config.insert("WorkingDir".into(), json!(rest)),
        "USER" => config.insert("User".into(), json!(rest)),
        "STOPSIGNAL" => config.insert("StopSignal".into(), json!(rest)),
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            for port in rest.split_whitespace() {
                let port = if port.contains('/') { port.to_string() } else { format!("{port}/tcp") };
                ports[port] = json!({});
            }
            None
        }
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            for (key, value) in pairs(rest).ok_or_else(|| bad("expected KEY=VALUE"))? {
                if let Some(list) = env.as_array_mut() {
                    list.retain(|e| e.as_str().and_then(|e| e.split('=').next()) != Some(key.as_str()));
                    list.push(json!(format!("{key}={value}")));
                }
            }
            None
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            for (key, value) in pairs(rest).ok_or_else(|| bad("expected KEY=VALUE"))? {
                labels[key] = json!(value);
            }
            None
        }
        _ => return Err(bad("supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL")),
    };
    Ok(())
}

/// `["a", "b"]` as it is; anything else is run by `/bin/sh -c`.
fn command_form(value: &str) -> Vec<String> {
    serde_json::from_str(value).unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), value.into()])
}

/// `A=1 B="two words"`, or the old `ENV KEY value` form.
fn pairs(value: &str) -> Option<Vec<(String, String)>> {
    if !value.contains('=') {
        let (key, val) = value.split_once(char::is_whitespace)?;
        return Some(vec![(key.to_string(), val.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (val, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"')?,
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        out.push((key.trim().to_string(), val.to_string()));
        rest = next.trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_dockerfile_syntax() {
        let mut config = Map::new();
        apply_change(&mut config, r#"CMD ["sleep", "5"]"#).unwrap();
        apply_change(&mut config, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut config, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut config, "ENV A 3").unwrap();
        apply_change(&mut config, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(config["Cmd"], json!(["sleep", "5"]));
        assert_eq!(config["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(config["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert!(apply_change(&mut config, "RUN true").is_err());
        assert!(apply_change(&mut config, "ENV").is_err());
    }
}
