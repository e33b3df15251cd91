//! `volume create|ls|inspect|rm|prune`.

use super::filter::Filters;
use super::format::Format;
use super::Error;
use crate::engine::Engine;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given)
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' details (JSON)
    Inspect(InspectArgs),
    /// Remove volumes no container uses
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every volume no container uses
    Prune(super::containers::PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    name: Option<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only names
    #[arg(short, long)]
    quiet: bool,
    /// Output format: json, or a Go template ({{.Name}}, table {{.Name}}\t{{.Mountpoint}})
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Only volumes that match: name=, dangling=true|false
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
    /// Output format: json, or a Go template ({{.Mountpoint}})
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
    /// Accepted for Docker's sake: a volume in use is never removed
    #[arg(short, long)]
    force: bool,
}

pub fn run(command: VolumeCommand, engine: &Engine) -> Result<i32, Error> {
    match command {
        VolumeCommand::Create(args) => {
            println!("{}", engine.create_volume(args.name.as_deref())?.name);
            Ok(0)
        }
        VolumeCommand::Ls(args) => ls(args, engine),
        VolumeCommand::Inspect(args) => {
            let volumes = args.names.iter().map(|n| engine.volume(n)).collect::<Result<Vec<_>, _>>()?;
            match args.format.as_deref() {
                Some(format) => print!("{}", Format::parse(format, &|f| f.to_uppercase())?.render(&volumes)?),
                None => println!("{}", serde_json::to_string_pretty(&volumes).unwrap_or_default()),
            }
            Ok(0)
        }
        VolumeCommand::Rm(args) => {
            let _ = args.force;
            for name in &args.names {
                engine.remove_volume(name)?;
                println!("{name}");
            }
            Ok(0)
        }
        VolumeCommand::Prune(_) => {
            for name in engine.prune_volumes()? {
                println!("{name}");
            }
            Ok(0)
        }
    }
}

fn ls(args: LsArgs, engine: &Engine) -> Result<i32, Error> {
    let filters = Filters::parse(&args.filter, &["name", "dangling"])?;
    let format = args.format.as_deref().map(|f| Format::parse(f, &header)).transpose()?;
    let in_use = if filters.has("dangling") { engine.volumes_in_use()? } else { Default::default() };
    let mut volumes = engine.volumes()?;
    volumes.retain(|v| {
        let unused = !in_use.contains_key(&v.name);
        filters.allows("name", |n| v.name.contains(n)) && filters.allows("dangling", |d| (d == "true") == unused)
    });
    if args.quiet {
        volumes.iter().for_each(|v| println!("{}", v.name));
    } else if let Some(format) = format {
        print!("{}", format.render(&volumes)?);
    } else {
        let mut lines = vec!["DRIVER\tVOLUME NAME".to_string()];
        lines.extend(volumes.iter().map(|v| format!("{}\t{}", v.driver, v.name)));
        print!("{}", super::format::aligned(&lines));
    }
    Ok(0)
}

fn header(field: &str) -> String {
    match field {
        "Name" => "VOLUME NAME".into(),
        other => other.to_uppercase(),
    }
}
