//! Images from a real registry (Debian's docker-registry on 127.0.0.1):
//! pull, run with the image's config, whiteouts, platforms, hostile
//! layers, corrupt and cut-short downloads, concurrent pulls, removal,
//! logins (htpasswd, and Bearer tokens from a token server).

mod common;

use common::registry::{busybox_layer, Image, Layer, Registry, TarBuilder, OCI_INDEX, SECRET_BCRYPT};
use common::*;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// The entries of a directory of the store, sorted; lock files and the
/// layers' format files (`layers/HEX.json`, which go with their layer) left out.
fn entries(env: &Env, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.store.path().join(dir))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let format_file = |name: &str| dir == "layers" && name.ends_with(".json");
    v.retain(|name| !name.starts_with('.') && !format_file(name));
    v.sort();
    v
}

fn busybox_image(cmd: &[&str]) -> Image {
    Image::new(vec![Layer::gzip(busybox_layer())], cmd)
}

#[test]
fn pulled_images_run_with_their_config_and_flags_override_it() {
    let reg = Registry::start("config");
    let mut image = busybox_image(&["sh", "-c", "echo $GREETING from $(pwd) as $(id -u)"]);
    image.env.push("GREETING=image".into());
    image.workdir = "/tmp".into();
    let owned =
        TarBuilder::new().dir("home/").dir("home/app/").file_mode("home/app/data", b"x", 0o4755, 1000, 1000).finish();
    image.layers.push(Layer::gzip(owned));
    reg.push_image("test/busybox", "1", &image);
    let name = format!("{}/test/busybox:1", reg.addr);
    let env = Env::new("config");

    let out = env.hutch(&["pull", &name]);
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 71, "prints the image id");
    let listing = env.ok(&["images"]);
    assert!(listing.contains(&format!("{}/test/busybox", reg.addr)) && listing.contains(" 1 "), "{listing}");
    let with_digests = env.ok(&["images", "--digests"]);
    assert!(with_digests.lines().next().unwrap().contains("DIGEST"), "{with_digests}");
    assert!(
        with_digests.lines().nth(1).unwrap().contains(" sha256:"),
        "the manifest digest it was pulled by: {with_digests}"
    );

    assert_eq!(env.ok(&["run", "--rm", &name]), "image from /tmp as 0\n");
    assert_eq!(env.ok(&["run", "--rm", "-e", "GREETING=flag", "-w", "/", &name]), "flag from / as 0\n");
    if expect_subids() {
        assert_eq!(env.ok(&["run", "--rm", "-u", "1000", &name]), "image from /tmp as 1000\n");
    }
    assert_eq!(env.ok(&["run", "--rm", &name, "echo", "args", "replace", "Cmd"]), "args replace Cmd\n");
    assert_eq!(env.ok(&["run", "--rm", "--entrypoint", "/bin/echo", &name, "x"]), "x\n");

    // Owners and setuid bits from the layer.
    let stat = env.ok(&["run", "--rm", &name, "stat", "-c", "%u:%g %a", "/home/app/data"]);
    if expect_subids() {
        assert_eq!(stat, "1000:1000 4755\n");
    } else {
        assert_eq!(stat, "0:0 4755\n", "without subordinate ids, owners are kept as metadata only");
        assert!(stderr(&out).contains("outside your mapping"), "{}", stderr(&out));
    }
    assert!(entries(&env, "containers").is_empty(), "--rm removes the container's files");
}

#[test]
fn run_pulls_a_missing_image_and_says_so() {
    let reg = Registry::start("autopull");
    reg.push_image("test/auto", "latest", &busybox_image(&["echo", "pulled"]));
    let env = Env::new("autopull");
    let out = env.hutch(&["run", "--rm", &format!("{}/test/auto", reg.addr)]);
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled\n");
    assert!(stderr(&out).contains("Unable to find image"), "{}", stderr(&out));
    let never = env.hutch(&["run", "--rm", "--pull", "never", &format!("{}/test/other", reg.addr)]);
    assert_eq!(never.status.code(), Some(125));
    assert!(error_line(&never).contains("no such image"), "{}", error_line(&never));
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_files() {
    let reg = Registry::start("whiteouts");
    let lower = TarBuilder::new()
        .dir("etc/")
        .file("etc/gone", b"1")
        .file("etc/kept", b"2")
        .dir("data/")
        .file("data/a", b"a")
        .dir("data/sub/")
        .file("data/sub/b", b"b")
        .finish();
    let upper = TarBuilder::new()
        .dir("etc/")
        .file("etc/.wh.gone", b"")
        .dir("data/")
        .file("data/.wh..wh..opq", b"")
        .file("data/c", b"c")
        .finish();
    let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(lower), Layer::zstd(upper)], &["sh"]);
    reg.push_image("test/wh", "1", &image);
    let env = Env::new("whiteouts");
    let name = format!("{}/test/wh:1", reg.addr);
    // Both drivers read the layers as unpacked (whiteouts as the kernel reads them).
    for driver in ["overlay", "fuse-overlay"] {
        let script = "test -e /etc/gone || echo gone; cat /etc/kept; echo; find /data";
        let out = env.ok(&["--storage-driver", driver, "run", "--rm", &name, "sh", "-c", script]);
        assert_eq!(out, "gone\n2\n/data\n/data/c\n", "{driver}");
    }
}

