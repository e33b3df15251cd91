//! The image verbs: pull, images, rmi, inspect, history, tag, image prune.

use super::filter::{glob_match, Filters};
use super::format::Format;
use super::Error;
use crate::engine::{Engine, ImageRemoval};
use crate::image::pull::{human_size, Platform};
use crate::image::time::{human_duration, now, parse_rfc3339};
use crate::image::ImageRecord;
use clap::{Args, Subcommand};
use std::collections::HashMap;

#[derive(Args)]
pub struct PullArgs {
    /// The image: NAME[:TAG|@DIGEST]
    image: String,
    /// Platform to pull from a multi-platform image: OS/ARCH[/VARIANT]
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Print only the image id
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct PushArgs {
    /// The image: a name or an id
    image: String,
    /// Where to: REGISTRY/REPOSITORY[:TAG] (docker:// optional; default: the image's own name),
    /// oci-archive:FILE or docker-archive:FILE
    destination: Option<String>,
    /// Write the pushed manifest's digest to this file
    #[arg(long, value_name = "FILE")]
    digestfile: Option<std::path::PathBuf>,
    /// Manifest format: oci (default) or v2s2 (Docker's schema 2)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Accepted for podman's sake: hutch copies no signatures
    #[arg(long)]
    remove_signatures: bool,
    /// Layer compression: gzip (the only one hutch writes)
    #[arg(long, value_name = "FORMAT")]
    compression_format: Option<String>,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    quiet: bool,
    /// Whole image ids (sha256:…)
    #[arg(long)]
    no_trunc: bool,
    /// Show the digest each image was pulled by
    #[arg(long)]
    digests: bool,
    /// Output format: json, or a Go template ({{.Repository}}:{{.Tag}}, table …)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Only images that match: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

/// Whether an image passes `images`' filters; `created_of` finds the
/// creation time of an image named in before= or since=.
/// (`reference=` applies to each name: see [`reference_allows`]).
fn images_filters_allow(
    filters: &Filters,
    i: &ImageRecord,
    created_of: &dyn Fn(&str) -> Option<String>,
    labels_of: &dyn Fn(&ImageRecord) -> HashMap<String, String>,
) -> bool {
    let created = i.created.clone().unwrap_or_default();
    filters.allows("dangling", |v| (v == "true") == i.names.is_empty())
        && filters.allows("reference", |_| !i.names.is_empty())
        && filters.allows("before", |v| created_of(v).is_some_and(|t| created < t))
        && filters.allows("since", |v| created_of(v).is_some_and(|t| created > t))
        && filters.allows("label", |v| super::filter::label_matches(labels_of(i).iter(), v))
}

#[derive(Args)]
pub struct RmiArgs {
    /// Remove even if containers use it
    #[arg(short, long)]
    force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

#[derive(Args)]
pub struct ImageArg {
    #[arg(value_name = "IMAGE")]
    pub(super) image: String,
}

#[derive(Args)]
pub struct InspectArgs {
    /// A container (name or id) or an image
    #[arg(value_name = "NAME")]
    name: String,
    /// Output format: json, or a Go template ({{.State.Pid}}, {{json .Config}})
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
}

/// `inspect`: a container's document, else an image's.
pub fn inspect(args: InspectArgs, engine: &Engine) -> Result<i32, Error> {
    let doc = match super::containers::inspect(&args.name, engine)? {
        Some(doc) => doc,
        None => inspect_doc(&args.name, engine)?,
    };
    match args.format.as_deref() {
        Some(format) => print!("{}", Format::parse(format, &|f| f.to_uppercase())?.render(&[doc])?),
        None => println!("{}", serde_json::to_string_pretty(&[doc]).unwrap_or_default()),
    }
    Ok(0)
}

#[derive(Args)]
pub struct TagArgs {
    source: String,
    target: String,
}

#[derive(Args)]
pub struct LoadArgs {
    /// The archive: docker-archive or oci-archive tarball, or an OCI layout directory (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    input: Option<std::path::PathBuf>,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Where to write the archive (an OCI layout with Docker's manifest.json)
    #[arg(short, long, value_name = "FILE", required = true)]
    output: std::path::PathBuf,
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A root filesystem tarball (plain, gzip or zstd)
    file: std::path::PathBuf,
    /// The name to give the image (NAME[:TAG])
    name: Option<String>,
}

#[derive(Args)]
pub struct LoginArgs {
    /// The registry, e.g. registry.example:5000 (default: docker.io)
    registry: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    /// The password (visible to other users in the process list: prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The registry (default: docker.io)
    registry: Option<String>,
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(Box<super::build::BuildArgs>),
    /// List images
    #[command(alias = "list", name = "ls")]
    Ls(ImagesArgs),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Push an image to a registry or an archive
    Push(PushArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Show an image's configuration and layers
    Inspect(InspectArgs),
    /// Show how an image was built
    History(HistoryArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove unnamed (-a: all) images no container uses, unused layers and leftovers of interrupted pulls
    Prune(ImagePruneArgs),
    /// Load images from an archive
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
}

pub fn image(command: ImageCommand, engine: &Engine) -> Result<i32, Error> {
    match command {
        ImageCommand::Build(a) => super::build::build(*a, engine),
        ImageCommand::Ls(a) => images(a, engine),
        ImageCommand::Pull(a) => pull(a, engine),
        ImageCommand::Push(a) => push(a, engine),
        ImageCommand::Rm(a) => rmi(a, engine),
        ImageCommand::Inspect(a) => inspect(a, engine),
        ImageCommand::History(a) => history(a, engine),
        ImageCommand::Tag(a) => tag(a, engine),
        ImageCommand::Prune(a) => prune(a, engine),
        ImageCommand::Load(a) => load(a, engine),
        ImageCommand::Save(a) => save(a, engine),
    }
}

pub fn pull(args: PullArgs, engine: &Engine) -> Result<i32, Error> {
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let record = engine.pull(&args.image, platform, args.quiet)?;
    println!("{}", record.id);
    Ok(0)
}

pub fn load(args: LoadArgs, engine: &Engine) -> Result<i32, Error> {
    let loaded = match args.input {
        Some(path) => engine.load(&path)?,
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Error::Usage("hutch load: give -i FILE, or pipe an archive into it".into()));
            }
            engine.load_stream(&mut std::io::stdin().lock())?
        }
    };
    for record in loaded {
        if args.quiet {
            println!("{}", record.id);
        } else if record.names.is_empty() {
            println!("Loaded image: {}", record.id);
        } else {
            for name in &record.names {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(0)
}

pub fn save(args: SaveArgs, engine: &Engine) -> Result<i32, Error> {
    engine.save(&args.images, &args.output)?;
    Ok(0)
}

pub fn import(args: ImportArgs, engine: &Engine) -> Result<i32, Error> {
    let record = engine.import(&args.file, args.name.as_deref())?;
    println!("{}", record.id);
    Ok(0)
}

pub fn login(args: LoginArgs, engine: &Engine) -> Result<i32, Error> {
    let registry = args.registry.unwrap_or_else(|| "docker.io".into());
    fn no_terminal(what: &'static str, flag: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::NoTerminal { what, flag, source }
    }
    let user = match args.username {
        Some(user) => user,
        None if args.password_stdin => {
            return Err(Error::Usage("hutch login: give the user name with -u (stdin holds the password)".into()))
        }
        None => crate::prompt::ask("Username: ", false).map_err(no_terminal("user name", "-u"))?,
    };
    let pass = match (args.password, args.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|source| Error::ReadPassword { source })?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => crate::prompt::ask("Password: ", true).map_err(no_terminal("password", "--password-stdin"))?,
        (Some(_), true) => return Err(Error::Usage("hutch login: -p and --password-stdin exclude each other".into())),
    };
    engine.login(&registry, &user, &pass)?;
    println!("Login Succeeded!");
    Ok(0)
}

pub fn logout(args: LogoutArgs, engine: &Engine) -> Result<i32, Error> {
    let registry = args.registry.unwrap_or_else(|| "docker.io".into());
    if !engine.logout(&registry)? {
        return Err(Error::Usage(format!("not logged in to {registry}")));
    }
    println!("Removed login credentials for {registry}");
    Ok(0)
}

pub fn images(args: ImagesArgs, engine: &Engine) -> Result<i32, Error> {
    let filters = Filters::parse(&args.filter, &["dangling", "reference", "before", "since", "label"])?;
    let mut images = engine.images()?;
    if !filters.is_empty() {
        // The images named in before= and since=, looked up once.
        let named = filters.values("before").iter().chain(filters.values("since"));
        let created: std::collections::HashMap<&str, Option<String>> =
            named.map(|v| (v.as_str(), engine.image(v).ok().and_then(|i| i.created))).collect();
        let created_of = |name: &str| created.get(name).cloned().flatten();
        // Read only for a label= filter: the image's config.
        let labels_of = |i: &ImageRecord| {
            let config = engine.image_config(i).ok().and_then(|c| c.config().clone());
            config.and_then(|c| c.labels().clone()).unwrap_or_default()
        };
        images.retain(|i| images_filters_allow(&filters, i, &created_of, &labels_of));
    }
    images.sort_by_key(|i| std::cmp::Reverse(i.stored));
    let id = |i: &ImageRecord| if args.no_trunc { i.id.to_string() } else { i.id.short().to_string() };
    if args.quiet {
        for i in &images {
            println!("{}", id(i));
        }
        return Ok(0);
    }
    let format = args.format.as_deref().map(|f| Format::parse(f, &images_header)).transpose()?;
    let mut rows = Vec::new();
    for i in &images {
        let names: Vec<(String, String)> = if i.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.names.iter().filter(|n| reference_allows(&filters, n)).map(|n| split_tag(n)).collect()
        };
        for (repository, tag) in names {
            rows.push(ImagesRow {
                id: id(i),
                repository,
                tag,
                digest: i
                    .digests
                    .first()
                    .and_then(|d| d.rsplit_once('@'))
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| "<none>".into()),
                created_since: i.created.as_deref().map(created_ago).unwrap_or_default(),
                created_at: i.created.clone().unwrap_or_default(),
                size: human_size(i.size()),
            });
        }
    }
    if let Some(format) = format {
        print!("{}", format.render(&rows)?);
        return Ok(0);
    }
    let mut table = Vec::new();
    let digest = |d: &str| if args.digests { format!("{d}\t") } else { String::new() };
    table.push(format!("REPOSITORY\tTAG\t{}IMAGE ID\tCREATED\tSIZE", digest("DIGEST")));
    for r in rows {
        table.push(format!(
            "{}\t{}\t{}{}\t{}\t{}",
            r.repository,
            r.tag,
            digest(&r.digest),
            r.id,
            r.created_since,
            r.size
        ));
    }
    print!("{}", super::format::aligned(&table));
    Ok(0)
}

/// Whether the name `name` passes `reference=` patterns, matched against
/// the whole name and the short one Docker shows (`busybox:latest`).
fn reference_allows(filters: &Filters, name: &str) -> bool {
    let short = name.trim_start_matches("docker.io/library/").trim_start_matches("docker.io/");
    filters.allows("reference", |v| glob_match(v, name) || glob_match(v, short))
}

/// A row of `images`, with Docker's field names for `--format`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImagesRow {
    #[serde(rename = "ID")]
    id: String,
    repository: String,
    tag: String,
    digest: String,
    created_since: String,
    created_at: String,
    size: String,
}

/// `images`' column for a `--format` field, as Docker names it.
fn images_header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

fn split_tag(name: &str) -> (String, String) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (name.to_string(), "<none>".into()),
    }
}

