//! hutch: rootless containers and sandboxes, without a daemon.
//!
//! A reader's map. `engine/` is the API every front end calls; `cli/` is
//! one front end, and only parses and prints. Below the engine, one module
//! per concept:
//! - `containers/` keeps container records, states and logs in the store;
//!   `image/` the images (registry, store, unpacking, archives, gc);
//! - `spec/` turns options into an OCI runtime Spec; `storage/` mounts a
//!   container's root from layers; `userns.rs` makes the user namespace;
//!   `cgroup/` the limits;
//! - `launch/` is hutch's side of a start; it forks `monitor/`, the
//!   per-container process, which runs the Spec through `runtime/`
//!   (namespaces, rootfs, pivot_root, terminal, exec) — one direction;
//! - `runtime_dir.rs` keeps runtime files, `files.rs` writes atomically,
//!   `child.rs` runs work in a forked child, `sys.rs` holds every `unsafe`,
//!   `trace.rs` times the phases of a command (`HUTCH_TRACE=1`).

pub mod build;
pub mod cgroup;
pub mod child;
pub mod cli;
pub mod config;
pub mod containers;
pub mod dockerfile;
pub mod engine;
pub mod files;
pub mod image;
pub mod launch;
pub mod liveness;
pub mod monitor;
pub mod prompt;
pub mod runtime;
pub mod runtime_dir;
pub mod spec;
pub mod storage;
pub mod sys;
pub mod trace;
pub mod userns;
pub mod volumes;

/// hutch itself failed (Docker's 125).
pub const EXIT_HUTCH_ERROR: i32 = 125;
/// The command exists but cannot be run (Docker's 126).
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// The command was not found (Docker's 127).
pub const EXIT_NOT_FOUND: i32 = 127;
