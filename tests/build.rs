//! `hutch build` against `podman build` (Debian's podman 4.3, base images
//! from a real registry on 127.0.0.1): a corpus of Dockerfiles, each built
//! by both; the merged file trees are compared entry by entry (type, link
//! target, size, mode with setuid/setgid/sticky, owner, xattrs, content)
//! and the configs field by field. podman's results are cached (keyed by
//! the case and podman's version) in `$HUTCH_PODMAN_CACHE`, else
//! /var/tmp/hutch-podman-refs, so a second user and later runs reuse them.
//! Then what podman 4.3 cannot show (here-documents), the cache, stdin
//! contexts, and bad input: one line, no image and no container left.

mod common;

use common::registry::{busybox_layer_with, Image, Layer, Registry, TarBuilder};
use common::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A file of a case's build context.
enum F {
    Text(&'static str, &'static str),
    Mode(&'static str, &'static str, u32),
    Link(&'static str, &'static str),
    /// A tar archive (gzip-compressed when the name ends in .gz) of (name, content).
    Tar(&'static str, &'static [(&'static str, &'static str)]),
}

struct Case {
    name: &'static str,
    dockerfile: &'static str,
    files: &'static [F],
    args: &'static [&'static str],
}

/// A busybox image with every applet, /etc/passwd with root and app
/// (1000), /home, and a default command: `$REG/test/bb:1`.
fn base_image() -> Image {
    let list = Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
    let applets: Vec<String> =
        String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox").map(String::from).collect();
    Image::new(vec![Layer::gzip(busybox_layer_with(&applets, &["home/"]))], &["sh"])
}

struct Setup {
    env: Env,
    registry: Registry,
    work: Scratch,
}

fn setup(test: &str) -> Setup {
    let registry = Registry::start(test);
    registry.push_image("test/bb", "1", &base_image());
    Setup { env: Env::new(test), registry, work: Scratch::new(&format!("build-{test}")) }
}

impl Setup {
    fn reg_arg(&self) -> String {
        format!("REG={}", self.registry.addr)
    }

    /// The case's context in a fresh directory.
    fn context(&self, case: &Case) -> PathBuf {
        let dir = self.work.path().join(format!("ctx-{}", case.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), case.dockerfile).unwrap();
        for file in case.files {
            let name = match file {
                F::Text(n, _) | F::Mode(n, _, _) | F::Link(n, _) | F::Tar(n, _) => n,
            };
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            match file {
                F::Text(_, c) => std::fs::write(&path, c).unwrap(),
                F::Mode(_, c, m) => {
                    std::fs::write(&path, c).unwrap();
                    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(*m)).unwrap();
                }
                F::Link(_, t) => std::os::unix::fs::symlink(t, &path).unwrap(),
                F::Tar(n, entries) => std::fs::write(&path, archive(n, entries)).unwrap(),
            }
        }
        dir
    }

    /// `hutch build` of the case; the output.
    fn hutch_build(&self, case: &Case, tag: &str, extra: &[&str]) -> std::process::Output {
        let ctx = self.context(case);
        let reg = self.reg_arg();
        let mut args = vec!["build", "-t", tag, "--build-arg", &reg];
        for a in case.args {
            args.extend(["--build-arg", a]);
        }
        args.extend(extra);
        let ctx = ctx.to_string_lossy().into_owned();
        args.push(&ctx);
        self.env.hutch(&args)
    }

    /// The merged tree and config of hutch's image `tag` (from `hutch save`).
    fn hutch_result(&self, tag: &str) -> Value {
        let out = self.work.path().join("hutch-save.tar");
        let _ = std::fs::remove_file(&out);
        self.env.ok(&["save", "-o", out.to_str().unwrap(), tag]);
        read_archive(&out)
    }

    /// podman's result for the case, from the cache or a build now.
    fn podman_result(&self, case: &Case) -> Value {
        let key = case_key(case);
        let cache = podman_cache();
        let cached = cache.join(format!("{}-{key}.json", case.name));
        if let Ok(text) = std::fs::read_to_string(&cached) {
            return serde_json::from_str(&text).unwrap();
        }
        let result = self.podman_build(case);
        let tmp = cache.join(format!(".{}-{}", case.name, std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&result).unwrap()).unwrap();
        std::fs::rename(&tmp, &cached).unwrap();
        result
    }

    fn podman_build(&self, case: &Case) -> Value {
        let root = self.work.path().join(format!("podman-{}", case.name));
        // podman wants a short run root.
        let runroot = PathBuf::from(format!("/tmp/hpr-{}-{}", std::process::id(), &case_key(case)[..8]));
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.args(["--root", &root.join("root").to_string_lossy(), "--runroot", &runroot.to_string_lossy()]);
            c.args(["--storage-driver", "vfs"]);
            // crun refuses hybrid cgroups; runc copes (bench/run.sh does the same).
            if std::fs::read_to_string("/proc/mounts").unwrap_or_default().contains(" /sys/fs/cgroup tmpfs") {
                c.args(["--runtime", "runc"]);
            }
            c.args(args);
            c.output().expect("missing prerequisite: podman")
        };
        let ctx = self.context(case);
        let reg = self.reg_arg();
        let mut args = vec!["build", "--format", "docker", "--tls-verify=false", "-t", "ref", "--build-arg", &reg];
        for a in case.args {
            args.extend(["--build-arg", a]);
        }
        let ctx = ctx.to_string_lossy().into_owned();
        args.push(&ctx);
        let built = podman(&args);
        assert!(
            built.status.success(),
            "podman build of {} failed (as a user without subordinate ids, podman cannot chown: run the suite as hutch-sub first to fill the cache): {}",
            case.name,
            String::from_utf8_lossy(&built.stderr)
        );
        let out = root.join("ref.tar");
        let saved = podman(&["save", "--format", "docker-archive", "-o", &out.to_string_lossy(), "ref"]);
        assert!(saved.status.success(), "podman save: {}", String::from_utf8_lossy(&saved.stderr));
        let result = read_archive(&out);
        // podman's files are owned by subordinate ids of this user: podman unshare removes them.
        let _ = Command::new("podman").args(["unshare", "rm", "-rf"]).arg(&root).arg(&runroot).status();
        result
    }

    /// Builds the case with both and compares.
    fn compare(&self, case: &Case) {
        let tag = format!("localhost/case/{}:1", case.name.replace('_', "-"));
        let out = self.hutch_build(case, &tag, &[]);
        assert_success(&out);
        let ours = self.hutch_result(&tag);
        let theirs = self.podman_result(case);
        let differences = differences(&theirs, &ours);
        assert!(
            differences.is_empty(),
            "{}: hutch's image differs from podman's:\n{}",
            case.name,
            differences.join("\n")
        );
    }
}

