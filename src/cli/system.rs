//! What describes hutch itself: `info`, `version`, shell completions and
//! man pages (both made from the command-line definitions).

use super::format::Format;
use super::Error;
use crate::engine::{Engine, Info, Version};
use crate::image::pull::human_size;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Args)]
pub struct FormatArgs {
    /// Output format: json, or a Go template ({{.Store.Path}})
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
}

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to complete for
    shell: Shell,
}

#[derive(Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args)]
pub struct ManArgs {
    /// The directory to write the pages to (hutch.1, hutch-run.1, …)
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,
}

/// The `--format` given, if any (`{{.Field}}` names are the JSON's).
fn format(args: &FormatArgs) -> Result<Option<Format>, Error> {
    args.format.as_deref().map(|f| Format::parse(f, &|field| field.to_uppercase())).transpose()
}

pub fn version(args: FormatArgs) -> Result<i32, Error> {
    let v = Version::current();
    match format(&args)? {
        Some(format) => print!("{}", format.render(&[&v])?),
        None => println!("Version:    {}\nOS/Arch:    {}/{}\nKernel:     {}", v.version, v.os, v.arch, v.kernel),
    }
    Ok(0)
}

pub fn info(args: FormatArgs, engine: &Engine) -> Result<i32, Error> {
    let format = format(&args)?;
    let info = engine.info()?;
    match format {
        Some(format) => print!("{}", format.render(&[&info])?),
        None => print!("{}", human(&info)),
    }
    Ok(0)
}

fn human(i: &Info) -> String {
    let v = &i.version;
    let yes_no = |b: bool| if b { "delegated to you" } else { "not delegated: limits need a delegated cgroup" };
    let opt = |o: Option<u64>| o.map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut mapping = format!("{}, looked up in {}", i.ids.mapping, i.ids.source);
    if let Some(reason) = &i.ids.single_id_reason {
        mapping = format!("{} ({reason})", i.ids.mapping);
    }
    let keeper = i
        .user_namespaces
        .keeper
        .as_deref()
        .map_or_else(|| "none now (the next command makes one)".to_string(), |tag| format!("held by process {tag}"));
    [
        format!("Version:          {} ({}/{}, kernel {})", v.version, v.os, v.arch, v.kernel),
        "Ids:".into(),
        format!(" User:            {} (uid {}, gid {})", i.ids.user, i.ids.uid, i.ids.gid),
        format!(" Mapping:         {mapping}"),
        format!(" uid_map:         {}", i.ids.uid_map.join("; ")),
        format!(" gid_map:         {}", i.ids.gid_map.join("; ")),
        "User namespaces:".into(),
        format!(" max_user_namespaces: {}", opt(i.user_namespaces.max_user_namespaces)),
        format!(" unprivileged_userns_clone: {}", opt(i.user_namespaces.unprivileged_userns_clone)),
        format!(
            " apparmor_restrict_unprivileged_userns: {}",
            opt(i.user_namespaces.apparmor_restrict_unprivileged_userns)
        ),
        format!(" Kept namespace:  {keeper}"),
        "Store:".into(),
        format!(" Path:            {} ({})", i.store.path, i.store.filesystem),
        match i.store.driver.as_str() {
            "auto" => " Storage driver:  auto (the kernel overlay where it works and shows an image exactly, else fuse-overlay)".into(),
            forced => format!(" Storage driver:  {forced} (forced)"),
        },
        format!(" Kernel overlay:  {}", i.store.kernel_overlay),
        format!(" Images:          {}", i.store.images),
        format!(" Containers:      {}", i.store.containers),
        format!("Runtime dir:      {}", i.runtime_dir),
        "Network:".into(),
        format!(" Default:         {}", i.network.default),
        format!(" slirp4netns:     {}", i.network.slirp4netns),
        format!(" pasta:           {}", i.network.pasta),
        "Cgroups:".into(),
        format!(" Version:         {}", i.cgroups.version),
        format!(" Cgroup:          {}", i.cgroups.cgroup.as_deref().unwrap_or("-")),
        format!(" Controllers:     {} ({})", i.cgroups.controllers.join(" "), yes_no(i.cgroups.delegated)),
        "Security:".into(),
        format!(" Seccomp:         {}", i.security.seccomp),
        format!(" AppArmor:        {}", i.security.apparmor),
    ]
    .iter()
    .map(|line| format!("{line}\n"))
    .collect()
}

