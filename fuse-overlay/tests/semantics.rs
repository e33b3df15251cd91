//! The overlay's semantics, checked through a real FUSE mount with plain
//! system calls, against the rules of Linux overlayfs.
//!
//! The binary enters a user and mount namespace of its own before any test
//! runs (as an unprivileged user: with the user's subordinate ids when
//! /etc/subuid has them, else with the single-id map), so every mount here
//! is rootless, as hutch's are.
// Directory-stream positions, mknod and mmap have no safe wrapper that
// tests them as a program would: the few libc calls here say why each is sound.
#![allow(unsafe_code)]

use fuse_overlay::{Config, Mount};
use libtest_mimic::{Arguments, Failed, Trial};
use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

type R = Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let subids = enter_user_namespace();
    let tests = vec![
        Trial::test("lookup_goes_top_down_and_listings_merge", lookup_goes_top_down_and_listings_merge),
        Trial::test("whiteouts_and_opaque_dirs_hide_lower_entries", whiteouts_and_opaque_dirs_hide_lower_entries),
        Trial::test("copy_up_keeps_metadata_inode_and_lower", copy_up_keeps_metadata_inode_and_lower),
        Trial::test("unlink_and_rmdir_leave_whiteouts", unlink_and_rmdir_leave_whiteouts),
        Trial::test("renames_of_every_kind", renames_of_every_kind),
        Trial::test("hardlinks_stay_one_inode", hardlinks_stay_one_inode),
        Trial::test("listing_is_stable_while_entries_change", listing_is_stable_while_entries_change),
        Trial::test("special_files_xattrs_and_statfs", move || special_files_xattrs_and_statfs(subids)),
        Trial::test("device_nodes_are_kept_as_placeholders", device_nodes_are_kept_as_placeholders),
        Trial::test("data_paths_append_truncate_sparse_mmap", data_paths_append_truncate_sparse_mmap),
        Trial::test("cached_writes_land_where_they_were_written", cached_writes_land_where_they_were_written),
        Trial::test("open_files_outlive_their_names", open_files_outlive_their_names),
        Trial::test(
            "reads_return_the_layer_bytes_at_any_offset_and_size",
            reads_return_the_layer_bytes_at_any_offset_and_size,
        ),
        Trial::test("owners_persist_across_remounts", move || owners_persist_across_remounts(subids)),
        Trial::test("new_entries_get_their_mode_and_a_setgid_parents_group", move || {
            new_entries_get_their_mode_and_a_setgid_parents_group(subids)
        }),
        Trial::test(
            "writes_truncates_and_chowns_drop_setuid_and_capabilities",
            writes_truncates_and_chowns_drop_setuid_and_capabilities,
        ),
        Trial::test("full_disk_during_copy_up_shows_no_half_file", full_disk_during_copy_up_shows_no_half_file),
        Trial::test("bad_directories_are_clear_errors", bad_directories_are_clear_errors),
        Trial::test("the_binary_mounts_like_fuse_overlayfs", the_binary_mounts_like_fuse_overlayfs),
        Trial::test("mount_8_mounts_it_through_mount_fuse3", mount_8_mounts_it_through_mount_fuse3),
        Trial::test("special_files_change_owner_like_regular_ones", move || {
            special_files_change_owner_like_regular_ones(subids)
        }),
        Trial::test("names_of_255_bytes_work_for_every_call", names_of_255_bytes_work_for_every_call),
    ];
    libtest_mimic::run(&args, tests).exit();
}

// ---- the namespace -------------------------------------------------------

/// Enters a new user + mount namespace as its root; returns whether the
/// user's subordinate ids are mapped too.
fn enter_user_namespace() -> bool {
    let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    let ranges = subordinate(uid, "/etc/subuid").zip(subordinate(uid, "/etc/subgid"));
    let helper = ranges.map(|((us, uc), (gs, gc))| {
        let pid = std::process::id();
        let script =
            format!("read _ && newuidmap {pid} 0 {uid} 1 1 {us} {uc} && newgidmap {pid} 0 {gid} 1 1 {gs} {gc}");
        Command::new("sh").args(["-c", &script]).stdin(Stdio::piped()).spawn().expect("spawning the id mapper")
    });
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS)
        .expect("unshare(CLONE_NEWUSER|CLONE_NEWNS): are user namespaces allowed?");
    let mapped = match helper {
        Some(mut h) => {
            h.stdin.take().expect("stdin").write_all(b"go\n").expect("waking the id mapper");
            assert!(h.wait().expect("id mapper").success(), "newuidmap/newgidmap failed");
            true
        }
        None => {
            fs::write("/proc/self/setgroups", "deny").expect("setgroups");
            fs::write("/proc/self/uid_map", format!("0 {uid} 1")).expect("uid_map");
            fs::write("/proc/self/gid_map", format!("0 {gid} 1")).expect("gid_map");
            false
        }
    };
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("making mounts private");
    mapped
}

