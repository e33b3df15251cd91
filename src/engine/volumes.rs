//! Named volumes: made by `volume create` or by the first `run -v NAME:…`,
//! bound into containers, removed only when no container uses them.

use super::{Engine, Error};
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

    /// The `-v` list with named volumes found or made, their data bound.
    pub(crate) fn resolve_volumes(&self, requested: &[crate::spec::Volume]) -> Result<Vec<crate::spec::Volume>, Error> {
        if requested.iter().all(|v| v.name.is_none()) {
            return Ok(requested.to_vec());
        }
        let volumes = self.volume_store()?;
        requested
            .iter()
            .map(|v| match &v.name {
                Some(name) => Ok(crate::spec::Volume { source: volumes.get_or_create(name)?.mountpoint, ..v.clone() }),
                None => Ok(v.clone()),
            })
            .collect()
    }
}
