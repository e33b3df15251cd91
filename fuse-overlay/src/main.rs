//! `fuse-overlay`: fuse-overlayfs' command line over this crate, so it can
//! stand in for fuse-overlayfs (podman's `mount_program`, test suites).
//!
//! `fuse-overlay [-f] [-d] -o lowerdir=L1:L2[,upperdir=U,workdir=W][,…] MOUNTPOINT`
//! Without `-f` it returns once the filesystem is mounted and serves it in
//! the background; SIGTERM or SIGINT unmount it; `umount` ends it.

use fuse_overlay::{parse_mount_options, Config, Mount};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// Set in the background child, which mounts and reports "ready".
const DAEMON_ENV: &str = "FUSE_OVERLAY_DAEMON";

/// Options fuse-overlayfs and podman pass that need nothing from us.
const HARMLESS: [&str; 10] =
    ["rw", "dev", "suid", "exec", "nodev", "nosuid", "noatime", "default_permissions", "fsync=0", "fsync=1"];

struct Args {
    foreground: bool,
    options: Vec<String>,
    mountpoint: PathBuf,
}

fn usage() -> String {
    "usage: fuse-overlay [-f] [-d] -o lowerdir=DIR[:DIR…][,upperdir=DIR,workdir=DIR][,OPTION…] [SOURCE] MOUNTPOINT"
        .to_string()
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut foreground = false;
    let mut options = Vec::new();
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("fuse-overlay {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-f" | "-d" | "--debug" => foreground = true,
            "-o" => options.push(args.next().ok_or("-o needs a value")?),
            o if o.starts_with("-o") => options.push(o[2..].to_string()),
            o if o.starts_with('-') => return Err(format!("unknown flag {o}")),
            _ => positional.push(PathBuf::from(a)),
        }
    }
    // `PROG MNT`, or `PROG SOURCE MNT` as mount(8) and fstab call it
    // through mount.fuse3 (the source names nothing: the layers are in -o).
    let mountpoint = match <[PathBuf; 1]>::try_from(positional.clone()) {
        Ok([mountpoint]) => mountpoint,
        Err(_) => match <[PathBuf; 2]>::try_from(positional) {
            Ok([_source, mountpoint]) => mountpoint,
            Err(given) if given.is_empty() => return Err("no mount point given".into()),
            Err(given) => return Err(format!("one mount point (and a source before it) only: {} given", given.len())),
        },
    };
    Ok(Some(Args { foreground, options, mountpoint }))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fuse-overlay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let Some(args) = parse_args().map_err(|e| format!("{e}\n{}", usage()))? else {
        println!("{}", usage());
        return Ok(());
    };
    let opts = parse_mount_options(args.options.iter().map(String::as_str)).map_err(|e| e.to_string())?;
    let (config, ignored) = Config::from_options(&opts).map_err(|e| e.to_string())?;
    let daemon_child = std::env::var_os(DAEMON_ENV).is_some();
    if !args.foreground && !daemon_child {
        return start_in_background();
    }
    for o in ignored.iter().filter(|o| !HARMLESS.contains(&o.as_str())) {
        eprintln!("fuse-overlay: ignoring option {o}");
    }
    let signals = stop_signals();
    signals.thread_block().map_err(|e| format!("blocking signals: {e}"))?;
    let mount = Mount::new(&config, &args.mountpoint).map_err(|e| e.to_string())?;
    for note in &mount.notes {
        eprintln!("fuse-overlay: {note}");
    }
    if daemon_child {
        println!("ready");
        let _ = std::io::stdout().flush();
        detach_stdio();
    }
    let mountpoint = args.mountpoint.clone();
    std::thread::spawn(move || {
        if signals.wait().is_ok() {
            let _ = nix::mount::umount2(&mountpoint, nix::mount::MntFlags::MNT_DETACH);
        }
    });
    mount.serve_then_exit()
}

fn stop_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Runs this program again as a session leader in the background and
/// returns once it reports the mount ready (or prints why it failed).
fn start_in_background() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding myself: {e}"))?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DAEMON_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the server: {e}"))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line.trim() == "ready" {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = child.wait();
    let err = err.trim().trim_start_matches("fuse-overlay: ");
    Err(if err.is_empty() { "the server ended before mounting".to_string() } else { err.to_string() })
}

/// The background server keeps no terminal or pipe of its starter open.
fn detach_stdio() {
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsFd;
        let _ = nix::unistd::dup2_stdout(null.as_fd());
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
}