#[test]
fn device_nodes_of_a_layer_show_as_devices_that_cannot_be_opened() {
    let reg = Registry::start("devices");
    let devs = TarBuilder::new().dir("devs/").device("devs/null").finish();
    let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(devs)], &["sh"]);
    reg.push_image("test/devices", "1", &image);
    let env = Env::new("devices");
    let script = "stat -c '%F %t:%T %a' /devs/null; cat /devs/null 2>/dev/null || echo refused; ls /devs";
    let out = env.ok(&["run", "--rm", &format!("{}/test/devices:1", reg.addr), "sh", "-c", script]);
    assert_eq!(out, "character special file 1:3 666\nrefused\nnull\n");
    // Only fuse-overlay shows device nodes: chosen for this image.
    env.ok(&["create", "--name", "devs", &format!("{}/test/devices:1", reg.addr)]);
    let driver = env.ok(&["inspect", "--format", "{{.GraphDriver.Name}}: {{.GraphDriver.Why}}", "devs"]);
    assert_eq!(driver, "fuse-overlay: the image has device nodes, which only fuse-overlay shows\n");
}

#[test]
fn the_root_is_a_fuse_overlay_whose_writable_layer_outlives_the_container() {
    let reg = Registry::start("fuseroot");
    let data = TarBuilder::new().dir("data/").file("data/base", b"from the image\n").finish();
    let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(data)], &["sh"]);
    reg.push_image("test/fuseroot", "1", &image);
    let env = Env::new("fuseroot");
    let name = format!("{}/test/fuseroot:1", reg.addr);
    let script =
        "grep -c ' / fuse' /proc/mounts; echo changed >> /data/base; rm /bin/ls; mkdir /data/new; echo n > /data/new/f";
    let out = env.ok(&["--storage-driver", "fuse-overlay", "run", "--name", "kept", &name, "sh", "-c", script]);
    assert_eq!(out, "1\n", "the root is one FUSE mount");
    // The container's writable layer stays in the store, in the layer
    // format, where inspect says it is.
    let ids = entries(&env, "containers");
    assert_eq!(ids.len(), 1, "one container kept: {ids:?}");
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "kept"])).unwrap();
    let driver = &inspect[0]["GraphDriver"];
    assert_eq!(driver["Name"], "fuse-overlay");
    let upper = PathBuf::from(driver["Data"]["UpperDir"].as_str().unwrap());
    assert_eq!(upper, env.store.path().join("containers").join(&ids[0]).join("upper"));
    let lowers = driver["Data"]["LowerDir"].as_str().unwrap().split(':').map(PathBuf::from).collect::<Vec<_>>();
    assert_eq!(lowers.len(), 2, "{lowers:?}");
    assert!(lowers.iter().all(|l| l.starts_with(env.store.path().join("layers"))), "{lowers:?}");
    assert_eq!(std::fs::read_to_string(upper.join("data/base")).unwrap(), "from the image\nchanged\n");
    assert!(upper.join("bin/.wh.ls").exists(), "a removal is a whiteout");
    assert_eq!(std::fs::read_to_string(upper.join("data/new/f")).unwrap(), "n\n");
    // The image's layers never change.
    let again =
        env.ok(&["--storage-driver", "fuse-overlay", "run", "--rm", &name, "sh", "-c", "cat /data/base; ls /bin/ls"]);
    assert_eq!(again, "from the image\n/bin/ls\n");
    assert_eq!(entries(&env, "containers").len(), 1, "--rm leaves nothing behind");
}

