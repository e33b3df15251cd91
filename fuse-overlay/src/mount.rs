//! Mounting: checking the directories, the FUSE session, the server threads.

use crate::fs::OverlayFs;
use crate::layer::Layer;
use crate::notify::Notifier;
use crate::options::OverlayOptions;
use crate::overlay::Overlay;
use crate::splice::SpliceReplier;
use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{FuseBuf, FuseDevWriter, FuseSession, Reader};
use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The directory fuse-overlay keeps inside the workdir.
const WORK_SUBDIR: &str = "fuse-overlay.work";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Options(#[from] crate::options::Error),
    #[error("{what} {path}: {source}")]
    Dir { what: &'static str, path: PathBuf, source: io::Error },
    #[error("workdir {work} is not on the filesystem of upperdir {upper}: copy-up renames need one filesystem")]
    WorkElsewhere { work: PathBuf, upper: PathBuf },
    #[error("mount on {path}: {message}")]
    Mount { path: PathBuf, message: String },
    #[error("unknown mount option value {0}")]
    BadValue(String),
}

/// Everything a mount needs; `from_options` reads fuse-overlayfs' `-o`.
#[derive(Debug, Clone)]
pub struct Config {
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    /// Server threads.
    pub threads: usize,
    /// How long the kernel caches entries and attributes.
    pub timeout: Duration,
    /// Let every user of the mount's namespace in (needed when the container
    /// runs as ids other than the mounting one).
    pub allow_other: bool,
    /// Let the kernel cache writes and send them in large pieces, as
    /// fuse-overlayfs does by default. Written data reaches the upper layer
    /// when the file is closed or fsynced (through any descriptor), or when
    /// the kernel writes it back; syncfs does not wait for it on FUSE.
    pub writeback: bool,
}

impl Config {
    pub fn new(lowerdirs: Vec<PathBuf>, upperdir: Option<PathBuf>, workdir: Option<PathBuf>) -> Config {
        Config {
            lowerdirs,
            upperdir,
            workdir,
            threads: 4,
            timeout: Duration::from_secs(1000),
            allow_other: true,
            writeback: true,
        }
    }

    /// Reads the options fuse-overlayfs takes; ones that only tune
    /// fuse-overlayfs itself are accepted and returned as ignored.
    pub fn from_options(o: &OverlayOptions) -> Result<(Config, Vec<String>), Error> {
        let mut c = Config::new(o.lowerdirs.clone(), o.upperdir.clone(), o.workdir.clone());
        // As fuse-overlayfs: root (of a user namespace, under podman) lets
        // every id in; anyone else only when asked.
        c.allow_other = rustix::process::geteuid().is_root();
        let mut ignored = Vec::new();
        for opt in &o.other {
            match opt.split_once('=') {
                None if opt == "allow_other" || opt == "allow_root" => c.allow_other = true,
                Some(("timeout", v)) => {
                    let secs: f64 = v.parse().map_err(|_| Error::BadValue(opt.clone()))?;
                    c.timeout = Duration::from_secs_f64(secs.max(0.0));
                }
                Some(("threads", v)) => c.threads = v.parse().map_err(|_| Error::BadValue(opt.clone()))?,
                Some(("writeback", v)) => c.writeback = v.parse::<u8>().map_err(|_| Error::BadValue(opt.clone()))? != 0,
                _ => ignored.push(opt.clone()),
            }
        }
        Ok((c, ignored))
    }
}

/// A mounted overlay, served by its threads until unmounted or dropped.
pub struct Mount {
    session: FuseSession,
    threads: Vec<JoinHandle<()>>,
    /// Things the user should know (an upper without xattrs, say).
    pub notes: Vec<String>,
    /// Set by [`Mount::serve_then_exit`]: the first thread that finds the
    /// filesystem unmounted ends the process.
    exit_when_unmounted: Arc<AtomicBool>,
}

impl Mount {
    pub fn new(config: &Config, mountpoint: &Path) -> Result<Mount, Error> {
        let (overlay, notes) = open_overlay(config)?;
        raise_fd_limit();
        let mount_err = |message: String| Error::Mount { path: mountpoint.to_path_buf(), message };
        let mut session =
            FuseSession::new(mountpoint, "fuse-overlay", "", false).map_err(|e| mount_err(e.to_string()))?;
        session.set_allow_other(config.allow_other);
        session.mount().map_err(|e| mount_err(e.to_string()))?;
        let notifier = Notifier::new(Some(session.clone_fuse_file().map_err(|e| mount_err(e.to_string()))?));
        let fs = OverlayFs::new(overlay, config.timeout, config.writeback, notifier);
        let files = fs.open_files();
        let server = Arc::new(Server::new(fs));
        let mut threads = Vec::new();
        let exit_when_unmounted = Arc::new(AtomicBool::new(false));
        for _ in 0..config.threads.max(1) {
            let device = session.clone_fuse_file().map_err(|e| mount_err(e.to_string()))?;
            let (server, files, size) = (server.clone(), files.clone(), session.bufsize());
            let exit = exit_when_unmounted.clone();
            threads.push(std::thread::spawn(move || {
                serve(&device, &server, SpliceReplier::new(files), size);
                if exit.load(Ordering::Relaxed) {
                    crate::sys::exit_now(0);
                }
            }));
        }
        Ok(Mount { session, threads, notes, exit_when_unmounted })
    }

    /// For a process that only serves this mount (the binary, hutch's
    /// server): serves until unmounted, then ends the process at once, so
    /// that by the time a script's `umount` of a lower layer comes, the
    /// server has let go of it (tearing down thread by thread, as `wait`
    /// does, kept the layers open a moment longer).
    pub fn serve_then_exit(self) -> ! {
        self.exit_when_unmounted.store(true, Ordering::Relaxed);
        self.wait();
        crate::sys::exit_now(0)
    }

    /// Serves until the filesystem is unmounted (by `umount` or the
    /// namespace going away).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    pub fn unmount(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        let path = self.session.mountpoint().to_path_buf();
        // Unmounted, the threads' reads fail with ENODEV; otherwise they
        // would wait forever, so they are left to end with the process.
        self.session.umount().map_err(|e| Error::Mount { path, message: e.to_string() })?;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        Ok(())
    }
}

