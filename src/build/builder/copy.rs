//! COPY and ADD: the sources picked (the context, here-documents, a
//! download, another stage or image), sent as one tar stream to a helper
//! in the step's container, placed with Docker's rules and committed; the
//! unchanged files of the same COPY's earlier layer are linked, not sent.

use super::{Builder, State};
use crate::build::config;
use crate::build::download::download;
use crate::build::pattern::IgnoreRules;
use crate::build::receive::{self, Destination};
use crate::build::sources::{Manifest, SourceTree};
use crate::build::stages::{Stage, Stages};
use crate::build::Error;
use crate::dockerfile::words::{expand, expand_words};
use crate::dockerfile::{Args, Instruction};
use crate::engine::{Removal, ScratchDir};
use crate::image::ImageRecord;
use std::path::PathBuf;

impl Builder<'_> {
    pub(super) fn copy(
        &mut self,
        stages: &Stages,
        stage: &Stage,
        state: &mut State,
        instruction: &Instruction,
    ) -> Result<(), Error> {
        let args = self.copy_args(state, instruction)?;
        let (origin, sources) = self.origin(stages, stage, state, instruction, &args)?;
        let fail = |e: String| self.fail(instruction, e);
        let dest = args.dest.clone();
        let mut key = format!(
            "{}{} {:?} {dest} {:?} {:?}",
            state.key_base(),
            instruction.keyword,
            sources,
            args.chown,
            args.chmod
        );
        // The same COPY before the sources changed: its files to reuse.
        let same_copy = format!("earlier copy {key}");
        let mut selected = Vec::new();
        let mut manifest = Manifest::new();
        match &origin {
            Origin::Tree { tree, .. } => {
                selected = tree.select(&sources).map_err(fail)?;
                if selected.len() > 1 && !dest.ends_with('/') {
                    return Err(fail(format!(
                        "{} with more than one source: the destination must be a directory ending in /",
                        instruction.keyword
                    )));
                }
                let (digest, files) = tree.digest(&selected, &mut self.hashes.borrow_mut()).map_err(fail)?;
                key.push_str(&digest);
                manifest = files;
            }
            Origin::Image(image) => key.push_str(image.id.as_str()),
        }
        // --no-cache builds from nothing: no files reused either.
        let reuse = !manifest.is_empty() && !self.options.no_cache;
        let earlier = if reuse { self.earlier_copy(&same_copy) } else { None };
        let unchanged: Vec<String> = match &earlier {
            Some((_, files)) => {
                manifest.iter().filter(|(k, v)| files.get(*k) == Some(v)).map(|(k, _)| k.clone()).collect()
            }
            None => Vec::new(),
        };
        let destination = Destination { path: dest.clone(), chown: args.chown.clone() };
        let dest_dir = PathBuf::from(dest.trim_end_matches('/'));
        let created_by = format!("{} # buildkit", instruction.source);
        self.layer_step(state, instruction, &key, &created_by, |builder, container, dir| {
            let linked = match &earlier {
                Some((image, _)) if !unchanged.is_empty() => {
                    builder.engine.link_from_layer(container, image, &dest_dir, unchanged)?
                }
                _ => std::collections::HashSet::new(),
            };
            let (reader, writer) = std::io::pipe().map_err(|e| builder.fail(instruction, e))?;
            let receiver = builder.engine.in_container(container, move || {
                let mut reader = reader;
                receive::receive(dir.as_ref(), Some((&destination, &mut reader)))
            })?;
            let sent = match &origin {
                Origin::Tree { tree, extract, .. } => {
                    tree.send(&selected, args.chmod, *extract, linked, writer).map_err(|e| builder.fail(instruction, e))
                }
                Origin::Image(image) => builder.send_from_image(image, sources.clone(), args.chmod, writer),
            };
            let note = receiver.wait().map_err(|e| builder.fail(instruction, e))?;
            if let Some(note) = note {
                builder.say(&format!("note: {note}"));
            }
            sent
        })?;
        if !manifest.is_empty() {
            self.remember_copy(&same_copy, &state.image, manifest);
        }
        Ok(())
    }

    /// COPY's and ADD's flags and words, substituted and checked.
    fn copy_args(&self, state: &State, instruction: &Instruction) -> Result<CopyArgs, Error> {
        let lookup = |name: &str| state.lookup(name);
        let fail = |e: String| self.fail(instruction, e);
        let flag = |name: &str| instruction.flags.iter().find(|f| f.name == name).and_then(|f| f.value.clone());
        for flag in &instruction.flags {
            if !matches!(flag.name.as_str(), "from" | "chown" | "chmod" | "link" | "checksum" | "keep-git-dir") {
                return Err(fail(format!("unknown flag --{}", flag.name)));
            }
        }
        let words = match &instruction.args {
            Args::Exec(words) => words.iter().map(|w| expand(w, self.escape, &lookup)).collect::<Result<Vec<_>, _>>(),
            Args::Shell(text) => expand_words(text, self.escape, &lookup),
        }
        .map_err(fail)?;
        let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
            return Err(fail(format!("{} needs a source and a destination", instruction.keyword)));
        };
        let chmod = match flag("chmod") {
            Some(mode) => {
                Some(u32::from_str_radix(&mode, 8).map_err(|_| fail(format!("--chmod={mode}: not an octal mode")))?)
            }
            None => None,
        };
        let workdir = config::text(&state.config, "WorkingDir").unwrap_or_else(|| "/".into());
        Ok(CopyArgs {
            add: instruction.keyword == "ADD",
            sources: sources.to_vec(),
            dest: destination(&workdir, dest),
            chown: flag("chown").map(|c| expand(&c, self.escape, &lookup)).transpose().map_err(fail)?,
            chmod,
            from: flag("from").map(|f| expand(&f, self.escape, &lookup)).transpose().map_err(fail)?,
            checksum: flag("checksum"),
        })
    }

    /// Where the sources come from, and their names there: another stage
    /// or image, here-documents, downloads, or the context.
    fn origin(
        &self,
        stages: &Stages,
        stage: &Stage,
        state: &State,
        instruction: &Instruction,
        args: &CopyArgs,
    ) -> Result<(Origin, Vec<String>), Error> {
        let fail = |e: String| self.fail(instruction, e);
        let scratch_tree = |dir: &ScratchDir| SourceTree::new(dir.path().to_path_buf(), IgnoreRules::default());
        if let Some(from) = &args.from {
            return Ok((
                Origin::Image(self.copy_source_image(stages, stage, instruction, from)?),
                args.sources.clone(),
            ));
        }
        if args.sources.iter().any(|s| s.starts_with("<<")) {
            let dir = self.engine.scratch_dir("build-heredoc")?;
            let lookup = |name: &str| state.lookup(name);
            for heredoc in &instruction.heredocs {
                let body = match heredoc.expand {
                    true => expand_heredoc(&heredoc.body, self.escape, &lookup),
                    false => heredoc.body.clone(),
                };
                std::fs::write(dir.path().join(&heredoc.name), body).map_err(|e| fail(e.to_string()))?;
            }
            let names = args.sources.iter().map(|s| heredoc_name(s)).collect();
            let tree = scratch_tree(&dir);
            return Ok((Origin::Tree { tree, extract: false, _scratch: Some(dir) }, names));
        }
        if args.add && args.sources.iter().any(|s| is_url(s)) {
            if !args.sources.iter().all(|s| is_url(s)) {
                return Err(fail("ADD of URLs and local files at once: give them in two ADDs".into()));
            }
            if args.checksum.is_some() && args.sources.len() > 1 {
                return Err(fail("--checksum needs a single URL".into()));
            }
            let dir = self.engine.scratch_dir("build-download")?;
            let mut names = Vec::new();
            for url in &args.sources {
                let path = download(url, dir.path(), args.checksum.as_deref()).map_err(fail)?;
                names.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            }
            // A download is copied as it is, never extracted (as Docker).
            let tree = scratch_tree(&dir);
            return Ok((Origin::Tree { tree, extract: false, _scratch: Some(dir) }, names));
        }
        let tree = self.context.clone();
        Ok((Origin::Tree { tree, extract: args.add, _scratch: None }, args.sources.clone()))
    }

    /// The image the same COPY made last, with the files it put in place.
    fn earlier_copy(&self, same_copy: &str) -> Option<(ImageRecord, Manifest)> {
        let path = self.engine.build_cache_file(same_copy).ok()?;
        let (id, files): (String, Manifest) = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        Some((self.engine.image(&id).ok()?, files))
    }

    /// Remembers what a COPY put in place (a cache: failures are ignored).
    fn remember_copy(&self, same_copy: &str, image: &ImageRecord, files: Manifest) {
        if let (Ok(path), Ok(bytes)) =
            (self.engine.build_cache_file(same_copy), serde_json::to_vec(&(image.id.as_str(), files)))
        {
            let _ = crate::files::write_atomic(&path, &bytes);
        }
    }

    /// `--from`: an earlier stage's image, or any image (pulled as FROM pulls).
    pub(super) fn copy_source_image(
        &self,
        stages: &Stages,
        stage: &Stage,
        instruction: &Instruction,
        from: &str,
    ) -> Result<ImageRecord, Error> {
        if let Some(index) = stages.find(from, stage.index) {
            return self.results[index]
                .clone()
                .ok_or_else(|| self.fail(instruction, format!("stage {from} was not built")));
        }
        self.engine
            .find_or_pull(from, self.options.pull, self.platform.clone())
            .map_err(|e| self.fail(instruction, format!("--from={from}: no such stage, and no such image: {e}")))
    }

    /// Sends `sources` from a container of `image` (a helper in its root
    /// picks and sends them), into `out`.
    pub(super) fn send_from_image(
        &self,
        image: &ImageRecord,
        sources: Vec<String>,
        chmod: Option<u32>,
        out: impl std::io::Write + 'static,
    ) -> Result<(), Error> {
        let options = self.container_of(image);
        let created = self.engine.create(&options)?;
        let container = created.container.clone();
        let sent = self.engine.in_container(&container, move || {
            let tree = SourceTree::new(PathBuf::from("/"), IgnoreRules::default());
            let selected = tree.select(&sources)?;
            tree.send(&selected, chmod, false, Default::default(), out)
        });
        let sent = sent.and_then(|helper| Ok(helper.wait()?));
        self.engine.remove(&container, Removal::Force)?;
        Ok(sent?)
    }
}

