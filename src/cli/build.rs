//! `hutch build` (and `image build`): Docker's and podman's flags, parsed
//! into `build::BuildOptions`; the build's lines printed as they come.

use super::Error;
use crate::build::{BuildOptions, Context, DockerfileSource};
use crate::engine::{Engine, PullPolicy};
use crate::image::pull::Platform;
use clap::Args;
use std::io::Read;
use std::path::PathBuf;

#[derive(Args)]
pub struct BuildArgs {
    /// Name and tag the image (NAME[:TAG]); repeatable
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/Containerfile; - reads stdin)
    #[arg(short, long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// A build argument, KEY=VALUE (KEY alone takes it from the environment)
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// Build the stage of this name (or index) and what it needs
    #[arg(long)]
    target: Option<String>,
    /// Run every step, even those the cache has
    #[arg(long)]
    no_cache: bool,
    /// Pull base images: always, missing (the default) or never; --pull alone is always
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_missing_value = "always")]
    pull: Option<String>,
    /// Build for OS/ARCH[/VARIANT]
    #[arg(long)]
    platform: Option<String>,
    /// Set a label on the image, KEY=VALUE; repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Write the image's id to this file
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Print only the image's id
    #[arg(short, long)]
    quiet: bool,
    /// RUN's network: pasta, slirp4netns, host or none (default: as run)
    #[arg(long)]
    network: Option<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=PATH
    #[arg(long = "secret", value_name = "id=ID,src=PATH")]
    secrets: Vec<String>,
    /// Created times of the image and its history, seconds since the epoch (reproducible builds)
    #[arg(long, value_name = "EPOCH")]
    timestamp: Option<u64>,
    /// Accepted for podman's habits: intermediate images are always kept as the cache
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    layers: Option<String>,
    /// Accepted for podman's habits: build containers are always removed
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    rm: Option<String>,
    /// The build context: a directory, or - for a tar stream (or a lone Dockerfile) on stdin
    #[arg(default_value = ".")]
    context: String,
}

pub fn build(args: BuildArgs, engine: &Engine) -> Result<i32, Error> {
    let options = options(&args)?;
    let quiet = args.quiet;
    let image = crate::build::build(engine, options, &|line| {
        if !quiet {
            println!("{line}");
        }
    })?;
    if let Some(path) = &args.iidfile {
        std::fs::write(path, image.id.as_str()).map_err(|source| Error::Write { path: path.clone(), source })?;
    }
    println!("{}", if quiet { image.id.to_string() } else { image.id.hex().to_string() });
    Ok(0)
}

fn options(args: &BuildArgs) -> Result<BuildOptions, Error> {
    let dockerfile = match &args.file {
        Some(path) if path.as_os_str() == "-" => Some(DockerfileSource::Text(read_stdin_rest()?)),
        Some(path) => Some(DockerfileSource::Path(path.clone())),
        None => None,
    };
    let (context, dockerfile) = match args.context.as_str() {
        "-" => match stdin_context(dockerfile.is_some())? {
            // A lone Dockerfile on stdin: an empty context.
            Err(text) => (Context::Empty, Some(DockerfileSource::Text(text))),
            Ok(tar) => (tar, dockerfile),
        },
        url if url.contains("://") || url.starts_with("git@") => {
            return Err(Error::Usage(format!(
                "{url}: git and URL contexts are not supported: clone or download it, then build the directory"
            )));
        }
        dir => (Context::Directory(PathBuf::from(dir)), dockerfile),
    };
    let pull = match args.pull.as_deref() {
        None | Some("missing") | Some("false") => PullPolicy::Missing,
        Some("always") | Some("true") => PullPolicy::Always,
        Some("never") => PullPolicy::Never,
        Some(other) => return Err(Error::Usage(format!("--pull={other}: use always, missing or never"))),
    };
    Ok(BuildOptions {
        context,
        dockerfile,
        tags: args.tags.clone(),
        build_args: args
            .build_args
            .iter()
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            })
            .collect(),
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull,
        platform: args.platform.as_deref().map(Platform::parse).transpose()?,
        labels: super::run::labels(&args.labels),
        network: args.network.as_deref().map(str::parse).transpose()?,
        secrets: args.secrets.iter().map(|s| secret(s)).collect::<Result<_, _>>()?,
        timestamp: args.timestamp,
    })
}

/// `-` as the context: a tar stream, or (its first block not a tar
/// header, and no `-f`) the text of a lone Dockerfile, as `Err`.
fn stdin_context(dockerfile_given: bool) -> Result<Result<Context, String>, Error> {
    let mut head = vec![0u8; 512];
    let mut filled = 0;
    while filled < head.len() {
        match std::io::stdin().read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Usage(format!("reading the context from stdin: {e}"))),
        }
    }
    head.truncate(filled);
    let is_tar = filled == 512 && &head[257..262] == b"ustar";
    if is_tar || dockerfile_given {
        return Ok(Ok(Context::Tar(Box::new(std::io::Cursor::new(head).chain(std::io::stdin())))));
    }
    let mut bytes = head;
    std::io::stdin().read_to_end(&mut bytes).map_err(|e| Error::Usage(format!("reading stdin: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage("stdin: neither a tar stream nor a UTF-8 Dockerfile".into()))?;
    Ok(Err(text))
}

/// A Dockerfile on stdin (`-f -`).
fn read_stdin_rest() -> Result<String, Error> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::Usage(format!("reading the Dockerfile from stdin: {e}")))?;
    Ok(text)
}

/// `--secret id=ID,src=PATH` (also `source=`).
fn secret(spec: &str) -> Result<(String, PathBuf), Error> {
    let mut id = None;
    let mut src = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
            Some(("type", "file")) => {}
            _ => return Err(Error::Usage(format!("--secret {spec}: expected id=ID,src=PATH"))),
        }
    }
    match (id, src) {
        (Some(id), Some(src)) if src.is_file() => Ok((id, src)),
        (Some(_), Some(src)) => Err(Error::Usage(format!("--secret {spec}: {} is not a file", src.display()))),
        _ => Err(Error::Usage(format!("--secret {spec}: expected id=ID,src=PATH"))),
    }
}