fn podman_cache() -> PathBuf {
    let dir = std::env::var_os("HUTCH_PODMAN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/hutch-podman-refs"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The case and podman's version, hashed: what podman's result depends on.
fn case_key(case: &Case) -> String {
    let version = Command::new("podman").arg("--version").output().map(|o| o.stdout).unwrap_or_default();
    let mut sha = Sha256::new();
    sha.update(&version);
    sha.update(&base_image().layers[0].tar);
    sha.update(case.dockerfile);
    for a in case.args {
        sha.update(a);
    }
    for f in case.files {
        match f {
            F::Text(n, c) | F::Link(n, c) => sha.update(format!("{n}\0{c}\0")),
            F::Mode(n, c, m) => sha.update(format!("{n}\0{c}\0{m}\0")),
            F::Tar(n, e) => sha.update(format!("{n}\0{e:?}\0")),
        }
    }
    hex(&sha.finalize())[..16].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn archive(name: &str, entries: &[(&str, &str)]) -> Vec<u8> {
    let mut t = TarBuilder::new();
    for (n, c) in entries {
        t = if n.ends_with('/') { t.dir(n) } else { t.file_mode(n, c.as_bytes(), 0o640, 1000, 1000) };
    }
    let tar = t.finish();
    let compress = |mut writer: Box<dyn Write>| writer.write_all(&tar).unwrap();
    if name.ends_with(".gz") {
        Layer::gzip(tar).blob
    } else if name.ends_with(".zst") {
        Layer::zstd(tar).blob
    } else if name.ends_with(".bz2") {
        let mut out = Vec::new();
        compress(Box::new(bzip2::write::BzEncoder::new(&mut out, bzip2::Compression::fast())));
        out
    } else if name.ends_with(".xz") {
        let mut out = Vec::new();
        compress(Box::new(liblzma::write::XzEncoder::new(&mut out, 1)));
        out
    } else {
        tar
    }
}

/// An image archive with Docker's manifest.json (`hutch save`, `podman
/// save`): `{"tree": {path: entry}, "config": {the compared keys}}`.
fn read_archive(path: &Path) -> Value {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().trim_start_matches("./").to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config: Value = serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let mut tree = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        apply_layer(&mut tree, &files[layer.as_str().unwrap()]);
    }
    let run = &config["config"];
    let mut compared = serde_json::Map::new();
    for key in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
        "Shell",
        "OnBuild",
        "Healthcheck",
    ] {
        let mut value = run.get(key).cloned().unwrap_or(Value::Null);
        if key == "Labels" {
            // podman marks its images with the builder's version.
            if let Some(labels) = value.as_object_mut() {
                labels.remove("io.buildah.version");
            }
        }
        let empty = value.is_null() || value == json!("") || value == json!([]) || value == json!({});
        compared.insert(key.to_string(), if empty { Value::Null } else { value });
    }
    json!({"tree": tree, "config": compared})
}

/// Applies one layer (plain or gzip) to the merged tree, whiteouts first.
fn apply_layer(tree: &mut BTreeMap<String, Value>, blob: &[u8]) {
    let tar = if blob.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut out).unwrap();
        out
    } else {
        blob.to_vec()
    };
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let header = entry.header().clone();
        let mut xattrs = BTreeMap::new();
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.insert(name.to_string(), hex(ext.value_bytes()));
                }
            }
        }
        let link = entry.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        entries.push((path, header, link, data, xattrs));
    }
    for (path, ..) in &entries {
        let (dir, name) = path.rsplit_once('/').map_or(("", path.as_str()), |(d, n)| (d, n));
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        if name == ".wh..wh..opq" {
            tree.retain(|p, _| !(p.starts_with(&prefix) && p.len() > prefix.len()));
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            let gone = format!("{prefix}{hidden}");
            tree.retain(|p, _| *p != gone && !p.starts_with(&format!("{gone}/")));
        }
    }
    for (path, header, link, data, xattrs) in entries {
        let name = path.rsplit('/').next().unwrap_or_default();
        if name.starts_with(".wh.") {
            continue;
        }
        let kind = header.entry_type();
        let mut value = json!({
            "mode": format!("{:o}", header.mode().unwrap() & 0o7777),
            "uid": header.uid().unwrap(),
            "gid": header.gid().unwrap(),
        });
        if !xattrs.is_empty() {
            value["xattrs"] = json!(xattrs);
        }
        match kind {
            tar::EntryType::Directory => value["type"] = json!("dir"),
            tar::EntryType::Symlink => {
                value["type"] = json!("symlink");
                value["target"] = json!(link);
            }
            tar::EntryType::Link => {
                // A hardlink: the file it names, as it is now.
                let target = link.unwrap_or_default().trim_start_matches("./").to_string();
                let mut linked = tree.get(&target).cloned().unwrap_or(json!({"type": "missing hardlink target"}));
                linked["hardlink"] = json!(true);
                value = linked;
            }
            tar::EntryType::Regular => {
                value["type"] = json!("file");
                value["size"] = json!(data.len());
                value["sha256"] = json!(hex(&Sha256::digest(&data)));
            }
            other => value["type"] = json!(format!("{other:?}")),
        }
        // A non-directory replaces a directory and all below it.
        if kind != tar::EntryType::Directory {
            tree.retain(|p, _| !p.starts_with(&format!("{path}/")));
        }
        tree.insert(path, value);
    }
}

/// What buildah leaves of RUN's mount points in the layer (empty
/// `/etc/hosts` and friends with mode 755, `/dev`, `/proc`, `/run`,
/// `/sys`). hutch leaves them out, as Docker does; the comparison lets
/// exactly these be missing from hutch's image.
fn buildah_mount_point(path: &str, entry: &Value) -> bool {
    let empty_file = entry["type"] == "file" && entry["size"] == 0;
    match path {
        "etc/hosts" | "etc/hostname" | "etc/resolv.conf" => empty_file,
        "dev" | "proc" | "run" | "sys" => entry["type"] == "dir",
        _ => false,
    }
}

