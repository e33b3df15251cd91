//! Runs a Dockerfile's steps. A stage's state is its current image, its
//! run config (ahead of the image while config instructions accumulate),
//! its ARGs and a WORKDIR still to make. RUN, COPY and ADD each make a
//! layer in a container of the current image, committed as an
//! intermediate image under a cache key: the parent image, the config,
//! the instruction with its variables substituted, and what it reads (the
//! sources' contents, the build arguments in its environment).

mod copy;
mod run;

use super::config::{self, RunConfig};
use super::pattern::IgnoreRules;
use super::receive::{self, MakeDir};
use super::sources::{ContentHashes, SourceTree};
use super::stages::{Stage, Stages};
use super::{BuildOptions, Context, DockerfileSource, Error};
use crate::dockerfile::words::{expand, expand_words, split_raw};
use crate::dockerfile::{self, Args, Instruction};
use crate::engine::{CommitOptions, ContainerOptions, Engine, PullPolicy, Removal, RootSource, ScratchDir};
use crate::image::pull::Platform;
use crate::image::{Digest, ImageRecord};
use crate::spec::Volume;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Build arguments Docker passes to RUN without an ARG line.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Builds `options`' Dockerfile; `progress` gets each line worth showing
/// (steps, cache hits, the images made). Returns the final image.
pub fn build(engine: &Engine, mut options: BuildOptions, progress: &dyn Fn(&str)) -> Result<ImageRecord, Error> {
    remove_abandoned_steps(engine)?;
    let (context_dir, scratch) = context_directory(engine, &mut options)?;
    let (file_name, text, ignore_path) = read_dockerfile(&options.dockerfile, &context_dir)?;
    let parsed = dockerfile::parse(&file_name, &text)?;
    if let Some(syntax) = &parsed.syntax {
        progress(&format!("note: # syntax={syntax} noted; hutch reads the Dockerfile itself"));
    }
    let escape = parsed.escape;
    let stages = Stages::split(parsed, &file_name)?;
    let rules = std::fs::read_to_string(&ignore_path).map(|t| IgnoreRules::parse(&t)).unwrap_or_default();
    // Kept for a context directory of the caller's (a context from stdin
    // is new each time).
    let hashes_file = match &options.context {
        Context::Directory(_) => Some(engine.build_cache_file(&format!("context hashes {}", context_dir.display()))?),
        _ => None,
    };
    let mut builder = Builder {
        hashes: RefCell::new(hashes_file.as_deref().map(ContentHashes::load).unwrap_or_default()),
        engine,
        progress,
        file: file_name,
        escape,
        context: SourceTree::new(context_dir, rules),
        platform: options.platform.clone().unwrap_or_else(Platform::host),
        given_args: options.build_args.iter().cloned().collect(),
        used_args: RefCell::new(BTreeSet::new()),
        global: BTreeMap::new(),
        results: vec![None; stages.stages.len()],
        step: 0,
        total: 0,
        options: &options,
        _scratch: scratch,
    };
    let target = stages.target(options.target.as_deref())?;
    let built = builder.build_stages(&stages, target);
    if let Some(file) = &hashes_file {
        builder.hashes.borrow().save(file);
    }
    let image = built?;
    builder.note_unused_args();
    let kept = engine.keep_built(&image, &options.tags)?;
    for name in &kept.names {
        progress(&format!("Successfully tagged {name}"));
    }
    Ok(kept)
}

/// The label of a step's container: which build made it.
const STEP_LABEL: &str = "io.hutch.build-step";

/// Removes the containers of steps whose build was killed (theirs are
/// removed as they end otherwise).
fn remove_abandoned_steps(engine: &Engine) -> Result<(), Error> {
    for container in engine.list_containers()? {
        if container.record.labels.get(STEP_LABEL).is_some_and(|tag| crate::liveness::abandoned(tag)) {
            engine.remove(&container, Removal::Force)?;
        }
    }
    Ok(())
}