/// One server thread: reads requests from its own clone of the device (a
/// blocking descriptor: the kernel wakes one reader per request, where the
/// session's shared non-blocking one woke every thread for each) and
/// answers them there, reads spliced, the rest through the server. Ends
/// when the filesystem is unmounted (ENODEV).
fn serve(device: &File, server: &Server<OverlayFs>, mut splicer: SpliceReplier, size: usize) {
    let (mut request, mut reply) = (vec![0u8; size], vec![0u8; size]);
    loop {
        let len = match rustix::io::read(device, &mut request) {
            Ok(len) => len,
            // Interrupted by a signal, or the request was withdrawn.
            Err(rustix::io::Errno::INTR | rustix::io::Errno::NOENT | rustix::io::Errno::AGAIN) => continue,
            Err(_) => return,
        };
        let Ok(reader) = Reader::from_fuse_buffer(FuseBuf::new(&mut request[..len])) else { continue };
        if splicer.try_reply(&reader, device) {
            continue;
        }
        let Ok(writer) = FuseDevWriter::new(device.as_raw_fd(), &mut reply) else { continue };
        // A failed reply (the request was interrupted, say) ends that
        // request only.
        let _ = server.handle_message(reader, writer.into(), None, None);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

pub(crate) fn open_overlay(config: &Config) -> Result<(Overlay, Vec<String>), Error> {
    fn dir_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Dir { what, path: path.to_path_buf(), source }
    }
    let mut layers = Vec::new();
    let mut notes = Vec::new();
    let mut work = None;
    if let (Some(upper), Some(workdir)) = (&config.upperdir, &config.workdir) {
        let upper_layer = Layer::open(upper).map_err(dir_err("upperdir", upper))?;
        let work_layer = Layer::open(workdir).map_err(dir_err("workdir", workdir))?;
        if work_layer.dev != upper_layer.dev {
            return Err(Error::WorkElsewhere { work: workdir.clone(), upper: upper.clone() });
        }
        let ours = workdir.join(WORK_SUBDIR);
        // Leftovers of a copy-up cut short by a crash: never visible, now gone.
        match std::fs::remove_dir_all(&ours) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(dir_err("workdir", &ours)(e)),
            _ => {}
        }
        std::fs::create_dir(&ours).map_err(dir_err("workdir", &ours))?;
        let fd = rustix::fs::open(&ours, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| dir_err("workdir", &ours)(e.into()))?;
        if let Err(e) = xattr::set(&ours, "user.fuse-overlay.probe", b"1") {
            notes.push(format!(
                "upperdir {}: no user xattrs here ({e}): owners the user namespace cannot map cannot be kept",
                upper.display()
            ));
        }
        layers.push(upper_layer);
        work = Some(fd);
    }
    let has_upper = work.is_some();
    for lower in &config.lowerdirs {
        layers.push(Layer::open(lower).map_err(dir_err("lowerdir", lower))?);
    }
    Ok((Overlay::new(layers, has_upper, work), notes))
}

/// One descriptor per open file: lift the soft limit to the hard one.
fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum },
        );
    }
}