/// What differs between podman's result and ours, one line each.
fn differences(theirs: &Value, ours: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (theirs["tree"].as_object().unwrap(), ours["tree"].as_object().unwrap());
    for (path, entry) in a {
        let mut entry = entry.clone();
        let mut mine = b.get(path).cloned().unwrap_or(Value::Null);
        for e in [&mut entry, &mut mine] {
            if let Some(o) = e.as_object_mut() {
                o.remove("hardlink");
            }
        }
        if mine != entry && !(mine.is_null() && buildah_mount_point(path, &entry)) {
            out.push(format!("  /{path}: podman {entry} hutch {mine}"));
        }
    }
    for path in b.keys().filter(|p| !a.contains_key(*p)) {
        out.push(format!("  /{path}: only in hutch's image {}", b[path]));
    }
    for (key, value) in theirs["config"].as_object().unwrap() {
        if ours["config"][key] != *value {
            out.push(format!("  config {key}: podman {value} hutch {}", ours["config"][key]));
        }
    }
    out
}

macro_rules! same_as_podman {
    ($($name:ident: $dockerfile:expr, [$($file:expr),* $(,)?], [$($arg:expr),* $(,)?];)*) => {$(
        #[test]
        fn $name() {
            let case = Case { name: stringify!($name), dockerfile: $dockerfile, files: &[$($file),*], args: &[$($arg),*] };
            setup(stringify!($name)).compare(&case);
        }
    )*};
}

same_as_podman! {
    copy_destination_rules: "ARG REG\nFROM $REG/test/bb:1\nWORKDIR /w\nCOPY a.txt /files/\nCOPY a.txt /renamed.txt\nCOPY dir /dir-contents/\nCOPY dir /newdir\nCOPY a.txt b.txt /two/\nCOPY *.txt /glob/\nCOPY a.txt .\nCOPY dir/ sub/\nCOPY a.txt /tmp\nCOPY dir/nested/deep.txt /x/y/z/\nCOPY script.sh /bin/\n",
        [F::Text("a.txt", "a\n"), F::Text("b.txt", "b\n"), F::Text("dir/one.txt", "1\n"), F::Text("dir/nested/deep.txt", "deep\n"), F::Mode("script.sh", "#!/bin/sh\n", 0o755)], [];
    copy_owners_and_modes: "ARG REG\nFROM $REG/test/bb:1\nCOPY --chown=app a.txt /by-name\nCOPY --chown=1000:1000 a.txt /by-id\nCOPY --chown=app:app dir /owned-dir/\nCOPY --chmod=0640 a.txt /mode640\nCOPY --chmod=4755 script.sh /setuid\nCOPY script.sh /kept-mode\nCOPY --chown=app a.txt /new/parent/dirs/file\nCOPY --chown=app dir /new/owned/\n",
        [F::Text("a.txt", "a\n"), F::Text("dir/one.txt", "1\n"), F::Mode("dir/run.sh", "x", 0o750), F::Mode("script.sh", "#!/bin/sh\n", 0o755)], [];
    add_archives_and_files: "ARG REG\nFROM $REG/test/bb:1\nADD plain.tar /plain/\nADD data.tar.gz /gz/\nADD a.txt /added\nADD data.tar.gz /gz-named\nADD --chown=app plain.tar /owned-archive/\nADD data.tar.bz2 /bz2/\nADD data.tar.xz /xz/\nADD data.tar.zst /zst/\n",
        [F::Text("a.txt", "a\n"), F::Tar("plain.tar", &[("p/", ""), ("p/x", "x\n")]), F::Tar("data.tar.gz", &[("d/", ""), ("d/y", "y\n"), ("z", "z\n")]),
         F::Tar("data.tar.bz2", &[("b/", ""), ("b/z", "bz\n")]), F::Tar("data.tar.xz", &[("x/", ""), ("x/z", "xz\n")]), F::Tar("data.tar.zst", &[("s/", ""), ("s/z", "zst\n")])], [];
    multi_stage_builds_only_what_the_target_needs: "ARG REG\nFROM $REG/test/bb:1 AS builder\nRUN mkdir -p /out && echo built > /out/artifact && chmod 600 /out/artifact\nFROM $REG/test/bb:1 AS unused\nRUN exit 1\nFROM $REG/test/bb:1\nCOPY --from=builder /out/artifact /artifact\nCOPY --from=0 /out /out-again/\n",
        [], [];
    whiteouts_across_stages: "ARG REG\nFROM $REG/test/bb:1 AS parent\nRUN mkdir -p /data/keep /data/gone && echo 1 > /data/keep/f && echo 2 > /data/gone/f && echo 3 > /data/file\nRUN rm -rf /data/gone /data/file\nFROM parent\nRUN rm -rf /data/keep && mkdir /data/keep && echo new > /data/keep/g\n",
        [], [];
    symlink_and_directory_replace_each_other: "ARG REG\nFROM $REG/test/bb:1\nRUN mkdir -p /a/b && echo x > /a/b/f && ln -s /tmp /c\nRUN rm -rf /a && ln -s /etc /a && rm /c && mkdir /c && echo y > /c/f\n",
        [], [];
    arg_and_env_scoping_and_substitution: "ARG REG\nARG GLOBAL=global-default\nARG TAG=1\nFROM $REG/test/bb:$TAG\nARG GLOBAL\nARG LOCAL=local-default\nARG GIVEN\nARG UNSEEN\nENV FROM_ARG=$LOCAL WITH_DEFAULT=${UNSET:-fallback} WITH_ALT=${LOCAL:+alt} GLOBAL_SEEN=$GLOBAL\nENV LOCAL=env-wins\nENV OLD_FORM some value here\nENV QUOTED=\"a b\" ESCAPED=c\\ d SINGLE='$LOCAL' BRACES=${LOCAL}_x\nRUN echo \"$LOCAL $GIVEN $GLOBAL [$UNSEEN]\" > /run-env\nWORKDIR /$LOCAL/$GIVEN\nLABEL from.arg=$GIVEN\n",
        [], ["GIVEN=given"];
    dockerignore_with_exceptions: "ARG REG\nFROM $REG/test/bb:1\nCOPY . /ctx/\n",
        [F::Text(".dockerignore", "*.log\n!keep.log\nsecret/\n**/tmp-*\n"), F::Text("a.log", "x"), F::Text("keep.log", "k"), F::Text("secret/key", "s"), F::Text("sub/tmp-x", "t"), F::Text("sub/real", "r")], [];
    config_instructions: "ARG REG\nFROM $REG/test/bb:1\nCMD [\"echo\", \"cmd\"]\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nEXPOSE 80 53/udp 8000-8001\nVOLUME /data /cache\nVOLUME [\"/logs\"]\nLABEL maintainer=\"someone\" version=1.0 \"with space\"=\"v w\"\nSTOPSIGNAL SIGTERM\nUSER app\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nHEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD test -f /ok\nONBUILD RUN echo triggered > /onbuild\n",
        [], [];
    entrypoint_resets_the_base_cmd: "ARG REG\nFROM $REG/test/bb:1\nENTRYPOINT [\"echo\"]\nFROM $REG/test/bb:1 AS shellform\nCMD echo $HOME\n",
        [], [];
    workdir_is_made_and_owned_by_the_user: "ARG REG\nFROM $REG/test/bb:1\nUSER app\nWORKDIR /home/app/work\nWORKDIR sub\nUSER root\nWORKDIR /rootdir\nRUN pwd > /pwd\n",
        [], [];
    run_forms_and_special_files: "ARG REG\nFROM $REG/test/bb:1\nRUN [\"/bin/sh\", \"-c\", \"echo exec-form > /exec\"]\nRUN echo one \\\n    two > /continued\nRUN touch /a-file && chmod 4711 /a-file && mkdir -m 1777 /sticky && mkfifo /fifo && ln /a-file /hardlink\nRUN echo data > /x && ln -s x /x-link && mkdir -p /deep/er && chmod 2750 /deep\n",
        [], [];
    onbuild_triggers_run_in_the_child: "ARG REG\nFROM $REG/test/bb:1 AS base\nONBUILD RUN echo fired > /fired\nONBUILD COPY a.txt /from-onbuild\nFROM base\nRUN cat /fired > /seen\n",
        [F::Text("a.txt", "a\n")], [];
    copy_from_an_image: "ARG REG\nFROM scratch\nARG REG\nCOPY --from=$REG/test/bb:1 /etc/passwd /passwd\nCOPY --from=$REG/test/bb:1 /bin/busybox /bin/\nCOPY --from=$REG/test/bb:1 /bin /bin2\n",
        [], [];
    copy_merges_into_existing_directories: "ARG REG\nFROM $REG/test/bb:1\nRUN mkdir -p /srv/app/keep && echo kept > /srv/app/keep/old && echo base > /srv/app/replaced\nCOPY app /srv/app\nCOPY one.txt /srv/app/keep\nCOPY --chmod=0700 app /private/\n",
        [F::Text("app/replaced", "new\n"), F::Text("app/keep/added", "added\n"), F::Text("one.txt", "1\n")], [];
    user_and_group_forms: "ARG REG\nFROM $REG/test/bb:1\nUSER 1000:1000\nWORKDIR /made-by-1000\nUSER app:root\nWORKDIR /made-by-app\nUSER root\nRUN touch /made-by-app/file\nCOPY --chown=1000:0 a.txt /mixed\nCOPY --chown=app:1000 a.txt /named-and-number\n",
        [F::Text("a.txt", "a\n")], [];
    arg_defaults_from_other_args: "ARG REG\nFROM $REG/test/bb:1\nARG FIRST=one\nARG SECOND=${FIRST}-two\nARG THIRD\nENV COMBINED=\"$FIRST $SECOND ${THIRD:-three}\"\nRUN echo \"$SECOND\" > /second\nLABEL combined=\"${SECOND}\" \\\n      other=x\n",
        [], [];
    shell_form_commands_use_the_shell: "ARG REG\nFROM $REG/test/bb:1\nCMD echo $HOME\nENTRYPOINT exec sleep 1\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN echo via-shell > /shell\n",
        [], [];
    stages_in_a_chain: "ARG REG\nFROM $REG/test/bb:1 AS one\nRUN echo 1 > /one\nFROM one AS two\nRUN echo 2 > /two && rm /one\nFROM two\nCOPY --from=one --chown=app /one /restored\nRUN cat /two /restored > /both\n",
        [], [];
    volume_then_run: "ARG REG\nFROM $REG/test/bb:1\nRUN mkdir /data && echo before > /data/before\nVOLUME /data\nRUN echo after > /data/after\n",
        [], [];
    stopsignal_and_expose_forms: "ARG REG\nFROM $REG/test/bb:1\nSTOPSIGNAL 9\nEXPOSE 8080/tcp 9090/udp\nEXPOSE 7000\nHEALTHCHECK NONE\n",
        [], [];
    globs_and_directories: "ARG REG\nFROM $REG/test/bb:1\nCOPY src/*.c /code/\nCOPY src/?.h /headers/\nCOPY src/[ab]* /ab/\nCOPY src /all\n",
        [F::Text("src/a.c", "a"), F::Text("src/b.c", "b"), F::Text("src/x.h", "x"), F::Text("src/long.h", "l"), F::Text("src/sub/deep.c", "d")], [];
    scratch_images: "FROM scratch\nCOPY dir /\nCOPY a.txt /a\n",
        [F::Text("a.txt", "a\n"), F::Text("dir/one.txt", "1\n"), F::Text("dir/etc/conf", "c\n")], [];
    escape_directive: "# escape=`\nARG REG\nFROM $REG/test/bb:1\nRUN echo a `\n    b > /joined && echo 'C:\\path' > /winpath\n",
        [], [];
}

