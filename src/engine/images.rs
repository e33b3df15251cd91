//! Images: pull, load, import, save, list, tag, remove, prune, and the
//! registry logins. Whatever touches unpacked layers runs in hutch's user
//! namespace, where their files have their in-image owners.

use super::commit::tagged_name;
use super::{Engine, Error};
use crate::config::Config;
use crate::image::pull::{Platform, Progress, Puller};
use crate::image::registry::{login_file, store_login, Client};
use crate::image::{self, Digest, ImageRecord, ImageRef, Store};
use crate::userns::in_userns;
use oci_spec::image::ImageConfiguration;
use std::path::Path;

/// When `run` and `create` pull their image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// When it is not in the store.
    #[default]
    Missing,
    /// Every time (the registry may have a newer one).
    Always,
    /// Never: the image must be in the store.
    Never,
}

/// Whether `rmi` may remove an image containers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageRemoval {
    IfUnused,
    Force,
}

impl Engine {
    fn store(&self) -> Result<Store, Error> {
        Ok(Store::open(&self.root)?)
    }

    /// Pulls `name` for `platform` into the store; returns its record.
    pub fn pull(&self, name: &str, platform: Platform, quiet: bool) -> Result<ImageRecord, Error> {
        let config = Config::load()?.registries;
        let candidates = ImageRef::candidates(name, &config)?;
        let store = self.store()?;
        Ok(in_userns(self.image_plan(), || {
            let pull = || -> Result<ImageRecord, image::Error> {
                let _lock = store.lock_shared()?;
                store.clean_abandoned()?;
                let client = Client::new(config);
                let progress = Progress::on_stderr(quiet);
                Puller { store: &store, client: &client, platform, progress }.pull(&candidates)
            };
            pull().map_err(|e| e.to_string())
        })?)
    }

    /// The image `name` from the store, pulled first by `policy`.
    pub fn find_or_pull(&self, name: &str, policy: PullPolicy, platform: Platform) -> Result<ImageRecord, Error> {
        let found = self.store()?.find(name);
        match (policy, found) {
            (PullPolicy::Always, _) => self.pull(name, platform, false),
            (PullPolicy::Missing, Err(image::Error::NotFound(_))) => {
                // Progress, as the pull's own lines: not a note.
                eprintln!("Unable to find image '{name}' locally");
                self.pull(name, platform, false)
            }
            (PullPolicy::Missing | PullPolicy::Never, found) => Ok(found?),
        }
    }

    /// Loads the images of an archive (docker-archive, oci-archive or an
    /// OCI layout directory); returns their records.
    pub fn load(&self, archive: &Path) -> Result<Vec<ImageRecord>, Error> {
        let store = self.store()?;
        Ok(in_userns(self.image_plan(), || {
            let load = || -> Result<Vec<ImageRecord>, image::Error> {
                let _lock = store.lock_shared()?;
                store.clean_abandoned()?;
                image::archive::load(&store, archive)
            };
            load().map_err(|e| e.to_string())
        })?)
    }

    /// [`Engine::load`] from a stream (stdin), kept in the store's `tmp/`
    /// while it loads.
    pub fn load_stream(&self, input: &mut dyn std::io::Read) -> Result<Vec<ImageRecord>, Error> {
        let path = self.store()?.temp_path("stdin.tar");
        let spooled = std::fs::File::create(&path)
            .map_err(image::io("create", &path))
            .and_then(|mut file| std::io::copy(input, &mut file).map_err(image::io("write", &path)));
        let loaded = spooled.map_err(Error::from).and_then(|_| self.load(&path));
        let _ = std::fs::remove_file(&path);
        loaded
    }

    /// Makes an image of a root filesystem tarball, named `name` if given.
    pub fn import(&self, tarball: &Path, name: Option<&str>) -> Result<ImageRecord, Error> {
        let name = name.map(tagged_name).transpose()?;
        let store = self.store()?;
        Ok(in_userns(self.image_plan(), || {
            let import = || -> Result<ImageRecord, image::Error> {
                let _lock = store.lock_shared()?;
                store.clean_abandoned()?;
                image::archive::import(&store, tarball, name)
            };
            import().map_err(|e| e.to_string())
        })?)
    }