/// "3 days ago" from an RFC 3339 time.
fn created_ago(rfc3339: &str) -> String {
    let Some(then) = parse_rfc3339(rfc3339) else { return rfc3339.to_string() };
    format!("{} ago", human_duration(now().saturating_sub(then)))
}

pub fn rmi(args: RmiArgs, engine: &Engine) -> Result<i32, Error> {
    let removal = if args.force { ImageRemoval::Force } else { ImageRemoval::IfUnused };
    for line in engine.remove_images(&args.images, removal)? {
        println!("{line}");
    }
    Ok(0)
}

#[derive(Args)]
pub struct ImagePruneArgs {
    /// Every image no container uses, not only unnamed ones
    #[arg(short, long)]
    all: bool,
    /// Do not ask (hutch never asks before a prune: accepted for Docker's sake)
    #[arg(short, long)]
    force: bool,
    /// The build cache too: `hutch build`'s intermediate images and cached files
    #[arg(long)]
    build_cache: bool,
}

pub fn prune(args: ImagePruneArgs, engine: &Engine) -> Result<i32, Error> {
    let _ = args.force;
    if args.build_cache {
        prune_build_cache(engine)?;
    }
    let (lines, freed) = engine.prune_images(args.all)?;
    for line in lines {
        println!("{line}");
    }
    println!("Removed {freed} unused layers and blobs");
    Ok(0)
}

