//! hutch: rootless containers and sandboxes, without a daemon.
//!
//! A reader's map: `cli/` parses commands; `spec.rs` turns flags into an OCI
//! runtime Spec; `userns.rs` makes the user namespace; `runtime/` executes a
//! Spec (namespaces, rootfs, pivot_root, terminal, exec); `monitor.rs` is the
//! per-container process that supervises it; `containers/` keeps container
//! records, states and logs in the store; `state.rs` keeps runtime files;
//! `sys.rs` holds the raw system calls.

pub mod cgroup;
pub mod child;
pub mod cli;
pub mod config;
pub mod containers;
pub mod engine;
pub mod files;
pub mod image;
pub mod launch;
pub mod monitor;
pub mod prompt;
pub mod runtime;
pub mod runtime_dir;
pub mod spec;
pub mod storage;
pub mod sys;
pub mod userns;

/// hutch itself failed (Docker's 125).
pub const EXIT_HUTCH_ERROR: i32 = 125;
/// The command exists but cannot be run (Docker's 126).
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// The command was not found (Docker's 127).
pub const EXIT_NOT_FOUND: i32 = 127;
