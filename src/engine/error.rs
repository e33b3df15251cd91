//! What the engine can fail with. Each message already carries its cause
//! (path, syscall, errno, digest) and, where one helps, what to do: a
//! front end prints the whole error as one line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Run(#[from] crate::runtime::RunError),
    #[error(transparent)]
    Spec(#[from] crate::spec::Error),
    #[error(transparent)]
    RuntimeDir(#[from] crate::runtime_dir::Error),
    #[error(transparent)]
    Containers(#[from] crate::containers::Error),
    #[error(transparent)]
    Volumes(#[from] crate::volumes::Error),
    #[error(transparent)]
    Userns(#[from] crate::userns::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Network(#[from] netstack::Error),
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error(transparent)]
    Child(#[from] crate::child::Error),
    #[error("no command given: hutch run --rootfs DIR COMMAND [ARG...]")]
    NoCommand,
    #[error("image {0} has no command (Cmd or Entrypoint): give one after the image name")]
    NoImageCommand(String),
    #[error("-p needs a network: --network none has only loopback")]
    PublishWithoutNetwork,
    #[error("--preserve-fds {count}: descriptor {fd} is not open (pass {count} open descriptors from 3 up)")]
    PreservedFdClosed { count: u32, fd: u32 },
    #[error("--preserve-fds {0}: more descriptors than a process can have")]
    TooManyPreservedFds(u32),
    #[error("layer {} of the image is missing from the store: pull the image again", .0.display())]
    LayerMissing(PathBuf),
    #[error(transparent)]
    Io(#[from] crate::files::IoError),
    #[error("container {0} is running: stop it first (hutch stop {0}), or remove it with rm -f")]
    Running(String),
    #[error("container {0} is running already")]
    AlreadyRunning(String),
    #[error("container {0} is not running: start it first (hutch start {0})")]
    NotRunning(String),
    #[error("container {name} runs a root directory ({rootfs}), not an image: there is no writable layer to commit")]
    NoLayerToCommit { name: String, rootfs: String },
    #[error("container {name}: its image {image} is no longer stored")]
    ImageGone { name: String, image: String },
    #[error("container {0}: its spec names no layers")]
    NoLayers(String),
    #[error("container {0}: the spec has no process")]
    NoProcess(String),
    #[error("{0}: a tag, not a digest")]
    NotATag(String),
    #[error("--change {change:?}: {why}")]
    BadChange { change: String, why: &'static str },
    #[error("image {image}: config: {why}")]
    BadImageConfig { image: String, why: String },
    #[error("copying between two containers is not supported: copy through the host")]
    CopyBetweenContainers,
    #[error("one of SRC and DEST must be CONTAINER:PATH (a path in a container)")]
    CopyWithoutContainer,
    #[error("no place for logins: set REGISTRY_AUTH_FILE or HOME")]
    NoLoginFile,
    #[error("container {0} has no healthcheck: give one with --health-cmd when creating it")]
    NoHealthcheck(String),
    #[error("{0}")]
    Conflict(&'static str),
    /// A helper process's own failure, as the one line it reported.
    #[error("{0}")]
    Helper(String),
}

impl Error {
    /// The exit status this failure maps to, as Docker's: the container's
    /// own (126, 127) when its command could not run, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Run(e) => e.code(),
            _ => crate::EXIT_HUTCH_ERROR,
        }
    }
}

pub(crate) use crate::files::io;