fn subordinate(uid: u32, file: &str) -> Option<(u32, u32)> {
    let name = nix::unistd::User::from_uid(uid.into()).ok()??.name;
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        let who = f.next()?;
        if who != name && who != uid.to_string() {
            return None;
        }
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

// ---- fixtures ------------------------------------------------------------

/// Lower layers (topmost first), an upper and work dir, and a mount point,
/// under a fresh directory.
struct Overlay {
    base: PathBuf,
    lowers: Vec<PathBuf>,
    mount: Option<Mount>,
}

impl Overlay {
    fn new(name: &str, layers: usize) -> Overlay {
        let root = std::env::var_os("HUTCH_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let base = root.join(format!("fuse-overlay-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let lowers: Vec<PathBuf> = (1..=layers).map(|i| base.join(format!("l{i}"))).collect();
        for d in lowers.iter().chain([&base.join("upper"), &base.join("work"), &base.join("mnt")]) {
            fs::create_dir_all(d).unwrap();
        }
        Overlay { base, lowers, mount: None }
    }

    fn lower(&self, i: usize) -> &Path {
        &self.lowers[i]
    }
    fn upper(&self) -> PathBuf {
        self.base.join("upper")
    }
    fn mnt(&self) -> PathBuf {
        self.base.join("mnt")
    }
    fn m(&self, rel: &str) -> PathBuf {
        self.mnt().join(rel)
    }

    fn config(&self) -> Config {
        Config::new(self.lowers.clone(), Some(self.upper()), Some(self.base.join("work")))
    }

    fn mount(mut self) -> Self {
        self.remount();
        self
    }

    fn remount(&mut self) {
        if let Some(m) = self.mount.take() {
            m.unmount().unwrap();
        }
        self.mount = Some(Mount::new(&self.config(), &self.mnt()).unwrap());
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        drop(self.mount.take());
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn write(path: impl AsRef<Path>, content: &str) {
    let path = path.as_ref();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("reading {}: {e}", path.as_ref().display()))
}

fn names(dir: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("the call should have failed").raw_os_error().unwrap_or(0)
}

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

// ---- the tests -----------------------------------------------------------

fn lookup_goes_top_down_and_listings_merge() -> R {
    let o = Overlay::new("lookup", 2);
    write(o.lower(0).join("a"), "top");
    write(o.lower(1).join("a"), "bottom");
    write(o.lower(1).join("b"), "only below");
    write(o.lower(0).join("d/x"), "x");
    write(o.lower(1).join("d/y"), "y");
    // A file above hides a directory below, whole.
    write(o.lower(0).join("f"), "file");
    write(o.lower(1).join("f/hidden"), "no");
    let o = o.mount();
    check!(read(o.m("a")) == "top", "the topmost layer wins");
    check!(read(o.m("b")) == "only below", "entries of lower layers show");
    check!(names(o.m("d")) == ["x", "y"], "directories merge: {:?}", names(o.m("d")));
    check!(names(o.mnt()) == ["a", "b", "d", "f"], "root lists each name once: {:?}", names(o.mnt()));
    check!(o.m("f").is_file() && !o.m("f/hidden").exists(), "a file hides the directory below");
    let dev = fs::metadata(o.mnt())?.dev();
    for p in ["a", "b", "d", "d/x", "d/y"] {
        check!(fs::metadata(o.m(p))?.dev() == dev, "one st_dev for the whole mount ({p})");
    }
    let ino_before = fs::metadata(o.m("d/y"))?.ino();
    let listed = fs::read_dir(o.m("d"))?.map(|e| e.unwrap()).find(|e| e.file_name() == "y").unwrap();
    check!(std::os::unix::fs::DirEntryExt::ino(&listed) == ino_before, "readdir's d_ino is stat's st_ino");
    // Missing names are cached by the kernel as negative entries: each kind
    // of creation must still make them appear.
    for name in ["new-file", "new-dir", "new-link", "new-symlink", "renamed"] {
        check!(!o.m(name).exists(), "{name} is not there yet");
    }
    write(o.m("new-file"), "made");
    fs::create_dir(o.m("new-dir"))?;
    fs::hard_link(o.m("new-file"), o.m("new-link"))?;
    std::os::unix::fs::symlink("new-file", o.m("new-symlink"))?;
    fs::rename(o.m("b"), o.m("renamed"))?;
    check!(read(o.m("new-link")) == "made" && read(o.m("new-symlink")) == "made", "new names resolve");
    check!(o.m("new-dir").is_dir() && read(o.m("renamed")) == "only below", "new dir and rename target");
    check!(!o.m("b").exists(), "the old name is gone");
    Ok(())
}

fn whiteouts_and_opaque_dirs_hide_lower_entries() -> R {
    let o = Overlay::new("whiteouts", 2);
    write(o.lower(0).join(".wh.gone"), "");
    write(o.lower(1).join("gone"), "hidden");
    write(o.lower(0).join("op/.wh..wh..opq"), "");
    write(o.lower(0).join("op/new"), "n");
    write(o.lower(1).join("op/old"), "o");
    write(o.lower(1).join("kept"), "k");
    let o = o.mount();
    check!(!o.m("gone").exists(), "a whiteout hides the lower file");
    check!(names(o.m("op")) == ["new"], "an opaque dir hides the lower one: {:?}", names(o.m("op")));
    check!(names(o.mnt()) == ["kept", "op"], "markers never show: {:?}", names(o.mnt()));
    check!(errno_of(fs::write(o.m(".wh.kept"), "")) == libc::EPERM, "the format's names cannot be made");
    check!(read(o.m("kept")) == "k", "and nothing was hidden by trying");
    Ok(())
}

fn copy_up_keeps_metadata_inode_and_lower() -> R {
    let o = Overlay::new("copyup", 1);
    let f = o.lower(0).join("dir/file");
    write(&f, "lower content");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640))?;
    xattr::set(&f, "user.note", b"kept")?;
    let old = 1_000_000_000;
    set_mtime(&f, old);
    let o = o.mount();
    let before = fs::metadata(o.m("dir/file"))?;
    fs::OpenOptions::new().append(true).open(o.m("dir/file"))?.write_all(b" + upper")?;
    let after = fs::metadata(o.m("dir/file"))?;
    check!(after.ino() == before.ino(), "copy-up keeps the inode number ({} → {})", before.ino(), after.ino());
    check!(after.mode() & 0o7777 == 0o640, "mode kept: {:o}", after.mode());
    check!(xattr::get(o.m("dir/file"), "user.note")?.as_deref() == Some(&b"kept"[..]), "xattrs kept");
    check!(read(o.m("dir/file")) == "lower content + upper", "data copied then changed");
    check!(read(&f) == "lower content", "the lower layer is untouched");
    check!(read(o.upper().join("dir/file")) == "lower content + upper", "the change lives in the upper layer");
    // chmod alone copies up too, and keeps mtime.
    write(o.lower(0).join("other"), "o");
    set_mtime(&o.lower(0).join("other"), old);
    let o2 = o; // keep the mount
    fs::set_permissions(o2.m("other"), fs::Permissions::from_mode(0o600))?;
    check!(fs::metadata(o2.upper().join("other"))?.mtime() == old, "metadata copy-up keeps mtime");
    check!(fs::metadata(o2.lower(0).join("other"))?.mode() & 0o777 != 0o600, "lower mode untouched");
    Ok(())
}

fn unlink_and_rmdir_leave_whiteouts() -> R {
    let o = Overlay::new("unlink", 1);
    write(o.lower(0).join("f"), "lower");
    write(o.lower(0).join("tree/a/b/c"), "deep");
    write(o.lower(0).join("tree/top"), "t");
    let o = o.mount();
    fs::remove_file(o.m("f"))?;
    check!(!o.m("f").exists(), "unlinked file is gone");
    check!(o.lower(0).join("f").exists(), "from the mount only");
    check!(o.upper().join(".wh.f").exists(), "a whiteout records it");
    fs::write(o.m("f"), "again")?;
    check!(read(o.m("f")) == "again", "a new file takes the name back");
    check!(!o.upper().join(".wh.f").exists(), "and its whiteout goes");
    check!(errno_of(fs::remove_dir(o.m("tree"))) == libc::ENOTEMPTY, "rmdir of a non-empty merged dir");
    fs::remove_dir_all(o.m("tree"))?;
    check!(!o.m("tree").exists(), "rm -r of a lower tree");
    fs::create_dir(o.m("tree"))?;
    check!(names(o.m("tree")).is_empty(), "a new dir over a removed one is empty: {:?}", names(o.m("tree")));
    fs::write(o.m("tree/n"), "n")?;
    let mut o = o;
    o.remount();
    check!(names(o.m("tree")) == ["n"], "and stays so after a remount: {:?}", names(o.m("tree")));
    check!(!o.m("f").exists() || read(o.m("f")) == "again", "the recreated file persists");
    Ok(())
}

fn renames_of_every_kind() -> R {
    let o = Overlay::new("rename", 2);
    write(o.lower(1).join("file"), "F");
    write(o.lower(1).join("dir/sub/deep"), "D");
    write(o.lower(0).join("dir/top"), "T");
    write(o.lower(1).join("target"), "old target");
    write(o.lower(1).join("x"), "X");
    write(o.lower(1).join("y"), "Y");
    write(o.lower(1).join("full/inside"), "i");
    let o = o.mount();
    let ino = fs::metadata(o.m("file"))?.ino();
    fs::rename(o.m("file"), o.m("moved"))?;
    check!(!o.m("file").exists() && read(o.m("moved")) == "F", "a lower file moves");
    check!(fs::metadata(o.m("moved"))?.ino() == ino, "keeping its inode number");
    fs::rename(o.m("dir"), o.m("newdir"))?;
    check!(!o.m("dir").exists(), "a merged lower dir moves away");
    check!(names(o.m("newdir")) == ["sub", "top"], "with all its layers' content: {:?}", names(o.m("newdir")));
    check!(read(o.m("newdir/sub/deep")) == "D", "deep content too");
    fs::rename(o.m("moved"), o.m("target"))?;
    check!(read(o.m("target")) == "F", "rename over an existing lower file replaces it");
    fs::create_dir(o.m("dir"))?;
    check!(names(o.m("dir")).is_empty(), "the old name is free and empty: {:?}", names(o.m("dir")));
    let noreplace = rustix::fs::renameat_with(
        rustix::fs::CWD,
        o.m("x").as_path(),
        rustix::fs::CWD,
        o.m("y").as_path(),
        rustix::fs::RenameFlags::NOREPLACE,
    );
    check!(noreplace == Err(rustix::io::Errno::EXIST), "RENAME_NOREPLACE refuses: {noreplace:?}");
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        o.m("x").as_path(),
        rustix::fs::CWD,
        o.m("y").as_path(),
        rustix::fs::RenameFlags::EXCHANGE,
    )?;
    check!(read(o.m("x")) == "Y" && read(o.m("y")) == "X", "RENAME_EXCHANGE swaps");
    check!(errno_of(fs::rename(o.m("newdir"), o.m("full"))) == libc::ENOTEMPTY, "dir over non-empty dir");
    check!(errno_of(fs::rename(o.m("x"), o.m("full"))) == libc::EISDIR, "file over dir");
    let mut o = o;
    o.remount();
    check!(names(o.mnt()) == ["dir", "full", "newdir", "target", "x", "y"], "all of it persists: {:?}", names(o.mnt()));
    check!(read(o.m("newdir/top")) == "T" && names(o.m("dir")).is_empty(), "contents too");
    Ok(())
}

