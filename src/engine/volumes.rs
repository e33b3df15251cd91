//! Named volumes: made by `volume create` or by the first `run -v NAME:…`,
//! bound into containers, removed only when no container uses them.

use super::{Engine, Error};
use crate::containers::Container;
use crate::volumes::{Volume, Volumes};
use std::collections::HashMap;

impl Engine {
    fn volume_store(&self) -> Result<Volumes, Error> {
        let volumes = Volumes::open(&self.root)?;
        // Data of removals killed midway: deleted now (it may hold files of
        // other ids, so in the user namespace when the caller cannot).
        let abandoned = volumes.abandoned_removals();
        if !abandoned.is_empty() {
            self.delete_trees(abandoned)?;
        }
        Ok(volumes)
    }

    /// `volume create [NAME]`.
    pub fn create_volume(&self, name: Option<&str>) -> Result<Volume, Error> {
        Ok(self.volume_store()?.create(name)?)
    }

    /// `volume ls`: every volume, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>, Error> {
        Ok(self.volume_store()?.list()?)
    }

    pub fn volume(&self, name: &str) -> Result<Volume, Error> {
        Ok(self.volume_store()?.get(name)?)
    }

    /// The volumes containers (running or not) use, each with the name of
    /// one container that uses it: one read of the records for them all.
    pub fn volumes_in_use(&self) -> Result<HashMap<String, String>, Error> {
        let mut in_use = HashMap::new();
        for c in self.containers()?.list()? {
            for volume in &c.record.volumes {
                in_use.entry(volume.clone()).or_insert_with(|| c.record.name.clone());
            }
        }
        Ok(in_use)
    }

    /// `volume rm`: refused while a container (running or not) uses it,
    /// as in Docker.
    pub fn remove_volume(&self, name: &str) -> Result<(), Error> {
        let volumes = self.volume_store()?;
        volumes.get(name)?;
        if let Some(container) = self.volumes_in_use()?.remove(name) {
            return Err(crate::volumes::Error::InUse { name: name.to_string(), container }.into());
        }
        self.delete_trees(vec![volumes.set_aside(name)?])
    }

    /// `volume prune`: every volume no container uses; their names.
    pub fn prune_volumes(&self) -> Result<Vec<String>, Error> {
        let volumes = self.volume_store()?;
        let in_use = self.volumes_in_use()?;
        let unused: Vec<String> =
            volumes.list()?.into_iter().map(|v| v.name).filter(|name| !in_use.contains_key(name)).collect();
        let aside = unused.iter().map(|name| volumes.set_aside(name)).collect::<Result<Vec<_>, _>>()?;
        self.delete_trees(aside)?;
        Ok(unused)
    }

    /// The `-v` list with named volumes found or made, anonymous ones
    /// made and named, their data bound.
    pub(crate) fn resolve_volumes(&self, requested: &[crate::spec::Volume]) -> Result<Vec<crate::spec::Volume>, Error> {
        if requested.iter().all(|v| v.name.is_none() && !v.anonymous) {
            return Ok(requested.to_vec());
        }
        let volumes = self.volume_store()?;
        requested
            .iter()
            .map(|v| {
                let volume = match (&v.name, v.anonymous) {
                    (Some(name), _) => volumes.get_or_create(name)?,
                    (None, true) => volumes.create(None)?,
                    (None, false) => return Ok(v.clone()),
                };
                Ok(crate::spec::Volume { source: volume.mountpoint, name: Some(volume.name), ..v.clone() })
            })
            .collect()
    }

    /// `rm -v`, and a `--rm` container's end: the anonymous volumes the
    /// container was given, unless another container uses them too.
    pub fn remove_anonymous_volumes(&self, container: &Container) -> Result<(), Error> {
        if container.record.anonymous_volumes.is_empty() {
            return Ok(());
        }
        let in_use = self.volumes_in_use()?;
        let volumes = self.volume_store()?;
        let mut aside = Vec::new();
        for name in container.record.anonymous_volumes.iter().filter(|name| !in_use.contains_key(*name)) {
            match volumes.set_aside(name) {
                Ok(dir) => aside.push(dir),
                Err(crate::volumes::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.delete_trees(aside)
    }
}
