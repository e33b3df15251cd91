//! Paths inside a container's root, resolved as the container would resolve
//! them: symlinks (absolute ones too) and `..` never leave the root.
//! Everything the host side does to a rootfs goes through here, so a hostile
//! image cannot point a mount or a new file at the host.

use nix::errno::Errno;
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

fn how(flags: OFlag) -> OpenHow {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // openat2 refuses a mode unless it creates the file.
    if flags.contains(OFlag::O_CREAT) {
        how.mode(Mode::from_bits_truncate(0o644))
    } else {
        how
    }
}

/// Opens `path` (absolute or relative, read as inside the root) with `flags`.
pub fn open(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    openat2(root, &relative(path), how(flags))
}

/// `mkdir -p` inside the root; returns an O_PATH descriptor of the directory.
/// A dangling symlink on the way is followed (inside the root) and its
/// target created, as `mkdir -p` in the container would.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    const MAX_LINKS: u32 = 40;
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut pending: Vec<OsString> = components(&relative(path));
    let mut walked = PathBuf::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        let candidate = walked.join(&name);
        match open(root, &candidate, dir_flags) {
            Ok(_) => {
                walked = candidate;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = open(root, &walked, dir_flags)?;
        match mkdirat(parent.as_fd(), name.as_os_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) => walked = candidate,
            // Made by someone else meanwhile (another container on the same root)?
            Err(Errno::EEXIST) if open(root, &candidate, dir_flags).is_ok() => walked = candidate,
            Err(Errno::EEXIST) => {
                // A dangling symlink: go on from its target.
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                let target = PathBuf::from(readlinkat(parent.as_fd(), name.as_os_str())?);
                if target.is_absolute() {
                    walked = PathBuf::new();
                }
                pending.extend(components(&target));
            }
            Err(e) => return Err(e),
        }
    }
    open(root, &walked, dir_flags)
}

/// The components of `path` to walk, last first (a stack), without `/` and `.`.
fn components(path: &Path) -> Vec<OsString> {
    let mut parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    parts.reverse();
    parts
}

/// Makes sure a regular file (or anything not a directory) exists at `path`,
/// creating it and its parents when missing; returns an O_PATH descriptor.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    match open(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent() {
        mkdir_all(root, parent)?;
    }
    drop(open(root, path, OFlag::O_CREAT | OFlag::O_WRONLY)?);
    open(root, path, OFlag::O_PATH)
}

/// A path that names what `fd` refers to, usable as a mount source or
/// target: the mount lands on the very file the descriptor holds, however
/// the rootfs changes meanwhile.
pub fn proc_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path.components().filter(|c| !matches!(c, Component::RootDir)).collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hutch-inroot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn absolute_symlinks_and_dotdot_stay_inside() {
        let base = tempdir("sym");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // A hostile rootfs: /etc/evil -> /outside, /up -> ../../
        symlink("/outside", root.join("etc/evil")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        let root_fd = nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        ensure_file(root_fd.as_fd(), Path::new("/etc/evil/file")).unwrap();
        mkdir_all(root_fd.as_fd(), Path::new("/up/escaped")).unwrap();
        assert!(root.join("outside/file").is_file(), "absolute link resolved inside the root");
        assert!(root.join("escaped").is_dir(), "`..` clamped at the root");
        assert!(!base.join("escaped").exists() && !Path::new("/outside").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
