//! The container's root filesystem, built from the Spec's root and mounts
//! and then entered with pivot_root. Runs in the container's own mount
//! namespace, as root of the user namespace.

use super::inroot;
use super::SetupError;
use crate::sys::{set_mount_attrs, Depth, MountAttrs};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, fchdir, pivot_root, symlinkat};
use oci_spec::runtime::{LinuxDevice, Mount, Spec};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const NONE: Option<&str> = None;

/// Builds the root from `spec` and makes it `/` for this process.
pub fn enter(spec: &Spec) -> Result<(), SetupError> {
    let root_path =
        spec.root().as_ref().map(|r| r.path().clone()).ok_or_else(|| SetupError::config("the spec names no root"))?;
    // Nothing we mount may propagate back to the host's mounts.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(|e| SetupError::sys("make / private", "/", e))?;
    // pivot_root needs the new root to be a mount point.
    mount(Some(&root_path), &root_path, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .map_err(|e| SetupError::sys("bind the root", &root_path, e))?;
    let root = nix::fcntl::open(&root_path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| SetupError::sys("open the root", &root_path, e))?;

    for m in spec.mounts().iter().flatten() {
        mount_one(root.as_fd(), m)?;
    }
    if let Some(linux) = spec.linux() {
        for dev in linux.devices().iter().flatten() {
            bind_device(root.as_fd(), dev)?;
        }
    }
    dev_symlinks(root.as_fd())?;
    if let Some(linux) = spec.linux() {
        for path in linux.masked_paths().iter().flatten() {
            mask(root.as_fd(), Path::new(path))?;
        }
        for path in linux.readonly_paths().iter().flatten() {
            make_read_only(root.as_fd(), Path::new(path))?;
        }
    }
    if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) {
        inroot::mkdir_all(root.as_fd(), cwd).map_err(|e| SetupError::sys("create the working directory", cwd, e))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        let top = reopen(root.as_fd(), Path::new("/"))?;
        set_mount_attrs(top.as_fd(), MountAttrs { readonly: true, ..Default::default() }, Depth::Mount)
            .map_err(|e| SetupError::sys("make the root read-only", &root_path, e))?;
    }
    switch_root(root, &root_path)
}

/// pivot_root to the new root, stacking the old root on top of it and then
/// detaching it: no directory for the old root is needed in the image.
fn switch_root(root: OwnedFd, root_path: &Path) -> Result<(), SetupError> {
    fchdir(&root).map_err(|e| SetupError::sys("enter the root", root_path, e))?;
    pivot_root(".", ".").map_err(|e| SetupError::sys("pivot_root", root_path, e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| SetupError::sys("detach the old root", "/", e))?;
    chdir("/").map_err(|e| SetupError::sys("chdir", "/", e))
}

/// What a Spec mount's options mean to mount(2) and mount_setattr(2).
#[derive(Debug, PartialEq, Eq)]
struct MountOptions {
    flags: MsFlags,
    bind: bool,
    recursive: bool,
    attrs: MountAttrs,
    data: Vec<String>,
}

fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        bind: false,
        recursive: false,
        attrs: MountAttrs::default(),
        data: Vec::new(),
    };
    for opt in options {
        match opt.as_str() {
            "bind" => o.bind = true,
            "rbind" => (o.bind, o.recursive) = (true, true),
            "ro" => o.attrs.readonly = true,
            "nosuid" => o.attrs.nosuid = true,
            "nodev" => o.attrs.nodev = true,
            "noexec" => o.attrs.noexec = true,
            "rw" | "suid" | "dev" | "exec" | "private" | "rprivate" => {}
            "noatime" => o.flags |= MsFlags::MS_NOATIME,
            "nodiratime" => o.flags |= MsFlags::MS_NODIRATIME,
            "relatime" => o.flags |= MsFlags::MS_RELATIME,
            "strictatime" => o.flags |= MsFlags::MS_STRICTATIME,
            "sync" => o.flags |= MsFlags::MS_SYNCHRONOUS,
            other => o.data.push(other.to_string()),
        }
    }
    o
}

impl MountAttrs {
    fn as_ms_flags(self) -> MsFlags {
        let mut f = MsFlags::empty();
        f.set(MsFlags::MS_RDONLY, self.readonly);
        f.set(MsFlags::MS_NOSUID, self.nosuid);
        f.set(MsFlags::MS_NODEV, self.nodev);
        f.set(MsFlags::MS_NOEXEC, self.noexec);
        f
    }
}

fn mount_one(root: BorrowedFd<'_>, m: &Mount) -> Result<(), SetupError> {
    let dest = m.destination();
    if !dest.is_absolute() {
        return Err(SetupError::config(format!("mount destination {} is not absolute", dest.display())));
    }
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("bind");
    if opts.bind || typ == "bind" {
        return bind_mount(root, m, &opts);
    }
    let target = inroot::mkdir_all(root, dest).map_err(|e| SetupError::sys("create mount point", dest, e))?;
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data.join(",");
    mount(
        Some(&source),
        &inroot::proc_path(&target),
        Some(typ),
        opts.flags | opts.attrs.as_ms_flags(),
        (!data.is_empty()).then_some(data.as_str()),
    )
    .map_err(|e| SetupError::sys(&format!("mount {typ}"), dest, e))
}