/// RUN's chown to an id of the image: with subordinate ids as podman
/// does it; with one id mapped the kernel refuses, and the build stops
/// with the step and its status in one line.
#[test]
fn run_chown_needs_subordinate_ids() {
    let s = setup("run-chown");
    let case = Case {
        name: "run_chown",
        dockerfile: "ARG REG\nFROM $REG/test/bb:1\nRUN touch /f && chown 1000:1000 /f && chmod 4755 /f && mkdir -p /d/e && chown -R app:app /d\n",
        files: &[],
        args: &[],
    };
    if expect_subids() {
        s.compare(&case);
    } else {
        let line = fails(&s, "run_chown", case.dockerfile, case.files, &[]);
        assert!(line.contains("Dockerfile:3: RUN:") && line.contains("exited with status 1"), "{line}");
        assert!(line.contains("without subordinate ids only root exists"), "{line}");
    }
}

/// A case built by hutch alone: its image's merged tree and config.
fn hutch_only(s: &Setup, name: &'static str, dockerfile: &'static str, files: &'static [F], extra: &[&str]) -> Value {
    let case = Case { name, dockerfile, files, args: &[] };
    let tag = format!("localhost/own/{}:1", name.replace('_', "-"));
    let out = s.hutch_build(&case, &tag, extra);
    assert_success(&out);
    s.hutch_result(&tag)
}

fn file_text(s: &Setup, tag: &str, path: &str) -> String {
    s.env.ok(&["run", "--rm", "--network", "none", tag, "cat", path])
}

