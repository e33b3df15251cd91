//! What COPY and ADD copy: sources picked from a tree (the build context
//! on the host, or another stage's root inside a helper) by path or
//! wildcard, left out when `.dockerignore` says so, and sent as one tar
//! stream that the receiving side (`build::receive`) places at the
//! destination. Symlinks are sent as symlinks, never followed out of the
//! tree.

use super::pattern::{IgnoreRules, Pattern};
use crate::image::tree_tar::TreeWriter;
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tree to copy from, and what of it is left out.
#[derive(Clone)]
pub struct SourceTree {
    pub root: PathBuf,
    pub rules: Arc<IgnoreRules>,
}

/// What the stream's first byte says: one file (which the destination may
/// rename), or several sources or a directory's contents (which land
/// in the destination directory).
pub const ONE_FILE: u8 = b'f';
pub const INTO_DIRECTORY: u8 = b'd';
/// Only archives' entries (ADD): they keep the archive's owners, even
/// with `--chown`, as buildah does.
pub const ARCHIVES: u8 = b'a';

impl SourceTree {
    pub fn new(root: PathBuf, rules: IgnoreRules) -> SourceTree {
        SourceTree { root, rules: Arc::new(rules) }
    }

    /// The paths the COPY sources `sources` name: each a path (which must
    /// exist) or a wildcard (which must match something).
    pub fn select(&self, sources: &[String]) -> Result<Vec<PathBuf>, String> {
        let mut selected = Vec::new();
        for source in sources {
            if escapes(source) {
                return Err(format!("{source}: outside the build context"));
            }
            let pattern = Pattern::new(source);
            if pattern.has_wildcards() {
                let before = selected.len();
                self.walk(&self.root, &mut |path, rel, _| {
                    let matched = pattern.matches(rel);
                    if matched {
                        selected.push(path.to_path_buf());
                    }
                    !matched // a directory matched is copied whole
                })?;
                if selected.len() == before {
                    return Err(format!("{source}: no source files were specified (the wildcard matches nothing)"));
                }
            } else {
                selected.push(self.one(&pattern.text(), source)?);
            }
        }
        Ok(selected)
    }

    /// A plain source path: it must exist, not be left out, and lie in the tree.
    fn one(&self, rel: &str, shown: &str) -> Result<PathBuf, String> {
        let path = if rel.is_empty() { self.root.clone() } else { self.root.join(rel) };
        if !rel.is_empty() && self.rules.excludes(rel) {
            return Err(format!("{shown}: not found (excluded by .dockerignore)"));
        }
        fs::symlink_metadata(&path).map_err(|e| format!("{shown}: {}", not_found(e)))?;
        if rel.is_empty() {
            return Ok(path);
        }
        let parent = path.parent().unwrap_or(&self.root);
        let inside = fs::canonicalize(parent).ok().zip(fs::canonicalize(&self.root).ok());
        match inside {
            Some((parent, root)) if parent.starts_with(&root) => Ok(path),
            _ => Err(format!("{shown}: outside the build context (through a symlink)")),
        }
    }

