//! The signals hutch passes on to the container.
//!
//! hutch blocks them before it forks, so the monitor never dies of a Ctrl-C
//! meant for the container, and reads them from a signalfd; the container
//! process unblocks them just before execve (or, with `--init`, waits for
//! them and forwards them to its child).

use nix::sys::signal::{SigSet, Signal};

/// Signals a user sends to hutch that belong to the container (Docker's
/// sig-proxy set), plus SIGCHLD, which tells the waiting side a child ended.
pub fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        set.add(sig);
    }
    set
}
