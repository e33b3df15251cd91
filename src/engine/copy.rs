//! Copying files between a container (running or stopped) and the host,
//! with Docker's rules for where they land.
//!
//! The files travel as a tar stream through a pipe, between hutch on the
//! host side and a helper whose root is the container's
//! (`runtime::inside`). Each side only reads its own files or unpacks into
//! its own tree (`image::unpack`, which keeps every entry inside the
//! destination), so a hostile container can neither make hutch write
//! outside the destination nor reach the host's files.
//!
//! The stream starts with one byte: `d` or `f`, whether the source is a
//! directory, which decides where it lands (its first path component is
//! the source's name, which the receiving side keeps, renames or strips),
//! or `t` for a tar stream the user gave (`cp -`), unpacked as it is.

use super::{Engine, Error};
use crate::image::tree_tar::TreeWriter;
use crate::image::unpack::{unpack_stream, Owners, Placement, Top};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How `cp` copies.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// Keep the owners of what is copied into a container (default: owned
    /// by root in the container; out of one, always by the caller).
    pub archive: bool,
    /// Follow a symlink given as the source.
    pub follow_link: bool,
}

/// One side of a copy: a path on the host, or in a container.
pub enum Side {
    Host(PathBuf),
    Container { name: String, path: PathBuf },
}

/// Docker's rule: `NAME:PATH` names a container, unless the text before the
/// colon holds a `/` (then it is a host path such as `./a:b`).
fn container_part(arg: &str) -> Option<(&str, &str)> {
    arg.split_once(':').filter(|(name, _)| !name.is_empty() && !name.contains('/'))
}

impl Side {
    /// `NAME:PATH` names a container's path, anything else a host path;
    /// `-` is a tar stream on stdin or stdout.
    pub fn parse(arg: &str) -> Side {
        match container_part(arg) {
            Some((name, path)) => {
                let path = if path.is_empty() { "/" } else { path };
                Side::Container { name: name.to_string(), path: PathBuf::from("/").join(path) }
            }
            None => Side::Host(PathBuf::from(arg)),
        }
    }
}
impl Engine {
    /// Copies `source` to `dest`, one of them in a container (running or
    /// stopped), with Docker's rules for where it lands.
    pub fn copy(&self, source: &str, dest: &str, options: CopyOptions) -> Result<(), Error> {
        let contents_only = names_contents(source);
        let follow = options.follow_link;
        match (Side::parse(source), Side::parse(dest)) {
            (Side::Container { name, path }, Side::Host(dest)) => {
                let options = Options { follow, contents_only, owners: Owners::Caller };
                self.copy_out(&name, &path, &dest, options)
            }
            (Side::Host(source), Side::Container { name, path }) => {
                let owners = if options.archive { Owners::FromArchive } else { Owners::Fixed(0, 0) };
                self.copy_in(&source, &name, &path, Options { follow, contents_only, owners })
            }
            (Side::Container { .. }, Side::Container { .. }) => Err(Error::CopyBetweenContainers),
            (Side::Host(_), Side::Host(_)) => Err(Error::CopyWithoutContainer),
        }
    }

    fn copy_out(&self, container: &str, source: &Path, dest: &Path, options: Options) -> Result<(), Error> {
        let (reader, writer) = std::io::pipe().map_err(super::error::io("pipe", Path::new("")))?;
        let source = source.to_path_buf();
        let helper = self.spawn_inside(container, move || send(&source, options.follow, writer))?;
        let received =
            if dest == Path::new("-") { forward_tar(reader).map(|()| None) } else { receive(reader, dest, options) };
        // The helper's failure (a missing source, say) explains the receiver's.
        helper.wait()?;
        self.note_unpacked(received.map_err(Error::Helper)?);
        Ok(())
    }

    fn copy_in(&self, source: &Path, container: &str, dest: &Path, options: Options) -> Result<(), Error> {
        let (reader, writer) = std::io::pipe().map_err(super::error::io("pipe", Path::new("")))?;
        let dest = dest.to_path_buf();
        let helper = self.spawn_inside(container, move || receive(reader, &dest, options))?;
        let sent = if source == Path::new("-") { tar_from_stdin(writer) } else { send(source, options.follow, writer) };
        self.note_unpacked(helper.wait()?);
        sent.map_err(Error::Helper)
    }

    fn note_unpacked(&self, note: Option<String>) {
        if let Some(note) = note {
            self.note(&note);
        }
    }

    /// The helper for `container`: in its namespaces if it runs, else with
    /// its root mounted for the helper alone.
    fn spawn_inside<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        container: &str,
        work: impl FnOnce() -> Result<T, String>,
    ) -> Result<crate::child::Child<T>, Error> {
        self.in_container(&self.container(container)?, work)
    }
}

#[derive(Clone, Copy)]
struct Options {
    follow: bool,
    /// The source ends in `/.`: its contents are copied, not itself.
    contents_only: bool,
    owners: Owners,
}