#[test]
fn the_hosts_platform_is_chosen_from_an_index() {
    let reg = Registry::start("platforms");
    let native = busybox_image(&["echo", "native"]);
    let mut other = Image::new(vec![Layer::gzip(TarBuilder::new().file("marker", b"s390x").finish())], &["x"]);
    other.arch = "s390x".into();
    let (m1, _) = reg.push_parts("test/multi", &native);
    let (m2, _) = reg.push_parts("test/multi", &other);
    let d1 = reg.push_manifest("test/multi", &common::registry::sha256(&m1), common::registry::OCI_MANIFEST, &m1);
    let d2 = reg.push_manifest("test/multi", &common::registry::sha256(&m2), common::registry::OCI_MANIFEST, &m2);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": common::registry::OCI_MANIFEST, "digest": d2, "size": m2.len(), "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": common::registry::OCI_MANIFEST, "digest": d1, "size": m1.len(), "platform": {"os": "linux", "architecture": common::registry::host_arch()}},
        ]
    }))
    .unwrap();
    reg.push_manifest("test/multi", "1", OCI_INDEX, &index);
    let name = format!("{}/test/multi:1", reg.addr);
    let env = Env::new("platforms");
    assert_eq!(env.ok(&["run", "--rm", &name]), "native\n");

    env.ok(&["pull", "--platform", "linux/s390x", &name]);
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &name])).unwrap();
    assert_eq!(inspect[0]["Architecture"], "s390x");

    let out = env.hutch(&["pull", "--platform", "linux/riscv64", &name]);
    assert_eq!(out.status.code(), Some(125));
    let line = error_line(&out);
    assert!(
        line.contains("no image for platform linux/riscv64")
            && line.contains("linux/s390x")
            && line.contains(&format!("linux/{}", common::registry::host_arch())),
        "{line}"
    );
}

#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    let reg = Registry::start("hostile");
    let env = Env::new("hostile");
    let target = Scratch::new("hostile-target");
    let outside = target.path().display().to_string();
    let rel_up = "../../../../../../../../../..";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", TarBuilder::new().file(&format!("{rel_up}{outside}/dotdot"), b"x").finish(), "'..' component"),
        ("absolute", TarBuilder::new().file(&format!("{outside}/absolute"), b"x").finish(), "absolute path"),
        (
            "symlink-parent",
            TarBuilder::new().symlink("link", &outside).file("link/through-link", b"x").finish(),
            "symlink or not a directory",
        ),
        (
            "relative-symlink-parent",
            TarBuilder::new().symlink("up", rel_up).file(&format!("up{outside}/through-up"), b"x").finish(),
            "symlink or not a directory",
        ),
        ("hardlink-absolute", TarBuilder::new().hardlink("passwd", "/etc/passwd").finish(), "absolute path"),
        ("hardlink-dotdot", TarBuilder::new().hardlink("passwd", "../../../../etc/passwd").finish(), "'..' component"),
        (
            "hardlink-through-symlink",
            TarBuilder::new().symlink("etc", "/etc").hardlink("passwd", "etc/passwd").finish(),
            "symlink or not a directory",
        ),
        (
            "hardlink-before-target",
            TarBuilder::new().hardlink("early", "late").file("late", b"x").finish(),
            "not in this layer before it",
        ),
    ];
    for (name, tar, reason) in cases {
        let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(tar)], &["sh"]);
        reg.push_image(&format!("hostile/{name}"), "1", &image);
        let out = env.hutch(&["pull", "-q", &format!("{}/hostile/{name}:1", reg.addr)]);
        assert_eq!(out.status.code(), Some(125), "{name}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains(reason) && line.contains("nothing was unpacked"), "{name}: {line}");
        assert_eq!(line.lines().count(), 1, "{name}: one line: {line}");
    }
    let leaked: Vec<_> = std::fs::read_dir(target.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leaked.is_empty(), "files appeared outside the store: {leaked:?}");
    assert_eq!(entries(&env, "tmp"), Vec::<String>::new(), "no staging leftovers");
    assert_eq!(env.ok(&["images", "-q"]), "", "no hostile image is recorded");
}

#[test]
fn a_wrong_diff_id_keeps_nothing() {
    let reg = Registry::start("diffid");
    let mut image = busybox_image(&["sh"]);
    image.diff_ids = Some(vec![format!("sha256:{}", "0".repeat(64))]);
    reg.push_image("test/bad", "1", &image);
    let env = Env::new("diffid");
    let out = env.hutch(&["pull", &format!("{}/test/bad:1", reg.addr)]);
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("uncompressed layer sha256:0000"), "{}", error_line(&out));
    assert!(entries(&env, "layers").is_empty() && entries(&env, "tmp").is_empty());
    assert_eq!(env.ok(&["images", "-q"]), "");
}

