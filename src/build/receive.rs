//! The receiving end of COPY and ADD, run in a helper whose root is the
//! step's container: it makes the directories a step needs (WORKDIR's,
//! the destination's parents) owned as Docker and buildah make them, and
//! unpacks the sources' tar stream where Docker's destination rules put
//! it. Every entry stays inside the container's root (`image::unpack`).

use super::sources::{ARCHIVES, ONE_FILE};
use crate::image::unpack::{open_tree, unpack_stream, Owners, Placement, Top};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A directory to make (with its missing parents), owned by `owner`
/// (`USER` syntax, looked up in the container's /etc/passwd), root when `None`.
#[derive(Clone, Debug)]
pub struct MakeDir {
    pub path: PathBuf,
    pub owner: Option<String>,
}

/// Where a COPY's stream lands.
#[derive(Clone, Debug)]
pub struct Destination {
    /// Absolute; a trailing `/` says it is a directory.
    pub path: String,
    /// `--chown`: every entry's owner; otherwise the stream's own (root
    /// for context files, the archive's for ADD's archives).
    pub chown: Option<String>,
}

/// Makes `dir` first, if given; then, with a `stream`, places it at `dest`.
pub fn receive(dir: Option<&MakeDir>, copy: Option<(&Destination, &mut dyn Read)>) -> Result<Option<String>, String> {
    if let Some(dir) = dir {
        // As USER runs: a uid without a passwd entry has group 0.
        let (uid, gid) = owner(dir.owner.as_deref(), |_| 0)?;
        make_dirs(&dir.path, uid, gid)?;
    }
    let Some((dest, input)) = copy else { return Ok(None) };
    let mut kind = [0u8; 1];
    if input.read_exact(&mut kind).is_err() {
        return Ok(None); // the sender failed; it says why
    }
    // Docker: "a UID without a GID uses the UID as the GID".
    let chown = dest.chown.as_deref().map(|spec| owner(Some(spec), |uid| uid)).transpose()?;
    let (dir_uid, dir_gid) = chown.unwrap_or((0, 0));
    let path = Path::new(&dest.path);
    let names_dir = dest.path.ends_with('/') || std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    let (dir, top) = match (kind[0] == ONE_FILE && !names_dir, path.file_name(), path.parent()) {
        (true, Some(name), Some(parent)) => (parent.to_path_buf(), Top::Rename(name.to_os_string())),
        _ => (path.to_path_buf(), Top::Keep),
    };
    make_dirs(&dir, dir_uid, dir_gid)?;
    let root = open_tree(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let owners = match chown {
        Some((uid, gid)) if kind[0] != ARCHIVES => Owners::Fixed(uid, gid),
        _ => Owners::FromArchive,
    };
    let placement = Placement::files(owners, top);
    let report = unpack_stream(input, root, placement).map_err(|e| format!("copying to {}: {e}", dest.path))?;
    Ok(report.note())
}

/// The ids `spec` names in the container (root when `None`).
fn owner(spec: Option<&str>, lone_uid_gid: fn(u32) -> u32) -> Result<(u32, u32), String> {
    let Some(spec) = spec else { return Ok((0, 0)) };
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    crate::spec::owner_ids(&read("/etc/passwd"), &read("/etc/group"), spec, lone_uid_gid).map_err(|e| e.to_string())
}

/// `mkdir -p`, each directory it makes mode 0755 and owned by `uid:gid`.
fn make_dirs(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    let mut at = PathBuf::from("/");
    for part in path.components().skip_while(|c| matches!(c, std::path::Component::RootDir)) {
        at.push(part);
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(format!("{}: not a directory", at.display())),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", at.display())),
            Err(_) => {}
        }
        std::fs::create_dir(&at).map_err(|e| format!("creating {}: {e}", at.display()))?;
        // Without subordinate ids, an owner the namespace cannot map is
        // kept in the layer's owner xattr, as unpacking keeps it.
        let dir = std::fs::File::open(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        crate::image::tree::set_owner_and_mode(&dir, uid, gid, 0o755)
            .map_err(|e| format!("chown {}: {e}", at.display()))?;
    }
    Ok(())
}
