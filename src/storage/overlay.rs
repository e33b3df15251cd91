//! The kernel's overlayfs, mounted by the monitor inside the container's
//! user namespace (Linux 5.11 and later allow it there with `userxattr`).
//! It reads at the disk's speed, where fuse-overlay serves every request
//! from a process. It needs layers in the kernel's format (whiteouts as
//! `c 0 0` nodes, `user.overlay.opaque`), owners the namespace maps, and a
//! store on a filesystem the kernel accepts as a layer: `choice.rs`
//! decides when that holds.
//!
//! Options (what an unprivileged mount may use here): `userxattr` always
//! (the `trusted.*` namespace is the host root's); `volatile` for `--rm`
//! containers (no syncs of the writable layer, which nothing reads after
//! the container ends); not `redirect_dir` or `metacopy`, which the kernel
//! refuses with `userxattr`, and not `index`, which it turns off.

use super::{Driver, Error, LayeredRoot};
use nix::mount::{mount, MsFlags};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct KernelOverlay;

impl KernelOverlay {
    pub const NAME: &'static str = "overlay";

    fn failed(why: impl Into<String>) -> Error {
        Error::Mount { driver: Self::NAME, why: why.into() }
    }
}

impl Driver for KernelOverlay {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn mount(&self, root: &LayeredRoot, target: &Path) -> Result<(), Error> {
        // The option string is one page at most: the lowers are named
        // relative to the layers' directory, which the mount runs in.
        let parent = common_parent(&root.lowers).ok_or_else(|| Self::failed("the layers are not in one directory"))?;
        let lowers: Vec<String> = root
            .lowers
            .iter()
            .map(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
            .collect();
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lowers.join(":"),
            escaped(&root.upper()),
            escaped(&root.work())
        );
        if root.volatile {
            options.push_str(",volatile");
        }
        let previous = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        std::env::set_current_dir(&parent).map_err(|e| Self::failed(format!("{}: {e}", parent.display())))?;
        let mounted = mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(options.as_str()));
        let _ = std::env::set_current_dir(previous);
        mounted.map_err(|e| Self::failed(format!("mount on {}: {e}", target.display())))
    }
}

/// The directory every lower is in (the store's `layers/`).
fn common_parent(lowers: &[PathBuf]) -> Option<PathBuf> {
    let parent = lowers.first()?.parent()?.to_path_buf();
    lowers.iter().all(|l| l.parent() == Some(parent.as_path())).then_some(parent)
}

/// A path as overlayfs options take it: `,` and `:` and `\` escaped.
fn escaped(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_paths_are_escaped_and_lowers_share_a_parent() {
        assert_eq!(escaped(Path::new("/a,b:c")), "/a\\,b\\:c");
        let lowers = [PathBuf::from("/s/layers/aa"), PathBuf::from("/s/layers/bb")];
        assert_eq!(common_parent(&lowers), Some(PathBuf::from("/s/layers")));
        assert_eq!(common_parent(&[PathBuf::from("/x/aa"), PathBuf::from("/y/bb")]), None);
    }
}
