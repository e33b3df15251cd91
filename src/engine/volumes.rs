//! Named volumes: made by `volume create` or by the first `run -v NAME:…`,
//! bound into containers, removed only when no container uses them.

use super::{Engine, Error};
use crate::volumes::{Volume, Volumes};

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

    /// The names of the containers that use the volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, Error> {
        let containers = self.containers()?.list()?;
        Ok(containers
            .into_iter()
            .filter(|c| c.record.volumes.iter().any(|v| v == name))
            .map(|c| c.record.name)
            .collect())
    }

    /// `volume rm`: refused while a container (running or not) uses it,
    /// as in Docker.
    pub fn remove_volume(&self, name: &str) -> Result<(), Error> {
        let volumes = self.volume_store()?;
        volumes.get(name)?;
        if let Some(container) = self.volume_users(name)?.into_iter().next() {
            return Err(crate::volumes::Error::InUse { name: name.to_string(), container }.into());
        }
        let aside = volumes.set_aside(name)?;
        self.delete_trees(vec![aside])
    }

    /// `volume prune`: every volume no container uses; their names.
    pub fn prune_volumes(&self) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for volume in self.volumes()? {
            if self.volume_users(&volume.name)?.is_empty() {
                self.remove_volume(&volume.name)?;
                removed.push(volume.name);
            }
        }
        Ok(removed)
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
