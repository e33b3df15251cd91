//! `hutch cp`: files between a container (running or stopped) and the host.

use super::Error;
use crate::engine::{CopyOptions, Engine};
use clap::Args;

#[derive(Args)]
pub struct CpArgs {
    /// Keep the owners of what is copied (default: owned by root in the
    /// container, by you on the host)
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink given as the source
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// CONTAINER:SRC_PATH, or a host path; `-` reads a tar stream from stdin
    #[arg(value_name = "SRC")]
    source: String,
    /// CONTAINER:DEST_PATH, or a host path; `-` writes a tar stream to stdout
    #[arg(value_name = "DEST")]
    dest: String,
}

pub fn cp(args: CpArgs, engine: &Engine) -> Result<i32, Error> {
    let options = CopyOptions { archive: args.archive, follow_link: args.follow_link };
    engine.copy(&args.source, &args.dest, options)?;
    Ok(0)
}