fn bind_mount(root: BorrowedFd<'_>, m: &Mount, opts: &MountOptions) -> Result<(), SetupError> {
    let dest = m.destination();
    let source = m
        .source()
        .as_ref()
        .ok_or_else(|| SetupError::config(format!("bind mount on {} has no source", dest.display())))?;
    let is_dir = std::fs::metadata(source).map_err(|e| SetupError::io("bind mount source", source, e))?.is_dir();
    if is_dir && opts.data.iter().any(|o| o == crate::spec::COPY_UP) {
        super::copy_up::fill_empty_volume(root, dest, source)?;
    }
    let target = if is_dir { inroot::mkdir_all(root, dest) } else { inroot::ensure_file(root, dest) }
        .map_err(|e| SetupError::sys("create mount point", dest, e))?;
    let mut flags = MsFlags::MS_BIND;
    flags.set(MsFlags::MS_REC, opts.recursive);
    mount(Some(source), &inroot::proc_path(&target), NONE, flags, NONE)
        .map_err(|e| SetupError::sys("bind mount", dest, e))?;
    if !opts.attrs.is_empty() {
        let mounted = reopen(root, dest)?;
        set_mount_attrs(mounted.as_fd(), opts.attrs, if opts.recursive { Depth::Tree } else { Depth::Mount })
            .map_err(|e| SetupError::sys("set mount flags on", dest, e))?;
    }
    Ok(())
}

/// A fresh descriptor of `path`, which now shows what was just mounted on it.
fn reopen(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, SetupError> {
    inroot::open(root, path, OFlag::O_PATH).map_err(|e| SetupError::sys("open mount", path, e))
}

/// Device nodes cannot be created in a user namespace: bind the host's.
fn bind_device(root: BorrowedFd<'_>, dev: &LinuxDevice) -> Result<(), SetupError> {
    let path = dev.path();
    let target = inroot::ensure_file(root, path).map_err(|e| SetupError::sys("create device node", path, e))?;
    mount(Some(path), &inroot::proc_path(&target), NONE, MsFlags::MS_BIND, NONE)
        .map_err(|e| SetupError::sys("bind device", path, e))
}

/// Hides `path`: /dev/null over a file, an empty read-only tmpfs over a
/// directory. A path the kernel does not have is fine.
fn mask(root: BorrowedFd<'_>, path: &Path) -> Result<(), SetupError> {
    let Some(target) = open_if_present(root, path, OFlag::O_PATH)? else { return Ok(()) };
    let is_dir = nix::sys::stat::fstat(&target).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(false);
    let result = if is_dir {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("tmpfs"), &inroot::proc_path(&target), Some("tmpfs"), flags, Some("size=0"))
    } else {
        mount(Some("/dev/null"), &inroot::proc_path(&target), NONE, MsFlags::MS_BIND, NONE)
    };
    result.map_err(|e| SetupError::sys("mask", path, e))
}

/// Binds `path` onto itself and makes that mount (and those below it)
/// read-only.
fn make_read_only(root: BorrowedFd<'_>, path: &Path) -> Result<(), SetupError> {
    let Some(target) = open_if_present(root, path, OFlag::O_PATH)? else { return Ok(()) };
    let here = inroot::proc_path(&target);
    mount(Some(&here), &here, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .map_err(|e| SetupError::sys("bind read-only path", path, e))?;
    let mounted = reopen(root, path)?;
    set_mount_attrs(
        mounted.as_fd(),
        MountAttrs { readonly: true, nosuid: true, nodev: true, noexec: true },
        Depth::Tree,
    )
    .map_err(|e| SetupError::sys("make read-only", path, e))
}

/// `path` in the root, or None when it does not exist (a kernel without
/// that /proc file, an image without /dev).
fn open_if_present(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> Result<Option<OwnedFd>, SetupError> {
    match inroot::open(root, path, flags) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(SetupError::sys("open", path, e)),
    }
}

/// The links every /dev has.
fn dev_symlinks(root: BorrowedFd<'_>) -> Result<(), SetupError> {
    let Some(dev) = open_if_present(root, Path::new("/dev"), OFlag::O_DIRECTORY | OFlag::O_PATH)? else {
        return Ok(());
    };
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(SetupError::sys("symlink", Path::new("/dev").join(name), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_attributes_and_data() {
        let o = parse_options(&["rbind".into(), "ro".into(), "nosuid".into()]);
        assert!(o.bind && o.recursive && o.attrs.readonly && o.attrs.nosuid);
        let o = parse_options(&["nosuid".into(), "strictatime".into(), "mode=755".into(), "size=65536k".into()]);
        assert!(!o.bind);
        assert_eq!(o.flags, MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755".to_string(), "size=65536k".to_string()]);
    }
}