    /// Calls `visit(path, relative path)` for what is below `dir` and not
    /// left out, going into a directory when `visit` says so.
    fn walk(&self, dir: &Path, visit: &mut dyn FnMut(&Path, &str, &fs::Metadata) -> bool) -> Result<(), String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .and_then(|list| list.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = self.relative(&path);
            let meta = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if !self.keeps(&rel, meta.is_dir()) {
                continue;
            }
            if visit(&path, &rel, &meta) && meta.is_dir() {
                self.walk(&path, visit)?;
            }
        }
        Ok(())
    }

    fn relative(&self, path: &Path) -> String {
        String::from_utf8_lossy(path.strip_prefix(&self.root).unwrap_or(path).as_os_str().as_bytes()).into_owned()
    }

    fn keeps(&self, rel: &str, is_dir: bool) -> bool {
        !self.rules.excludes(rel) || (is_dir && self.rules.may_keep_below(rel))
    }

    /// Sends `selected` (from `select`): the kind byte, then a tar stream
    /// of each file under its name and each directory's contents. Entries
    /// are owned by root; `mode` replaces every entry's permissions. With
    /// `extract` (ADD), a tar archive (plain, gzip or zstd) is sent as its
    /// entries, which land in the destination directory.
    /// Regular files named in `already_there` (by their path below the
    /// destination, see `Manifest`) are left out: the destination has them.
    pub fn send(
        &self,
        selected: &[PathBuf],
        mode: Option<u32>,
        extract: bool,
        already_there: std::collections::HashSet<String>,
        mut out: impl Write,
    ) -> Result<(), String> {
        let broken = |e: std::io::Error| format!("sending the sources: {e}");
        let archives: Vec<bool> = selected.iter().map(|p| extract && is_archive(p)).collect();
        let one_file =
            selected.len() == 1 && !archives[0] && !fs::symlink_metadata(&selected[0]).is_ok_and(|m| m.is_dir());
        let kind = match (one_file, archives.iter().all(|a| *a)) {
            (true, _) => ONE_FILE,
            (false, true) => ARCHIVES,
            (false, false) => INTO_DIRECTORY,
        };
        out.write_all(&[kind]).map_err(broken)?;
        let tree = self.clone();
        let dirs: Vec<PathBuf> = selected.iter().filter(|p| p.is_dir()).cloned().collect();
        let keep = move |path: &Path, meta: &fs::Metadata| {
            let is_dir = meta.is_dir();
            let there = !is_dir
                && dirs
                    .iter()
                    .filter_map(|d| path.strip_prefix(d).ok())
                    .any(|below| already_there.contains(below.to_string_lossy().as_ref()));
            !there && tree.keeps(&tree.relative(path), is_dir)
        };
        let mut tar = TreeWriter::new(out).keeping(keep).with_mode(mode).owned_by_root();
        for (path, archive) in selected.iter().zip(archives) {
            let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
            if archive {
                let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let input = crate::image::unpack::decompressed(file).map_err(broken)?;
                tar.append_archive(input).map_err(|e| format!("extracting {}: {e}", path.display()))?;
            } else if meta.is_dir() {
                tar.append_contents(path).map_err(broken)?;
            } else {
                let name = path.file_name().map_or_else(|| PathBuf::from("file"), PathBuf::from);
                tar.append(path, &name, false).map_err(broken)?;
            }
        }
        tar.finish().map_err(broken).map(drop)
    }

    /// A digest of what `send` would send, but for times: names, types,
    /// permissions, sizes, link targets and contents (the build cache's
    /// key), and the manifest of the regular files below directory
    /// sources. A file's content is hashed again only when its size, times
    /// or inode differ from what `known` saw.
    pub fn digest(&self, selected: &[PathBuf], known: &mut ContentHashes) -> Result<(String, Manifest), String> {
        let mut sha = Sha256::new();
        let mut manifest = Manifest::new();
        for path in selected {
            let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
            hash_entry(&mut sha, path, &self.relative(path), &meta, known)?;
            if meta.is_dir() {
                let mut failed = None;
                self.walk(path, &mut |entry, rel, meta| {
                    let hashed = hash_entry(&mut sha, entry, rel, meta, known).map(|content| {
                        if let (Some(content), Ok(below)) = (content, entry.strip_prefix(path)) {
                            let below = below.to_string_lossy().into_owned();
                            manifest.insert(below, format!("{content} {:o}", meta.permissions().mode()));
                        }
                    });
                    if let Err(e) = hashed {
                        failed.get_or_insert(e);
                    }
                    true
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
        Ok((hex::encode(sha.finalize()), manifest))
    }
}

/// The regular files a COPY of directories puts in its destination: their
/// paths below it, each with its content's hash and its mode. Two COPYs
/// with the same entry for a path put the same file there.
pub type Manifest = std::collections::BTreeMap<String, String>;

/// What tells a file's content changed without reading it: its size,
/// modification and change times (seconds, nanoseconds) and inode.
type Stamp = (u64, i64, i64, i64, i64, u64);

/// The contents' hashes of a context's files from the last build, by
/// path, with what identified the file then (size, times, inode): a
/// rebuild reads only the files that changed.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct ContentHashes {
    files: std::collections::HashMap<PathBuf, (Stamp, String)>,
    #[serde(skip)]
    changed: bool,
}

impl ContentHashes {
    pub fn load(path: &Path) -> ContentHashes {
        fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    /// Writes them to `path` if anything changed (a cache: failures are ignored).
    pub fn save(&self, path: &Path) {
        if let (true, Ok(bytes)) = (self.changed, serde_json::to_vec(self)) {
            let _ = crate::files::write_atomic(path, &bytes);
        }
    }

    fn content(&mut self, path: &Path, meta: &fs::Metadata) -> Result<String, String> {
        let stamp: Stamp = (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec(), meta.ino());
        if let Some((known, digest)) = self.files.get(path) {
            if *known == stamp {
                return Ok(digest.clone());
            }
        }
        let mut sha = Sha256::new();
        let mut file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = file.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
        }
        let digest = hex::encode(sha.finalize());
        self.files.insert(path.to_path_buf(), (stamp, digest.clone()));
        self.changed = true;
        Ok(digest)
    }
}

/// Hashes one entry into `sha`; a regular file's content hash.
fn hash_entry(
    sha: &mut Sha256,
    path: &Path,
    rel: &str,
    meta: &fs::Metadata,
    known: &mut ContentHashes,
) -> Result<Option<String>, String> {
    sha.update(rel.as_bytes());
    sha.update(format!("\0{:o}\0{}\0", meta.permissions().mode(), meta.len()).as_bytes());
    let mut content = None;
    if meta.is_symlink() {
        let target = fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
        sha.update(target.as_os_str().as_bytes());
    } else if meta.is_file() {
        let hash = known.content(path, meta)?;
        sha.update(hash.as_bytes());
        content = Some(hash);
    } else {
        sha.update(meta.rdev().to_le_bytes());
    }
    sha.update(b"\n");
    Ok(content)
}

/// Whether `path` is a regular file holding a tar archive, plain or
/// compressed with gzip or zstd (by its contents, as Docker decides).
fn is_archive(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) else { return false };
    let (file, meta) = file;
    if !meta.is_file() {
        return false;
    }
    let Ok(mut input) = crate::image::unpack::decompressed(file) else { return false };
    let mut header = [0u8; 512];
    input.read_exact(&mut header).is_ok() && &header[257..262] == b"ustar"
}

/// Whether a source path climbs above the tree's root (`../x`).
fn escapes(source: &str) -> bool {
    let mut depth = 0i32;
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn not_found(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        _ => e.to_string(),
    }
}