fn hardlinks_stay_one_inode() -> R {
    let o = Overlay::new("hardlinks", 1);
    write(o.lower(0).join("a"), "shared");
    fs::create_dir(o.lower(0).join("sub"))?;
    fs::hard_link(o.lower(0).join("a"), o.lower(0).join("sub/b"))?;
    let o = o.mount();
    let (a, b) = (fs::metadata(o.m("a"))?, fs::metadata(o.m("sub/b"))?);
    check!(a.ino() == b.ino() && a.nlink() == 2, "lower hardlinks are one inode ({} {})", a.ino(), b.ino());
    fs::OpenOptions::new().append(true).open(o.m("a"))?.write_all(b"+more")?;
    check!(read(o.m("sub/b")) == "shared+more", "a write through one name shows through the other");
    check!(fs::metadata(o.m("sub/b"))?.ino() == a.ino(), "still one inode after copy-up");
    fs::hard_link(o.m("a"), o.m("c"))?;
    check!(fs::metadata(o.m("c"))?.ino() == a.ino(), "link(2) joins the inode");
    check!(fs::metadata(o.m("c"))?.nlink() >= 2, "and counts");
    let mut o = o;
    o.remount();
    check!(read(o.m("sub/b")) == "shared+more" && read(o.m("c")) == "shared+more", "the group persists");
    check!(fs::metadata(o.m("a"))?.ino() == fs::metadata(o.m("c"))?.ino(), "as one inode");
    Ok(())
}

fn listing_is_stable_while_entries_change() -> R {
    let o = Overlay::new("readdir", 2);
    for i in 0..150 {
        write(o.lower(i % 2).join(format!("d/f{i:03}")), "x");
    }
    let o = o.mount();
    let dir = CString::new(o.m("d").into_os_string().into_encoded_bytes())?;
    // SAFETY: a valid NUL-terminated path; the stream is closed below.
    let stream = unsafe { libc::opendir(dir.as_ptr()) };
    check!(!stream.is_null(), "opendir");
    let mut seen = Vec::new();
    let mut marks = Vec::new();
    loop {
        // SAFETY: `stream` is an open directory stream.
        let pos = unsafe { libc::telldir(stream) };
        // SAFETY: as above; the entry is read before the next call.
        let e = unsafe { libc::readdir(stream) };
        if e.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let name = unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) }.to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        marks.push((pos, name.clone()));
        seen.push(name.clone());
        if seen.len() == 40 {
            // Everything changes under the reader.
            for i in 0..150 {
                let _ = fs::remove_file(o.m(&format!("d/f{i:03}")));
            }
            fs::write(o.m("d/late"), "")?;
        }
    }
    let (pos, name) = marks[10].clone();
    // SAFETY: `pos` came from telldir on this stream.
    unsafe { libc::seekdir(stream, pos) };
    // SAFETY: as above.
    let e = unsafe { libc::readdir(stream) };
    // SAFETY: a valid entry or null.
    let again = (!e.is_null())
        .then(|| unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) }.to_string_lossy().into_owned());
    // SAFETY: closing the stream opened above.
    unsafe { libc::closedir(stream) };
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    check!(unique.len() == seen.len(), "no entry listed twice");
    check!(seen.len() >= 40, "the listing went on: {} entries", seen.len());
    check!(again.as_deref() == Some(name.as_str()), "seekdir to a telldir mark gives its entry ({again:?} vs {name})");
    check!(names(o.m("d")) == ["late"], "a fresh listing sees the changes: {:?}", names(o.m("d")));
    Ok(())
}