pub fn push(args: PushArgs, engine: &Engine) -> Result<i32, Error> {
    let format = match args.format.as_deref() {
        None | Some("oci") => crate::image::push::ManifestFormat::Oci,
        Some("v2s2" | "docker") => crate::image::push::ManifestFormat::DockerV2S2,
        Some(other) => return Err(Error::Usage(format!("--format {other}: use oci or v2s2"))),
    };
    let _ = args.remove_signatures;
    if let Some(format) = args.compression_format.as_deref().filter(|f| *f != "gzip") {
        return Err(Error::Usage(format!("--compression-format {format}: hutch compresses with gzip")));
    }
    let quiet = args.quiet;
    let digest = engine.push(&args.image, args.destination.as_deref(), format, &|line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    if let Some(digest) = digest {
        if let Some(path) = &args.digestfile {
            std::fs::write(path, digest.as_str()).map_err(|source| Error::Write { path: path.clone(), source })?;
        }
        if !quiet {
            println!("{digest}");
        }
    }
    Ok(0)
}

/// `builder prune`: `hutch build`'s cache.
pub fn prune_build_cache(engine: &Engine) -> Result<i32, Error> {
    let lines = engine.prune_build_cache()?;
    for line in &lines {
        println!("{line}");
    }
    println!("Removed the build cache ({} intermediate images)", lines.len());
    Ok(0)
}

/// `inspect`'s document of an image, with Docker's field names.
pub fn inspect_doc(name: &str, engine: &Engine) -> Result<serde_json::Value, Error> {
    let image = engine.image(name)?;
    let config = engine.image_config(&image)?;
    let layers: Vec<serde_json::Value> = image
        .layers
        .iter()
        .map(
            |l| serde_json::json!({"Digest": l.digest, "DiffID": l.diff_id, "Size": l.size, "MediaType": l.media_type}),
        )
        .collect();
    Ok(serde_json::json!({
        "Id": image.id,
        "RepoTags": image.names,
        "RepoDigests": image.digests,
        "Created": config.created(),
        "Architecture": config.architecture().to_string(),
        "Os": config.os().to_string(),
        "Config": config.config(),
        "RootFS": {"Type": "layers", "Layers": config.rootfs().diff_ids()},
        "Size": image.size(),
        "Layers": layers,
        "Manifest": image.manifest,
    }))
}

#[derive(Args)]
pub struct HistoryArgs {
    image: String,
    /// Output format: json, or a Go template ({{.CreatedBy}}, table {{.ID}}\t{{.Size}})
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Only the layers' ids
    #[arg(short, long)]
    quiet: bool,
    /// Commands in full
    #[arg(long)]
    no_trunc: bool,
}

/// A row of `history`, with Docker's field names for `--format`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryRow {
    #[serde(rename = "ID")]
    id: String,
    created_since: String,
    created_at: String,
    created_by: String,
    size: String,
    comment: String,
}