#[test]
fn a_download_cut_short_is_retried_then_reported_and_the_store_stays_clean() {
    let reg = Registry::start("cut");
    reg.push_image("test/cut", "1", &busybox_image(&["echo", "whole"]));
    let proxy = common::proxy::CuttingProxy::start(&reg.addr);
    let env = Env::new("cut");
    let out = env.hutch(&["pull", &format!("{}/test/cut:1", proxy.addr)]);
    assert_eq!(out.status.code(), Some(125));
    let line = error_line(&out);
    assert!(line.contains("cut short") || line.contains("expected"), "{line}");
    assert!(proxy.blob_requests() >= 3, "retried: {} blob requests", proxy.blob_requests());
    assert!(entries(&env, "layers").is_empty() && entries(&env, "tmp").is_empty());
    // The same store then pulls the image whole from the registry itself.
    assert_eq!(env.ok(&["run", "--rm", &format!("{}/test/cut:1", reg.addr)]), "whole\n");
}

#[test]
fn a_download_cut_once_resumes_where_it_stopped() {
    let reg = Registry::start("resume");
    reg.push_image("test/resume", "1", &busybox_image(&["echo", "whole"]));
    let proxy = common::proxy::CuttingProxy::start_cutting_once(&reg.addr);
    let env = Env::new("resume");
    let name = format!("{}/test/resume:1", proxy.addr);
    env.ok(&["pull", "-q", &name]);
    let ranges = proxy.blob_ranges();
    assert_eq!(ranges.len(), 2, "one cut download, one resumed: {ranges:?}");
    assert_eq!(ranges[0], None);
    let from: u64 =
        ranges[1].as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap();
    assert!(from > 64 * 1024, "the second request asks only for what is missing: {ranges:?}");
    assert_eq!(env.ok(&["run", "--rm", &name]), "whole\n");
    assert!(entries(&env, "tmp").is_empty());
}

#[test]
fn concurrent_pulls_store_one_copy() {
    let reg = Registry::start("concurrent");
    let layers = vec![
        Layer::gzip(busybox_layer()),
        Layer::gzip(TarBuilder::new().file("a", &vec![1u8; 3 << 20]).finish()),
        Layer::zstd(TarBuilder::new().file("b", &vec![2u8; 3 << 20]).finish()),
    ];
    reg.push_image("test/both", "1", &Image::new(layers, &["sh"]));
    let env = Env::new("concurrent");
    let name = format!("{}/test/both:1", reg.addr);
    let spawn = || {
        let mut c = env.h.cmd();
        c.env("HUTCH_ROOT", env.store.path()).args(["pull", "-q", &name]);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        assert_success(&child.wait_with_output().unwrap());
    }
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(entries(&env, "layers").len(), 3);
    assert!(entries(&env, "tmp").is_empty());
}

#[test]
fn rmi_refuses_images_in_use_and_removes_unused_layers() {
    let reg = Registry::start("rmi");
    reg.push_image("test/rmi", "1", &busybox_image(&["true"]));
    let env = Env::new("rmi");
    let name = format!("{}/test/rmi:1", reg.addr);
    env.ok(&["pull", "-q", &name]);
    env.ok(&["tag", &name, "extra:2"]);
    let listing = env.ok(&["images"]);
    assert!(listing.contains("docker.io/library/extra") && listing.contains(" 2 "), "{listing}");
    assert_eq!(env.ok(&["rmi", "extra:2"]), "Untagged: docker.io/library/extra:2\n");
    assert_eq!(entries(&env, "layers").len(), 1, "still named: nothing removed");

    env.ok(&["run", &name]); // no --rm: the container keeps the image in use
    let out = env.hutch(&["rmi", &name]);
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("is used by container"), "{}", error_line(&out));

    let removed = env.ok(&["rmi", "-f", &name]);
    assert!(removed.contains("Untagged") && removed.contains("Deleted: sha256:"), "{removed}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    assert!(entries(&env, "layers").is_empty() && entries(&env, "blobs/sha256").is_empty());
}