fn special_files_xattrs_and_statfs(subids: bool) -> R {
    let o = Overlay::new("special", 1);
    write(o.lower(0).join("plain"), "p");
    xattr::set(o.lower(0).join("plain"), "user.overlay.opaque", b"y")?;
    let o = o.mount();
    std::os::unix::fs::symlink("plain", o.m("link"))?;
    check!(fs::read_link(o.m("link"))?.to_str() == Some("plain") && read(o.m("link")) == "p", "symlinks");
    nix::unistd::mkfifo(&o.m("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644))?;
    check!(fs::symlink_metadata(o.m("fifo"))?.mode() & libc::S_IFMT == libc::S_IFIFO, "fifos");
    let sock = std::os::unix::net::UnixListener::bind(o.m("sock"))?;
    check!(fs::symlink_metadata(o.m("sock"))?.mode() & libc::S_IFMT == libc::S_IFSOCK, "sockets");
    drop(sock);
    xattr::set(o.m("plain"), "user.mine", b"v")?;
    check!(xattr::get(o.m("plain"), "user.mine")?.as_deref() == Some(&b"v"[..]), "setxattr/getxattr");
    let listed: Vec<_> = xattr::list(o.m("plain"))?.collect();
    check!(listed == [std::ffi::OsString::from("user.mine")], "listxattr hides the overlay's own: {listed:?}");
    xattr::remove(o.m("plain"), "user.mine")?;
    check!(xattr::get(o.m("plain"), "user.mine")?.is_none(), "removexattr");
    // Setting the owner xattr gives an owner (what unpacking does for an
    // id the namespace cannot map); it is never shown as an xattr.
    check!(errno_of(xattr::set(o.m("plain"), "user.hutch.owner", b"one")) == libc::EINVAL, "an owner is UID:GID");
    xattr::set(o.m("plain"), "user.hutch.owner", b"1:1")?;
    // With one id mapped, an owner outside it shows as root and is kept.
    let shown = if subids { 1 } else { 0 };
    check!(fs::metadata(o.m("plain"))?.uid() == shown, "the owner xattr sets the owner");
    if !subids {
        let kept = xattr::get(o.upper().join("plain"), "user.hutch.owner")?;
        check!(kept.as_deref() == Some(&b"1:1"[..]), "kept in the upper layer: {kept:?}");
    }
    check!(xattr::get(o.m("plain"), "user.hutch.owner")?.is_none(), "and stays the overlay's own");
    check!(errno_of(xattr::set(o.m("plain"), "user.overlay.opaque", b"y")) == libc::EPERM, "the kernel's are refused");
    let st = nix::sys::statvfs::statvfs(&o.mnt())?;
    check!(st.blocks() > 0 && st.name_max() >= 255, "statfs answers");
    Ok(())
}

/// The image store keeps device nodes as empty files with the device in
/// `user.hutch.device`; the overlay shows them as devices.
fn device_nodes_are_kept_as_placeholders() -> R {
    let o = Overlay::new("devices", 1);
    for (name, value, content) in [("null", "c 1:3", ""), ("sda", "b 8:0", ""), ("fake", "c 1:3", "data")] {
        write(o.lower(0).join(name), content);
        xattr::set(o.lower(0).join(name), "user.hutch.device", value.as_bytes())?;
    }
    let o = o.mount();
    let null = fs::symlink_metadata(o.m("null"))?;
    check!(null.file_type().is_char_device() && null.rdev() == libc::makedev(1, 3), "a char device, 1:3");
    let sda = fs::symlink_metadata(o.m("sda"))?;
    check!(sda.file_type().is_block_device() && sda.rdev() == libc::makedev(8, 0), "a block device, 8:0");
    check!(fs::symlink_metadata(o.m("fake"))?.is_file(), "only an empty file is a placeholder");
    let listed = fs::read_dir(o.mnt())?.map(|e| e.unwrap()).find(|e| e.file_name() == "null").unwrap();
    check!(listed.file_type()?.is_char_device(), "readdir's type agrees with stat");
    check!(errno_of(fs::File::open(o.m("null"))) == libc::EACCES, "opening it is refused (nodev)");
    check!(xattr::list(o.m("null"))?.next().is_none(), "the device xattr is not shown");
    check!(errno_of(xattr::set(o.m("fake"), "user.hutch.device", b"c 1:5")) == libc::EPERM, "nor set");
    fs::set_permissions(o.m("null"), fs::Permissions::from_mode(0o600))?;
    let null = fs::symlink_metadata(o.m("null"))?;
    check!(null.file_type().is_char_device() && null.mode() & 0o7777 == 0o600, "chmod copies the placeholder up");
    check!(xattr::get(o.upper().join("null"), "user.hutch.device")?.as_deref() == Some(&b"c 1:3"[..]), "kept above");
    // Finding: in a user namespace the kernel refuses a device mknod itself.
    let path = CString::new(o.m("new").as_os_str().as_encoded_bytes())?;
    // SAFETY: a NUL-terminated path; mknod reads nothing else.
    let r = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 5)) };
    check!(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM), "mknod: EPERM");
    fs::remove_file(o.m("null"))?;
    check!(!o.m("null").exists() && o.upper().join(".wh.null").exists(), "removed like any file");
    Ok(())
}

