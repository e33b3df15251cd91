//! Which driver a container's root gets: the kernel overlay where the
//! host allows it and it shows the image exactly, fuse-overlay otherwise;
//! or the one the user forces (`--storage-driver`, config `[storage]
//! driver`). What the host allows is probed once per store and kept in
//! the store (`storage.json`); what a layer needs is written when it is
//! unpacked (`layers/HEX.json`).

use super::{driver, Driver, Error, DEFAULT_DRIVER, KERNEL_DRIVER};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a layer was unpacked: what the kernel overlay needs to show it
/// exactly. A layer without it was unpacked by an earlier hutch and keeps
/// OCI `.wh.` whiteouts, which only fuse-overlay reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFormat {
    /// Whiteouts are `c 0 0` nodes and opaque directories carry
    /// `user.overlay.opaque`, as the kernel overlay reads them.
    pub kernel_whiteouts: bool,
    /// Files whose owner the user namespace cannot map, kept in the
    /// `user.hutch.owner` xattr (no subordinate ids).
    pub owners_in_xattr: u64,
    /// Device nodes kept as fuse-overlay placeholders.
    pub device_placeholders: u64,
    /// Files of ids outside the user's mapping (a `--rootfs` directory
    /// of another user's): the kernel overlay lets no one change them.
    #[serde(default)]
    pub unmapped_owners: bool,
}

/// What the kernel lets an unprivileged user do with overlayfs on a store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreProbe {
    /// The kernel release it was probed on: a new kernel probes again.
    pub kernel: String,
    pub overlay_works: bool,
    /// Why not, when it does not.
    pub why: String,
}

impl StoreProbe {
    /// For a choice that does not depend on it (fuse-overlay forced).
    pub fn unprobed() -> StoreProbe {
        StoreProbe { kernel: String::new(), overlay_works: false, why: "not probed".into() }
    }
}

/// `auto`, or one driver by name.
#[derive(Clone, Copy, Debug)]
pub enum Preference {
    Auto,
    Named(&'static dyn Driver),
}

impl Preference {
    pub fn parse(name: &str) -> Result<Preference, Error> {
        match name {
            "auto" | "" => Ok(Preference::Auto),
            name => Ok(Preference::Named(driver(name)?)),
        }
    }
}

/// A container's driver, and why it got that one.
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    pub driver: &'static dyn Driver,
    pub why: &'static str,
}

/// The driver for a root of `layers` (topmost first) on a store where
/// `probe` was found.
pub fn choose(preference: Preference, probe: &StoreProbe, layers: &[Option<LayerFormat>]) -> Result<Choice, Error> {
    let blocker = kernel_blocker(probe, layers);
    match (preference, blocker) {
        (Preference::Named(d), Some(why)) if d.name() == KERNEL_DRIVER => {
            Err(Error::Unusable { driver: KERNEL_DRIVER, why: why.to_string() })
        }
        (Preference::Named(d), _) => Ok(Choice { driver: d, why: "chosen by --storage-driver or [storage] driver" }),
        (Preference::Auto, None) => Ok(Choice {
            driver: driver(KERNEL_DRIVER)?,
            why: "the kernel overlay works on this store and shows these layers exactly",
        }),
        (Preference::Auto, Some(why)) => Ok(Choice { driver: driver(DEFAULT_DRIVER)?, why }),
    }
}

/// Why the kernel overlay cannot serve these layers, if it cannot.
fn kernel_blocker(probe: &StoreProbe, layers: &[Option<LayerFormat>]) -> Option<&'static str> {
    if !probe.overlay_works {
        return Some("the kernel refuses overlayfs in a user namespace on this store (see hutch info)");
    }
    for layer in layers {
        let why = match layer {
            None => "a layer was unpacked by an earlier hutch, with .wh. whiteouts only fuse-overlay reads",
            Some(f) if !f.kernel_whiteouts => "the store's filesystem refused whiteouts as the kernel reads them",
            Some(f) if f.owners_in_xattr > 0 => {
                "files of the image belong to ids outside your mapping (no subordinate ids): fuse-overlay keeps their owners, the kernel overlay cannot"
            }
            Some(f) if f.device_placeholders > 0 => "the image has device nodes, which only fuse-overlay shows",
            Some(f) if f.unmapped_owners => {
                "the root directory belongs to ids outside your mapping: only fuse-overlay lets the container change it"
            }
            Some(_) => continue,
        };
        return Some(why);
    }
    None
}

/// Tries a kernel overlay in `scratch` (an empty directory of the store):
/// a whiteout node, a mount with `userxattr`, the whiteout hiding the
/// file below. Runs in a child in hutch's user namespace; takes a mount
/// namespace of its own.
pub fn probe_kernel_overlay(scratch: &Path) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(step("unshare a mount namespace"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(step("make / private"))?;
    let [lower, upper, work, merged] = ["l", "u", "w", "m"].map(|d| scratch.join(d));
    for dir in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    std::fs::write(lower.join("kept"), b"").map_err(|e| format!("write: {e}"))?;
    std::fs::write(lower.join("gone"), b"").map_err(|e| format!("write: {e}"))?;
    let lower2 = scratch.join("l2");
    std::fs::create_dir(&lower2).map_err(|e| format!("create: {e}"))?;
    mknod(&lower2.join("gone"), SFlag::S_IFCHR, Mode::empty(), 0).map_err(step("mknod of a whiteout (c 0 0)"))?;
    let options = format!(
        "lowerdir={}:{},upperdir={},workdir={},userxattr",
        lower2.display(),
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(Some("overlay"), &merged, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(step("mount overlayfs with userxattr"))?;
    let shown = (merged.join("kept").exists(), merged.join("gone").exists());
    let _ = umount2(&merged, MntFlags::MNT_DETACH);
    match shown {
        (true, false) => Ok(()),
        _ => Err("overlayfs mounted but did not read the whiteout".into()),
    }
}

fn step(what: &'static str) -> impl Fn(nix::errno::Errno) -> String {
    move |e| format!("{what}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn works() -> StoreProbe {
        StoreProbe { kernel: String::new(), overlay_works: true, why: String::new() }
    }

    #[test]
    fn the_kernel_overlay_is_chosen_only_where_it_is_exact() {
        let exact = Some(LayerFormat { kernel_whiteouts: true, ..Default::default() });
        let owners = Some(LayerFormat { kernel_whiteouts: true, owners_in_xattr: 3, ..Default::default() });
        assert_eq!(choose(Preference::Auto, &works(), &[exact, exact]).unwrap().driver.name(), "overlay");
        let fallback = choose(Preference::Auto, &works(), &[exact, owners]).unwrap();
        assert_eq!(fallback.driver.name(), "fuse-overlay");
        assert!(fallback.why.contains("outside your mapping"));
        assert_eq!(choose(Preference::Auto, &works(), &[None]).unwrap().driver.name(), "fuse-overlay");
        let refused = StoreProbe { overlay_works: false, ..works() };
        assert_eq!(choose(Preference::Auto, &refused, &[exact]).unwrap().driver.name(), "fuse-overlay");
        let forced = Preference::parse("overlay").unwrap();
        assert!(matches!(choose(forced, &works(), &[owners]), Err(Error::Unusable { .. })));
        let fuse = Preference::parse("fuse-overlay").unwrap();
        assert_eq!(choose(fuse, &works(), &[exact]).unwrap().driver.name(), "fuse-overlay");
        assert!(Preference::parse("btrfs").is_err());
    }
}