#[test]
fn save_and_load_round_trip_and_read_skopeos_archives() {
    let reg = Registry::start("archives");
    let name = format!("{}/test/arch:1", reg.addr);
    reg.push_image("test/arch", "1", &busybox_image(&["echo", "from the archive"]));
    let env = Env::new("archives");
    let dir = Scratch::new("archives-files");
    env.ok(&["pull", "-q", &name]);
    let saved = dir.path().join("saved.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), &name]);
    env.ok(&["rmi", &name]);
    assert!(entries(&env, "layers").is_empty());
    assert_eq!(env.ok(&["load", "-i", saved.to_str().unwrap()]), format!("Loaded image: {name}\n"));
    assert_eq!(env.ok(&["run", "--rm", &name]), "from the archive\n");

    // Archives written by another tool: skopeo's docker-archive and oci-archive.
    env.ok(&["rmi", &name]);
    for (transport, file, tagged) in
        [("docker-archive", "docker.tar", "skopeo/docker:2"), ("oci-archive", "oci.tar", "docker.io/skopeo/oci:3")]
    {
        let path = dir.path().join(file);
        let status = std::process::Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false", &format!("docker://{name}")])
            .arg(format!("{transport}:{}:{tagged}", path.display()))
            .status()
            .expect("missing prerequisite: skopeo");
        assert!(status.success(), "skopeo copy to {transport}");
        let out = env.ok(&["load", "-i", path.to_str().unwrap()]);
        let expected = ImageRefName::qualify(tagged);
        assert_eq!(out, format!("Loaded image: {expected}\n"), "{transport}");
        assert_eq!(env.ok(&["run", "--rm", tagged]), "from the archive\n", "{transport}");
        env.ok(&["rmi", tagged]);
    }
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"not a tar at all").unwrap();
    let out = env.hutch(&["load", "-i", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        error_line(&out).contains("not a readable image archive") || error_line(&out).contains("neither index.json"),
        "{}",
        error_line(&out)
    );
    assert!(entries(&env, "tmp").is_empty());
}

/// Docker's normalisation of a name, as `hutch images` shows it.
struct ImageRefName;
impl ImageRefName {
    fn qualify(name: &str) -> String {
        let (first, _) = name.split_once('/').unwrap_or(("", name));
        if first.contains(['.', ':']) {
            name.to_string()
        } else {
            format!("docker.io/{name}")
        }
    }
}

/// hutch with its logins in `auth_file`, `stdin` as its input.
fn with_auth_file(env: &Env, auth_file: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = env.h.cmd();
    c.env("HUTCH_ROOT", env.store.path()).env("REGISTRY_AUTH_FILE", auth_file).args(args);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_registry_that_wants_a_login_gets_one_from_hutch_login() {
    let reg = Registry::start_with_login("login", "tester", "hutch-secret", SECRET_BCRYPT);
    reg.push_image("private/app", "1", &busybox_image(&["echo", "private"]));
    let env = Env::new("login");
    let auth_file = env.store.path().join("auth.json");
    let name = format!("{}/private/app:1", reg.addr);
    let with_auth = |args: &[&str], stdin: &str| with_auth_file(&env, &auth_file, args, stdin);

    let out = with_auth(&["pull", &name], "");
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("wants a login: hutch login"), "{}", error_line(&out));

    let wrong = with_auth(&["login", "-u", "tester", "--password-stdin", &reg.addr], "wrong\n");
    assert_eq!(wrong.status.code(), Some(125));
    assert!(error_line(&wrong).contains("wrong username or password"), "{}", error_line(&wrong));
    assert!(!auth_file.exists(), "a failed login stores nothing");

    let ok = with_auth(&["login", "-u", "tester", "--password-stdin", &reg.addr], "hutch-secret\n");
    assert_success(&ok);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_success(&with_auth(&["pull", "-q", &name], ""));
    assert_eq!(String::from_utf8_lossy(&with_auth(&["run", "--rm", &name], "").stdout), "private\n");

    assert_success(&with_auth(&["logout", &reg.addr], ""));
    let again = with_auth(&["pull", &name], "");
    assert!(error_line(&again).contains("wants a login"), "{}", error_line(&again));
    let twice = with_auth(&["logout", &reg.addr], "");
    assert!(error_line(&twice).contains("not logged in"), "{}", error_line(&twice));
}

#[test]
fn a_registry_with_token_auth_gets_bearer_tokens_for_the_login_and_the_scope() {
    let tokens = common::token::TokenServer::start("bearer", "tester", "hutch-secret");
    let reg = Registry::start_with_tokens("bearer", &tokens, &["private/app"]);
    reg.push_image("private/app", "1", &busybox_image(&["echo", "from-token-registry"]));
    let env = Env::new("bearer");
    let auth_file = env.store.path().join("auth.json");
    let name = format!("{}/private/app:1", reg.addr);
    let with_auth = |args: &[&str], stdin: &str| with_auth_file(&env, &auth_file, args, stdin);

    // Anonymous: the token server hands out a token that grants nothing.
    let anonymous = with_auth(&["pull", &name], "");
    assert_eq!(anonymous.status.code(), Some(125));
    assert!(error_line(&anonymous).contains("wants a login"), "{}", error_line(&anonymous));
    let wrong = with_auth(&["login", "-u", "tester", "--password-stdin", &reg.addr], "wrong\n");
    assert_eq!(wrong.status.code(), Some(125));
    assert!(error_line(&wrong).contains("wrong credentials"), "{}", error_line(&wrong));
    assert!(!auth_file.exists(), "a failed login stores nothing");

    assert_success(&with_auth(&["login", "-u", "tester", "--password-stdin", &reg.addr], "hutch-secret\n"));
    assert_success(&with_auth(&["pull", "-q", &name], ""));
    assert_eq!(String::from_utf8_lossy(&with_auth(&["run", "--rm", &name], "").stdout), "from-token-registry\n");
    let asked = tokens.scopes_asked.lock().unwrap().clone();
    assert!(asked.iter().any(|s| s == "repository:private/app:pull"), "hutch asks for pull access only: {asked:?}");
    assert!(!asked.iter().any(|s| s.contains("push")), "{asked:?}");
}

#[test]
fn import_makes_an_image_of_a_rootfs_tarball() {
    let env = Env::new("import");
    let dir = Scratch::new("import-files");
    let tarball = dir.path().join("rootfs.tar.gz");
    std::fs::write(&tarball, Layer::gzip(busybox_layer()).blob).unwrap();
    let id = env.ok(&["import", tarball.to_str().unwrap(), "local/box:1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    let listing = env.ok(&["images"]);
    assert!(listing.contains("docker.io/local/box") && listing.contains("second"), "created seconds ago: {listing}");
    assert_eq!(env.ok(&["run", "--rm", "local/box:1", "echo", "imported"]), "imported\n");
    assert!(env.ok(&["history", "local/box:1"]).contains("hutch import"));
    let out = env.hutch(&["run", "--rm", "local/box:1"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("has no command"), "{}", error_line(&out));
}

/// The hidden `.NAME.tmp-…` files beside `file`.
fn temp_siblings(file: &std::path::Path) -> Vec<String> {
    let prefix = format!(".{}.tmp-", file.file_name().unwrap().to_string_lossy());
    let dir = file.parent().unwrap();
    let mut found: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    found.retain(|n| n.starts_with(&prefix));
    found
}

#[test]
fn tmp_entries_of_gone_owners_and_killed_saves_are_swept_by_the_next_command() {
    let reg = Registry::start("killed");
    let name = format!("{}/test/killed:1", reg.addr);
    reg.push_image("test/killed", "1", &busybox_image(&["true"]));
    let env = Env::new("killed");
    // Entries of tmp/ name their owner by pid and start time: one whose
    // owner is gone, or whose pid now belongs to another process (a
    // reused pid), is swept by the next command that reads the store; a
    // live owner's stays.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let (me, started) = (std::process::id(), fields[19].parse::<u64>().unwrap());
    let tmp = env.store.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let live = format!("{me}@{started}-0-layer");
    let reused = format!("{me}@{}-1-layer", started + 1);
    let gone = "999999999@5-2-layer".to_string();
    for entry in [&live, &reused, &gone] {
        std::fs::create_dir_all(tmp.join(entry).join("usr/bin")).unwrap();
    }
    env.ok(&["images"]);
    assert_eq!(entries(&env, "tmp"), vec![live.clone()], "only the live owner's entry stays");
    std::fs::remove_dir_all(tmp.join(&live)).unwrap();
    env.ok(&["pull", "-q", &name]);
    // A save killed just before it renames its archive into place leaves
    // the archive half-named; the next save to that file removes it.
    let dir = Scratch::new("killed-files");
    let archive = dir.path().join("box.tar");
    let mut c = env.h.under_strace("rename:signal=KILL:when=1", Follow::OwnProcess);
    c.args(["save", "-o", archive.to_str().unwrap(), &name]).env("HUTCH_ROOT", env.store.path());
    let killed = c.status().expect("strace (tests/host-setup.sh installs it)");
    assert!(!killed.success(), "strace kills save at its rename");
    assert_eq!(temp_siblings(&archive).len(), 1, "the killed save left its archive half-named");
    env.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    assert!(archive.is_file());
    assert_eq!(temp_siblings(&archive), Vec::<String>::new(), "the next save removed it");
}

/// One command killed again and again: at each of its first renames when
/// strace can follow its children, then at moments spread over its course
/// (hutch alone, or its whole process group as Ctrl-C would). `reset`
/// runs before each attempt.
fn kill_repeatedly(env: &Env, args: &[&str], reset: &dyn Fn()) {
    if !expect_subids() {
        for nth in 1..=8 {
            reset();
            let mut c = env.h.under_strace(&format!("rename:signal=KILL:when={nth}"), Follow::Children);
            let status = c.args(args).env("HUTCH_ROOT", env.store.path()).status();
            let status = status.expect("strace (tests/host-setup.sh installs it)");
            if nth == 1 {
                assert!(!status.success(), "strace kills {args:?} at its first rename: {status:?}");
            }
        }
    }
    reset();
    let started = std::time::Instant::now();
    env.ok(args);
    let whole = started.elapsed();
    for round in 0..8u32 {
        reset();
        let mut c = env.h.cmd();
        c.env("HUTCH_ROOT", env.store.path()).args(args).process_group(0);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let mut child = c.spawn().expect("spawn hutch");
        std::thread::sleep(whole * round / 8 + std::time::Duration::from_millis(u64::from(round) * 3));
        if round % 2 == 0 {
            let group = format!("-{}", child.id());
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &group]).status();
        } else {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// After the kills: no process works on the store, everything listed can
/// be removed, and then nothing is left in it.
fn assert_nothing_left(env: &Env) {
    let left = wait_for_no_process_using(env.store.path());
    assert!(left.is_empty(), "no process of a killed command remains: {left:?}");
    for id in env.ok(&["ps", "-a", "-q", "--no-trunc"]).lines() {
        env.ok(&["rm", "-f", id]);
    }
    for id in env.ok(&["images", "-q", "--no-trunc"]).lines() {
        env.ok(&["rmi", "-f", id]);
    }
    env.ok(&["image", "prune"]);
    for dir in ["tmp", "blobs/sha256", "layers", "containers"] {
        assert_eq!(entries(env, dir), Vec::<String>::new(), "{dir}/ holds nothing once all listed is removed");
    }
    let runtime = env.h.runtime_dir.path().join("hutch/containers");
    let runtime_left = std::fs::read_dir(&runtime).map(|d| d.flatten().count()).unwrap_or(0);
    assert_eq!(runtime_left, 0, "no runtime directory of a removed container remains in {}", runtime.display());
}

#[test]
fn pull_load_save_and_commit_killed_at_any_moment_leave_nothing_behind() {
    let reg = Registry::start("killed-image");
    let name = format!("{}/test/killed:1", reg.addr);
    let extra = TarBuilder::new().dir("data/").file("data/a", &[7u8; 300_000]).file("data/b", b"b").finish();
    let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(extra)], &["true"]);
    reg.push_image("test/killed", "1", &image);
    let files = Scratch::new("killed-image-files");
    let archive = files.path().join("killed.tar");
    let archive = archive.to_str().unwrap();

    let env = Env::new("killed-image");
    env.ok(&["pull", "-q", &name]);
    env.ok(&["save", "-o", archive, &name]);
    let image_gone = || {
        let _ = env.hutch(&["rmi", "-f", &name]);
    };
    kill_repeatedly(&env, &["pull", "-q", &name], &image_gone);
    kill_repeatedly(&env, &["load", "-q", "-i", archive], &image_gone);
    // save: what a killed one leaves beside its file, the next one removes.
    env.ok(&["pull", "-q", &name]);
    let saved = files.path().join("saved.tar");
    let saved = saved.to_str().unwrap();
    kill_repeatedly(&env, &["save", "-o", saved, &name], &|| {});
    env.ok(&["save", "-o", saved, &name]);
    assert_eq!(temp_siblings(std::path::Path::new(saved)), Vec::<String>::new(), "no half-written archive remains");
    // A stopped container with changes to commit.
    env.ok(&["pull", "-q", &name]);
    env.ok(&["run", "--name", "changed", &name, "sh", "-c", "echo changed > /data/c"]);
    let commit_gone = || {
        let _ = env.hutch(&["rmi", "killed/commit:1"]);
    };
    kill_repeatedly(&env, &["commit", "changed", "killed/commit:1"], &commit_gone);
    assert_eq!(env.ok(&["run", "--rm", &name, "cat", "/data/b"]), "b", "the image still runs");
    assert_nothing_left(&env);
}

#[test]
fn the_kernel_overlay_serves_exact_images_and_commit_turns_its_whiteouts_into_ocis() {
    let reg = Registry::start("kernel-overlay");
    let data = TarBuilder::new().dir("data/").file("data/old", b"old\n").finish();
    let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(data)], &["sh"]);
    reg.push_image("test/kernel", "1", &image);
    let name = format!("{}/test/kernel:1", reg.addr);
    let env = Env::new("kernel-overlay");
    let script = "grep -c ' / overlay ' /proc/mounts; rm /bin/ls; rm -r /data; mkdir /data; echo new > /data/new";
    assert_eq!(env.ok(&["run", "--name", "k", &name, "sh", "-c", script]), "1\n", "the root is a kernel overlay");
    let driver =
        env.ok(&["inspect", "--format", "{{.GraphDriver.Name}} {{.GraphDriver.Volatile}}: {{.GraphDriver.Why}}", "k"]);
    assert_eq!(driver, "overlay false: the kernel overlay works on this store and shows these layers exactly\n");
    // The kernel's whiteouts become OCI ones in the committed layer: fuse-overlay,
    // which would show a c 0 0 entry as a device, reads them as removals.
    env.ok(&["commit", "k", "local/committed:1"]);
    let check = "ls /bin/ls 2>/dev/null || echo no-ls; ls /data; cat /data/new";
    for driver in ["fuse-overlay", "overlay"] {
        let out = env.ok(&["--storage-driver", driver, "run", "--rm", "local/committed:1", "sh", "-c", check]);
        assert_eq!(out, "no-ls\nnew\nnew\n", "{driver}");
    }
    let saved = env.store.path().join("saved.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), "local/committed:1"]);
    let names = top_layer_names(&saved);
    assert!(names.contains(&"bin/.wh.ls".to_string()) && names.contains(&"data/.wh..wh..opq".to_string()), "{names:?}");

    // --rm: volatile, as podman mounts it.
    let mounts = env.ok(&["run", "--rm", &name, "sh", "-c", "grep ' / overlay ' /proc/mounts"]);
    assert!(mounts.contains("volatile"), "{mounts}");
    // Forced to fuse-overlay by the config file.
    std::fs::write(env.h.config_file(), "[storage]\ndriver = \"fuse-overlay\"\n").unwrap();
    env.ok(&["create", "--name", "configured", &name]);
    assert_eq!(env.ok(&["inspect", "--format", "{{.GraphDriver.Name}}", "configured"]), "fuse-overlay\n");
    std::fs::remove_file(env.h.config_file()).unwrap();
    let bad = env.hutch(&["--storage-driver", "btrfs", "run", "--rm", &name, "true"]);
    assert_eq!(error_line(&bad), "hutch: unknown storage driver \"btrfs\" (known: overlay, fuse-overlay)");

    // A store from before: layers without their format (OCI whiteouts) stay on fuse-overlay.
    for entry in std::fs::read_dir(env.store.path().join("layers")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    env.ok(&["create", "--name", "old", &name]);
    let why = env.ok(&["inspect", "--format", "{{.GraphDriver.Name}}: {{.GraphDriver.Why}}", "old"]);
    assert_eq!(
        why,
        "fuse-overlay: a layer was unpacked by an earlier hutch, with .wh. whiteouts only fuse-overlay reads\n"
    );
    env.ok(&["rm", "-f", "k", "configured", "old"]);
}

#[test]
fn owners_the_namespace_cannot_map_keep_an_image_on_fuse_overlay() {
    let reg = Registry::start("owners-driver");
    let owned = TarBuilder::new().dir("home/").file_mode("home/app", b"x", 0o644, 1000, 1000).finish();
    let image = Image::new(vec![Layer::gzip(busybox_layer()), Layer::gzip(owned)], &["sh"]);
    reg.push_image("test/owned", "1", &image);
    let name = format!("{}/test/owned:1", reg.addr);
    let env = Env::new("owners-driver");
    let out = env.ok(&["run", "--name", "o", &name, "stat", "-c", "%u", "/home/app"]);
    assert_eq!(out, if expect_subids() { "1000\n" } else { "0\n" }, "kept as metadata only without subordinate ids");
    let driver = env.ok(&["inspect", "--format", "{{.GraphDriver.Name}}", "o"]);
    let forced = env.hutch(&["--storage-driver", "overlay", "run", "--rm", &name, "true"]);
    if expect_subids() {
        assert_eq!(driver, "overlay\n", "subordinate ids map the owner: the kernel overlay is exact");
        assert_success(&forced);
    } else {
        assert_eq!(driver, "fuse-overlay\n", "only fuse-overlay shows an owner kept in an xattr");
        assert_eq!(
            error_line(&forced),
            "hutch: storage driver overlay cannot serve this image: files of the image belong to ids outside your mapping (no subordinate ids): fuse-overlay keeps their owners, the kernel overlay cannot (use --storage-driver auto)"
        );
    }
}

/// The entry names of the top layer of a `save`d archive.
fn top_layer_names(archive: &std::path::Path) -> Vec<String> {
    let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut files = std::collections::HashMap::new();
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(path, bytes);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let top = manifest[0]["Layers"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    let blob = &files[&top];
    let reader: Box<dyn std::io::Read> = if blob.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(&blob[..]))
    } else {
        Box::new(&blob[..])
    };
    let names: Vec<String> = tar::Archive::new(reader)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names
}
