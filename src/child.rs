//! A forked child that runs a closure and answers over a pipe: how hutch
//! does work in another process (a user namespace, a container's root)
//! and gets the outcome back as a value or one line of error.
//!
//! The child reports once through its [`Reply`]; the parent reads the
//! answer ([`Child::answer`]) and reaps the child ([`Child::wait`]). A
//! child that dies before answering is reported with its wait status.

use crate::sys::{exit_now, ForkError, Forked};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::marker::PhantomData;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fork(#[from] ForkError),
    #[error("pipe: {0}")]
    Pipe(std::io::Error),
    /// The child's own error, as the one line it sent.
    #[error("{0}")]
    Failed(String),
    #[error("the {what} ended without an answer ({status})")]
    NoAnswer { what: &'static str, status: String },
    #[error("the {what}'s answer: {why}")]
    BadAnswer { what: &'static str, why: String },
}

/// The child's side: sends its one answer to the parent.
pub struct Reply<T> {
    pipe: std::io::PipeWriter,
    answer: PhantomData<T>,
}

impl<T: Serialize> Reply<T> {
    /// Sends the outcome; false when the parent can no longer hear it.
    pub fn send(mut self, outcome: Result<T, String>) -> bool {
        serde_json::to_vec(&outcome).is_ok_and(|json| self.pipe.write_all(&json).is_ok())
    }
}

/// The parent's side: a running child and its answer to come.
pub struct Child<T> {
    pid: Pid,
    /// What the child does, for messages ("user-namespace helper").
    what: &'static str,
    pipe: std::io::PipeReader,
    answer: PhantomData<T>,
}

/// Forks with `fork` (a plain [`crate::sys::fork`], or one into a new user
/// namespace) and runs `work` in the child, which exits when it returns:
/// 0 when it sent an answer, 125 otherwise. Call it while the process has
/// one thread (the fork checks).
pub fn spawn<T, E>(
    what: &'static str,
    fork: impl FnOnce() -> Result<Forked, E>,
    work: impl FnOnce(Reply<T>) -> bool,
) -> Result<Child<T>, E>
where
    T: Serialize + DeserializeOwned,
    E: From<Error>,
{
    let (reader, writer) = std::io::pipe().map_err(Error::Pipe)?;
    match fork()? {
        Forked::Child => {
            drop(reader);
            let answered = work(Reply { pipe: writer, answer: PhantomData });
            exit_now(if answered { 0 } else { crate::EXIT_HUTCH_ERROR })
        }
        Forked::Parent { child } => {
            drop(writer);
            Ok(Child { pid: child, what, pipe: reader, answer: PhantomData })
        }
    }
}

/// [`spawn`] for work whose outcome is its whole answer: the common case.
pub fn run<T, E>(
    what: &'static str,
    fork: impl FnOnce() -> Result<Forked, E>,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
    E: From<Error>,
{
    let answer = spawn(what, fork, |reply| reply.send(work()))?.wait();
    crate::trace::mark(what);
    Ok(answer?)
}

impl<T: DeserializeOwned> Child<T> {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Reads the answer (until the child closes its end): the child's value,
    /// or its error. The child may go on running after it answered.
    pub fn answer(&mut self) -> Result<T, Error> {
        let mut json = Vec::new();
        let read = self.pipe.read_to_end(&mut json);
        if read.is_err() || json.is_empty() {
            return Err(self.no_answer());
        }
        let outcome: Result<T, String> =
            serde_json::from_slice(&json).map_err(|e| Error::BadAnswer { what: self.what, why: e.to_string() })?;
        outcome.map_err(Error::Failed)
    }

    /// Reads the answer, then reaps the child.
    pub fn wait(mut self) -> Result<T, Error> {
        let answer = self.answer();
        let status = reap(self.pid);
        match (answer, status) {
            (Err(Error::NoAnswer { what, .. }), status) => Err(Error::NoAnswer { what, status: describe(status) }),
            (answer, _) => answer,
        }
    }

    fn no_answer(&self) -> Error {
        Error::NoAnswer { what: self.what, status: "no status yet".into() }
    }
}

/// Waits for `pid` to end, retrying on EINTR.
pub fn reap(pid: Pid) -> Result<WaitStatus, Errno> {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

fn describe(status: Result<WaitStatus, Errno>) -> String {
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        Ok(other) => format!("{other:?}"),
        Err(errno) => format!("waitpid: {errno}"),
    }
}
