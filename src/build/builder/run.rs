//! RUN: the command (exec form, or the stage's shell with its
//! here-documents), its `--mount`s and `--network`, run in a container of
//! the stage's image and committed; refused up front for another
//! architecture without an emulator.

use super::{cache_key, Builder, State};
use crate::build::config::{self, RunConfig};
use crate::build::sources::ONE_FILE;
use crate::build::stages::{Stage, Stages};
use crate::build::Error;
use crate::dockerfile::{Args, Instruction};
use crate::engine::ScratchDir;
use crate::engine::{CommitOptions, Removal};
use crate::image::pull::Platform;
use crate::runtime::StdioMode;
use crate::spec::Volume;
use std::collections::BTreeMap;
use std::path::Path;

/// `type=bind,source=…,target=…` as fields (a flag alone is `true`).
fn mount_fields(spec: &str) -> BTreeMap<String, String> {
    spec.split(',')
        .map(|part| part.split_once('=').unwrap_or((part, "true")))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Unpacks a sources stream (its kind byte, then tar) saved in `stream`
/// into `dir`, as the caller's files; the kind.
fn unpack_stream_file(stream: &Path, dir: &Path) -> Result<u8, String> {
    use std::io::Read;
    let mut input = std::fs::File::open(stream).map_err(|e| e.to_string())?;
    let mut kind = [0u8; 1];
    input.read_exact(&mut kind).map_err(|e| format!("the stage's files: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    super::unpack_as_caller(input, dir, false)?;
    Ok(kind[0])
}

/// Why a RUN may fail without subordinate ids, and the fix.
const SINGLE_ID_HINT: &str = " (without subordinate ids only root exists in the container: a chown to another id, \
     or a switch to another user as apt-get makes, fails; an administrator can add ranges to /etc/subuid and /etc/subgid)";

impl Builder<'_> {
    pub(super) fn run(
        &mut self,
        stages: &Stages,
        stage: &Stage,
        state: &mut State,
        instruction: &Instruction,
    ) -> Result<(), Error> {
        if let Some(why) = emulation_missing(&state.image.platform) {
            return Err(self.fail(instruction, why));
        }
        let command = run_command(&state.config, instruction);
        // Files of other stages bound in live in scratch directories until the end.
        let ((volumes, tmpfs, network), _scratch) = self.run_mounts(stages, stage, instruction)?;
        let env_args: Vec<String> =
            state.args.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?))).collect();
        let key = format!(
            "{}RUN {:?} {:?} {:?} {:?} {:?}",
            state.key_base(),
            command,
            env_args,
            volumes_key(&volumes),
            tmpfs,
            network
        );
        // As BuildKit writes it: the command as run.
        let created_by = format!("RUN {} # buildkit", command.join(" "));
        let key_digest = cache_key(&key);
        if self.use_cached(state, &key_digest) {
            return Ok(());
        }
        let mut options = self.step_container(state, command, volumes, tmpfs);
        if let Some(network) = network {
            options.network = Some(network);
        }
        let created = self.engine.create(&options).map_err(|e| self.fail(instruction, e))?;
        let container = created.container.clone();
        // A WORKDIR still to make goes into this step's layer, made before
        // the command starts in it.
        let workdir = state.workdir_to_make.take().map(|dir| self.make_dir(&container, Some(dir)));
        let ran = match workdir {
            Some(Err(e)) => Err(e),
            _ => self.engine.run(created, StdioMode::default()).map_err(Error::from),
        };
        let made = match ran {
            Ok(exit) if exit.code == 0 => {
                let commit = CommitOptions {
                    author: state.author.clone(),
                    config: Some(state.config.clone()),
                    created_by: Some(created_by),
                    created: self.created(),
                    intermediate: true,
                    consume_layer: true,
                    history_before: std::mem::take(&mut state.pending_history),
                    clamp_times: self.epoch(),
                    discard: config::volumes(&state.config),
                    ..Default::default()
                };
                self.engine.commit(&container, commit).map_err(|e| self.fail(instruction, e))
            }
            Ok(exit) => {
                let mut why = format!("{} exited with status {}", instruction.source, exit.code);
                if self.engine.single_id() {
                    why.push_str(SINGLE_ID_HINT);
                }
                Err(self.fail(instruction, why))
            }
            Err(e) => Err(self.fail(instruction, e)),
        };
        let removed = self.engine.remove(&container, Removal::Force);
        let image = made?;
        removed?;
        self.engine.remember_step(&key_digest, &image)?;
        self.say(&format!("--> {}", image.id.short()));
        state.image = image;
        Ok(())
    }

    /// RUN's `--mount`s as binds and tmpfs mounts, and its `--network`;
    /// the scratch directories holding files bound from other stages.
    fn run_mounts(
        &self,
        stages: &Stages,
        stage: &Stage,
        instruction: &Instruction,
    ) -> Result<(RunMounts, Vec<ScratchDir>), Error> {
        let (mut volumes, mut tmpfs, mut network, mut scratch) = (Vec::new(), Vec::new(), None, Vec::new());
        for flag in &instruction.flags {
            let value = flag.value.clone().unwrap_or_default();
            match flag.name.as_str() {
                "network" => {
                    let mode = match value.as_str() {
                        "default" => None,
                        other => Some(other.parse().map_err(|e| self.fail(instruction, e))?),
                    };
                    network = mode;
                }
                "mount" => {
                    let fail = |e: String| self.fail(instruction, format!("--mount={value}: {e}"));
                    let fields = mount_fields(&value);
                    let mount = match fields.get("from").filter(|_| {
                        !matches!(fields.get("type").map(String::as_str), Some("cache" | "tmpfs" | "secret"))
                    }) {
                        Some(from) => {
                            let (volume, dir) = self.bind_from_stage(stages, stage, instruction, from, &fields)?;
                            scratch.push(dir);
                            RunMount::Bind(volume)
                        }
                        None => self.run_mount(&fields).map_err(fail)?,
                    };
                    match mount {
                        RunMount::Bind(volume) => volumes.push(volume),
                        RunMount::Tmpfs(spec) => tmpfs.push(spec),
                        RunMount::Nothing => {}
                    }
                }
                other => return Err(self.fail(instruction, format!("unknown flag --{other}"))),
            }
        }
        Ok(((volumes, tmpfs, network), scratch))
    }

    /// `--mount=type=bind,from=STAGE,source=PATH,target=…`: PATH of the
    /// stage's (or image's) root, copied out into a scratch directory (as
    /// the caller's files) and bound read-only.
    fn bind_from_stage(
        &self,
        stages: &Stages,
        stage: &Stage,
        instruction: &Instruction,
        from: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<(Volume, ScratchDir), Error> {
        let fail = |e: String| self.fail(instruction, format!("--mount from={from}: {e}"));
        let target = fields
            .get("target")
            .or(fields.get("dst"))
            .or(fields.get("destination"))
            .ok_or_else(|| fail("needs target=".into()))?;
        let source = fields.get("source").or(fields.get("src")).cloned().unwrap_or_else(|| "/".into());
        let image = self.copy_source_image(stages, stage, instruction, from)?;
        let dir = self.engine.scratch_dir("build-mount")?;
        let (stream, tree) = (dir.path().join("stream"), dir.path().join("tree"));
        let file = std::fs::File::create(&stream).map_err(|e| fail(e.to_string()))?;
        self.send_from_image(&image, vec![source.clone()], None, file)?;
        let kind = unpack_stream_file(&stream, &tree).map_err(fail)?;
        let _ = std::fs::remove_file(&stream);
        let path = match (kind, Path::new(&source).file_name()) {
            (ONE_FILE, Some(name)) => tree.join(name),
            _ => tree,
        };
        let volume = Volume::parse(&format!("{}:{target}:ro", path.display())).map_err(|e| fail(e.to_string()))?;
        Ok((volume, dir))
    }

    fn run_mount(&self, fields: &BTreeMap<String, String>) -> Result<RunMount, String> {
        let field = |names: &[&str]| names.iter().find_map(|n| fields.get(*n).cloned());
        let kind = field(&["type"]).unwrap_or_else(|| "bind".into());
        let target = field(&["target", "dst", "destination"]);
        let read_only = field(&["readonly", "ro"]).is_some_and(|v| v != "false");
        match kind.as_str() {
            "bind" => {
                let target = target.ok_or("needs target=")?;
                let source = field(&["source", "src"]).unwrap_or_default();
                let selected = self.context.select(&[if source.is_empty() { ".".into() } else { source }])?;
                let path = selected.into_iter().next().ok_or("nothing to bind")?;
                // A bind of the context is read-only: the build must not change it.
                Ok(RunMount::Bind(
                    Volume::parse(&format!("{}:{target}:ro", path.display())).map_err(|e| e.to_string())?,
                ))
            }
            "cache" => {
                let target = target.ok_or("needs target=")?;
                let id = field(&["id"]).unwrap_or_else(|| target.clone());
                let dir = self.engine.cache_mount_dir(&id).map_err(|e| e.to_string())?;
                let mode = if read_only { "ro" } else { "rw" };
                Ok(RunMount::Bind(
                    Volume::parse(&format!("{}:{target}:{mode}", dir.display())).map_err(|e| e.to_string())?,
                ))
            }
            "tmpfs" => {
                let target = target.ok_or("needs target=")?;
                let size = field(&["size", "tmpfs-size"]).map(|s| format!(":size={s}")).unwrap_or_default();
                Ok(RunMount::Tmpfs(format!("{target}{size}")))
            }
            "secret" => {
                let id = field(&["id"]).ok_or("needs id=")?;
                let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                match self.options.secrets.get(&id) {
                    Some(source) => Ok(RunMount::Bind(
                        Volume::parse(&format!("{}:{target}:ro", source.display())).map_err(|e| e.to_string())?,
                    )),
                    None if field(&["required"]).is_some_and(|v| v != "false") => {
                        Err(format!("secret {id} is required: give it with --secret id={id},src=PATH"))
                    }
                    None => Ok(RunMount::Nothing),
                }
            }
            other => Err(format!("type={other}: use bind, cache, tmpfs or secret")),
        }
    }
}

