//! `hutch cp`: files between a container (running or stopped) and the host,
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

use super::{runtime_and_userns, Error};
use crate::containers::Containers;
use crate::image::tree_tar::TreeWriter;
use crate::image::unpack::{unpack_stream, Owners, Placement, Top};
use crate::runtime::inside::{self, Root};
use clap::Args;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CpArgs {
    /// Keep the owners of what is copied (default: owned by root in the
    /// container, by you on the host)
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink given as the source
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// CONTAINER:SRC_PATH, or a host path; `-` reads a tar stream from stdin
    #[arg(value_name = "SRC")]
    source: String,
    /// CONTAINER:DEST_PATH, or a host path; `-` writes a tar stream to stdout
    #[arg(value_name = "DEST")]
    dest: String,
}

/// One side of a copy: a path on the host, or in a container.
enum Side {
    Host(PathBuf),
    Container { name: String, path: PathBuf },
}

/// Docker's rule: `NAME:PATH` names a container, unless the text before the
/// colon holds a `/` (then it is a host path such as `./a:b`).
fn container_part(arg: &str) -> Option<(&str, &str)> {
    arg.split_once(':').filter(|(name, _)| !name.is_empty() && !name.contains('/'))
}

fn side(arg: &str) -> Side {
    match container_part(arg) {
        Some((name, path)) => {
            let path = if path.is_empty() { "/" } else { path };
            Side::Container { name: name.to_string(), path: PathBuf::from("/").join(path) }
        }
        None => Side::Host(PathBuf::from(arg)),
    }
}

pub fn cp(args: CpArgs, root: &Path) -> Result<i32, Error> {
    let contents_only = names_contents(&args.source);
    match (side(&args.source), side(&args.dest)) {
        (Side::Container { name, path }, Side::Host(dest)) => {
            let options = Options { follow: args.follow_link, contents_only, owners: Owners::Caller };
            copy_out(root, &name, &path, &dest, options)
        }
        (Side::Host(source), Side::Container { name, path }) => {
            let owners = if args.archive { Owners::FromArchive } else { Owners::Fixed(0, 0) };
            let options = Options { follow: args.follow_link, contents_only, owners };
            copy_in(root, &source, &name, &path, options)
        }
        (Side::Container { .. }, Side::Container { .. }) => {
            Err(Error::Other("copying between two containers is not supported: copy through the host".into()))
        }
        (Side::Host(_), Side::Host(_)) => {
            Err(Error::Other("one of SRC and DEST must be CONTAINER:PATH (a path in a container)".into()))
        }
    }?;
    Ok(0)
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

fn copy_out(root: &Path, container: &str, source: &Path, dest: &Path, options: Options) -> Result<(), Error> {
    let (reader, writer) = std::io::pipe().map_err(|e| Error::Other(format!("pipe: {e}")))?;
    let source = source.to_path_buf();
    let helper = spawn(root, container, move || send(&source, options.follow, writer))?;
    let received = if dest == Path::new("-") { forward_tar(reader) } else { receive(reader, dest, options) };
    // The helper's failure (a missing source, say) explains the receiver's.
    helper.wait().map_err(Error::Other)?;
    received.map_err(Error::Other)
}

fn copy_in(root: &Path, source: &Path, container: &str, dest: &Path, options: Options) -> Result<(), Error> {
    let (reader, writer) = std::io::pipe().map_err(|e| Error::Other(format!("pipe: {e}")))?;
    let dest = dest.to_path_buf();
    let helper = spawn(root, container, move || receive(reader, &dest, options))?;
    let sent = if source == Path::new("-") { tar_from_stdin(writer) } else { send(source, options.follow, writer) };
    helper.wait().map_err(Error::Other)?;
    sent.map_err(Error::Other)
}

/// The helper for `container`: in its namespaces if it runs, else with its
/// root mounted for the helper alone.
fn spawn(root: &Path, container: &str, work: impl FnOnce() -> Result<(), String>) -> Result<inside::Helper, Error> {
    let container = Containers::open(root)?.find(container)?;
    let (_runtime, plan) = runtime_and_userns()?;
    let state = container.state();
    let spec; // a stopped container's root is mounted from its spec
    let target = match (state.live_monitor(), state.pid) {
        (Some(_), Some(pid)) => Root::Running(pid),
        _ => {
            spec = container.spec()?;
            Root::Stopped(&spec)
        }
    };
    let name = container.record.name.clone();
    Ok(inside::spawn(target, &plan, move || work().map_err(|e| format!("container {name}: {e}")))?)
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

/// Unpacks a stream from `send` (or `tar_from_stdin`) at `dest`.
fn receive(mut input: impl Read, dest: &Path, options: Options) -> Result<(), String> {
    let mut kind = [0u8; 1];
    if input.read_exact(&mut kind).is_err() {
        return Ok(()); // the sender failed; it says why
    }
    let (dir, top) = match kind[0] {
        b't' => (existing_dir(dest)?, Top::Keep),
        kind => destination(dest, kind == b'd', options.contents_only)?,
    };
    let root = crate::image::unpack::open_tree(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let placement = Placement { owners: options.owners, device_placeholders: false, replace_directories: false, top };
    let report = unpack_stream(input, root, placement).map_err(|e| format!("copying to {}: {e}", dest.display()))?;
    if let Some(note) = report.note() {
        eprintln!("hutch: note: {note}");
    }
    Ok(())
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
            matches!(side("web:/etc/hosts"), Side::Container { name, path } if name == "web" && path == Path::new("/etc/hosts"))
        );
        assert!(matches!(side("web:tmp"), Side::Container { path, .. } if path == Path::new("/tmp")));
        assert!(matches!(side("./a:b"), Side::Host(p) if p == Path::new("./a:b")));
        assert!(matches!(side("/x"), Side::Host(_)));
        assert!(names_contents("web:/srv/."));
        assert!(names_contents("web:/"));
        assert!(names_contents("dir/."));
        assert!(!names_contents("web:/srv"));
        assert!(!names_contents("dir/"));
    }
}
