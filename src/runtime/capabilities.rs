//! A process's capability sets from the Spec. The bounding set is cut
//! first (it limits what any later execve can regain, setuid files
//! included), the ids change while the capabilities are kept, and then the
//! effective, permitted, inheritable and ambient sets are set exactly.

use super::SetupError;
use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

fn to_caps(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter().flatten().filter_map(|c| format!("CAP_{c}").parse().ok()).collect()
}

fn caps_error(op: &'static str) -> impl Fn(caps::errors::CapsError) -> SetupError {
    move |e| SetupError::config(format!("{op}: {e}"))
}

/// Drops from the bounding set every capability the Spec does not bound.
pub fn limit_bounding_set(spec: &LinuxCapabilities) -> Result<(), SetupError> {
    let keep = to_caps(spec.bounding());
    for cap in caps::runtime::thread_all_supported().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(caps_error("dropping from the bounding set"))?;
    }
    Ok(())
}

/// Sets the remaining sets. Effective goes first: it must always stay
/// within permitted, which shrinks next.
pub fn set_process_sets(spec: &LinuxCapabilities) -> Result<(), SetupError> {
    caps::set(None, CapSet::Effective, &to_caps(spec.effective()))
        .map_err(caps_error("setting effective capabilities"))?;
    caps::set(None, CapSet::Permitted, &to_caps(spec.permitted()))
        .map_err(caps_error("setting permitted capabilities"))?;
    caps::set(None, CapSet::Inheritable, &to_caps(spec.inheritable()))
        .map_err(caps_error("setting inheritable capabilities"))?;
    caps::set(None, CapSet::Ambient, &to_caps(spec.ambient())).map_err(caps_error("setting ambient capabilities"))
}
