//! Removing containers: their store directory (whose writable layer holds
//! files of subordinate ids, so it goes from inside the user namespace),
//! their runtime directory and their cgroup.

use super::{Engine, Error};
use crate::containers::Container;
use crate::image::store::remove_tree;
use crate::runtime_dir::ContainerRuntimeDir;

/// Whether a running container may be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Only a stopped one (`rm`).
    IfStopped,
    /// Kill a running one first (`rm -f`).
    Force,
}

impl Engine {
    /// Removes a container; a running one only with [`Removal::Force`].
    pub fn remove(&self, container: &Container, removal: Removal) -> Result<(), Error> {
        if container.state().monitor_alive().is_some() {
            if removal != Removal::Force {
                return Err(Error::Running(container.record.name.clone()));
            }
            container.kill(nix::sys::signal::Signal::SIGKILL)?;
            container.wait_stopped(None);
            crate::trace::mark("rm: container stopped");
        }
        if let Some(cgroup) = container.state().cgroup {
            crate::cgroup::ContainerCgroup { dir: cgroup }.remove();
        }
        self.remove_files(container);
        crate::trace::mark("rm: files removed");
        Ok(())
    }

    /// The store's containers, newest first. `--rm` ones that ended without
    /// being removed (their run or monitor was killed) are removed on the
    /// way, as they would have been.
    pub fn list_containers(&self) -> Result<Vec<Container>, Error> {
        let mut listed = self.containers()?.list()?;
        listed.retain(|c| {
            let leftover = c.record.auto_remove && c.state().status == crate::containers::Status::Exited;
            if leftover {
                self.remove_files(c);
                let _ = self.remove_anonymous_volumes(c);
            }
            !leftover
        });
        Ok(listed)
    }

    /// Removes every container that is not running; returns their ids.
    pub fn prune_containers(&self) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for container in self.containers()?.list()? {
            if !container.state().is_running() {
                self.remove_files(&container);
                removed.push(container.record.id);
            }
        }
        Ok(removed)
    }

    /// Removes a container's files, reporting failures as notes: the
    /// container's own outcome is what the caller asked about. Runtime
    /// files go first and the store directory is renamed aside before it is
    /// deleted, so a removal killed at any point leaves a listed container
    /// or a directory a later command finishes deleting.
    pub(crate) fn remove_files(&self, container: &Container) {
        match self.runtime() {
            Ok(runtime) => {
                if let Err(e) = ContainerRuntimeDir::of(runtime, &container.record.id).remove() {
                    self.note(&e.to_string());
                }
            }
            Err(e) => self.note(&e.to_string()),
        }
        let aside = self.containers().and_then(|all| Ok(all.set_aside(container)?));
        let deleted = aside.and_then(|aside| self.delete_trees(aside.into_iter().collect()));
        if let Err(e) = deleted {
            self.note(&e.to_string());
        }
    }

    /// Deletes what killed removals left aside. Once per command: the
    /// store's container list is read anyway, this adds no user namespace
    /// unless there is something to delete.
    pub(crate) fn finish_abandoned_removals(&self, containers: &crate::containers::Containers) {
        if self.removals_finished.set(()).is_ok() {
            let abandoned = containers.abandoned_removals();
            if let Err(e) = self.delete_trees(abandoned) {
                self.note(&e.to_string());
            }
        }
    }

    /// Deletes container directories: as the caller where it may (its
    /// files are the caller's unless a process in the container made them
    /// as another user, and a root directory's container has no layer),
    /// the rest from inside the user namespace, where its files of other
    /// ids may be deleted.
    pub(crate) fn delete_trees(&self, mut dirs: Vec<std::path::PathBuf>) -> Result<(), Error> {
        dirs.retain(|dir| remove_tree(dir).is_err());
        if dirs.is_empty() {
            return Ok(());
        }
        let plan = self.plan()?;
        Ok(crate::userns::in_userns(plan, || {
            dirs.iter().try_for_each(|dir| remove_tree(dir).map_err(|e| e.to_string()))
        })?)
    }
}
