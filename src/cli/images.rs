//! The image verbs: pull, images, rmi, inspect, history, tag, image prune.
//! Whatever touches unpacked layers runs in hutch's user namespace.

use super::{in_userns, Error};
use crate::config::Config;
use crate::image::pull::{human_size, Platform, Progress, Puller};
use crate::image::registry::{login_file, store_login, Client};
use crate::image::store::remove_tree;
use crate::image::time::{human_duration, now, parse_rfc3339};
use crate::image::{self, Digest, ImageRecord, ImageRef, Store};
use crate::userns::UsernsPlan;
use clap::{Args, Subcommand};
use oci_spec::image::ImageConfiguration;
use std::collections::HashSet;
use std::path::Path;

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
pub struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    quiet: bool,
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
    /// List images
    #[command(alias = "list", name = "ls")]
    Ls(ImagesArgs),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Show an image's configuration and layers
    Inspect(ImageArg),
    /// Show how an image was built
    History(ImageArg),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove unnamed images, unused layers and leftovers of interrupted pulls
    Prune,
    /// Load images from an archive
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
}

pub fn image(command: ImageCommand, root: &std::path::Path) -> Result<i32, Error> {
    match command {
        ImageCommand::Ls(a) => images(a, root),
        ImageCommand::Pull(a) => pull(a, root),
        ImageCommand::Rm(a) => rmi(a, root),
        ImageCommand::Inspect(a) => inspect(a, root),
        ImageCommand::History(a) => history(a, root),
        ImageCommand::Tag(a) => tag(a, root),
        ImageCommand::Prune => prune(root),
        ImageCommand::Load(a) => load(a, root),
        ImageCommand::Save(a) => save(a, root),
    }
}

pub fn pull(args: PullArgs, root: &std::path::Path) -> Result<i32, Error> {
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let record = pull_image(root, &args.image, platform, args.quiet)?;
    println!("{}", record.id);
    Ok(0)
}

/// Pulls in the user namespace and returns the stored record.
pub fn pull_image(root: &std::path::Path, name: &str, platform: Platform, quiet: bool) -> Result<ImageRecord, Error> {
    let config = Config::load()?.registries;
    let candidates = ImageRef::candidates(name, &config)?;
    let store = Store::open(root)?;
    let plan = UsernsPlan::for_current_user();
    in_userns(&plan, || {
        let _lock = store.lock_shared()?;
        store.clean_abandoned()?;
        let client = Client::new(config);
        let progress = Progress::on_stderr(quiet);
        Ok(Puller { store: &store, client: &client, platform, progress }.pull(&candidates)?)
    })
}

