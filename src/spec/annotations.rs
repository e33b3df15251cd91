//! hutch's own annotations in a runtime Spec: what the monitor and the
//! container process need beyond the OCI fields, all `io.hutch.*`, all here.

/// Put hutch's reaping init in front of the process (`--init`): "true".
pub const INIT: &str = "io.hutch.init";
/// The `--network` mode whose helper the monitor starts (slirp4netns, pasta).
pub const NETWORK: &str = "io.hutch.network";
/// Published ports, comma-separated `IP:HOST-PORT:CONTAINER-PORT/PROTO`.
pub const PORTS: &str = "io.hutch.ports";
/// The container's runtime directory.
pub const STATE_DIR: &str = "io.hutch.state-dir";
/// The container's directory in the store, where the monitor records its
/// state and log.
pub const CONTAINER_DIR: &str = "io.hutch.container-dir";
/// The storage driver that mounts the root from layers.
pub const ROOTFS_DRIVER: &str = "io.hutch.rootfs.driver";
/// The read-only layers, topmost first, as a JSON list of paths.
pub const ROOTFS_LOWERS: &str = "io.hutch.rootfs.lowers";
/// The directory holding the writable layer (`upper/`, `work/`).
pub const ROOTFS_UPPER: &str = "io.hutch.rootfs.upper";
/// "true": the writable layer is never synced (a `--rm` container's).
pub const ROOTFS_VOLATILE: &str = "io.hutch.rootfs.volatile";
/// Why the container got its storage driver, for `inspect`.
pub const ROOTFS_WHY: &str = "io.hutch.rootfs.why";

/// The seccomp profile's program, compiled by hutch (see `runtime::seccomp`).
pub const SECCOMP_PROGRAM: &str = "io.hutch.seccomp.program";

/// The value of annotation `key` in `spec`, if set.
pub fn get<'a>(spec: &'a oci_spec::runtime::Spec, key: &str) -> Option<&'a String> {
    spec.annotations().as_ref()?.get(key)
}