/// RUN's binds, tmpfs mounts and network.
type RunMounts = (Vec<Volume>, Vec<String>, Option<netstack::NetworkMode>);

enum RunMount {
    Bind(Volume),
    Tmpfs(String),
    Nothing,
}

fn volumes_key(volumes: &[Volume]) -> Vec<String> {
    volumes.iter().map(Volume::to_bind).collect()
}

/// RUN's command: the exec form as it is; the shell form (with its
/// here-documents) run by the stage's shell.
fn run_command(config: &RunConfig, instruction: &Instruction) -> Vec<String> {
    let text = match &instruction.args {
        Args::Exec(words) => return words.clone(),
        Args::Shell(text) => text,
    };
    let script = if instruction.heredocs.is_empty() {
        text.clone()
    } else if only_heredocs(text) {
        instruction.heredocs.iter().map(|h| h.body.as_str()).collect()
    } else {
        let bodies: String = instruction.heredocs.iter().map(|h| format!("{}{}\n", h.body, h.name)).collect();
        format!("{text}\n{bodies}")
    };
    config::shell(config).into_iter().chain([script]).collect()
}

/// `RUN <<EOF` (nothing but here-documents): their bodies are the script.
fn only_heredocs(text: &str) -> bool {
    text.split_whitespace().all(|w| w.starts_with("<<"))
}

