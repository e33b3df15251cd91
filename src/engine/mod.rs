//! The API every front end uses: the CLI, and the ones to come (`build`,
//! the runtime command line, batch profiles). It creates, runs, copies
//! into, commits and removes containers, and pulls, loads, saves and
//! removes images. Front ends parse their input into the typed options
//! here, call one method, and print what comes back; they touch no
//! namespace, mount or store themselves.
//!
//! ```text
//! let engine = Engine::new(store_root, |note| eprintln!("hutch: note: {note}"));
//! let created = engine.create(&options)?;           // a container on disk
//! let status = engine.run(created, stdio)?;         // in the foreground
//! engine.remove(&engine.container("web")?, Removal::Force)?;
//! ```

mod build;
mod commit;
mod copy;
mod create;
mod disk;
mod error;
mod exec;
mod images;
mod info;
mod remove;
mod start;
mod storage;
mod unshare;
mod volumes;

pub use build::ScratchDir;
pub use commit::CommitOptions;
pub use copy::{CopyOptions, Side};
pub use create::{ContainerOptions, Created, RootSource, SecurityOptions};
pub use disk::{ContainerSize, DiskUsageLine};
pub use error::Error;
pub use exec::{ExecOptions, Usage};
pub use images::{ImageRemoval, PullPolicy};
pub use info::{Info, Version};
pub use remove::Removal;
pub use start::Exit;

use crate::containers::{Container, Containers};
use crate::runtime_dir::RuntimeDir;
use crate::userns::UsernsPlan;
use std::cell::OnceCell;
use std::path::PathBuf;

/// hutch for one caller: the store, and what every container command
/// starts from (the runtime directory and the id mapping), found once.
pub struct Engine {
    root: PathBuf,
    notes: Box<dyn Fn(&str)>,
    runtime: OnceCell<RuntimeDir>,
    plan: OnceCell<UsernsPlan>,
    /// Set once the single-id note was considered (asked of the runtime
    /// directory once per engine, not once per call).
    fallback_noted: OnceCell<()>,
    /// Killed removals finished (see `finish_abandoned_removals`).
    removals_finished: OnceCell<()>,
    /// `--storage-driver`, over the config file's `[storage] driver`.
    storage_driver: Option<String>,
}

impl Engine {
    /// `notes` receives advice worth a line (a fallback taken, a flag
    /// ignored); errors come back as values.
    pub fn new(root: PathBuf, notes: impl Fn(&str) + 'static) -> Engine {
        Engine {
            root,
            notes: Box::new(notes),
            runtime: OnceCell::new(),
            plan: OnceCell::new(),
            fallback_noted: OnceCell::new(),
            removals_finished: OnceCell::new(),
            storage_driver: None,
        }
    }

    /// The storage driver containers get: a name, or `auto` (the default).
    pub fn with_storage_driver(mut self, name: Option<String>) -> Engine {
        self.storage_driver = name;
        self
    }

    pub(crate) fn note(&self, text: &str) {
        (self.notes)(text);
    }

    /// The container named `key` (full id, name or unique id prefix).
    pub fn container(&self, key: &str) -> Result<Container, Error> {
        Ok(self.containers()?.find(key)?)
    }

    /// The store's containers (finishing removals killed commands left).
    pub fn containers(&self) -> Result<Containers, Error> {
        let containers = Containers::open(&self.root)?;
        self.finish_abandoned_removals(&containers);
        Ok(containers)
    }

    /// The runtime directory, opened (and created) on first use.
    pub(crate) fn runtime(&self) -> Result<&RuntimeDir, Error> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let opened = RuntimeDir::open(|note| self.note(note))?;
        Ok(self.runtime.get_or_init(|| opened))
    }

    /// The id mapping of this user. The single-id fallback is worth one
    /// note per runtime directory, not one per command.
    pub(crate) fn plan(&self) -> Result<&UsernsPlan, Error> {
        let plan = self.image_plan();
        if let (Some(reason), None) = (&plan.fallback_reason, self.fallback_noted.get()) {
            self.runtime()?.once("single-id-mapping", || self.note(reason));
            let _ = self.fallback_noted.set(());
        }
        Ok(plan)
    }

    /// The id mapping for image work, which needs no runtime directory
    /// (it finds the kept namespace there when there is one).
    pub(crate) fn image_plan(&self) -> &UsernsPlan {
        self.plan.get_or_init(|| {
            let mut plan = UsernsPlan::for_current_user();
            plan.keeper_dir = self.runtime().ok().map(|r| r.path().to_path_buf());
            plan
        })
    }

    /// Makes sure the kept user namespace exists before hutch moves into a
    /// container's cgroup: a keeper started from there would hold the
    /// cgroup (see `userns::keeper`).
    pub(crate) fn keep_userns(&self) -> Result<(), Error> {
        drop(crate::userns::keeper::namespace(self.plan()?));
        Ok(())
    }
}
