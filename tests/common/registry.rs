//! A real OCI registry (Debian's docker-registry) on 127.0.0.1 for one
//! test, and what it takes to push images to it: layers built as tar
//! streams here (hostile ones included), configs, manifests and indexes.
#![allow(dead_code)]

use super::Scratch;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    pub addr: String,
    /// `Basic …` for registries started with a login.
    auth: Option<String>,
    child: Child,
    _dir: Scratch,
    _auth_dir: Option<Scratch>,
}

impl Registry {
    pub fn start(test: &str) -> Registry {
        Registry::start_with(test, None)
    }

    /// A registry that wants `user`/`password` (htpasswd with this bcrypt hash).
    pub fn start_with_login(test: &str, user: &str, password: &str, bcrypt: &str) -> Registry {
        Registry::start_with(test, Some((user, password, bcrypt)))
    }

    /// A registry that wants tokens from `tokens`; the tests may push to `repos`.
    pub fn start_with_tokens(test: &str, tokens: &super::token::TokenServer, repos: &[&str]) -> Registry {
        let auth = format!("Bearer {}", tokens.push_token(repos));
        Registry::launch(test, tokens.registry_config(), Some(auth))
    }

    fn start_with(test: &str, login: Option<(&str, &str, &str)>) -> Registry {
        let Some((user, password, bcrypt)) = login else { return Registry::launch(test, String::new(), None) };
        let dir = Scratch::new(&format!("registry-{test}-htpasswd"));
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{bcrypt}\n")).unwrap();
        let yaml = format!("auth:\n  htpasswd:\n    realm: hutch-test\n    path: {}\n", htpasswd.display());
        use base64::Engine as _;
        let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        let mut registry = Registry::launch(test, yaml, Some(auth));
        registry._auth_dir = Some(dir);
        registry
    }

    /// Starts the registry with `auth_yaml` as its auth section; `auth` is
    /// the Authorization header the tests' own requests carry.
    fn launch(test: &str, auth_yaml: String, auth: Option<String>) -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(std::path::Path::new(bin).exists(), "missing prerequisite: {bin} (apt-get install docker-registry)");
        let dir = Scratch::new(&format!("registry-{test}"));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
            dir.path().join("data").display()
        );
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { addr, auth, child, _dir: dir, _auth_dir: None };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = registry.authed(agent().get(registry.url("/v2/"))).call() {
                if r.status() == 200 {
                    return registry;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not come up on {}", registry.addr);
    }

    fn authed<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The media type the registry gives the manifest `repo:reference`.
    pub fn manifest_type(&self, repo: &str, reference: &str) -> String {
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        let r =
            self.authed(agent().get(self.url(&format!("/v2/{repo}/manifests/{reference}")))).header("Accept", accept);
        let r = r.call().unwrap();
        r.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_string()).unwrap_or_default()
    }

    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let r = self.authed(agent().post(self.url(&format!("/v2/{repo}/blobs/uploads/")))).send_empty().unwrap();
        assert_eq!(r.status(), 202, "start upload");
        let location = r.headers().get("location").unwrap().to_str().unwrap().to_string();
        let location = if location.starts_with("http") { location } else { self.url(&location) };
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = self
            .authed(agent().put(&format!("{location}{sep}digest={digest}")))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
        assert_eq!(r.status(), 201, "upload blob {digest}");
        digest
    }

    pub fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let r = self
            .authed(agent().put(self.url(&format!("/v2/{repo}/manifests/{reference}"))))
            .header("Content-Type", media_type)
            .send(bytes)
            .unwrap();
        let status = r.status();
        let body = r.into_body().read_to_string().unwrap_or_default();
        assert_eq!(status, 201, "push manifest {repo}:{reference}: {body}");
        sha256(bytes)
    }

    /// Pushes an image of `layers` (compressed bytes, media type) whose
    /// config runs `cmd`, and returns the manifest's digest.
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) -> String {
        let (manifest, _) = self.push_parts(repo, image);
        self.push_manifest(repo, tag, OCI_MANIFEST, &manifest)
    }

    /// Blobs and config pushed; the manifest returned for the caller to push
    /// (alone, or in an index).
    pub fn push_parts(&self, repo: &str, image: &Image) -> (Vec<u8>, String) {
        let mut layer_descs = Vec::new();
        for layer in &image.layers {
            let digest = self.push_blob(repo, &layer.blob);
            layer_descs
                .push(serde_json::json!({"mediaType": layer.media_type, "digest": digest, "size": layer.blob.len()}));
        }
        let config = image.config_json();
        let config_digest = self.push_blob(repo, &config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layer_descs,
        }))
        .unwrap();
        (manifest, config_digest)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// bcrypt of "hutch-secret" (cost 5), for a registry's htpasswd.
pub const SECRET_BCRYPT: &str = "$2a$05$0DGJ9emHi0F.Ol2LY0JWSudUfdZ55C4PpzCmY49tE/TOywL7.M95i";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One layer: its uncompressed tar (for the diff_id) and the blob pushed.
pub struct Layer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub media_type: &'static str,
}

