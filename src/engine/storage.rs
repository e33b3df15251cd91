//! Which storage driver a container's root gets (see `storage::choice`):
//! the user's preference, what the kernel allows on this store (probed
//! once, in the user namespace, and kept in the store), and what the
//! image's layers need.

use super::{Engine, Error};
use crate::config::Config;
use crate::image::Store;
use crate::storage::{self, Choice, LayerFormat, Preference, StoreProbe};

impl Engine {
    /// The driver for a root of layers in `formats` (topmost first).
    pub(crate) fn storage_choice(&self, store: &Store, formats: &[Option<LayerFormat>]) -> Result<Choice, Error> {
        let preference = self.storage_preference()?;
        if let Preference::Named(d) = preference {
            if d.name() != storage::KERNEL_DRIVER {
                return Ok(storage::choose(preference, &StoreProbe::unprobed(), formats)?);
            }
        }
        Ok(storage::choose(preference, &self.storage_probe(store), formats)?)
    }

    /// `--storage-driver`, else the config file's, else `auto`.
    pub(crate) fn storage_preference(&self) -> Result<Preference, Error> {
        let name = match &self.storage_driver {
            Some(name) => name.clone(),
            None => Config::load()?.storage.driver.unwrap_or_default(),
        };
        Ok(Preference::parse(&name)?)
    }

    /// What the kernel overlay can do on this store: probed once per
    /// kernel, in a child in the user namespace, and kept in the store.
    pub(crate) fn storage_probe(&self, store: &Store) -> StoreProbe {
        let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(probe) = store.storage_probe().filter(|p| p.kernel == kernel) {
            return probe;
        }
        let scratch = store.temp_path("overlay-probe");
        let made = std::fs::create_dir(&scratch).map_err(|e| e.to_string());
        let tried = made.and_then(|()| {
            crate::userns::in_userns(self.image_plan(), || storage::probe_kernel_overlay(&scratch))
                .map_err(|e| e.to_string())
        });
        let _ = self.delete_trees(vec![scratch]);
        let probe = StoreProbe { kernel, overlay_works: tried.is_ok(), why: tried.err().unwrap_or_default() };
        let _ = store.write_storage_probe(&probe);
        probe
    }
}