    /// Writes the images `names` to `output`: an OCI layout with Docker's
    /// manifest.json, as a tarball.
    pub fn save(&self, names: &[String], output: &Path) -> Result<(), Error> {
        let store = self.store()?;
        let mut chosen = Vec::new();
        for name in names {
            let record = store.find(name)?;
            let qualified =
                ImageRef::parse(name).ok().and_then(|r| r.tagged_name()).filter(|n| record.names.contains(n));
            chosen.push((record, qualified));
        }
        let _lock = store.lock_shared()?;
        Ok(image::archive::save(&store, &chosen, output)?)
    }

    /// Every image in the store but a build's intermediate steps.
    pub fn images(&self) -> Result<Vec<ImageRecord>, Error> {
        let store = self.store()?;
        self.sweep_store(&store);
        Ok(store.images()?.into_iter().filter(|i| !i.intermediate).collect())
    }

    /// Removes what killed commands left in the store's `tmp/` (in the user
    /// namespace, and only when there is something: a directory read
    /// otherwise). A failure is a note: the command goes on.
    pub(crate) fn sweep_store(&self, store: &Store) {
        if store.abandoned().is_empty() {
            return;
        }
        let swept = in_userns(self.image_plan(), || {
            let _lock = store.lock_shared().map_err(|e| e.to_string())?;
            store.clean_abandoned().map_err(|e| e.to_string())
        });
        if let Err(e) = swept {
            self.note(&format!("cleaning the store's tmp/: {e}"));
        }
    }

    /// The image named `name` (name, id or id prefix).
    pub fn image(&self, name: &str) -> Result<ImageRecord, Error> {
        Ok(self.store()?.find(name)?)
    }

    /// An image's config.
    pub fn image_config(&self, image: &ImageRecord) -> Result<ImageConfiguration, Error> {
        Ok(self.image_run_config(image)?.0)
    }