/// The kernel caches writes (the writeback cache) and sends them later,
/// through any open handle of the file, in whole pages.
fn cached_writes_land_where_they_were_written() -> R {
    let o = Overlay::new("cached", 1);
    let lower: String = (0..8192u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    write(o.lower(0).join("pages"), &lower);
    write(o.lower(0).join("digits"), "0123456789");
    let o = o.mount();
    // Into the middle of a page through a write-only descriptor: the kernel
    // reads the rest of the page through that descriptor.
    fs::OpenOptions::new().write(true).open(o.m("pages"))?.write_all_at(b"XYZ", 4100)?;
    let mut expected = lower.into_bytes();
    expected[4100..4103].copy_from_slice(b"XYZ");
    check!(fs::read(o.upper().join("pages"))? == expected, "a partial page written through a write-only descriptor");
    // Written back through the newest handle, here an O_APPEND one: each
    // byte still lands at the offset it was written at.
    let plain = fs::OpenOptions::new().write(true).open(o.m("digits"))?;
    let mut appending = fs::OpenOptions::new().append(true).open(o.m("digits"))?;
    plain.write_all_at(b"ZZ", 0)?;
    appending.write_all(b"!")?;
    drop((plain, appending));
    let digits = read(o.upper().join("digits"));
    check!(digits == "ZZ23456789!", "writes at an offset and appends, written back together: {digits:?}");
    // Data of a file still open for writing reaches the layer when another
    // descriptor, a read-only one, is fsynced (`commit` of a running
    // container relies on it).
    let mut open = fs::File::create(o.m("open"))?;
    open.write_all(&[b'c'; 100_000])?;
    fs::File::open(o.m("open"))?.sync_all()?;
    check!(fs::read(o.upper().join("open"))? == [b'c'; 100_000], "fsync writes cached data into the upper layer");
    drop(open);
    Ok(())
}

/// An open file stays readable and writable after its name goes (unlink,
/// or a rename over it), in whatever layer it was: the kernel opens files
/// without telling the server, which keeps a descriptor for such files.
fn open_files_outlive_their_names() -> R {
    let o = Overlay::new("orphans", 1);
    write(o.lower(0).join("lower"), "from below");
    write(o.lower(0).join("target"), "old target");
    let o = o.mount();
    fs::write(o.m("upper"), "from above")?;
    fs::write(o.m("source"), "new target")?;
    // Opened, never read: the first read after the name is gone asks the server.
    let lower = fs::File::open(o.m("lower"))?;
    let upper = fs::OpenOptions::new().read(true).write(true).open(o.m("upper"))?;
    let replaced = fs::File::open(o.m("target"))?;
    fs::remove_file(o.m("lower"))?;
    fs::remove_file(o.m("upper"))?;
    fs::rename(o.m("source"), o.m("target"))?;
    let read_all = |mut f: &fs::File| -> std::io::Result<String> {
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        Ok(text)
    };
    check!(read_all(&lower)? == "from below", "an unlinked lower file is still read");
    check!(read_all(&replaced)? == "old target", "a file renamed over is still read");
    upper.write_all_at(b"FROM", 0)?;
    upper.sync_all()?;
    let mut text = [0u8; 10];
    upper.read_exact_at(&mut text, 0)?;
    check!(&text == b"FROM above", "an unlinked upper file is still written and synced");
    check!(read(o.m("target")) == "new target" && !o.m("lower").exists(), "while the names show the changes");
    Ok(())
}

fn data_paths_append_truncate_sparse_mmap() -> R {
    let o = Overlay::new("data", 1);
    // A sparse lower file: 64 MiB with two small extents.
    let sparse = fs::File::create(o.lower(0).join("sparse"))?;
    sparse.write_all_at(b"head", 0)?;
    sparse.write_all_at(b"tail", 64 << 20)?;
    drop(sparse);
    write(o.lower(0).join("trunc"), "will be cut");
    let o = o.mount();
    fs::OpenOptions::new().write(true).open(o.m("sparse"))?.write_all_at(b"HEAD", 0)?;
    let up = fs::metadata(o.upper().join("sparse"))?;
    check!(up.len() == (64 << 20) + 4, "size kept: {}", up.len());
    check!(up.blocks() * 512 < 8 << 20, "holes kept by copy-up: {} blocks", up.blocks());
    let mut buf = [0u8; 4];
    fs::File::open(o.m("sparse"))?.read_exact_at(&mut buf, 64 << 20)?;
    check!(&buf == b"tail", "data after the hole");
    fs::OpenOptions::new().write(true).truncate(true).open(o.m("trunc"))?.write_all(b"new")?;
    check!(read(o.m("trunc")) == "new", "O_TRUNC of a lower file");
    let mut f = fs::OpenOptions::new().create(true).append(true).open(o.m("log"))?;
    f.write_all(b"one\n")?;
    fs::OpenOptions::new().append(true).open(o.m("log"))?.write_all(b"two\n")?;
    f.write_all(b"three\n")?;
    check!(read(o.m("log")) == "one\ntwo\nthree\n", "O_APPEND from two descriptors: {:?}", read(o.m("log")));
    // 32 MiB through the mount and back.
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    fs::write(o.m("big"), &big)?;
    check!(fs::read(o.m("big"))? == big, "a large file reads back");
    // A shared mapping writes through.
    let file = fs::OpenOptions::new().read(true).write(true).open(o.m("big"))?;
    // SAFETY: maps 4 KiB of an open file shared; unmapped below, not aliased.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        );
        check!(p != libc::MAP_FAILED, "mmap MAP_SHARED: {}", std::io::Error::last_os_error());
        std::ptr::copy_nonoverlapping(b"MMAP".as_ptr(), p as *mut u8, 4);
        libc::msync(p, 4096, libc::MS_SYNC);
        libc::munmap(p, 4096);
    }
    let mut head = [0u8; 4];
    fs::File::open(o.upper().join("big"))?.read_exact(&mut head)?;
    check!(&head == b"MMAP", "mmap writes reach the upper layer");
    let mut f = fs::File::open(o.m("sparse"))?;
    let data = rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(1 << 20))?;
    check!(data >= 60 << 20, "SEEK_DATA skips the hole: {data}");
    f.seek(SeekFrom::Start(0))?;
    Ok(())
}

