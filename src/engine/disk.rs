//! What the store takes on disk (`system df`, `ps -s`) and removing all of
//! it (`system reset`).

use super::{Engine, Error, Removal};
use crate::containers::Container;
use crate::files::tree_size;
use serde::Serialize;
use std::collections::HashSet;

/// `ps -s`: what a container wrote, and the image under it.
#[derive(Clone, Copy, Debug, Default)]
pub struct ContainerSize {
    /// Its writable layer.
    pub writable: u64,
    /// Its image's layers (compressed, as `images` shows them).
    pub image: u64,
}

/// One line of `system df`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsageLine {
    #[serde(rename = "Type")]
    pub kind: String,
    pub total_count: usize,
    /// Images a container uses, running containers, volumes in use.
    pub active: usize,
    pub size: u64,
    /// What `system prune -a --volumes` would free.
    pub reclaimable: u64,
}

impl Engine {
    /// `ps -s`: each container's size, in order (the images read once).
    pub fn container_sizes(&self, containers: &[&Container]) -> Vec<ContainerSize> {
        let with_images = containers.iter().any(|c| c.record.image_id.is_some());
        let images = if with_images { self.images().unwrap_or_default() } else { Vec::new() };
        let image_size = |id: &str| images.iter().find(|i| i.id.as_str() == id).map_or(0, |i| i.size());
        containers
            .iter()
            .map(|c| ContainerSize {
                writable: tree_size(&c.path("upper")),
                image: c.record.image_id.as_deref().map_or(0, image_size),
            })
            .collect()
    }

    /// `system df`: images, containers, local volumes and build cache.
    pub fn disk_usage(&self) -> Result<Vec<DiskUsageLine>, Error> {
        let containers = self.list_containers()?;
        let used_images: HashSet<&str> = containers.iter().filter_map(|c| c.record.image_id.as_deref()).collect();
        let images = self.images()?;
        let image_line = line("Images", images.iter().map(|i| (used_images.contains(i.id.as_str()), i.size())));
        let container_line =
            line("Containers", containers.iter().map(|c| (c.state().is_running(), tree_size(&c.path("upper")))));
        let in_use: HashSet<&str> =
            containers.iter().flat_map(|c| c.record.volumes.iter().map(String::as_str)).collect();
        let volumes = self.volumes()?;
        let volume_line =
            line("Local Volumes", volumes.iter().map(|v| (in_use.contains(v.name.as_str()), tree_size(&v.mountpoint))));
        let build_cache = DiskUsageLine { kind: "Build Cache".into(), ..Default::default() };
        Ok(vec![image_line, container_line, volume_line, build_cache])
    }

    /// `system reset`: every container (running ones killed), image and
    /// volume of this user's store, and the store itself.
    pub fn reset(&self) -> Result<(), Error> {
        for container in self.list_containers()? {
            self.remove(&container, Removal::Force)?;
        }
        for volume in self.volumes()? {
            self.remove_volume(&volume.name)?;
        }
        let aside = self.root.with_file_name(format!(
            ".{}.reset-{}",
            self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            crate::liveness::ProcessId::current_tag()
        ));
        match std::fs::rename(&self.root, &aside) {
            Ok(()) => self.delete_trees(vec![aside]),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io(crate::files::io("remove", &self.root)(e))),
        }
    }
}

/// Counts `(active, size)` items into one line.
fn line(kind: &str, items: impl Iterator<Item = (bool, u64)>) -> DiskUsageLine {
    let mut line = DiskUsageLine { kind: kind.into(), ..Default::default() };
    for (active, size) in items {
        line.total_count += 1;
        line.size += size;
        if active {
            line.active += 1;
        } else {
            line.reclaimable += size;
        }
    }
    line
}