pub fn load(args: LoadArgs, root: &Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    // From stdin: kept in the store's tmp/ while it loads.
    let (input, spooled) = match args.input {
        Some(path) => (path, None),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Error::Other("hutch load: give -i FILE, or pipe an archive into it".into()));
            }
            let path = store.temp_path("stdin.tar");
            let mut file = std::fs::File::create(&path).map_err(image::io("create", &path))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut file).map_err(image::io("write", &path))?;
            (path.clone(), Some(path))
        }
    };
    let plan = UsernsPlan::for_current_user();
    let result = in_userns(&plan, || {
        let _lock = store.lock_shared()?;
        Ok(image::archive::load(&store, &input)?)
    });
    if let Some(path) = spooled {
        let _ = std::fs::remove_file(path);
    }
    for record in result? {
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

pub fn save(args: SaveArgs, root: &Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let mut chosen = Vec::new();
    for name in &args.images {
        let record = store.find(name)?;
        let qualified = ImageRef::parse(name).ok().and_then(|r| r.tagged_name()).filter(|n| record.names.contains(n));
        chosen.push((record, qualified));
    }
    let _lock = store.lock_shared()?;
    image::archive::save(&store, &chosen, &args.output)?;
    Ok(0)
}

pub fn import(args: ImportArgs, root: &Path) -> Result<i32, Error> {
    let name = match &args.name {
        Some(n) => {
            Some(ImageRef::parse(n)?.tagged_name().ok_or_else(|| Error::Other(format!("{n}: a tag, not a digest")))?)
        }
        None => None,
    };
    let store = Store::open(root)?;
    let plan = UsernsPlan::for_current_user();
    let record = in_userns(&plan, || {
        let _lock = store.lock_shared()?;
        Ok(image::archive::import(&store, &args.file, name)?)
    })?;
    println!("{}", record.id);
    Ok(0)
}

pub fn login(args: LoginArgs) -> Result<i32, Error> {
    let registry = args.registry.unwrap_or_else(|| "docker.io".into());
    fn no_terminal(what: &'static str, flag: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |e| Error::Other(format!("hutch login: no terminal to ask for the {what} ({e}): give {flag}"))
    }
    let user = match args.username {
        Some(user) => user,
        None if args.password_stdin => {
            return Err(Error::Other("hutch login: give the user name with -u (stdin holds the password)".into()))
        }
        None => super::prompt::ask("Username: ", false).map_err(no_terminal("user name", "-u"))?,
    };
    let pass = match (args.password, args.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| Error::Other(format!("reading the password: {e}")))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => super::prompt::ask("Password: ", true).map_err(no_terminal("password", "--password-stdin"))?,
        (Some(_), true) => return Err(Error::Other("hutch login: -p and --password-stdin exclude each other".into())),
    };
    Client::new(Config::load()?.registries).check_login(&registry, &user, &pass)?;
    let file =
        login_file().ok_or_else(|| Error::Other("no place for logins: set REGISTRY_AUTH_FILE or HOME".into()))?;
    store_login(&file, &registry, Some((&user, &pass)))?;
    println!("Login Succeeded!");
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> Result<i32, Error> {
    let registry = args.registry.unwrap_or_else(|| "docker.io".into());
    let file =
        login_file().ok_or_else(|| Error::Other("no place for logins: set REGISTRY_AUTH_FILE or HOME".into()))?;
    if !store_login(&file, &registry, None)? {
        return Err(Error::Other(format!("not logged in to {registry}")));
    }
    println!("Removed login credentials for {registry}");
    Ok(0)
}

pub fn images(args: ImagesArgs, root: &std::path::Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let mut images = store.images()?;
    images.sort_by_key(|i| std::cmp::Reverse(i.stored));
    if args.quiet {
        for i in &images {
            println!("{}", i.id.short());
        }
        return Ok(0);
    }
    println!("{:<40} {:<16} {:<12} {:<16} SIZE", "REPOSITORY", "TAG", "IMAGE ID", "CREATED");
    for i in &images {
        let created = i.created.as_deref().map(created_ago).unwrap_or_default();
        let size = human_size(i.size());
        let names: Vec<(String, String)> = if i.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.names.iter().map(|n| split_tag(n)).collect()
        };
        for (repo, tag) in names {
            println!("{repo:<40} {tag:<16} {:<12} {created:<16} {size}", i.id.short());
        }
    }
    Ok(0)
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

pub fn rmi(args: RmiArgs, root: &std::path::Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let plan = UsernsPlan::for_current_user();
    let removed: Vec<String> = in_userns(&plan, || {
        let _lock = store.lock_exclusive()?;
        let mut removed = Vec::new();
        for name in &args.images {
            let image = store.find(name)?;
            let users = containers_using(&store, &image.id);
            if !users.is_empty() && !args.force {
                return Err(Error::Other(format!(
                    "image {name} is used by container {} (remove the container first, or rmi -f)",
                    &users[0][..12.min(users[0].len())]
                )));
            }
            let qualified = ImageRef::parse(name).ok().map(|r| r.to_string());
            removed.extend(store.update_images(|images| {
                let mut said = Vec::new();
                for i in images.iter_mut().filter(|i| i.id == image.id) {
                    let before = i.names.len();
                    i.names.retain(|n| n != name && Some(n) != qualified.as_ref());
                    if i.names.len() < before {
                        said.push(format!("Untagged: {}", qualified.clone().unwrap_or(name.clone())));
                    }
                }
                // By id, or its last name: the image goes.
                let by_name = !said.is_empty();
                images.retain(|i| {
                    let goes = i.id == image.id && (!by_name || i.names.is_empty());
                    if goes {
                        said.push(format!("Deleted: {}", i.id));
                    }
                    !goes
                });
                Ok(said)
            })?);
        }
        remove_unreferenced(&store)?;
        Ok(removed)
    })?;
    for line in removed {
        println!("{line}");
    }
    Ok(0)
}

pub fn prune(root: &std::path::Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let plan = UsernsPlan::for_current_user();
    let freed = in_userns(&plan, || {
        let _lock = store.lock_exclusive()?;
        store.update_images(|images| {
            images.retain(|i| !i.names.is_empty() || !containers_using(&store, &i.id).is_empty());
            Ok(())
        })?;
        store.clean_abandoned()?;
        remove_unreferenced(&store)
    })?;
    println!("Removed {freed} unused layers and blobs");
    Ok(0)
}

/// Removes layers and blobs no image record names. Caller holds the
/// exclusive lock, in the user namespace.
fn remove_unreferenced(store: &Store) -> Result<usize, Error> {
    let images = store.images()?;
    let mut keep: HashSet<String> = HashSet::new();
    for i in &images {
        keep.insert(i.id.hex().to_string());
        keep.insert(i.manifest.hex().to_string());
        for l in &i.layers {
            keep.insert(l.digest.hex().to_string());
            keep.insert(l.diff_id.hex().to_string());
        }
    }
    let mut removed = 0;
    for dir in ["blobs/sha256", "layers"] {
        let path = store.root().join(dir);
        for entry in std::fs::read_dir(&path).map_err(image::io("read", &path))?.flatten() {
            if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                remove_tree(&entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Containers whose rootfs came from `image` (their `image` file names it).
fn containers_using(store: &Store, image: &Digest) -> Vec<String> {
    let dir = store.root().join("containers");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("image")).is_ok_and(|id| id.trim() == image.as_str()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn load_config(store: &Store, image: &ImageRecord) -> Result<ImageConfiguration, Error> {
    let bytes = store.read_blob(&image.id)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Other(format!("image {}: config: {e}", image.id.short())))
}

pub fn inspect(args: ImageArg, root: &std::path::Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let image = store.find(&args.image)?;
    let config = load_config(&store, &image)?;
    let layers: Vec<serde_json::Value> = image
        .layers
        .iter()
        .map(
            |l| serde_json::json!({"Digest": l.digest, "DiffID": l.diff_id, "Size": l.size, "MediaType": l.media_type}),
        )
        .collect();
    let doc = serde_json::json!([{
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
    }]);
    println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Error::Other(e.to_string()))?);
    Ok(0)
}

pub fn history(args: ImageArg, root: &std::path::Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let image = store.find(&args.image)?;
    let config = load_config(&store, &image)?;
    println!("{:<24} {:<60} SIZE", "CREATED", "CREATED BY");
    let mut layers = image.layers.iter();
    let mut rows = Vec::new();
    for h in config.history().iter().flatten() {
        let size = if h.empty_layer().unwrap_or(false) { 0 } else { layers.next().map_or(0, |l| l.size) };
        let created = h.created().as_deref().map(created_ago).unwrap_or_default();
        let by: String = h.created_by().clone().unwrap_or_default().chars().take(60).collect();
        rows.push(format!("{created:<24} {by:<60} {}", human_size(size)));
    }
    for row in rows.iter().rev() {
        println!("{row}");
    }
    Ok(0)
}

pub fn tag(args: TagArgs, root: &std::path::Path) -> Result<i32, Error> {
    let store = Store::open(root)?;
    let source = store.find(&args.source)?;
    let target = ImageRef::parse(&args.target)?;
    let name = target.tagged_name().ok_or_else(|| Error::Other(format!("{}: a tag, not a digest", args.target)))?;
    store.update_images(|images| {
        for i in images.iter_mut() {
            i.names.retain(|n| *n != name);
            if i.id == source.id {
                i.names.push(name.clone());
            }
        }
        Ok(())
    })?;
    Ok(0)
}