/// Reads are spliced from the layer when they fit the splice pipes and go
/// through the server otherwise (O_DIRECT reads of 1 MiB); both must return
/// the layer's bytes, short at the end of the file.
fn reads_return_the_layer_bytes_at_any_offset_and_size() -> R {
    let o = Overlay::new("reads", 1);
    let data: Vec<u8> = (0..(3u32 << 20) + 1234).map(|i| (i.wrapping_mul(2654435761) >> 13).to_le_bytes()[0]).collect();
    fs::write(o.lower(0).join("data"), &data)?;
    fs::write(o.lower(0).join("tiny"), "ten bytes!")?;
    fs::write(o.lower(0).join("empty"), "")?;
    let o = o.mount();
    check!(fs::read(o.m("tiny"))? == b"ten bytes!", "a file shorter than a page");
    check!(fs::read(o.m("empty"))?.is_empty(), "an empty file");
    check!(fs::read(o.m("data"))? == data, "a whole read");
    let f = fs::File::open(o.m("data"))?;
    for (offset, len) in [(1, 1000), (4095, 4098), (131_071, 262_145), ((3 << 20) + 1000, 4096), (5 << 20, 10)] {
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, offset as u64)?;
        let want = &data[data.len().min(offset)..data.len().min(offset + len)];
        check!(&buf[..n] == want, "{len} bytes at {offset}: {n} read, {} expected", want.len());
    }
    // O_DIRECT: the kernel asks for the caller's size (1 MiB), no page cache.
    let direct = fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(o.m("data"))?;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = direct.read_at(&mut buf, got.len() as u64)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    check!(got == data, "O_DIRECT reads of 1 MiB: {} bytes, {} expected", got.len(), data.len());
    Ok(())
}

