//! Asking the person at the terminal (`hutch login` without a password):
//! on /dev/tty, so piped streams stay untouched, and without echo for
//! secrets.

use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;

/// Shows `label` and reads one line; `secret` turns echo off meanwhile.
/// Fails when there is no terminal to ask.
pub fn ask(label: &str, secret: bool) -> io::Result<String> {
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    // Echo off before the label shows: what is typed as soon as it does
    // (or before) is neither shown nor thrown away.
    let _echo_off = if secret { EchoOff::new(&tty)? } else { None };
    (&tty).write_all(label.as_bytes())?;
    (&tty).flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Echo off on the terminal for as long as this lives.
struct EchoOff<'a> {
    tty: &'a File,
    saved: nix::sys::termios::Termios,
}

impl<'a> EchoOff<'a> {
    fn new(tty: &'a File) -> io::Result<Option<EchoOff<'a>>> {
        let saved = tcgetattr(tty.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL); // the Enter still shows
                                                      // TCSADRAIN: input typed ahead stays to be read.
        tcsetattr(tty.as_fd(), SetArg::TCSADRAIN, &quiet)?;
        Ok(Some(EchoOff { tty, saved }))
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.tty.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}