    /// An image's config blob as JSON, every key kept (Docker's too).
    pub fn image_config_json(&self, image: &ImageRecord) -> Result<serde_json::Value, Error> {
        let bytes = self.store()?.read_blob(&image.id)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadImageConfig { image: image.id.short().to_string(), why: e.to_string() })
    }

    /// An image's config and its HEALTHCHECK (Docker's
    /// `config.Healthcheck`, which the OCI config type does not name),
    /// from one read of the config blob.
    pub(crate) fn image_run_config(
        &self,
        image: &ImageRecord,
    ) -> Result<(ImageConfiguration, Option<crate::containers::HealthConfig>), Error> {
        #[derive(serde::Deserialize)]
        struct DockerConfig {
            config: Option<DockerRunConfig>,
        }
        #[derive(serde::Deserialize)]
        struct DockerRunConfig {
            #[serde(rename = "Healthcheck")]
            healthcheck: Option<crate::containers::HealthConfig>,
        }
        let bytes = self.store()?.read_blob(&image.id)?;
        let bad =
            |e: serde_json::Error| Error::BadImageConfig { image: image.id.short().to_string(), why: e.to_string() };
        let config = serde_json::from_slice(&bytes).map_err(bad)?;
        let docker: Option<DockerConfig> = serde_json::from_slice(&bytes).ok();
        Ok((config, docker.and_then(|d| d.config?.healthcheck)))
    }

    /// Gives the image `source` the name `target` (taken from any other).
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let store = self.store()?;
        let source = store.find(source)?;
        let name = tagged_name(target)?;
        store.update_images(|images| {
            for i in images.iter_mut() {
                i.names.retain(|n| *n != name);
                if i.id == source.id {
                    i.names.push(name.clone());
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// `rmi`: returns Docker's lines (`Untagged: …`, `Deleted: …`).
    pub fn remove_images(&self, names: &[String], removal: ImageRemoval) -> Result<Vec<String>, Error> {
        let store = self.store()?;
        let users = self.image_users()?;
        let force = removal == ImageRemoval::Force;
        Ok(in_userns(self.image_plan(), || {
            image::gc::remove_images(&store, names, force, &users_of(&users)).map_err(|e| e.to_string())
        })?)
    }

    /// `image prune [-a]`: unnamed images no container uses but a build's
    /// intermediate ones, its cache (with `all`,
    /// every image no container uses), then unused layers and blobs.
    /// Returns `rmi`'s lines for the images and how many layers and blobs went.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<String>, usize), Error> {
        let store = self.store()?;
        let users = self.image_users()?;
        let unused: Vec<String> = match all {
            true => {
                let images = store.images()?;
                images.iter().filter(|i| users_of(&users)(&i.id).is_empty()).map(|i| i.id.to_string()).collect()
            }
            false => Vec::new(),
        };
        Ok(in_userns(self.image_plan(), || {
            let removed =
                image::gc::remove_images(&store, &unused, false, &users_of(&users)).map_err(|e| e.to_string())?;
            let freed = image::gc::prune(&store, &users_of(&users)).map_err(|e| e.to_string())?;
            Ok((removed, freed))
        })?)
    }

    /// `builder prune`: the build cache — the step cache, the context
    /// hashes, RUN's cache mounts — and the intermediate images no
    /// container uses, then the layers and blobs nothing uses any more.
    /// Returns `rmi`'s lines for the images.
    pub fn prune_build_cache(&self) -> Result<Vec<String>, Error> {
        let store = self.store()?;
        let users = self.image_users()?;
        let images = store.images()?;
        let unused = images.iter().filter(|i| i.intermediate && users_of(&users)(&i.id).is_empty());
        let intermediate: Vec<String> = unused.map(|i| i.id.to_string()).collect();
        let cache = self.build_cache_dir();
        Ok(in_userns(self.image_plan(), || {
            // The cache's files first: no step names an image removed next.
            if cache.exists() {
                image::store::remove_tree(&cache).map_err(|e| e.to_string())?;
            }
            let removed =
                image::gc::remove_images(&store, &intermediate, false, &users_of(&users)).map_err(|e| e.to_string())?;
            Ok(removed)
        })?)
    }

    /// `push IMAGE [DESTINATION]`: to a registry (DESTINATION a reference,
    /// `docker://` optional; the image's own name by default), or to
    /// `oci-archive:FILE` or `docker-archive:FILE` (the archive `save`
    /// writes, which is both). The manifest's digest, for a registry.
    pub fn push(
        &self,
        name: &str,
        destination: Option<&str>,
        format: image::push::ManifestFormat,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Option<Digest>, Error> {
        let store = self.store()?;
        let image = store.find(name)?;
        let dest = destination.unwrap_or(name);
        if let Some(file) = dest.strip_prefix("oci-archive:").or_else(|| dest.strip_prefix("docker-archive:")) {
            self.save(&[name.to_string()], Path::new(file))?;
            return Ok(None);
        }
        let dest = dest.strip_prefix("docker://").unwrap_or(dest);
        let target = ImageRef::parse(dest)?;
        if target.digest().is_some() {
            return Err(image::Error::Invalid(format!("{dest}: push to a tag, not a digest")).into());
        }
        let client = Client::new(Config::load()?.registries).for_push();
        let _lock = store.lock_shared()?;
        Ok(Some(image::push::push(&store, &client, &image, &target, format, progress)?))
    }

    /// Checks the login with the registry, then keeps it in auth.json.
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Result<(), Error> {
        Client::new(Config::load()?.registries).check_login(registry, user, password)?;
        let file = login_file().ok_or(Error::NoLoginFile)?;
        store_login(&file, registry, Some((user, password)))?;
        Ok(())
    }

    /// Forgets the login for `registry`; false when there was none.
    pub fn logout(&self, registry: &str) -> Result<bool, Error> {
        let file = login_file().ok_or(Error::NoLoginFile)?;
        Ok(store_login(&file, registry, None)?)
    }

    /// Which containers use which image: (image id, container id) pairs,
    /// read before the work in the user namespace starts.
    fn image_users(&self) -> Result<Vec<(String, String)>, Error> {
        let containers = self.containers()?.list()?;
        Ok(containers.into_iter().filter_map(|c| Some((c.record.image_id?, c.record.id))).collect())
    }
}

fn users_of<'a>(pairs: &'a [(String, String)]) -> impl Fn(&Digest) -> Vec<String> + 'a {
    move |image| pairs.iter().filter(|(i, _)| i == image.as_str()).map(|(_, c)| c.clone()).collect()
}