#[test]
fn here_documents_in_run_and_copy() {
    let s = setup("heredoc");
    let dockerfile = "ARG REG\nFROM $REG/test/bb:1\nENV NAME=world\nRUN <<EOF\nset -e\necho \"hello $NAME\" > /greeting\necho second >> /greeting\nEOF\nRUN cat > /script <<-'END'\n\techo '$NAME' kept\n\tEND\nCOPY <<EOF /etc/app.conf\nname=$NAME\nEOF\nCOPY <<'EOF' /literal\nname=$NAME\nEOF\n";
    let result = hutch_only(&s, "heredoc", dockerfile, &[], &[]);
    assert!(result["tree"]["greeting"].is_object());
    let tag = "localhost/own/heredoc:1";
    assert_eq!(file_text(&s, tag, "/greeting"), "hello world\nsecond\n");
    assert_eq!(file_text(&s, tag, "/script"), "echo '$NAME' kept\n");
    assert_eq!(file_text(&s, tag, "/etc/app.conf"), "name=world\n");
    assert_eq!(file_text(&s, tag, "/literal"), "name=$NAME\n");
}

#[test]
fn a_context_symlink_out_of_the_context_is_copied_as_a_symlink() {
    let s = setup("symlink-out");
    let result = hutch_only(
        &s,
        "symlink_out",
        "ARG REG\nFROM $REG/test/bb:1\nCOPY link-out /copied\nCOPY . /ctx/\n",
        &[F::Link("link-out", "/etc/shadow"), F::Link("rel-out", "../../outside")],
        &[],
    );
    assert_eq!(result["tree"]["copied"]["type"], "symlink");
    assert_eq!(result["tree"]["copied"]["target"], "/etc/shadow");
    assert_eq!(result["tree"]["ctx/rel-out"]["target"], "../../outside");
}