#[derive(Args)]
pub struct SystemPruneArgs {
    /// Remove every image no container uses, not only unnamed ones
    #[arg(short, long)]
    all: bool,
    /// Remove volumes no container uses too
    #[arg(long)]
    volumes: bool,
    /// Do not ask (hutch never asks before a prune: accepted for Docker's sake)
    #[arg(short, long)]
    force: bool,
}

/// `system prune`: stopped containers, then images no container uses
/// (unnamed ones, or all with `-a`), with `--volumes` unused volumes, and
/// what killed commands left.
pub fn prune(args: SystemPruneArgs, engine: &Engine) -> Result<i32, Error> {
    let _ = args.force;
    for id in engine.prune_containers()? {
        println!("Deleted container: {id}");
    }
    if args.volumes {
        for name in engine.prune_volumes()? {
            println!("Deleted volume: {name}");
        }
    }
    let (lines, freed) = engine.prune_images(args.all)?;
    for line in lines {
        println!("{line}");
    }
    println!("Removed {freed} unused layers and blobs");
    Ok(0)
}

/// `system df`: what images, containers and volumes take, and what a
/// prune would free.
pub fn df(args: FormatArgs, engine: &Engine) -> Result<i32, Error> {
    let lines = engine.disk_usage()?;
    if let Some(format) = args.format.as_deref() {
        let format = Format::parse(format, &|field| match field {
            "TotalCount" => "TOTAL".into(),
            other => other.to_uppercase(),
        })?;
        print!("{}", format.render(&lines)?);
        return Ok(0);
    }
    let mut table = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(String::from)];
    for l in lines {
        let percent = (l.reclaimable * 100).checked_div(l.size).unwrap_or(0);
        table.push([
            l.kind,
            l.total_count.to_string(),
            l.active.to_string(),
            human_size(l.size),
            format!("{} ({percent}%)", human_size(l.reclaimable)),
        ]);
    }
    print!("{}", super::containers::columns(&table));
    Ok(0)
}

#[derive(Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    force: bool,
}

/// `system reset`: every container, image and volume, and the store.
pub fn reset(args: ResetArgs, engine: &Engine) -> Result<i32, Error> {
    if !args.force {
        let question = "This removes every container (running ones are killed), image and volume of yours, and the store. Go on? [y/N] ";
        let answer = crate::prompt::ask(question, false)
            .map_err(|e| Error::Usage(format!("cannot ask for confirmation ({e}): give -f to reset without asking")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(1);
        }
    }
    engine.reset()?;
    Ok(0)
}

pub fn completion(args: CompletionArgs, mut command: clap::Command) -> Result<i32, Error> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "hutch", &mut std::io::stdout());
    Ok(0)
}

/// A page for hutch and one for each of its commands, as `man hutch-run`
/// finds them.
pub fn man(args: ManArgs, command: clap::Command) -> Result<i32, Error> {
    let dir = args.output;
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut pages = Vec::new();
    collect_pages(command, "hutch", &mut pages);
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text).map_err(io(&path))?;
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(0)
}

fn collect_pages(command: clap::Command, name: &str, pages: &mut Vec<(String, clap::Command)>) {
    let command = command.name(name.to_string());
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        collect_pages(sub.clone(), &format!("{name}-{}", sub.get_name()), pages);
    }
    pages.push((name.to_string(), command));
}
