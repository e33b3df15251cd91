//! The last steps before the container's process runs: its ids, working
//! directory, environment, and the execve itself.

use super::{capabilities, SetupError};
use crate::{EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND};
use nix::errno::Errno;
use nix::unistd::{chdir, execve, setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What execve needs, prepared while allocation and errors are still cheap
/// to report.
pub struct Command {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    display: String,
}

impl Command {
    pub fn from_process(process: &Process) -> Result<Command, SetupError> {
        let args = process.args().as_deref().unwrap_or_default();
        let first = args.first().ok_or_else(|| SetupError::config("no command to run"))?;
        let env: Vec<String> = process.env().clone().unwrap_or_default();
        let program = resolve_program(first, &env).ok_or_else(|| SetupError::NotRunnable {
            code: EXIT_NOT_FOUND,
            message: format!("cannot start {first}: executable file not found in $PATH inside the container"),
        })?;
        let cstring = |s: &[u8]| {
            CString::new(s)
                .map_err(|_| SetupError::config(format!("{first}: argument or environment contains a NUL byte")))
        };
        Ok(Command {
            program: cstring(program.as_os_str().as_bytes())?,
            argv: args.iter().map(|a| cstring(a.as_bytes())).collect::<Result<_, _>>()?,
            envp: env.iter().map(|e| cstring(e.as_bytes())).collect::<Result<_, _>>()?,
            display: first.clone(),
        })
    }

    /// Replaces this process; returns only on failure.
    pub fn exec(&self) -> SetupError {
        let Err(errno) = execve(&self.program, &self.argv, &self.envp);
        let (code, why) = match errno {
            Errno::ENOENT => {
                (EXIT_NOT_FOUND, "no such file in the container (or the interpreter it names is missing)".to_string())
            }
            Errno::EACCES => (EXIT_CANNOT_INVOKE, "permission denied".to_string()),
            Errno::ENOEXEC => (EXIT_CANNOT_INVOKE, "exec format error (not a program for this machine)".to_string()),
            e => (EXIT_CANNOT_INVOKE, e.desc().to_lowercase()),
        };
        SetupError::NotRunnable { code, message: format!("cannot start {}: {why}", self.display) }
    }
}

/// The program `name` names, searched in the container's $PATH when it
/// has no slash (glibc's execvpe would search the *caller's* PATH).
fn resolve_program(name: &str, env: &[String]) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    path.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(name)).find(|p| is_executable_file(p))
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Takes on the process's user, group and capabilities, sets no_new_privs,
/// then enters its working directory (as that user, as the kernel will
/// check it).
pub fn become_user(process: &Process, setgroups_allowed: bool) -> Result<(), SetupError> {
    let user = process.user();
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    if let Some(caps) = process.capabilities() {
        capabilities::limit_bounding_set(caps)?;
    }
    // Keep the capabilities through the id change; the Spec's sets follow.
    crate::sys::keep_capabilities(true).map_err(|e| SetupError::sys("prctl PR_SET_KEEPCAPS", "", e))?;
    if setgroups_allowed {
        let mut groups = vec![gid];
        groups.extend(user.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)));
        setgroups(&groups).map_err(|e| SetupError::sys("setgroups", "", e))?;
    }
    setresgid(gid, gid, gid).map_err(|e| SetupError::sys(&format!("setresgid {gid}"), "", e))?;
    setresuid(uid, uid, uid).map_err(|e| SetupError::sys(&format!("setresuid {uid}"), "", e))?;
    crate::sys::keep_capabilities(false).map_err(|e| SetupError::sys("prctl PR_SET_KEEPCAPS", "", e))?;
    if let Some(caps) = process.capabilities() {
        capabilities::set_process_sets(caps)?;
    }
    if process.no_new_privileges() == Some(true) {
        crate::sys::set_no_new_privs().map_err(|e| SetupError::sys("prctl PR_SET_NO_NEW_PRIVS", "", e))?;
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let cwd = process.cwd();
    chdir(cwd).map_err(|e| SetupError::NotRunnable {
        code: EXIT_CANNOT_INVOKE,
        message: format!("cannot enter the working directory {}: {}", cwd.display(), e.desc().to_lowercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_with_a_slash_are_taken_as_given() {
        assert_eq!(resolve_program("./x", &[]), Some(PathBuf::from("./x")));
        assert_eq!(resolve_program("/bin/nope", &[]), Some(PathBuf::from("/bin/nope")));
    }

    #[test]
    fn bare_names_are_searched_in_the_containers_path() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(resolve_program("sh", &env), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve_program("no-such-program-here", &env), None);
    }
}
