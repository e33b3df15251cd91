//! `hutch push` against Debian's real docker-registry on 127.0.0.1: an
//! image pushed, removed and pulled back is the same; a second push sends
//! no blob, a push to another repository mounts them instead of sending
//! them; a registry wanting a login gets it and a wrong one is one line
//! with nothing tagged; archives as destinations load back.

mod common;

use common::registry::{busybox_layer, Image, Layer, Registry, SECRET_BCRYPT};
use common::*;

/// An image with a layer pulled (gzip) and one committed here (stored
/// uncompressed, compressed by the push): `NAME` in `env`'s store.
fn image_with_a_committed_layer(env: &Env, reg: &Registry, name: &str) {
    reg.push_image("test/base", "1", &Image::new(vec![Layer::gzip(busybox_layer())], &["sh"]));
    let base = format!("{}/test/base:1", reg.addr);
    env.ok(&[
        "run",
        "--name",
        "maker",
        "--network",
        "none",
        &base,
        "sh",
        "-c",
        "mkdir /data && echo pushed > /data/file",
    ]);
    env.ok(&["commit", "-c", "CMD [\"cat\", \"/data/file\"]", "maker", name]);
    env.ok(&["rm", "maker"]);
}

fn lines_with(out: &std::process::Output, what: &str) -> usize {
    stderr(out).lines().filter(|l| l.contains(what)).count()
}

#[test]
fn a_pushed_image_pulls_back_the_same_and_a_second_push_sends_nothing() {
    let reg = Registry::start("push");
    let env = Env::new("push");
    let name = format!("{}/mine/app:1", reg.addr);
    image_with_a_committed_layer(&env, &reg, &name);
    let digestfile = env.store.path().join("digest");
    let out = env.hutch(&["push", "--digestfile", digestfile.to_str().unwrap(), &name]);
    assert_success(&out);
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(std::fs::read_to_string(&digestfile).unwrap(), digest);
    // The base layer, pulled from test/base of the same registry, is
    // mounted from there; the committed layer and the config are sent.
    assert_eq!(lines_with(&out, "Copied blob"), 2, "{}", stderr(&out));
    assert_eq!(lines_with(&out, "Mounted blob"), 1, "{}", stderr(&out));
    // Again: the registry has every blob, nothing is compressed or sent.
    let again = env.hutch(&["push", &name]);
    assert_success(&again);
    assert_eq!(lines_with(&again, "already there"), 3, "{}", stderr(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), digest, "the same manifest");
    // To another repository of the same registry, and back from it.
    let other = format!("{}/other/copy:2", reg.addr);
    let copied = env.hutch(&["push", &name, &format!("docker://{other}")]);
    assert_success(&copied);
    assert_eq!(lines_with(&copied, "Mounted blob"), 3, "every blob mounted from mine/app: {}", stderr(&copied));
    assert_eq!(reg.manifest_type("mine/app", "1"), "application/vnd.oci.image.manifest.v1+json");
    // Docker's schema 2, as podman's --format v2s2.
    let docker = format!("{}/docker/app:1", reg.addr);
    assert_success(&env.hutch(&["push", "-q", "--format", "v2s2", &name, &docker]));
    assert_eq!(reg.manifest_type("docker/app", "1"), "application/vnd.docker.distribution.manifest.v2+json");
    let fresh = Env::new("push-fresh");
    assert_eq!(fresh.ok(&["run", "--rm", "--network", "none", &docker]), "pushed\n");
    assert_eq!(fresh.ok(&["run", "--rm", "--network", "none", &other]), "pushed\n");
    assert_eq!(fresh.ok(&["run", "--rm", "--network", "none", &name]), "pushed\n");
    let pulled: serde_json::Value = serde_json::from_str(&fresh.ok(&["inspect", &name])).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &name])).unwrap();
    assert_eq!(pulled[0]["Id"], ours[0]["Id"], "the same config");
    assert_eq!(pulled[0]["RootFS"], ours[0]["RootFS"], "the same layers");
}

#[test]
fn a_push_to_a_registry_wanting_a_login_needs_the_right_one() {
    let reg = Registry::start_with_login("push-login", "tester", "hutch-secret", SECRET_BCRYPT);
    let open = Registry::start("push-login-base");
    let env = Env::new("push-login");
    let name = format!("{}/private/app:1", reg.addr);
    image_with_a_committed_layer(&env, &open, &name);
    let auth = env.store.path().join("auth.json");
    let hutch = |args: &[&str], stdin: &str| {
        let mut c = env.h.cmd();
        c.env("HUTCH_ROOT", env.store.path()).env("REGISTRY_AUTH_FILE", &auth).args(args);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = hutch(&["push", &name], "");
    assert_eq!(out.status.code(), Some(125));
    assert!(error_line(&out).contains("wants a login: hutch login"), "{}", error_line(&out));
    // A login stored for the registry, with a password it refuses.
    std::fs::write(&auth, format!("{{\"auths\":{{\"{}\":{{\"auth\":\"dGVzdGVyOndyb25n\"}}}}}}", reg.addr)).unwrap();
    let out = hutch(&["push", &name], "");
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(stderr(&out).lines().filter(|l| l.starts_with("hutch:")).count(), 1, "{}", stderr(&out));
    let fresh = Env::new("push-login-fresh");
    std::fs::remove_file(&auth).unwrap();
    assert_success(&hutch(&["login", "-u", "tester", "--password-stdin", &reg.addr], "hutch-secret\n"));
    let pulled = {
        let mut c = fresh.h.cmd();
        c.env("HUTCH_ROOT", fresh.store.path()).env("REGISTRY_AUTH_FILE", &auth).args(["pull", "-q", &name]);
        c.output().unwrap()
    };
    assert!(!pulled.status.success(), "nothing was tagged by the refused pushes");
    assert_success(&hutch(&["push", "-q", &name], ""));
    let mut c = fresh.h.cmd();
    c.env("HUTCH_ROOT", fresh.store.path()).env("REGISTRY_AUTH_FILE", &auth).args([
        "run",
        "--rm",
        "--network",
        "none",
        &name,
    ]);
    let out = c.output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pushed\n");
}

#[test]
fn archives_as_destinations_load_back() {
    let reg = Registry::start("push-archive");
    let env = Env::new("push-archive");
    let name = "localhost/archived:1";
    image_with_a_committed_layer(&env, &reg, name);
    let file = env.store.path().join("out.tar");
    assert_success(&env.hutch(&["push", name, &format!("oci-archive:{}", file.display())]));
    let other = Env::new("push-archive-load");
    other.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(other.ok(&["run", "--rm", "--network", "none", name]), "pushed\n");
    let bad = env.hutch(&["push", name, &format!("{}/x/y@sha256:{}", reg.addr, "a".repeat(64))]);
    assert!(error_line(&bad).contains("push to a tag, not a digest"), "{}", error_line(&bad));
}