#[test]
fn rebuilds_use_the_cache_and_a_change_reruns_only_what_follows() {
    let s = setup("cache");
    let case = Case {
        name: "cache",
        dockerfile: "ARG REG\nFROM $REG/test/bb:1\nRUN echo $RANDOM$RANDOM > /first\nCOPY a.txt /a\nRUN echo $RANDOM$RANDOM > /after\nCMD [\"cat\", \"/a\"]\n",
        files: &[F::Text("a.txt", "one\n")],
        args: &[],
    };
    let tag = "localhost/cache:1";
    let build = |extra: &[&str]| {
        let out = s.hutch_build(&case, tag, extra);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = build(&[]);
    assert!(!first.contains("Using cache"), "{first}");
    let first_id = first.lines().last().unwrap().to_string();
    let (first_run, first_after) = (file_text(&s, tag, "/first"), file_text(&s, tag, "/after"));
    let again = build(&[]);
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    assert_eq!(again.lines().last().unwrap(), first_id, "a fully cached rebuild gives the same image");
    // One file of the context changes: the COPY and what follows run again.
    let ctx = s.work.path().join("ctx-cache");
    let changed = Case { files: &[F::Text("a.txt", "two\n")], ..case };
    let out = s.hutch_build(&changed, tag, &[]);
    assert_success(&out);
    let third = String::from_utf8_lossy(&out.stdout);
    assert_eq!(third.matches("Using cache").count(), 1, "{third}");
    assert_eq!(file_text(&s, tag, "/first"), first_run);
    assert_ne!(file_text(&s, tag, "/after"), first_after);
    assert_eq!(s.env.ok(&["run", "--rm", "--network", "none", tag]), "two\n");
    assert!(ctx.exists());
    // --no-cache runs every step again.
    let out = s.hutch_build(&changed, tag, &["--no-cache"]);
    assert_success(&out);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Using cache"));
    assert_ne!(file_text(&s, tag, "/first"), first_run);
    // Intermediate images are not listed; the build's image is, and the
    // two it replaced under its tag are unnamed.
    let images = s.env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut listed: Vec<&str> = images.lines().map(|l| if l.contains("test/bb") { "base" } else { l }).collect();
    listed.sort();
    assert_eq!(listed, ["<none>:<none>", "<none>:<none>", "base", "localhost/cache:1"], "{images}");
    assert!(s.env.ok(&["ps", "-a", "-q"]).trim().is_empty(), "no build container is left");
}

#[test]
fn flags_target_labels_build_args_iidfile_and_quiet() {
    let s = setup("flags");
    let case = Case {
        name: "flags",
        dockerfile: "ARG REG\nFROM $REG/test/bb:1 AS first\nARG WHO=nobody\nRUN echo \"$WHO\" > /who\nFROM first AS second\nRUN echo second > /second\n",
        files: &[],
        args: &["WHO=somebody"],
    };
    let iid = s.work.path().join("iid");
    let out = s.hutch_build(
        &case,
        "localhost/flags:1",
        &["--target", "first", "--label", "team=x", "-q", "--iidfile", iid.to_str().unwrap()],
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "-q prints the id only: {stdout}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), stdout.trim());
    assert_eq!(file_text(&s, "localhost/flags:1", "/who"), "somebody\n");
    s.env.ok(&["run", "--rm", "--network", "none", "localhost/flags:1", "sh", "-c", "test ! -e /second"]);
    let inspect: Value = serde_json::from_str(&s.env.ok(&["inspect", "localhost/flags:1"])).unwrap();
    assert_eq!(inspect[0]["Config"]["Labels"]["team"], "x");
    // `image build` is the same command.
    let ctx = s.work.path().join("ctx-flags");
    let reg = s.reg_arg();
    s.env.ok(&["image", "build", "-q", "-t", "localhost/flags:2", "--build-arg", &reg, ctx.to_str().unwrap()]);
    assert_eq!(file_text(&s, "localhost/flags:2", "/second"), "second\n");
}

#[test]
fn run_mounts_secrets_caches_and_tmpfs() {
    let s = setup("mounts");
    let secret = s.work.path().join("token");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let spec = format!("id=token,src={}", secret.display());
    let dockerfile = "ARG REG\nFROM $REG/test/bb:1 AS builder\nRUN mkdir /out && echo artifact > /out/a && echo single > /one\nFROM $REG/test/bb:1\nRUN --mount=type=bind,from=builder,source=/out,target=/in --mount=from=builder,source=/one,target=/one.txt cat /in/a /one.txt > /from-stage\nRUN --mount=type=secret,id=token cat /run/secrets/token > /seen-secret-length && wc -c < /run/secrets/token > /seen-secret-length\nRUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/count; wc -l < /cache/count > /count-seen'\nRUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/f && test -f /scratch/f'\nRUN --mount=type=bind,source=data,target=/data cat /data/f > /from-bind\nRUN --network=none true\n";
    let result = hutch_only(&s, "mounts", dockerfile, &[F::Text("data/f", "bound\n")], &["--secret", &spec]);
    let tag = "localhost/own/mounts:1";
    assert_eq!(file_text(&s, tag, "/seen-secret-length").trim(), "7");
    assert_eq!(file_text(&s, tag, "/from-bind"), "bound\n");
    assert_eq!(file_text(&s, tag, "/from-stage"), "artifact\nsingle\n");
    let tree = result["tree"].as_object().unwrap();
    for left_out in ["run/secrets/token", "cache/count", "scratch/f", "data/f", "in/a", "one.txt"] {
        assert!(!tree.contains_key(left_out), "{left_out} is a mount, not part of the image");
    }
    // The cache mount keeps its files between builds.
    let out = s.hutch_build(
        &Case { name: "mounts", dockerfile, files: &[F::Text("data/f", "bound\n")], args: &[] },
        tag,
        &["--secret", &spec, "--no-cache"],
    );
    assert_success(&out);
    assert_eq!(file_text(&s, tag, "/count-seen").trim(), "2");
}

#[test]
fn contexts_and_dockerfiles_from_stdin_and_other_names() {
    let s = setup("stdin");
    let reg = s.reg_arg();
    // A lone Dockerfile on stdin.
    let run = |args: &[&str], input: &[u8]| {
        let mut c = s.env.h.cmd();
        c.env("HUTCH_ROOT", s.env.store.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &["build", "-q", "-t", "localhost/stdin:1", "--build-arg", &reg, "-"],
        b"ARG REG\nFROM $REG/test/bb:1\nRUN echo from-stdin > /o\n",
    );
    assert_success(&out);
    assert_eq!(file_text(&s, "localhost/stdin:1", "/o"), "from-stdin\n");
    // A tar context on stdin, with its Dockerfile inside.
    let tar = TarBuilder::new()
        .file("Dockerfile", b"ARG REG\nFROM $REG/test/bb:1\nCOPY f /f\n")
        .file("f", b"in the tar\n")
        .finish();
    let out = run(&["build", "-q", "-t", "localhost/stdin:2", "--build-arg", &reg, "-"], &tar);
    assert_success(&out);
    assert_eq!(file_text(&s, "localhost/stdin:2", "/f"), "in the tar\n");
    // -f NAME, with NAME.dockerignore beside it; Containerfile by default.
    let ctx = s.work.path().join("ctx-names");
    std::fs::create_dir_all(&ctx).unwrap();
    for (name, text) in [
        ("a", "a"),
        ("b", "b"),
        ("Other.df", "ARG REG\nFROM $REG/test/bb:1\nCOPY . /c/\n"),
        ("Other.df.dockerignore", "a\n"),
        ("Containerfile", "ARG REG\nFROM $REG/test/bb:1\nCOPY b /b\n"),
    ] {
        std::fs::write(ctx.join(name), text).unwrap();
    }
    s.env.ok(&[
        "build",
        "-q",
        "-t",
        "localhost/names:1",
        "--build-arg",
        &reg,
        "-f",
        ctx.join("Other.df").to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let listed = s.env.ok(&["run", "--rm", "--network", "none", "localhost/names:1", "ls", "/c"]);
    assert!(listed.contains('b') && !listed.lines().any(|l| l == "a"), "{listed}");
    s.env.ok(&["build", "-q", "-t", "localhost/names:2", "--build-arg", &reg, ctx.to_str().unwrap()]);
    assert_eq!(file_text(&s, "localhost/names:2", "/b"), "b");
}

/// A build that must fail: the one line, then nothing left behind.
fn fails(s: &Setup, name: &'static str, dockerfile: &'static str, files: &'static [F], extra: &[&str]) -> String {
    // The base in the store first, so "no image made" means something.
    s.env.ok(&["pull", "-q", &format!("{}/test/bb:1", s.registry.addr)]);
    let images_before = s.env.ok(&["images", "-q"]);
    let out = s.hutch_build(&Case { name, dockerfile, files, args: &[] }, "localhost/fail:1", extra);
    assert!(!out.status.success(), "{name}: the build succeeded");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("hutch:") && !l.starts_with("hutch: note")).collect();
    assert_eq!(lines.len(), 1, "{name}: one error line: {err}");
    assert_eq!(s.env.ok(&["images", "-q"]), images_before, "{name}: no image made");
    assert!(s.env.ok(&["ps", "-a", "-q"]).trim().is_empty(), "{name}: no container left");
    lines[0].to_string()
}

#[test]
fn bad_dockerfiles_and_failing_steps_say_where_in_one_line() {
    let s = setup("bad");
    let cases: &[(&'static str, &'static str, &'static [F], &str)] = &[
        ("unknown", "ARG REG\nFROM $REG/test/bb:1\n\nFOO bar\n", &[], "Dockerfile:4: unknown instruction: FOO"),
        (
            "missing_source",
            "ARG REG\nFROM $REG/test/bb:1\nCOPY nothere /x\n",
            &[],
            "Dockerfile:3: COPY: nothere: not found",
        ),
        ("no_match", "ARG REG\nFROM $REG/test/bb:1\nCOPY *.none /x/\n", &[], "no source files"),
        ("bad_from", "ARG REG\nFROM $REG/test/bb:1\nCOPY --from=nowhere /x /x\n", &[], "--from=nowhere"),
        (
            "failing_run",
            "ARG REG\nFROM $REG/test/bb:1\nRUN echo partial > /p && exit 3\n",
            &[],
            "Dockerfile:3: RUN: RUN echo partial > /p && exit 3 exited with status 3",
        ),
        ("unterminated", "ARG REG\nFROM $REG/test/bb:1\nENV A=\"open\n", &[], "Dockerfile:3: ENV:"),
        ("no_from", "RUN true\n", &[], "only ARG may come before the first FROM"),
        ("escape_context", "ARG REG\nFROM $REG/test/bb:1\nCOPY ../outside /x\n", &[], "outside the build context"),
        (
            "many_to_file",
            "ARG REG\nFROM $REG/test/bb:1\nCOPY a b /file\n",
            &[F::Text("a", "a"), F::Text("b", "b")],
            "must be a directory ending in /",
        ),
        ("missing_image", "ARG REG\nFROM $REG/test/none:1\n", &[], "Dockerfile:2: FROM:"),
    ];
    for (name, dockerfile, files, expected) in cases {
        let line = fails(&s, name, dockerfile, files, &[]);
        assert!(line.contains(expected), "{name}: {line:?} should say {expected:?}");
    }
    let line = fails(&s, "target", "ARG REG\nFROM $REG/test/bb:1\n", &[], &["--target", "nope"]);
    assert!(line.contains("--target nope: no such stage"), "{line}");
}

/// A COPY of a directory whose files changed in part: the unchanged ones
/// come from the earlier layer, the image is what a fresh build gives, and
/// the earlier image keeps its own files.
#[test]
fn a_changed_directory_copy_gives_the_new_files_and_keeps_the_old_image() {
    let s = setup("copy-again");
    let dockerfile = "ARG REG\nFROM $REG/test/bb:1\nCOPY --chown=app dir /d/\nRUN cat /d/* 2>/dev/null | sort > /all\n";
    let first = Case {
        name: "copy_again",
        dockerfile,
        files: &[
            F::Text("dir/same", "same\n"),
            F::Text("dir/changed", "old\n"),
            F::Text("dir/gone", "gone\n"),
            F::Text("dir/sub/deep", "deep\n"),
        ],
        args: &[],
    };
    let out = s.hutch_build(&first, "localhost/again:1", &["-q"]);
    assert_success(&out);
    let old_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let second = Case {
        files: &[
            F::Text("dir/same", "same\n"),
            F::Text("dir/changed", "new\n"),
            F::Text("dir/added", "added\n"),
            F::Text("dir/sub/deep", "deep\n"),
        ],
        ..first
    };
    let out = s.hutch_build(&second, "localhost/again:2", &[]);
    assert_success(&out);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Using cache"), "the COPY ran again");
    let new = s.hutch_result("localhost/again:2");
    // The same context built with no cache at all: the reference.
    let fresh = Setup {
        env: Env::new("copy-again-fresh"),
        registry: Registry::start("copy-again-fresh"),
        work: Scratch::new("build-copy-again-fresh"),
    };
    fresh.registry.push_image("test/bb", "1", &base_image());
    assert_success(&fresh.hutch_build(&second, "localhost/again:2", &[]));
    let reference = fresh.hutch_result("localhost/again:2");
    assert_eq!(differences(&reference, &new), Vec::<String>::new());
    assert_eq!(file_text(&s, "localhost/again:2", "/all"), "added\nnew\nsame\n");
    assert_eq!(new["tree"]["d/same"]["uid"], 1000);
    let old = s.env.ok(&["run", "--rm", "--network", "none", &old_id, "sh", "-c", "cat /d/changed /d/gone; ls /d"]);
    assert_eq!(old, "old\ngone\nchanged\ngone\nsame\nsub\n", "the earlier image keeps its files");
}

/// ADD of an http URL (a server on 127.0.0.1): the file as ADD makes it
/// (0600, named from the URL or the destination, not extracted), its
/// checksum checked; a wrong checksum or a 404 is one line.
#[test]
fn add_downloads_urls_and_checks_their_checksum() {
    let s = setup("add-url");
    let served = s.work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("tool.txt"), "downloaded\n").unwrap();
    std::fs::write(served.join("data.tar"), archive("data.tar", &[("inside", "x")])).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(&served)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the http server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sum = format!("sha256:{}", hex(&Sha256::digest(b"downloaded\n")));
    let dockerfile: &'static str = Box::leak(
        format!("ARG REG\nFROM $REG/test/bb:1\nADD http://127.0.0.1:{port}/tool.txt /opt/\nADD --checksum={sum} http://127.0.0.1:{port}/tool.txt /renamed\nADD http://127.0.0.1:{port}/data.tar /archive/\n").into_boxed_str(),
    );
    let result = hutch_only(&s, "add_url", dockerfile, &[], &[]);
    let tree = &result["tree"];
    assert_eq!(tree["opt/tool.txt"]["mode"], "600", "{}", tree["opt/tool.txt"]);
    assert_eq!(tree["opt/tool.txt"]["size"], 11);
    assert_eq!(tree["renamed"]["uid"], 0);
    assert_eq!(tree["archive/data.tar"]["type"], "file", "a download is not extracted");
    let bad: &'static str = Box::leak(
        format!(
            "ARG REG\nFROM $REG/test/bb:1\nADD --checksum=sha256:{} http://127.0.0.1:{port}/tool.txt /x\n",
            "0".repeat(64)
        )
        .into_boxed_str(),
    );
    let line = fails(&s, "add_url_bad", bad, &[], &[]);
    assert!(line.contains("checksum mismatch"), "{line}");
    let missing: &'static str =
        Box::leak(format!("ARG REG\nFROM $REG/test/bb:1\nADD http://127.0.0.1:{port}/nothing /x\n").into_boxed_str());
    let line = fails(&s, "add_url_404", missing, &[], &[]);
    assert!(line.contains("404"), "{line}");
    let _ = server.kill();
    let _ = server.wait();
}

/// `--platform` of another architecture: the base image for it is
/// pulled, COPY works, and RUN needs the host's binfmt_misc handler —
/// one line saying so where there is none.
#[test]
fn another_platform_pulls_its_base_and_run_needs_an_emulator() {
    let s = setup("platform");
    let mut arm = base_image();
    arm.arch = "arm64".into();
    s.registry.push_image("test/arm", "1", &arm);
    let copy_only = Case {
        name: "platform_copy",
        dockerfile: "ARG REG\nFROM $REG/test/arm:1\nCOPY a /a\n",
        files: &[F::Text("a", "a")],
        args: &[],
    };
    assert_success(&s.hutch_build(&copy_only, "localhost/arm:1", &["--platform", "linux/arm64"]));
    let inspect: Value = serde_json::from_str(&s.env.ok(&["inspect", "localhost/arm:1"])).unwrap();
    assert_eq!(inspect[0]["Architecture"], "arm64");
    let emulated =
        std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").is_ok_and(|t| t.starts_with("enabled"));
    let run =
        Case { name: "platform_run", dockerfile: "ARG REG\nFROM $REG/test/arm:1\nRUN true\n", files: &[], args: &[] };
    if emulated {
        assert_success(&s.hutch_build(&run, "localhost/arm:2", &["--platform", "linux/arm64"]));
    } else {
        let out = s.hutch_build(&run, "localhost/arm:2", &["--platform", "linux/arm64"]);
        assert!(!out.status.success());
        let err = error_line(&out);
        assert!(err.contains("Dockerfile:3: RUN:") && err.contains("binfmt_misc handler for arm64"), "{err}");
    }
}

/// History as BuildKit writes it (a line per instruction, empty layers
/// marked); with a timestamp (`--timestamp`, or SOURCE_DATE_EPOCH as a
/// build argument) two builds from nothing give the same image digest.
#[test]
fn history_lines_and_reproducible_builds() {
    let s = setup("repro");
    let case = Case {
        name: "repro",
        dockerfile: "ARG REG\nFROM $REG/test/bb:1\nENV A=1\nCOPY f /f\nRUN echo made > /made && touch /late\nLABEL l=1\nCMD [\"cat\", \"/f\"]\n",
        files: &[F::Text("f", "f\n")],
        args: &[],
    };
    let out = s.hutch_build(&case, "localhost/repro:1", &["-q", "--timestamp", "1700000000"]);
    assert_success(&out);
    let first = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let history = s.env.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "localhost/repro:1"]);
    let lines: Vec<&str> = history.lines().take(5).collect();
    assert_eq!(
        lines,
        [
            "CMD [\"cat\", \"/f\"]",
            "LABEL l=1",
            "RUN /bin/sh -c echo made > /made && touch /late # buildkit",
            "COPY f /f # buildkit",
            "ENV A=1"
        ],
        "{history}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = s.hutch_build(&case, "localhost/repro:2", &["-q", "--no-cache", "--timestamp", "1700000000"]);
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), first, "the same image, built again from nothing");
    let inspect: Value = serde_json::from_str(&s.env.ok(&["inspect", "localhost/repro:2"])).unwrap();
    assert_eq!(inspect[0]["Created"], "2023-11-14T22:13:20Z");
    let with_arg = |tag: &str| {
        let out = s.hutch_build(&case, tag, &["-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1600000000"]);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let a = with_arg("localhost/repro:3");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(with_arg("localhost/repro:4"), a);
    assert_ne!(a, first);
    // Without a timestamp, the times are the build's own.
    let out = s.hutch_build(&case, "localhost/repro:5", &["-q", "--no-cache"]);
    assert_success(&out);
    assert_ne!(String::from_utf8_lossy(&out.stdout).trim(), first);
}

