//! `hutch build`: a Dockerfile turned into an image, rootless. A front end
//! of the engine like the CLI: each RUN runs in a container the engine
//! creates from the stage's current image, with the runtime `hutch run`
//! uses; COPY and ADD place files into such a container through a helper
//! in its root; each step is committed as an intermediate image and
//! remembered in the step cache, so a rebuild reuses what did not change.
//!
//! - `pattern` matches COPY globs and `.dockerignore` lines;
//! - `sources` picks and sends what COPY and ADD copy, `receive` places it,
//!   `download` fetches ADD's URLs;
//! - `stages` splits the Dockerfile and finds what a target needs;
//! - `config` applies the config instructions (ENV, CMD, LABEL…);
//! - `builder` runs the steps.

mod builder;
mod config;
mod download;
pub mod pattern;
pub mod receive;
pub mod sources;
mod stages;

pub use builder::build;

use crate::engine::PullPolicy;
use crate::image::pull::Platform;
use netstack::NetworkMode;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to build, from flags.
pub struct BuildOptions {
    pub context: Context,
    /// `-f`: a path, or the text read from stdin (`-f -`). `None`:
    /// `Dockerfile`, else `Containerfile`, in the context.
    pub dockerfile: Option<DockerfileSource>,
    /// `-t`, each `NAME[:TAG]`.
    pub tags: Vec<String>,
    /// `--build-arg KEY=VALUE`, or `KEY` (its value from the environment).
    pub build_args: Vec<(String, Option<String>)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: PullPolicy,
    pub platform: Option<Platform>,
    /// `--label`, set on the final image.
    pub labels: BTreeMap<String, String>,
    /// RUN's network (the run default when `None`).
    pub network: Option<NetworkMode>,
    /// `--secret id=ID,src=PATH`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--timestamp`: every created time, seconds since the epoch.
    pub timestamp: Option<u64>,
}

/// Where the build context comes from.
pub enum Context {
    Directory(PathBuf),
    /// A tar stream (`-` as the context), unpacked into the store's tmp/.
    Tar(Box<dyn std::io::Read>),
    /// Only a Dockerfile (on stdin): an empty context.
    Empty,
}

pub enum DockerfileSource {
    Path(PathBuf),
    Text(String),
}

/// Why a build failed: one line each.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Syntax(#[from] crate::dockerfile::SyntaxError),
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    /// A step failed: its place in the Dockerfile and why.
    #[error("{file}:{line}: {instruction}: {why}")]
    Step { file: String, line: usize, instruction: String, why: String },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Engine(e) => e.exit_code(),
            _ => crate::EXIT_HUTCH_ERROR,
        }
    }
}
