//! Turns the Spec's seccomp profile into a filter (libseccomp) and loads it.
//! Syscall names unknown to this kernel or architecture are skipped, as
//! runc and crun do, so one profile serves every machine. Compiling the
//! default profile takes longer than the rest of a container's start, so
//! hutch compiles a profile once and keeps the program in the runtime
//! directory (as crun does); containers load the kept program.

use super::SetupError;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg};
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn err(what: impl std::fmt::Display) -> SetupError {
    SetupError::config(format!("seccomp: {what}"))
}

/// The OCI name of a value (`SCMP_ACT_ERRNO`, `SCMP_CMP_EQ`, `SCMP_ARCH_X86`…).
fn oci_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, SetupError> {
    let errno = errno.map_or(libc::EPERM, |e| i32::try_from(e).unwrap_or(libc::EPERM));
    ScmpAction::from_str(&oci_name(a), Some(errno)).map_err(err)
}

fn compare(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, SetupError> {
    let op = match ScmpCompareOp::from_str(&oci_name(arg.op())).map_err(err)? {
        // For a masked compare the OCI value is the mask and valueTwo the datum.
        ScmpCompareOp::MaskedEqual(_) => {
            return Ok(ScmpArgCompare::new(
                arg_index(arg.index())?,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ))
        }
        op => op,
    };
    Ok(ScmpArgCompare::new(arg_index(arg.index())?, op, arg.value()))
}

/// A syscall argument's index (0 to 5) as libseccomp takes it.
fn arg_index(index: usize) -> Result<u32, SetupError> {
    u32::try_from(index).map_err(|_| SetupError::config(format!("seccomp: argument index {index} out of range")))
}

/// The program the Spec names as its profile's, compiled by hutch (see
/// [`kept_program`]), if it can be read.
pub fn kept_program_of(spec: &oci_spec::runtime::Spec) -> Option<Vec<u8>> {
    std::fs::read(crate::spec::annotations::get(spec, crate::spec::annotations::SECCOMP_PROGRAM)?).ok()
}

/// Loads `profile` into this process: its `program` compiled earlier when
/// there is one, else compiled now. Leaves no_new_privs to the Spec.
pub fn install(profile: &LinuxSeccomp, program: Option<&[u8]>) -> Result<(), SetupError> {
    if let Some(program) = program {
        return crate::sys::load_seccomp_program(program)
            .map_err(|e| SetupError::sys("load the seccomp filter", "", e));
    }
    compile(profile)?.load().map_err(|e| err(format!("loading the filter: {e}")))
}

/// The program of `profile`, compiled into `dir` unless it is there
/// already; named by a digest of the profile and libseccomp's version.
pub fn kept_program(dir: &Path, profile: &LinuxSeccomp) -> Result<PathBuf, SetupError> {
    let version = libseccomp::ScmpVersion::current().map_err(err)?;
    let mut key = format!("{}.{}.{}\n", version.major, version.minor, version.micro).into_bytes();
    key.extend(serde_json::to_vec(profile).map_err(err)?);
    let path = dir.join(format!("seccomp-{}.bpf", crate::image::Digest::of(&key).hex()));
    if !path.exists() {
        let filter = compile(profile)?;
        // Written aside and renamed: a reader sees a whole program or none.
        let tmp = crate::files::temp_sibling(&path);
        let written = std::fs::File::create(&tmp)
            .map_err(|e| SetupError::io("create", &tmp, e))
            .and_then(|file| filter.export_bpf(&file).map_err(err))
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| SetupError::io("rename", &path, e)));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
    }
    Ok(path)
}

fn compile(profile: &LinuxSeccomp) -> Result<ScmpFilterContext, SetupError> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut filter = ScmpFilterContext::new(default).map_err(err)?;
    filter.set_ctl_nnp(false).map_err(err)?;
    for arch in profile.architectures().iter().flatten() {
        let arch = ScmpArch::from_str(&oci_name(arch)).map_err(err)?;
        if arch != ScmpArch::native() {
            filter.add_arch(arch).map_err(err)?;
        }
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue; // libseccomp refuses rules that change nothing
        }
        let conditions = rule.args().iter().flatten().map(compare).collect::<Result<Vec<_>, _>>()?;
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else { continue };
            let added = if conditions.is_empty() {
                filter.add_rule(act, syscall)
            } else {
                filter.add_rule_conditional(act, syscall, &conditions)
            };
            added.map_err(|e| err(format!("rule for {name}: {e}")))?;
        }
    }
    Ok(filter)
}