impl Layer {
    pub fn gzip(tar: Vec<u8>) -> Layer {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&tar).unwrap();
        Layer { blob: enc.finish().unwrap(), tar, media_type: GZIP_LAYER }
    }

    pub fn zstd(tar: Vec<u8>) -> Layer {
        let blob = ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
        Layer { blob, tar, media_type: ZSTD_LAYER }
    }

    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer { blob: tar.clone(), tar, media_type: TAR_LAYER }
    }
}

pub struct Image {
    pub layers: Vec<Layer>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub arch: String,
    /// Overrides the diff_ids computed from the layers.
    pub diff_ids: Option<Vec<String>>,
    /// `ExposedPorts` (`8080/tcp`).
    pub exposed_ports: Vec<String>,
    pub stop_signal: String,
    /// Docker's `Healthcheck` (`HEALTHCHECK` in a Dockerfile); null for none.
    pub healthcheck: serde_json::Value,
    /// `Volumes` (`VOLUME /path`).
    pub volumes: Vec<String>,
}

impl Image {
    pub fn new(layers: Vec<Layer>, cmd: &[&str]) -> Image {
        Image {
            layers,
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            entrypoint: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            workdir: String::new(),
            user: String::new(),
            arch: host_arch().into(),
            diff_ids: None,
            exposed_ports: Vec::new(),
            stop_signal: String::new(),
            healthcheck: serde_json::Value::Null,
            volumes: Vec::new(),
        }
    }

    pub fn config_json(&self) -> Vec<u8> {
        let diff_ids = self.diff_ids.clone().unwrap_or_else(|| self.layers.iter().map(|l| sha256(&l.tar)).collect());
        let history: Vec<serde_json::Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, _)| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
            .collect();
        let mut config = serde_json::json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": self.arch,
            "os": "linux",
            "config": {
                "Cmd": self.cmd, "Entrypoint": if self.entrypoint.is_empty() { serde_json::Value::Null } else { serde_json::json!(self.entrypoint) },
                "Env": self.env, "WorkingDir": self.workdir, "User": self.user,
                "ExposedPorts": self.exposed_ports.iter().map(|p| (p.clone(), serde_json::json!({}))).collect::<serde_json::Map<_, _>>(),
                "StopSignal": self.stop_signal,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if !self.volumes.is_empty() {
            let volumes = self.volumes.iter().map(|p| (p.clone(), serde_json::json!({})));
            config["config"]["Volumes"] = volumes.collect::<serde_json::Map<_, _>>().into();
        }
        if !self.healthcheck.is_null() {
            config["config"]["Healthcheck"] = self.healthcheck.clone();
        }
        serde_json::to_vec(&config).unwrap()
    }
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Builds tar streams entry by entry. Names are written raw into the
/// header, so hostile names (`..`, absolute) go in as an attacker would
/// write them.
#[derive(Default)]
pub struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder::default()
    }

    fn header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "short names only");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0, pad));
    }

    pub fn dir(mut self, name: &str) -> Self {
        let h = Self::header(name, tar::EntryType::Directory, 0o755, 0);
        self.push(h, &[]);
        self
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.file_owned(name, data, 0o644, 0, 0);
        self
    }

    pub fn file_mode(mut self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        self.file_owned(name, data, mode, uid, gid);
        self
    }

    fn file_owned(&mut self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) {
        let mut h = Self::header(name, tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data);
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        let mut h = Self::header(name, tar::EntryType::Symlink, 0o777, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &[]);
        self
    }

    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        let mut h = Self::header(name, tar::EntryType::Link, 0o644, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &[]);
        self
    }

    pub fn device(mut self, name: &str) -> Self {
        let mut h = Self::header(name, tar::EntryType::Char, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        self.push(h, &[]);
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0, 1024));
        self.out
    }
}

/// A layer with busybox and the applets the tests use, an /etc/passwd
/// with root and `app` (1000), and /tmp.
pub fn busybox_layer() -> Vec<u8> {
    let applets = [
        "sh", "cat", "ls", "echo", "id", "stat", "test", "env", "pwd", "find", "sort", "readlink", "touch", "rm",
        "true", "sleep", "mkdir", "ln", "chown",
    ];
    busybox_layer_with(&applets.map(String::from), &[])
}

/// The same with these `applets`, and these more top directories.
pub fn busybox_layer_with(applets: &[String], dirs: &[&str]) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("missing prerequisite: /bin/busybox (busybox-static)");
    let mut t = TarBuilder::new().dir("bin/").dir("etc/");
    for dir in dirs {
        t = t.dir(dir);
    }
    t = t
        .dir("tmp/")
        .file_mode("bin/busybox", &busybox, 0o755, 0, 0)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
        .file("etc/group", b"root:x:0:\napp:x:1000:\n");
    for applet in applets {
        t = t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.finish()
}
