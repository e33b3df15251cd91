//! `--device HOST[:CONTAINER][:PERMISSIONS]`: a host device node the caller
//! may open, made visible in the container. A user namespace cannot create
//! device nodes, so the host's node is bind-mounted (as rootless podman
//! does); the kernel still checks the caller's own access on every open.
//! Permissions narrower than read-write cannot be enforced: a read-only
//! mount does not stop writes to a device node, and rootless containers
//! have no device cgroup. They are refused rather than ignored.

use nix::unistd::{access, AccessFlags};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid --device {0:?}: expected HOST-PATH[:CONTAINER-PATH][:PERMISSIONS] with absolute paths and permissions made of r, w, m")]
    Syntax(String),
    #[error("--device {path}: {source}")]
    Missing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--device {0:?}: read-only devices cannot be enforced without a device cgroup, which rootless containers lack; give rw (or no permissions) or leave the device out"
    )]
    ReadOnly(String),
    #[error("--device {0}: not a device node")]
    NotADevice(PathBuf),
    #[error(
        "--device {path}: you may not open it for reading and writing (owner uid {uid}, gid {gid}, mode {mode:04o}); ask an administrator for access, e.g. membership of its group"
    )]
    Denied { path: PathBuf, uid: u32, gid: u32, mode: u32 },
}

/// A host device to bind into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub host: PathBuf,
    pub container: PathBuf,
}

impl Device {
    /// Parses and checks `HOST[:CONTAINER][:PERMISSIONS]` against the host.
    pub fn parse(arg: &str) -> Result<Device, Error> {
        let syntax = || Error::Syntax(arg.to_string());
        let is_permissions = |s: &str| !s.is_empty() && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
        let parts: Vec<&str> = arg.split(':').collect();
        let (host, container, permissions) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, p] if is_permissions(p) => (*h, *h, *p),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] if is_permissions(p) => (*h, *c, *p),
            _ => return Err(syntax()),
        };
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(syntax());
        }
        if !permissions.contains('w') {
            return Err(Error::ReadOnly(arg.to_string()));
        }
        let device = Device { host: host.into(), container: container.into() };
        device.check_access()?;
        Ok(device)
    }

    /// The node must exist, be a device, and be openable by the caller as
    /// asked: better one clear line now than EACCES inside the container.
    fn check_access(&self) -> Result<(), Error> {
        let meta = std::fs::metadata(&self.host).map_err(|e| Error::Missing { path: self.host.clone(), source: e })?;
        if !meta.file_type().is_char_device() && !meta.file_type().is_block_device() {
            return Err(Error::NotADevice(self.host.clone()));
        }
        // Read and write, as the container may open it either way.
        access(&self.host, AccessFlags::R_OK | AccessFlags::W_OK).map_err(|_| Error::Denied {
            path: self.host.clone(),
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.permissions().mode() & 0o7777,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_the_flag() {
        let d = Device::parse("/dev/null").unwrap();
        assert_eq!((d.host.to_str(), d.container.to_str()), (Some("/dev/null"), Some("/dev/null")));
        let d = Device::parse("/dev/null:rwm").unwrap();
        assert_eq!(d.container.to_str(), Some("/dev/null"));
        let d = Device::parse("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(d.container.to_str(), Some("/dev/mynull"));
        assert!(matches!(Device::parse("/dev/null:r"), Err(Error::ReadOnly(_))));
        assert!(matches!(Device::parse("dev/null"), Err(Error::Syntax(_))));
        assert!(matches!(Device::parse("/dev/null:/x:rwx"), Err(Error::Syntax(_))));
        assert!(matches!(Device::parse("/etc/hostname"), Err(Error::NotADevice(_))));
        assert!(matches!(Device::parse("/dev/no-such-device"), Err(Error::Missing { .. })));
    }
}