/// COPY's and ADD's flags and words.
struct CopyArgs {
    add: bool,
    sources: Vec<String>,
    /// Absolute; a trailing `/` says it is a directory.
    dest: String,
    chown: Option<String>,
    chmod: Option<u32>,
    from: Option<String>,
    checksum: Option<String>,
}

/// Where a COPY's sources come from.
enum Origin {
    /// A tree on the host: the context, or a scratch directory (kept as
    /// long as this) of here-documents or downloads.
    Tree { tree: SourceTree, extract: bool, _scratch: Option<ScratchDir> },
    /// Another stage's or image's root.
    Image(ImageRecord),
}

/// `<<EOF`, `<<-"EOF"`: the here-document's name.
fn heredoc_name(source: &str) -> String {
    source.trim_start_matches("<<").trim_start_matches('-').trim_matches(['"', '\'']).to_string()
}

/// COPY's here-document with its variables substituted (line by line, so
/// quotes in the text stay as they are).
fn expand_heredoc(body: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let quoted: String = body
        .chars()
        .map(|c| if c == '"' || c == '\'' || c == escape { format!("{escape}{c}") } else { c.to_string() })
        .collect();
    expand(&quoted, escape, lookup).unwrap_or_else(|_| body.to_string())
}

/// COPY's destination, absolute: relative to WORKDIR; `.` and a trailing
/// `/` (or `/.`) mean a directory.
fn destination(workdir: &str, dest: &str) -> String {
    let names_dir = dest.ends_with('/') || dest.ends_with("/.") || dest == "." || dest == "..";
    let joined = if dest.starts_with('/') { dest.to_string() } else { format!("{workdir}/{dest}") };
    let clean = format!("/{}", crate::build::pattern::clean(&joined));
    if names_dir && clean != "/" {
        format!("{clean}/")
    } else {
        clean
    }
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_docker() {
        assert_eq!(destination("/app", "."), "/app/");
        assert_eq!(destination("/app", "x"), "/app/x");
        assert_eq!(destination("/", "/etc/"), "/etc/");
        assert_eq!(destination("/app", "../srv/a"), "/srv/a");
        assert_eq!(destination("/", "."), "/");
    }
}