/// `dir/.` and `/` mean a directory's contents.
fn names_contents(source: &str) -> bool {
    let path = container_part(source).map_or(source, |(_, p)| p);
    path.ends_with("/.") || path == "." || path.is_empty() || path.trim_end_matches('/').is_empty()
}

/// Sends `source` (its kind byte, then the tar stream).
fn send(source: &Path, follow: bool, mut out: impl Write) -> Result<(), String> {
    let meta = if follow { std::fs::metadata(source) } else { std::fs::symlink_metadata(source) }
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let broken = |e: std::io::Error| format!("copying {}: {e}", source.display());
    out.write_all(if meta.is_dir() { b"d" } else { b"f" }).map_err(broken)?;
    let name = source.file_name().map_or_else(|| OsString::from("root"), OsString::from);
    let mut tar = TreeWriter::new(out);
    tar.append(source, Path::new(&name), follow).map_err(broken)?;
    tar.finish().map_err(broken).map(drop)
}

/// `cp - CONTAINER:DIR`: a tar stream from stdin, unpacked into DIR as it is.
fn tar_from_stdin(mut out: impl Write) -> Result<(), String> {
    out.write_all(b"t")
        .and_then(|()| std::io::copy(&mut std::io::stdin().lock(), &mut out))
        .map(drop)
        .map_err(|e| format!("copying the tar stream from stdin: {e}"))
}

/// `cp CONTAINER:SRC -`: the tar stream to stdout.
fn forward_tar(mut input: impl Read) -> Result<(), String> {
    let mut kind = [0u8; 1];
    if input.read_exact(&mut kind).is_err() {
        return Ok(()); // the helper failed; it says why
    }
    std::io::copy(&mut input, &mut std::io::stdout().lock()).map(drop).map_err(|e| format!("writing to stdout: {e}"))
}

/// Unpacks a stream from `send` (or `tar_from_stdin`) at `dest`; a note
/// on what could not be kept as it was, if anything.
fn receive(mut input: impl Read, dest: &Path, options: Options) -> Result<Option<String>, String> {
    let mut kind = [0u8; 1];
    if input.read_exact(&mut kind).is_err() {
        return Ok(None); // the sender failed; it says why
    }
    let (dir, top) = match kind[0] {
        b't' => (existing_dir(dest)?, Top::Keep),
        kind => destination(dest, kind == b'd', options.contents_only)?,
    };
    let root = crate::image::unpack::open_tree(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let report = unpack_stream(input, root, Placement::files(options.owners, top))
        .map_err(|e| format!("copying to {}: {e}", dest.display()))?;
    Ok(report.note())
}

fn existing_dir(dest: &Path) -> Result<PathBuf, String> {
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => Ok(dest.to_path_buf()),
        Ok(_) => Err(format!("{}: not a directory (a tar stream unpacks into a directory)", dest.display())),
        Err(e) => Err(format!("{}: {e}", dest.display())),
    }
}

/// Where the source lands, Docker's way: into `dest` if it is a directory
/// (or, for `SRC/.`, its contents do); as `dest` otherwise, replacing a
/// file but never a directory, and only in an existing parent.
fn destination(dest: &Path, source_is_dir: bool, contents_only: bool) -> Result<(PathBuf, Top), String> {
    let shown = dest.display();
    let wants_dir = dest.as_os_str().as_bytes().ends_with(b"/");
    let renamed = || {
        let name = dest.file_name().ok_or_else(|| format!("{shown}: not a name to copy to"))?;
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        match std::fs::metadata(parent) {
            Ok(m) if m.is_dir() => Ok((parent.to_path_buf(), Top::Rename(name.to_os_string()))),
            Ok(_) => Err(format!("{}: not a directory", parent.display())),
            Err(e) => Err(format!("{}: {e} (the destination's directory must exist)", parent.display())),
        }
    };
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => Ok((dest.to_path_buf(), if contents_only { Top::Strip } else { Top::Keep })),
        Ok(_) if source_is_dir => Err(format!("{shown}: cannot copy a directory onto a file")),
        Ok(_) if wants_dir => Err(format!("{shown}: not a directory")),
        Ok(_) => renamed(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if wants_dir && !source_is_dir {
                return Err(format!("{shown}: no such directory"));
            }
            renamed()
        }
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_name_colon_path_and_contents_end_in_slash_dot() {
        assert!(
            matches!(Side::parse("web:/etc/hosts"), Side::Container { name, path } if name == "web" && path == Path::new("/etc/hosts"))
        );
        assert!(matches!(Side::parse("web:tmp"), Side::Container { path, .. } if path == Path::new("/tmp")));
        assert!(matches!(Side::parse("./a:b"), Side::Host(p) if p == Path::new("./a:b")));
        assert!(matches!(Side::parse("/x"), Side::Host(_)));
        assert!(names_contents("web:/srv/."));
        assert!(names_contents("web:/"));
        assert!(names_contents("dir/."));
        assert!(!names_contents("web:/srv"));
        assert!(!names_contents("dir/"));
    }
}