/// The context as a directory: the caller's, or a scratch directory for
/// one from stdin (unpacked there) or none; the scratch kept until the end.
fn context_directory(engine: &Engine, options: &mut BuildOptions) -> Result<(PathBuf, Vec<ScratchDir>), Error> {
    let dir = match std::mem::replace(&mut options.context, Context::Empty) {
        Context::Directory(dir) => {
            options.context = Context::Directory(dir.clone());
            if !dir.is_dir() {
                return Err(Error::Usage(format!("{}: the build context must be a directory", dir.display())));
            }
            return Ok((dir, Vec::new()));
        }
        Context::Tar(input) => {
            let dir = engine.scratch_dir("build-context")?;
            unpack_context(input, dir.path())?;
            dir
        }
        Context::Empty => engine.scratch_dir("build-context")?,
    };
    Ok((dir.path().to_path_buf(), vec![dir]))
}

/// The Dockerfile's name (for messages), its text, and where its
/// `.dockerignore` would be (`NAME.dockerignore` beside it first).
fn read_dockerfile(source: &Option<DockerfileSource>, context: &Path) -> Result<(String, String, PathBuf), Error> {
    let path = match source {
        Some(DockerfileSource::Text(text)) => {
            return Ok(("Dockerfile".into(), text.clone(), context.join(".dockerignore")));
        }
        Some(DockerfileSource::Path(path)) => path.clone(),
        None => {
            let dockerfile = context.join("Dockerfile");
            let containerfile = context.join("Containerfile");
            if !dockerfile.exists() && containerfile.exists() {
                containerfile
            } else {
                dockerfile
            }
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let own_ignore = PathBuf::from(format!("{}.dockerignore", path.display()));
    let ignore = if own_ignore.exists() { own_ignore } else { context.join(".dockerignore") };
    let shown = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok((shown, text, ignore))
}

/// A context given as a tar stream, unpacked as the caller's files.
fn unpack_context(input: Box<dyn std::io::Read>, dir: &Path) -> Result<(), Error> {
    unpack_as_caller(input, dir, true).map_err(|e| Error::Usage(format!("the context on stdin: {e}")))
}

/// Unpacks a tar stream into `dir` as the caller's files (a context, or
/// a stage's files bound into a RUN).
fn unpack_as_caller(input: impl std::io::Read, dir: &Path, replace_directories: bool) -> Result<(), String> {
    use crate::image::unpack::{open_tree, unpack_stream, Owners, Placement, Top};
    let root = open_tree(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let placement = Placement { replace_directories, ..Placement::files(Owners::Caller, Top::Keep) };
    unpack_stream(input, root, placement).map_err(|e| e.to_string())?;
    Ok(())
}

struct Builder<'a> {
    engine: &'a Engine,
    progress: &'a dyn Fn(&str),
    file: String,
    escape: char,
    context: SourceTree,
    platform: Platform,
    options: &'a BuildOptions,
    given_args: BTreeMap<String, Option<String>>,
    used_args: RefCell<BTreeSet<String>>,
    /// The context files' content hashes, kept between builds.
    hashes: RefCell<ContentHashes>,
    /// The ARGs before the first FROM, and the platform ones.
    global: BTreeMap<String, Option<String>>,
    /// Each stage's image, once built.
    results: Vec<Option<ImageRecord>>,
    step: usize,
    total: usize,
    _scratch: Vec<ScratchDir>,
}

/// A stage being built.
struct State {
    image: ImageRecord,
    config: RunConfig,
    /// MAINTAINER's, the config's top-level `author`.
    author: Option<String>,
    /// ARGs declared in the stage, with their values.
    args: Vec<(String, Option<String>)>,
    /// A WORKDIR not made yet: the next layer makes it.
    workdir_to_make: Option<MakeDir>,
    /// CMD was set in this stage (ENTRYPOINT keeps it then).
    cmd_set: bool,
    /// History lines of the instructions since the last image, which
    /// changed no file (ENV, LABEL…): recorded with the next image.
    pending_history: Vec<String>,
}

impl State {
    fn lookup(&self, name: &str) -> Option<String> {
        let from_env = config::env(&self.config).into_iter().find(|(k, _)| k == name).map(|(_, v)| v);
        from_env.or_else(|| self.args.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.clone()))
    }

    /// What the cache key of a step of this state starts with.
    fn key_base(&self) -> String {
        let config = Value::Object(self.config.clone());
        format!("{}\n{config}\n{:?}\n{:?}\n", self.image.id, self.author, self.pending_history)
    }
}

impl Builder<'_> {
    /// The stages `target` needs, in order; the target's image.
    fn build_stages(&mut self, stages: &Stages, target: usize) -> Result<ImageRecord, Error> {
        self.global = self.global_args(stages)?;
        let needed = stages.needed(target, &|text| self.expand_global(text));
        self.total = needed.iter().map(|i| 1 + stages.stages[*i].instructions.len()).sum();
        for index in needed {
            let image = self.stage(stages, &stages.stages[index], index == target)?;
            self.results[index] = Some(image);
        }
        self.results[target].clone().ok_or_else(|| Error::Usage("the target stage was not built".into()))
    }

    fn note_unused_args(&self) {
        let used = self.used_args.borrow();
        let unused: Vec<&str> = self.given_args.keys().filter(|k| !used.contains(*k)).map(String::as_str).collect();
        if !unused.is_empty() {
            self.say(&format!("note: build arguments not used by any ARG: {}", unused.join(", ")));
        }
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn fail(&self, instruction: &Instruction, why: impl std::fmt::Display) -> Error {
        Error::Step {
            file: self.file.clone(),
            line: instruction.line,
            instruction: instruction.keyword.clone(),
            why: why.to_string(),
        }
    }

    fn build_arg(&self, name: &str) -> Option<String> {
        let given = self.given_args.get(name)?;
        self.used_args.borrow_mut().insert(name.to_string());
        given.clone().or_else(|| std::env::var(name).ok())
    }

    fn global_args(&self, stages: &Stages) -> Result<BTreeMap<String, Option<String>>, Error> {
        let host = Platform::host();
        let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (prefix, platform) in [("TARGET", &self.platform), ("BUILD", &host)] {
            let variant = platform.variant.clone().unwrap_or_default();
            let full = format!(
                "{}/{}{}",
                platform.os,
                platform.arch,
                platform.variant.as_ref().map(|v| format!("/{v}")).unwrap_or_default()
            );
            global.insert(format!("{prefix}PLATFORM"), Some(full));
            global.insert(format!("{prefix}OS"), Some(platform.os.clone()));
            global.insert(format!("{prefix}ARCH"), Some(platform.arch.clone()));
            global.insert(format!("{prefix}VARIANT"), Some(variant));
        }
        for instruction in &stages.global_args {
            let lookup = |name: &str| global.get(name).cloned().flatten();
            for (name, default) in self.arg_words(instruction, &lookup)? {
                let value = self.build_arg(&name).or(default);
                global.insert(name, value);
            }
        }
        Ok(global)
    }

    fn expand_global(&self, text: &str) -> String {
        expand(text, self.escape, &|name| self.global.get(name).cloned().flatten()).unwrap_or_else(|_| text.to_string())
    }

    /// `ARG A=1 B`: each name with its default, substituted.
    fn arg_words(
        &self,
        instruction: &Instruction,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        let Args::Shell(text) = &instruction.args else {
            return Err(self.fail(instruction, "expected ARG NAME[=DEFAULT]"));
        };
        let words = split_raw(text, self.escape).map_err(|e| self.fail(instruction, e))?;
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some((name, default)) => {
                    let default = expand(default, self.escape, lookup).map_err(|e| self.fail(instruction, e))?;
                    Ok((name.to_string(), Some(default)))
                }
                None => Ok((word.clone(), None)),
            })
            .collect()
    }

    fn announce(&mut self, instruction: &Instruction) {
        self.step += 1;
        self.say(&format!("STEP {}/{}: {}", self.step, self.total, instruction.source));
    }

    /// Builds one stage; returns its image.
    fn stage(&mut self, stages: &Stages, stage: &Stage, last: bool) -> Result<ImageRecord, Error> {
        self.announce(&stage.from);
        let base = self.expand_global(&stage.base);
        let image = self.base_image(stages, stage, &base)?;
        let image_config = self.engine.image_config_json(&image)?;
        let mut state = State {
            config: image_config.get("config").and_then(Value::as_object).cloned().unwrap_or_default(),
            author: None,
            image,
            args: Vec::new(),
            workdir_to_make: None,
            cmd_set: false,
            pending_history: Vec::new(),
        };
        // The base's ONBUILD triggers run first, and are not inherited.
        let triggers: Vec<String> =
            state.config.remove("OnBuild").and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
        for trigger in triggers {
            let parsed = dockerfile::parse(&format!("{} (ONBUILD of {base})", self.file), &trigger)?;
            for instruction in parsed.instructions {
                self.say(&format!("ONBUILD {}", instruction.source));
                self.instruction(stages, stage, &mut state, &instruction)?;
            }
        }
        for instruction in &stage.instructions {
            self.announce(instruction);
            self.instruction(stages, stage, &mut state, instruction)?;
        }
        if last {
            for (key, value) in &self.options.labels {
                config::insert(&mut state.config, "Labels", key, json!(value));
            }
        }
        self.finish_config(state)
    }

    /// The image a stage starts from: an earlier stage's, `scratch`, or
    /// one from the store or a registry.
    fn base_image(&self, stages: &Stages, stage: &Stage, base: &str) -> Result<ImageRecord, Error> {
        if let Some(index) = stages.find(base, stage.index) {
            return self.results[index]
                .clone()
                .ok_or_else(|| self.fail(&stage.from, format!("stage {base} was not built")));
        }
        let platform = match stage.from.flags.iter().find(|f| f.name == "platform").and_then(|f| f.value.as_deref()) {
            Some(text) => Platform::parse(&self.expand_global(text)).map_err(|e| self.fail(&stage.from, e))?,
            None => self.platform.clone(),
        };
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(self.engine.scratch_image(&platform)?);
        }
        self.engine.find_or_pull(base, self.options.pull, platform).map_err(|e| self.fail(&stage.from, e))
    }

    /// The stage's image with its config as the instructions left it (a
    /// new image without a layer when the config changed since the last).
    fn finish_config(&mut self, mut state: State) -> Result<ImageRecord, Error> {
        let stored = self.engine.image_config_json(&state.image)?;
        let stored_config = stored.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        let stored_author = stored.get("author").and_then(Value::as_str).map(str::to_string);
        let same_author = state.author.is_none() || state.author == stored_author;
        if stored_config == state.config && same_author && state.pending_history.is_empty() {
            return Ok(state.image);
        }
        let key = cache_key(&format!("{}CONFIG", state.key_base()));
        if let Some(cached) = self.cached(&key) {
            return Ok(cached);
        }
        let mut config = state.config.clone();
        // Keys the stage removed must be removed from the stored config too.
        for key in stored_config.keys().filter(|k| !state.config.contains_key(*k)) {
            config.insert(key.clone(), Value::Null);
        }
        // `--label`s alone leave no line of their own: one is made.
        let labels: Vec<String> = self.options.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let last = state.pending_history.pop().unwrap_or_else(|| format!("LABEL {}", labels.join(" ")));
        let options = CommitOptions {
            author: state.author.clone(),
            config: Some(config),
            created_by: Some(last),
            history_before: std::mem::take(&mut state.pending_history),
            created: self.created(),
            intermediate: true,
            ..Default::default()
        };
        let image = self.engine.derive_image(&state.image, options)?;
        self.engine.remember_step(&key, &image)?;
        self.say(&format!("--> {}", image.id.short()));
        Ok(image)
    }

    /// A reproducible build's time: `--timestamp`, else `SOURCE_DATE_EPOCH`
    /// as a build argument or in the environment.
    fn epoch(&self) -> Option<u64> {
        let given = self.given_args.get("SOURCE_DATE_EPOCH").cloned().flatten();
        let from_env = || std::env::var("SOURCE_DATE_EPOCH").ok();
        self.options.timestamp.or_else(|| given.or_else(from_env)?.trim().parse().ok())
    }

    fn created(&self) -> Option<String> {
        self.epoch().map(crate::image::time::rfc3339)
    }

    /// Takes the image a step with `key` made before, if the cache has it.
    fn use_cached(&self, state: &mut State, key: &Digest) -> bool {
        let Some(cached) = self.cached(key) else { return false };
        self.say(&format!("--> Using cache {}", cached.id.hex()));
        state.image = cached;
        state.workdir_to_make = None;
        state.pending_history.clear();
        true
    }

    fn cached(&self, key: &Digest) -> Option<ImageRecord> {
        if self.options.no_cache {
            return None;
        }
        self.engine.cached_step(key)
    }

    fn instruction(
        &mut self,
        stages: &Stages,
        stage: &Stage,
        state: &mut State,
        instruction: &Instruction,
    ) -> Result<(), Error> {
        let text = match &instruction.args {
            Args::Shell(text) => text.clone(),
            Args::Exec(words) => serde_json::to_string(words).unwrap_or_default(),
        };
        let lookup = |name: &str| state.lookup(name);
        let one_word = |text: &str| expand(text, self.escape, &lookup).map_err(|e| self.fail(instruction, e));
        match instruction.keyword.as_str() {
            "ARG" => {
                for (name, default) in self.arg_words(instruction, &lookup)? {
                    let value = self.build_arg(&name).or(default).or_else(|| self.global.get(&name).cloned().flatten());
                    state.args.push((name, value));
                }
            }
            "ENV" | "LABEL" => {
                let pairs = self.pairs(instruction, &text, &lookup)?;
                for (key, value) in pairs {
                    match instruction.keyword.as_str() {
                        "ENV" => config::set_env(&mut state.config, &key, &value),
                        _ => config::insert(&mut state.config, "Labels", &key, json!(value)),
                    }
                }
            }
            "EXPOSE" => {
                let words = expand_words(&text, self.escape, &lookup).map_err(|e| self.fail(instruction, e))?;
                for port in words {
                    let port = expose_port(&port).map_err(|e| self.fail(instruction, e))?;
                    config::insert(&mut state.config, "ExposedPorts", &port, json!({}));
                }
            }
            "VOLUME" => {
                let paths = match &instruction.args {
                    Args::Exec(words) => words.clone(),
                    Args::Shell(text) => {
                        expand_words(text, self.escape, &lookup).map_err(|e| self.fail(instruction, e))?
                    }
                };
                for path in paths.iter().filter(|p| !p.is_empty()) {
                    config::insert(&mut state.config, "Volumes", path, json!({}));
                }
            }
            "USER" => {
                let user = one_word(&text)?;
                // A WORKDIR not made yet is made by the user of the step
                // that makes it, as buildah does.
                if let Some(dir) = &mut state.workdir_to_make {
                    dir.owner = Some(user.clone()).filter(|u| !u.is_empty());
                }
                state.config.insert("User".into(), json!(user));
            }
            "WORKDIR" => {
                let dir = one_word(&text)?;
                let current = config::text(&state.config, "WorkingDir").unwrap_or_else(|| "/".into());
                let path = Path::new(&current).join(&dir);
                let path = format!("/{}", super::pattern::clean(&path.to_string_lossy()));
                state.config.insert("WorkingDir".into(), json!(path));
                state.workdir_to_make =
                    Some(MakeDir { path: PathBuf::from(&path), owner: config::text(&state.config, "User") });
            }
            "CMD" => {
                state.config.insert("Cmd".into(), json!(config::command(&state.config, &instruction.args)));
                state.cmd_set = true;
            }
            "ENTRYPOINT" => {
                state.config.insert("Entrypoint".into(), json!(config::command(&state.config, &instruction.args)));
                if !state.cmd_set {
                    state.config.insert("Cmd".into(), Value::Null);
                }
            }
            "SHELL" => match &instruction.args {
                Args::Exec(words) if !words.is_empty() => {
                    state.config.insert("Shell".into(), json!(words));
                }
                _ => {
                    return Err(self.fail(instruction, "expected the JSON form: SHELL [\"executable\", \"parameters\"]"))
                }
            },
            "STOPSIGNAL" => {
                let signal = one_word(&text)?;
                state.config.insert("StopSignal".into(), json!(signal));
            }
            "HEALTHCHECK" => {
                let check = config::healthcheck(&instruction.flags, &instruction.args)
                    .map_err(|e| self.fail(instruction, e))?;
                state.config.insert("Healthcheck".into(), check);
            }
            "ONBUILD" => {
                let trigger = text.trim();
                let keyword = trigger.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                if matches!(keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(self.fail(instruction, format!("{keyword} is not allowed as an ONBUILD trigger")));
                }
                let triggers = state.config.entry("OnBuild").or_insert_with(|| json!([]));
                if !triggers.is_array() {
                    *triggers = json!([]);
                }
                if let Some(list) = triggers.as_array_mut() {
                    list.push(json!(trigger));
                }
            }
            "MAINTAINER" => state.author = Some(one_word(&text)?),
            "RUN" => return self.run(stages, stage, state, instruction),
            "COPY" | "ADD" => return self.copy(stages, stage, state, instruction),
            "FROM" => return Err(self.fail(instruction, "FROM inside a stage")),
            other => return Err(self.fail(instruction, format!("{other} is not supported"))),
        }
        state.pending_history.push(instruction.source.clone());
        Ok(())
    }

    /// `KEY=VALUE …` (or the old `KEY VALUE`), each substituted with the
    /// values from before the instruction.
    fn pairs(
        &self,
        instruction: &Instruction,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, String)>, Error> {
        let fail = |e: String| self.fail(instruction, e);
        let words = split_raw(text, self.escape).map_err(fail)?;
        if words.first().is_some_and(|w| !w.contains('=')) {
            let (key, value) =
                text.trim().split_once(char::is_whitespace).ok_or_else(|| fail("expected KEY=VALUE".into()))?;
            return Ok(vec![(key.to_string(), expand(value.trim(), self.escape, lookup).map_err(fail)?)]);
        }
        words
            .iter()
            .map(|word| {
                let (key, value) = word.split_once('=').ok_or_else(|| fail(format!("{word}: expected KEY=VALUE")))?;
                let key = expand(key, self.escape, lookup).map_err(fail)?;
                if key.is_empty() {
                    return Err(fail(format!("{word}: the name is empty")));
                }
                Ok((key, expand(value, self.escape, lookup).map_err(fail)?))
            })
            .collect()
    }

    /// Runs `make` (which changes the files of `container`) as a cached
    /// step: reuses the image of an earlier build with the same `key`,
    /// else creates a container of the current image, lets `make` work in
    /// it, commits it and removes it.
    fn layer_step(
        &mut self,
        state: &mut State,
        instruction: &Instruction,
        key: &str,
        created_by: &str,
        make: impl FnOnce(&Self, &crate::containers::Container, Option<MakeDir>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let key = cache_key(key);
        if self.use_cached(state, &key) {
            return Ok(());
        }
        let options = self.step_container(state, Vec::new(), Vec::new(), Vec::new());
        let created = self.engine.create(&options).map_err(|e| self.fail(instruction, e))?;
        let container = created.container.clone();
        let made = make(self, &container, state.workdir_to_make.clone()).and_then(|()| {
            let options = CommitOptions {
                author: state.author.clone(),
                config: Some(state.config.clone()),
                created_by: Some(created_by.to_string()),
                created: self.created(),
                intermediate: true,
                consume_layer: true,
                history_before: std::mem::take(&mut state.pending_history),
                clamp_times: self.epoch(),
                ..Default::default()
            };
            Ok(self.engine.commit(&container, options)?)
        });
        drop(created);
        let removed = self.engine.remove(&container, Removal::Force);
        let image = made.map_err(|e| match e {
            Error::Step { .. } => e,
            other => self.fail(instruction, other),
        })?;
        removed?;
        self.engine.remember_step(&key, &image)?;
        self.say(&format!("--> {}", image.id.short()));
        state.image = image;
        state.workdir_to_make = None;
        Ok(())
    }

    /// Makes the WORKDIR `dir` in `container`.
    fn make_dir(&self, container: &crate::containers::Container, dir: Option<MakeDir>) -> Result<(), Error> {
        let helper = self.engine.in_container(container, move || receive::receive(dir.as_ref(), None))?;
        helper.wait().map_err(crate::engine::Error::from)?;
        Ok(())
    }

    /// A container of the stage's current image for one step: the stage's
    /// environment, user and directory, no entrypoint, no volumes.
    fn step_container(
        &self,
        state: &State,
        command: Vec<String>,
        volumes: Vec<Volume>,
        tmpfs: Vec<String>,
    ) -> ContainerOptions {
        let mut options = self.container_of(&state.image);
        if !command.is_empty() {
            options.command = command;
        }
        let env = config::env(&state.config);
        let args = state.args.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?)));
        let proxies = PROXY_ARGS.iter().filter_map(|k| Some((k.to_string(), self.given_args.get(*k)?.clone()?)));
        let mut all: Vec<(String, String)> =
            args.chain(proxies).filter(|(k, _)| !env.iter().any(|(e, _)| e == k)).collect();
        all.extend(env);
        options.env = all.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        options.user = Some(config::text(&state.config, "User").unwrap_or_else(|| "0".into()));
        options.workdir = Some(PathBuf::from(config::text(&state.config, "WorkingDir").unwrap_or_else(|| "/".into())));
        options.volumes = volumes;
        options.tmpfs = tmpfs;
        options
    }

    /// A container of `image` that a build makes (labelled as its step),
    /// with no entrypoint, volumes or healthcheck; a helper works in its
    /// root unless a command is set.
    fn container_of(&self, image: &ImageRecord) -> ContainerOptions {
        let root = RootSource::Image {
            name: image.id.to_string(),
            pull: PullPolicy::Never,
            platform: None,
            entrypoint: Some(String::new()),
        };
        let mut options = ContainerOptions::new(root, vec!["/nonexistent-build-step".into()]);
        options.network = self.options.network.clone();
        options.image_volumes = false;
        options.no_healthcheck = true;
        options.labels.insert(STEP_LABEL.into(), crate::liveness::ProcessId::current_tag());
        options
    }
}

/// A step's cache key.
fn cache_key(text: &str) -> Digest {
    Digest::of(text.as_bytes())
}

/// `80`, `53/udp`, `8000-8002/tcp` as the `port/proto` key podman
/// records (a range stays one key).
fn expose_port(text: &str) -> Result<String, String> {
    let (ports, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{text}: the protocol must be tcp, udp or sctp"));
    }
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    let valid = match ports.split_once('-') {
        Some((first, last)) => port(first).zip(port(last)).is_some_and(|(f, l)| f <= l),
        None => port(ports).is_some(),
    };
    if !valid {
        return Err(format!("{text}: not a port (1-65535) or range"));
    }
    Ok(format!("{ports}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_and_ranges() {
        assert_eq!(expose_port("80").unwrap(), "80/tcp");
        assert_eq!(expose_port("53/UDP").unwrap(), "53/udp");
        assert_eq!(expose_port("8000-8002").unwrap(), "8000-8002/tcp");
        assert!(expose_port("http").is_err() && expose_port("80/xx").is_err() && expose_port("9-1").is_err());
    }
}