/// Why RUN cannot run a command of an image for `platform` (`os/arch`)
/// here: another architecture, and no binfmt_misc handler to emulate it.
fn emulation_missing(platform: &str) -> Option<String> {
    let arch = platform.split('/').nth(1)?;
    let host = Platform::host().arch;
    if arch == host || (host == "amd64" && arch == "386") {
        return None;
    }
    let qemu = match arch {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        "386" => "i386",
        "mips64le" => "mips64el",
        other => other,
    };
    let handler = Path::new("/proc/sys/fs/binfmt_misc").join(format!("qemu-{qemu}"));
    match std::fs::read_to_string(&handler) {
        Ok(text) if text.starts_with("enabled") => None,
        _ => Some(format!(
            "the image is for {platform} and this machine is {host}: RUN needs a binfmt_misc handler for {arch} \
             ({} is missing: install qemu-user-static), or build for linux/{host}",
            handler.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_runs() {
        let df = crate::dockerfile::parse("D", "FROM x\nRUN <<EOF\necho a\nEOF\nRUN cat <<A > /f\nhi\nA\n").unwrap();
        let config = RunConfig::new();
        assert_eq!(run_command(&config, &df.instructions[1]), ["/bin/sh", "-c", "echo a\n"]);
        assert_eq!(run_command(&config, &df.instructions[2]), ["/bin/sh", "-c", "cat <<A > /f\nhi\nA\n"]);
    }
}