/// `builder prune` empties the cache (the next build runs every step);
/// `image prune` keeps it, and neither touches a named image.
#[test]
fn builder_prune_empties_the_cache_and_image_prune_keeps_it() {
    let s = setup("prune");
    let case = Case {
        name: "prune",
        dockerfile: "ARG REG\nFROM $REG/test/bb:1\nRUN echo one > /one\nCOPY f /f\n",
        files: &[F::Text("f", "f\n")],
        args: &[],
    };
    let build = || {
        let out = s.hutch_build(&case, "localhost/prune:1", &[]);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).matches("Using cache").count()
    };
    assert_eq!(build(), 0);
    s.env.ok(&["image", "prune"]);
    assert_eq!(build(), 2, "image prune keeps the build cache");
    let out = s.env.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Removed the build cache"), "{out}");
    assert_eq!(file_text(&s, "localhost/prune:1", "/one"), "one\n", "the named image stays");
    assert_eq!(build(), 0, "after builder prune every step runs");
    s.env.ok(&["image", "prune", "--build-cache"]);
    assert_eq!(build(), 0);
}

/// A hostile base image (a layer entry climbing out with `..`) is refused
/// as `pull` refuses it: one line, nothing recorded, nothing left.
#[test]
fn a_hostile_base_image_is_refused() {
    let s = setup("hostile-base");
    let hostile = TarBuilder::new().file("../../../../../../tmp/hutch-build-escaped", b"x").finish();
    let mut image = base_image();
    image.layers.push(Layer::gzip(hostile));
    s.registry.push_image("test/hostile", "1", &image);
    let case = Case {
        name: "hostile_base",
        dockerfile: "ARG REG\nFROM $REG/test/hostile:1\nRUN true\n",
        files: &[],
        args: &[],
    };
    let out = s.hutch_build(&case, "localhost/hostile:1", &[]);
    assert!(!out.status.success());
    let err = error_line(&out);
    assert!(err.contains("Dockerfile:2: FROM:") && err.contains("'..'"), "{err}");
    assert!(!Path::new("/tmp/hutch-build-escaped").exists());
    assert_eq!(s.env.ok(&["images", "-q"]), "");
    assert!(s.env.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// A build killed in the middle of a RUN: its step's container is
/// removed by the next build, and no image was made of it.
#[test]
fn a_killed_build_leaves_nothing_the_next_build_keeps() {
    let s = setup("killed");
    s.env.ok(&["pull", "-q", &format!("{}/test/bb:1", s.registry.addr)]);
    let case =
        Case { name: "killed", dockerfile: "ARG REG\nFROM $REG/test/bb:1\nRUN sleep 60\n", files: &[], args: &[] };
    let ctx = s.context(&case);
    let reg = s.reg_arg();
    let mut c = s.env.h.cmd();
    c.env("HUTCH_ROOT", s.env.store.path()).args(["build", "--build-arg", &reg, ctx.to_str().unwrap()]);
    let mut build = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.env.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the RUN did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let images = s.env.ok(&["images", "-q"]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(build.id().cast_signed()), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    build.wait().unwrap();
    let after =
        Case { name: "killed_after", dockerfile: "ARG REG\nFROM $REG/test/bb:1\nENV A=1\n", files: &[], args: &[] };
    assert_success(&s.hutch_build(&after, "localhost/after:1", &["-q"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s.env.ok(&["ps", "-a", "-q"]).trim().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the killed step's container is still listed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let now = s.env.ok(&["images", "-q"]);
    assert_eq!(now.lines().count(), images.lines().count() + 1, "only the second build's image was added: {now}");
}

/// CMD's and ENTRYPOINT's shell forms run with the stage's SHELL, as
/// Docker's reference has it (podman 4.3 keeps `/bin/sh -c`: a difference
/// on purpose, so this one is checked against the reference, not podman).
#[test]
fn shell_forms_of_cmd_and_entrypoint_use_the_stage_shell() {
    let s = setup("shell-cmd");
    let result = hutch_only(
        &s,
        "shell_cmd",
        "ARG REG\nFROM $REG/test/bb:1\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nENTRYPOINT exec echo\nCMD echo $HOME\n",
        &[],
        &[],
    );
    assert_eq!(result["config"]["Entrypoint"], json!(["/bin/sh", "-e", "-c", "exec echo"]));
    assert_eq!(result["config"]["Cmd"], json!(["/bin/sh", "-e", "-c", "echo $HOME"]));
}