fn new_entries_get_their_mode_and_a_setgid_parents_group(subids: bool) -> R {
    let o = Overlay::new("modes", 1);
    write(o.lower(0).join("sg/old"), "o");
    write(o.lower(0).join("gone"), "g");
    // The image's group of the setgid directory: a real one with
    // subordinate ids, one kept in the owner xattr without.
    match subids {
        true => std::os::unix::fs::chown(o.lower(0).join("sg"), None, Some(1000))?,
        false => xattr::set(o.lower(0).join("sg"), "user.hutch.owner", b"0:7")?,
    }
    fs::set_permissions(o.lower(0).join("sg"), fs::Permissions::from_mode(0o2775))?;
    let o = o.mount();
    fs::remove_file(o.m("gone"))?;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o640).open(o.m("file"))?;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o604).open(o.m("gone"))?;
    fs::DirBuilder::new().mode(0o750).create(o.m("dir"))?;
    nix::unistd::mkfifo(&o.m("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o604))?;
    std::os::unix::fs::symlink("file", o.m("link"))?;
    // "gone" is made over its whiteout, the others where they belong.
    for (name, mode) in [("file", 0o640), ("gone", 0o604), ("dir", 0o750), ("fifo", 0o604)] {
        let (shown, kept) = (fs::metadata(o.m(name))?.mode(), fs::metadata(o.upper().join(name))?.mode());
        check!(shown & 0o7777 == mode && kept & 0o7777 == mode, "{name}: mode {mode:o} asked, {shown:o} shown");
    }
    check!(fs::read_link(o.m("link"))?.to_str() == Some("file"), "a new symlink");
    fs::write(o.m("sg/new"), "n")?;
    fs::create_dir(o.m("sg/sub"))?;
    let group = if subids { 1000 } else { 0 };
    check!(fs::metadata(o.m("sg/new"))?.gid() == group, "a setgid directory's group goes to new files");
    check!(fs::metadata(o.m("sg/sub"))?.mode() & libc::S_ISGID != 0, "and its setgid bit to new directories");
    if !subids {
        let kept = xattr::get(o.upper().join("sg/new"), "user.hutch.owner")?;
        check!(kept.as_deref() == Some(&b"0:7"[..]), "the unmappable group is kept in the owner xattr");
    }
    Ok(())
}

/// As on a local filesystem: a write, truncate or truncating open by a
/// process without CAP_FSETID drops setuid, setgid where group execute is
/// set, and file capabilities; so does any chown, root's too. The mount
/// shows it at once, though the kernel had the old mode cached (see
/// `OverlayFs::init`).
fn writes_truncates_and_chowns_drop_setuid_and_capabilities() -> R {
    let o = Overlay::new("privileges", 1);
    let files = ["written", "capable", "locking", "truncated", "opened", "chowned"];
    for name in files {
        write(o.lower(0).join(name), "data");
        let mode = match name {
            "capable" => 0o755,
            "locking" => 0o2644,
            _ => 0o6755,
        };
        fs::set_permissions(o.lower(0).join(name), fs::Permissions::from_mode(mode))?;
    }
    fs::create_dir(o.lower(0).join("dir"))?;
    fs::set_permissions(o.lower(0).join("dir"), fs::Permissions::from_mode(0o2775))?;
    // cap_net_raw, permitted and effective (VFS_CAP_REVISION_2).
    let caps = [0x01, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    xattr::set(o.lower(0).join("capable"), "security.capability", &caps)?;
    let o = o.mount();
    check!(xattr::get(o.m("capable"), "security.capability")?.is_some(), "the lower file's capabilities show");
    let without_fsetid = |script: &str| -> R {
        let status = Command::new("setpriv")
            .args(["--inh-caps=-fsetid", "--bounding-set=-fsetid", "sh", "-ec", script])
            .current_dir(o.mnt())
            .status()?;
        check!(status.success(), "{script}: {status}");
        Ok(())
    };
    let change = |name: &str| -> R {
        match name {
            "written" | "capable" | "locking" => without_fsetid(&format!("printf x >> {name}")),
            "truncated" => without_fsetid("truncate -s 2 truncated"),
            "opened" => without_fsetid(": > opened"),
            _ => Ok(std::os::unix::fs::chown(o.m(name), Some(0), Some(0))?),
        }
    };
    for (name, expected) in [
        ("written", 0o755),
        ("capable", 0o755),
        ("locking", 0o2644),
        ("truncated", 0o755),
        ("opened", 0o755),
        ("chowned", 0o755),
        ("dir", 0o2775),
    ] {
        // Asked for the mode alone (statx with STATX_MODE, as `stat -c %a`
        // does), the kernel answers from its cache while it holds the mode
        // valid: the file's size and times it knows are stale after a write.
        let mode_alone = |name: &str| -> Result<u32, Failed> {
            let out = Command::new("stat").args(["-c", "%a"]).arg(o.m(name)).output()?;
            Ok(u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8)?)
        };
        mode_alone(name)?;
        change(name)?;
        let shown = mode_alone(name)?;
        let kept = fs::metadata(o.upper().join(name))?.mode() & 0o7777;
        check!(shown == expected && kept == expected, "{name}: {shown:o} shown, {kept:o} kept, {expected:o} expected");
    }
    check!(xattr::get(o.m("capable"), "security.capability")?.is_none(), "a write drops the file's capabilities");
    check!(xattr::get(o.upper().join("capable"), "security.capability")?.is_none(), "in the upper layer too");
    check!(read(o.m("written")) == "datax", "and the write lands");
    Ok(())
}

fn owners_persist_across_remounts(subids: bool) -> R {
    let o = Overlay::new("owners", 1);
    write(o.lower(0).join("img/file"), "f");
    // A layer unpacked without subordinate ids keeps the image's owner here.
    write(o.lower(0).join("img/kept"), "k");
    xattr::set(o.lower(0).join("img/kept"), "user.hutch.owner", b"5:6")?;
    let mut o = o.mount();
    let kept = fs::metadata(o.m("img/kept"))?;
    // An id the namespace cannot map is shown as its root (the kernel would
    // show the overflow id and refuse every change).
    let shown = if subids { (5, 6) } else { (0, 0) };
    check!((kept.uid(), kept.gid()) == shown, "the owner xattr is presented: {}:{}", kept.uid(), kept.gid());
    fs::set_permissions(o.m("img/kept"), fs::Permissions::from_mode(0o600))?;
    check!(
        xattr::get(o.upper().join("img/kept"), "user.hutch.owner")?.as_deref() == Some(&b"5:6"[..]),
        "copy-up keeps it"
    );
    check!(fs::metadata(o.m("img/kept"))?.uid() == shown.0, "and the overlay still presents it");
    let chown = std::os::unix::fs::chown(o.m("img/file"), Some(1000), Some(1000));
    if subids {
        chown?;
        fs::create_dir(o.m("mine"))?;
        std::os::unix::fs::chown(o.m("mine"), Some(33), Some(33))?;
        o.remount();
        let st = fs::metadata(o.m("img/file"))?;
        check!((st.uid(), st.gid()) == (1000, 1000), "chown persists: {}:{}", st.uid(), st.gid());
        check!(fs::metadata(o.m("mine"))?.uid() == 33, "directories too");
        check!(fs::metadata(o.upper().join("img/file"))?.uid() == 1000, "as the real owner of the upper file");
    } else {
        // Without subordinate ids the kernel refuses unmapped ids before
        // any filesystem sees the call.
        check!(errno_of(chown) == libc::EINVAL, "chown to an unmapped id is EINVAL");
    }
    std::os::unix::fs::chown(o.m("img/kept"), Some(0), Some(0))?;
    check!(fs::metadata(o.m("img/kept"))?.uid() == 0, "chown to a mapped id shows");
    check!(xattr::get(o.upper().join("img/kept"), "user.hutch.owner")?.is_none(), "and drops the xattr");
    o.remount();
    check!(fs::metadata(o.m("img/kept"))?.uid() == 0, "for good");
    Ok(())
}

fn full_disk_during_copy_up_shows_no_half_file() -> R {
    let o = Overlay::new("fulldisk", 1);
    let big: Vec<u8> = vec![7u8; 4 << 20];
    fs::write(o.lower(0).join("big"), &big)?;
    // The upper (and work) dir on a 1 MiB tmpfs: a user namespace may mount one.
    let small = o.base.join("small");
    fs::create_dir(&small)?;
    nix::mount::mount(Some("tmpfs"), &small, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=1m"))?;
    fs::create_dir(small.join("upper"))?;
    fs::create_dir(small.join("work"))?;
    let config = Config::new(o.lowers.clone(), Some(small.join("upper")), Some(small.join("work")));
    let m = Mount::new(&config, &o.mnt())?;
    let e = fs::OpenOptions::new().append(true).open(o.m("big")).map(drop);
    check!(e.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::ENOSPC), "copy-up reports ENOSPC: {e:?}");
    check!(fs::read(o.m("big"))? == big, "the file still reads whole");
    check!(names(small.join("upper")).is_empty(), "no half copy in the upper layer: {:?}", names(small.join("upper")));
    check!(names(small.join("work/fuse-overlay.work")).is_empty(), "nor in the work dir");
    fs::write(o.m("small"), "fits")?;
    check!(read(o.m("small")) == "fits", "small writes still work");
    m.unmount()?;
    nix::mount::umount(&small)?;
    Ok(())
}

fn bad_directories_are_clear_errors() -> R {
    let o = Overlay::new("baddirs", 1);
    let mut c = o.config();
    c.workdir = Some(o.base.join("missing"));
    let e = Mount::new(&c, &o.mnt()).err().map(|e| e.to_string()).unwrap_or_default();
    check!(e.contains("workdir") && e.contains("missing"), "a missing workdir is named: {e}");
    c = o.config();
    c.lowerdirs.push(o.base.join("nolower"));
    let e = Mount::new(&c, &o.mnt()).err().map(|e| e.to_string()).unwrap_or_default();
    check!(e.contains("lowerdir") && e.contains("nolower"), "a missing lowerdir is named: {e}");
    // Leftovers of a crashed copy-up are cleared, never shown.
    write(o.base.join("work/fuse-overlay.work/tmp.1.1"), "half");
    let o = o.mount();
    check!(!o.base.join("work/fuse-overlay.work/tmp.1.1").exists(), "work leftovers are removed at mount");
    check!(names(o.mnt()).is_empty(), "and never visible");
    // A lower changed under the mount: answers, no crash.
    write(o.lower(0).join("late"), "l");
    fs::remove_dir_all(o.lower(0))?;
    let _ = fs::read_dir(o.mnt()).map(|d| d.count());
    let _ = fs::metadata(o.m("late"));
    fs::write(o.m("still"), "works")?;
    check!(read(o.m("still")) == "works", "the mount keeps serving");
    Ok(())
}

fn the_binary_mounts_like_fuse_overlayfs() -> R {
    let bin = fuse_overlay_bin();
    let o = Overlay::new("binary", 2);
    write(o.lower(0).join("a"), "1");
    write(o.lower(1).join("b"), "2");
    let opts = format!(
        "lowerdir={}:{},upperdir={},workdir={},fsync=0",
        o.lower(0).display(),
        o.lower(1).display(),
        o.upper().display(),
        o.base.join("work").display()
    );
    let out = Command::new(&bin).args(["-o", &opts]).arg(o.mnt()).output()?;
    check!(out.status.success(), "fuse-overlay -o …: {}", String::from_utf8_lossy(&out.stderr));
    check!(names(o.mnt()) == ["a", "b"], "it returns with the overlay mounted: {:?}", names(o.mnt()));
    fs::write(o.m("c"), "3")?;
    check!(read(o.upper().join("c")) == "3", "writes go to upperdir");
    nix::mount::umount(&o.mnt())?;
    check!(names(o.mnt()).is_empty(), "umount ends it");
    let out = Command::new(&bin).args(["-o", "upperdir=/x"]).arg(o.mnt()).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    check!(
        !out.status.success() && err.lines().count() == 1 && err.contains("lowerdir"),
        "bad options: one line: {err}"
    );
    // -f serves in the foreground and ends on SIGTERM, unmounting.
    let mut child = Command::new(&bin).args(["-f", "-o", &opts]).arg(o.mnt()).spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while names(o.mnt()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    check!(read(o.m("c")) == "3", "-f mounts the same layers");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().cast_signed()), nix::sys::signal::Signal::SIGTERM)?;
    check!(child.wait()?.success(), "SIGTERM ends it cleanly");
    check!(names(o.mnt()).is_empty(), "and unmounts");
    Ok(())
}

