//! `hutch commit`: a new image of a container's changes.

use super::Error;
use crate::engine::{CommitOptions, Engine};
use clap::Args;

#[derive(Args)]
pub struct CommitArgs {
    /// Author of the new image
    #[arg(short, long)]
    author: Option<String>,
    /// Commit message, kept in the image's history
    #[arg(short, long)]
    message: Option<String>,
    /// A Dockerfile instruction for the new config: CMD, ENTRYPOINT, ENV,
    /// WORKDIR, USER, EXPOSE, LABEL or STOPSIGNAL
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    container: String,
    /// The new image's name (REPOSITORY[:TAG]); without it, only an id
    image: Option<String>,
}

pub fn commit(args: CommitArgs, engine: &Engine) -> Result<i32, Error> {
    let container = engine.container(&args.container)?;
    let options = CommitOptions {
        name: args.image,
        author: args.author,
        message: args.message,
        changes: args.change,
        ..Default::default()
    };
    let image = engine.commit(&container, options)?;
    println!("{}", image.id);
    Ok(0)
}