pub fn history(args: HistoryArgs, engine: &Engine) -> Result<i32, Error> {
    let image = engine.image(&args.image)?;
    let config = engine.image_config(&image)?;
    let mut layers = image.layers.iter();
    let mut rows = Vec::new();
    let entries: Vec<_> = config.history().iter().flatten().collect();
    let last = entries.len().saturating_sub(1);
    for (i, h) in entries.into_iter().enumerate() {
        let size = if h.empty_layer().unwrap_or(false) { 0 } else { layers.next().map_or(0, |l| l.size) };
        let by = h.created_by().clone().unwrap_or_default();
        rows.push(HistoryRow {
            // As Docker: the image's id on its newest entry, <missing> below.
            id: if i == last { image.id.short().to_string() } else { "<missing>".into() },
            created_since: h.created().as_deref().map(created_ago).unwrap_or_default(),
            created_at: h.created().clone().unwrap_or_default(),
            created_by: if args.no_trunc { by } else { by.chars().take(60).collect() },
            size: human_size(size),
            comment: h.comment().clone().unwrap_or_default(),
        });
    }
    rows.reverse();
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(0);
    }
    if let Some(format) = args.format.as_deref() {
        let header = |field: &str| match field {
            "ID" => "IMAGE".into(),
            "CreatedSince" => "CREATED".into(),
            "CreatedAt" => "CREATED AT".into(),
            "CreatedBy" => "CREATED BY".into(),
            other => other.to_uppercase(),
        };
        print!("{}", Format::parse(format, &header)?.render(&rows)?);
        return Ok(0);
    }
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
    for r in rows {
        table.push([r.id, r.created_since, r.created_by, r.size, r.comment]);
    }
    print!("{}", super::containers::columns(&table));
    Ok(0)
}

pub fn tag(args: TagArgs, engine: &Engine) -> Result<i32, Error> {
    engine.tag(&args.source, &args.target)?;
    Ok(0)
}