/// `mount -t fuse PROG#SOURCE MNT -o …`, as fstab has it: mount(8) runs
/// mount.fuse3, which runs the program as `PROG SOURCE MNT -o OPTS` (the
/// form `-t fuse.fuse-overlay` takes too, with the program on the PATH).
fn mount_8_mounts_it_through_mount_fuse3() -> R {
    let bin = fuse_overlay_bin();
    let o = Overlay::new("mount8", 1);
    write(o.lower(0).join("a"), "1");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        o.lower(0).display(),
        o.upper().display(),
        o.base.join("work").display()
    );
    let source = format!("{}#fuse-overlay", bin.display());
    let out = Command::new("mount").args(["-t", "fuse", &source]).arg(o.mnt()).args(["-o", &opts]).output()?;
    check!(out.status.success(), "mount -t fuse {source}: {}", String::from_utf8_lossy(&out.stderr));
    check!(names(o.mnt()) == ["a"], "mounted: {:?}", names(o.mnt()));
    nix::mount::umount(&o.mnt())?;
    Ok(())
}

/// chown and lchown of a fifo, a socket and a symlink: as on any
/// filesystem in the namespace (they cannot carry the owner xattr, so an
/// id the namespace cannot map is EINVAL, as the kernel says for it).
fn special_files_change_owner_like_regular_ones(subids: bool) -> R {
    let o = Overlay::new("special-owners", 1).mount();
    nix::unistd::mkfifo(&o.m("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644))?;
    let _socket = std::os::unix::net::UnixListener::bind(o.m("sock"))?;
    std::os::unix::fs::symlink("fifo", o.m("link"))?;
    let (uid, gid) = if subids { (1, 2) } else { (0, 0) };
    for name in ["fifo", "sock"] {
        std::os::unix::fs::chown(o.m(name), Some(uid), Some(gid))?;
        let st = fs::symlink_metadata(o.m(name))?;
        check!((st.uid(), st.gid()) == (uid, gid), "{name} changes owner: {}:{}", st.uid(), st.gid());
        if !subids {
            let refused = std::os::unix::fs::chown(o.m(name), Some(7), Some(7));
            check!(errno_of(refused) == libc::EINVAL, "{name}: an unmapped id is EINVAL");
            let st = fs::symlink_metadata(o.m(name))?;
            check!(st.uid() == 0, "{name}: and nothing changed");
        }
    }
    std::os::unix::fs::lchown(o.m("link"), Some(uid), Some(gid))?;
    check!(fs::symlink_metadata(o.m("link"))?.uid() == uid, "lchown of a symlink");
    let over = nix::sys::stat::mknod(&o.m("fifo"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0);
    check!(over == Err(nix::errno::Errno::EEXIST), "mknod over an existing name is EEXIST: {over:?}");
    Ok(())
}

/// NAME_MAX (255 bytes) is the limit for names in the overlay as on its
/// layers' filesystem: a removal of such a name from a lower layer is
/// whited out with the kernel's whiteout node, which needs no prefix.
fn names_of_255_bytes_work_for_every_call() -> R {
    let long = |c: char| c.to_string().repeat(255);
    let o = Overlay::new("name-max", 1);
    write(o.lower(0).join(long('a')), "lower");
    fs::create_dir(o.lower(0).join(long('b')))?;
    write(o.lower(0).join(long('h')), "moved");
    let mut o = o.mount();
    fs::write(o.m(&long('c')), "new")?;
    fs::create_dir(o.m(&long('d')))?;
    std::os::unix::fs::symlink("x", o.m(&long('e')))?;
    fs::hard_link(o.m(&long('c')), o.m(&long('f')))?;
    fs::OpenOptions::new().write(true).open(o.m(&long('c')))?.set_len(2)?;
    fs::rename(o.m(&long('c')), o.m(&long('g')))?;
    fs::remove_file(o.m(&long('a')))?;
    fs::remove_dir(o.m(&long('b')))?;
    fs::rename(o.m(&long('h')), o.m(&long('i')))?;
    check!(fs::symlink_metadata(o.m(&long('a'))).is_err(), "the lower file is gone");
    fs::write(o.m(&long('a')), "again")?;
    let long_names = |o: &Overlay| names(o.mnt()).iter().map(|n| n.chars().next().unwrap_or('?')).collect::<String>();
    check!(long_names(&o) == "adefgi", "listed: {}", long_names(&o));
    o.remount();
    check!(long_names(&o) == "adefgi", "after a remount: {}", long_names(&o));
    check!(read(o.m(&long('a'))) == "again" && read(o.m(&long('i'))) == "moved", "contents kept");
    check!(read(o.m(&long('g'))) == "ne", "truncated and renamed");
    let too_long = fs::write(o.m(&"z".repeat(256)), "");
    check!(errno_of(too_long) == libc::ENAMETOOLONG, "256 bytes are too long");
    Ok(())
}

/// The binary under test: $FUSE_OVERLAY_BIN (CI copies it where the test
/// users can run it), else cargo's.
fn fuse_overlay_bin() -> PathBuf {
    std::env::var_os("FUSE_OVERLAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fuse-overlay")))
}

fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps { last_access: t, last_modification: t },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
}
