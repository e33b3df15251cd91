//! A synchronous client for OCI distribution registries: manifests and
//! blobs, anonymous or with Basic/Bearer auth (the WWW-Authenticate
//! challenge flow), retries with backoff on transient failures.

use super::reference::is_insecure;
use super::{Digest, Error, ImageRef};
use crate::config::RegistriesConfig;
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{Response, StatusCode};
use ureq::Body;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are small; a registry sending more is broken or hostile.
const MANIFEST_LIMIT: u64 = 4 << 20;
const ATTEMPTS: u32 = 4;

/// Where one repository lives: the host spoken to (the registry or one of
/// its mirrors) and the scheme.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub base: String,
    pub host: String,
    pub repository: String,
}

/// A manifest or index as the registry sent it.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

pub struct Client {
    agent: ureq::Agent,
    config: RegistriesConfig,
    credentials: HashMap<String, (String, String)>,
    /// Bearer tokens per host and repository, shared by download threads.
    tokens: Mutex<HashMap<String, String>>,
    /// The token scope asked for: `pull`, or `pull,push` to upload.
    scope: &'static str,
}

/// How an upload began: the registry mounted the blob from another
/// repository, or waits for it at this location.
pub enum UploadStart {
    Mounted,
    Upload(String),
}

/// What a request sends: nothing, bytes, or a file (opened again for
/// each attempt).
pub enum Upload<'a> {
    Nothing,
    Bytes(&'a [u8], &'a str),
    File(&'a std::path::Path),
}

impl Client {
    pub fn new(config: RegistriesConfig) -> Client {
        let agent = http_agent();
        Client { agent, config, credentials: read_credentials(), tokens: Mutex::new(HashMap::new()), scope: "pull" }
    }

    /// The client for uploads: its tokens may push.
    pub fn for_push(mut self) -> Client {
        self.scope = "pull,push";
        self
    }

    /// Where `image` is pushed: its registry itself (mirrors only serve pulls).
    pub fn push_endpoint(&self, image: &ImageRef) -> Result<Endpoint, Error> {
        self.endpoints(image).pop().ok_or_else(|| Error::Invalid(format!("{image}: no registry")))
    }

    /// Whether the repository has the blob already (HEAD).
    pub fn blob_exists(&self, ep: &Endpoint, digest: &Digest) -> Result<bool, Error> {
        let url = format!("{}/v2/{}/blobs/{digest}", ep.base, ep.repository);
        let response = self.send(ep, "HEAD", &url, &[], Upload::Nothing, &[StatusCode::OK, StatusCode::NOT_FOUND])?;
        Ok(response.status() == StatusCode::OK)
    }

    /// Starts a blob upload; with `mount`, asks the registry to take the
    /// blob from another repository instead (a cross-repository mount),
    /// which it does when the login may read that repository.
    pub fn start_upload(&self, ep: &Endpoint, mount: Option<(&Digest, &str)>) -> Result<UploadStart, Error> {
        let mut url = format!("{}/v2/{}/blobs/uploads/", ep.base, ep.repository);
        if let Some((digest, from)) = mount {
            url.push_str(&format!("?mount={}&from={}", query_escape(digest.as_str()), query_escape(from)));
        }
        let started =
            self.send(ep, "POST", &url, &[], Upload::Nothing, &[StatusCode::CREATED, StatusCode::ACCEPTED])?;
        if started.status() == StatusCode::CREATED {
            return Ok(UploadStart::Mounted);
        }
        let location = header(&started, "location")
            .ok_or_else(|| Error::Registry(format!("{url}: the registry gave no upload location")))?;
        Ok(UploadStart::Upload(if location.starts_with('/') { format!("{}{location}", ep.base) } else { location }))
    }

    /// Sends the blob in `file` (its digest `digest`) to the upload at
    /// `location`, whole, closing it with the digest.
    pub fn finish_upload(
        &self,
        ep: &Endpoint,
        location: &str,
        digest: &Digest,
        file: &std::path::Path,
    ) -> Result<(), Error> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", query_escape(digest.as_str()));
        self.send(ep, "PUT", &put, &[], Upload::File(file), &[StatusCode::CREATED])?;
        Ok(())
    }

    /// Tags `reference` with the manifest `bytes`.
    pub fn put_manifest(&self, ep: &Endpoint, reference: &str, media_type: &str, bytes: &[u8]) -> Result<(), Error> {
        let url = format!("{}/v2/{}/manifests/{reference}", ep.base, ep.repository);
        self.send(ep, "PUT", &url, &[], Upload::Bytes(bytes, media_type), &[StatusCode::CREATED])?;
        Ok(())
    }

    /// A request with auth and retries; an answer not in `ok` becomes an
    /// error that says what the registry meant.
    fn send(
        &self,
        ep: &Endpoint,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Upload<'_>,
        ok: &[StatusCode],
    ) -> Result<Response<Body>, Error> {
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = ureq::http::Request::builder().method(method).uri(url);
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            if let Some(auth) = self.authorization(ep) {
                request = request.header("Authorization", auth);
            }
            let sent = match &body {
                Upload::Nothing => request.body(()).map(|r| self.agent.run(r)),
                Upload::Bytes(bytes, media_type) => {
                    request.header("Content-Type", *media_type).body(*bytes).map(|r| self.agent.run(r))
                }
                Upload::File(path) => {
                    let file = std::fs::File::open(path).map_err(super::io("open", path))?;
                    request.header("Content-Type", "application/octet-stream").body(file).map(|r| self.agent.run(r))
                }
            };
            let response = match sent.map_err(|e| Error::Registry(format!("{url}: {e}")))? {
                Ok(r) => r,
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    backoff(attempt);
                    continue;
                }
                Err(e) => return Err(Error::Registry(format!("{url}: {}", describe(&e, &ep.host)))),
            };
            let status = response.status();
            if ok.contains(&status) {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !authenticated {
                let challenge = header(&response, "www-authenticate").unwrap_or_default();
                self.authenticate(ep, &challenge)?;
                authenticated = true;
                continue;
            }
            if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) && attempt < ATTEMPTS {
                backoff(attempt);
                continue;
            }
            return Err(status_error(url, status, response));
        }
    }

    /// The endpoints to try for `image`: its mirrors first, then the registry.
    pub fn endpoints(&self, image: &ImageRef) -> Vec<Endpoint> {
        let registry = image.registry();
        let mut hosts: Vec<String> = self.config.mirrors.get(registry).cloned().unwrap_or_default();
        hosts.push(if registry == "docker.io" { "registry-1.docker.io".into() } else { registry.into() });
        hosts
            .into_iter()
            .map(|host| {
                let scheme = if is_insecure(&host, &self.config) { "http" } else { "https" };
                Endpoint { base: format!("{scheme}://{host}"), host, repository: image.repository().to_string() }
            })
            .collect()
    }

    /// Fetches a manifest or index by tag or digest; a digest reference is
    /// checked against the content.
    pub fn manifest(&self, ep: &Endpoint, reference: &str) -> Result<Fetched, Error> {
        let url = format!("{}/v2/{}/manifests/{reference}", ep.base, ep.repository);
        let mut response = self.get(ep, &url, &[("Accept", ACCEPT_MANIFESTS.to_string())])?;
        let media_type = header(&response, "content-type").unwrap_or_default();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| Error::Registry(format!("{url}: reading the manifest: {e}")))?;
        let digest = Digest::of(&bytes);
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            return Err(Error::DigestMismatch { what: "manifest", digest: Digest::parse(reference)?, actual: digest });
        }
        // Some registries send text/plain; the document says what it is.
        let media_type = media_type_of(&bytes).unwrap_or(media_type);
        Ok(Fetched { bytes, media_type, digest })
    }

    /// Starts a blob download from byte `offset` on; the caller verifies
    /// what it reads. The flag says whether the body starts at `offset`
    /// (206) rather than at 0 (a registry may ignore the Range).
    pub fn blob_from(&self, ep: &Endpoint, digest: &Digest, offset: u64) -> Result<(impl Read + use<>, bool), Error> {
        let url = format!("{}/v2/{}/blobs/{digest}", ep.base, ep.repository);
        let range = [("Range", format!("bytes={offset}-"))];
        let response = self.get(ep, &url, if offset > 0 { &range } else { &[] })?;
        let resumed = response.status() == StatusCode::PARTIAL_CONTENT;
        Ok((response.into_body().into_reader(), resumed))
    }

    /// A GET with auth and retries; any answer but 200 (or 206 to a Range)
    /// becomes an error that says what the registry meant.
    fn get(&self, ep: &Endpoint, url: &str, headers: &[(&str, String)]) -> Result<Response<Body>, Error> {
        self.send(ep, "GET", url, headers, Upload::Nothing, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT])
    }

    fn authorization(&self, ep: &Endpoint) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(&token_key(ep)).cloned()
    }

    /// Answers a 401 challenge: Basic with stored credentials, or a Bearer
    /// token from the realm (with the credentials, if any, else anonymous).
    fn authenticate(&self, ep: &Endpoint, challenge: &str) -> Result<(), Error> {
        let (scheme, params) = parse_challenge(challenge);
        let creds = self
            .credentials
            .get(&ep.host)
            .or_else(|| (ep.host == "registry-1.docker.io").then(|| self.credentials.get("docker.io")).flatten());
        let value = match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let (user, pass) = creds.ok_or_else(|| {
                    Error::Registry(format!("{}: the registry wants a login: hutch login {}", ep.host, ep.host))
                })?;
                format!("Basic {}", basic(user, pass))
            }
            "bearer" => format!("Bearer {}", self.bearer_token(ep, &params, creds)?),
            _ => return Err(Error::Registry(format!("{}: unsupported auth challenge {challenge:?}", ep.host))),
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(token_key(ep), value);
        Ok(())
    }

    /// Checks a login against `registry` (answering its challenge with
    /// these credentials only), as `hutch login` does before storing it.
    pub fn check_login(&self, registry: &str, user: &str, pass: &str) -> Result<(), Error> {
        let image = ImageRef::parse(&format!("{registry}/hutch-login-check"))?;
        let ep = self.endpoints(&image).pop().ok_or_else(|| Error::Invalid("no endpoint".into()))?;
        let url = format!("{}/v2/", ep.base);
        let creds = (user.to_string(), pass.to_string());
        let first =
            self.agent.get(&url).call().map_err(|e| Error::Registry(format!("{url}: {}", describe(&e, &ep.host))))?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(());
        }
        let challenge = header(&first, "www-authenticate").unwrap_or_default();
        let (scheme, params) = parse_challenge(&challenge);
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.bearer_token(&ep, &params, Some(&creds)).map(drop);
        }
        let answer = self
            .agent
            .get(&url)
            .header("Authorization", format!("Basic {}", basic(user, pass)))
            .call()
            .map_err(|e| Error::Registry(format!("{url}: {}", describe(&e, &ep.host))))?;
        match answer.status() {
            StatusCode::OK => Ok(()),
            StatusCode::UNAUTHORIZED => Err(Error::Registry(format!("{registry}: wrong username or password"))),
            status => Err(Error::Registry(format!("{url}: {status}"))),
        }
    }

    fn bearer_token(
        &self,
        ep: &Endpoint,
        params: &HashMap<String, String>,
        creds: Option<&(String, String)>,
    ) -> Result<String, Error> {
        let realm = params
            .get("realm")
            .ok_or_else(|| Error::Registry(format!("{}: Bearer challenge without a realm", ep.host)))?;
        let scope = format!("repository:{}:{}", ep.repository, self.scope);
        let mut url = format!("{realm}?scope={}", query_escape(&scope));
        if let Some(service) = params.get("service") {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let mut request = self.agent.get(&url);
        if let Some((user, pass)) = creds {
            request = request.header("Authorization", format!("Basic {}", basic(user, pass)));
        }
        let mut response =
            request.call().map_err(|e| Error::Registry(format!("token from {realm}: {}", describe(&e, &ep.host))))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err(Error::Registry(format!(
                "token from {realm}: {status}{}",
                if status == StatusCode::UNAUTHORIZED { " (wrong credentials? hutch login)" } else { "" }
            )));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| Error::Registry(format!("token from {realm}: {e}")))?;
        let token: Token = serde_json::from_slice(&body)
            .map_err(|e| Error::Registry(format!("token from {realm}: not a token response: {e}")))?;
        token.token.or(token.access_token).ok_or_else(|| Error::Registry(format!("token from {realm}: no token")))
    }
}

/// hutch's HTTP client: the system's trusted certificates, timeouts, and
/// every status an answer (the caller decides what it means). Also what
/// `build` downloads ADD's URLs with.
pub fn http_agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("hutch/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .new_agent()
}

fn token_key(ep: &Endpoint) -> String {
    format!("{}/{}", ep.host, ep.repository)
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(|s| s.to_string())
}

fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe.media_type.or_else(|| probe.manifests.map(|_| MEDIA_OCI_INDEX.to_string()))
}

fn transient(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed)
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(250 << attempt.min(5)));
}

fn describe(e: &ureq::Error, host: &str) -> String {
    match e {
        ureq::Error::HostNotFound => format!("cannot resolve {host} (check the name and your DNS)"),
        ureq::Error::ConnectionFailed => format!("cannot connect to {host} (is the registry up?)"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection to {host} refused (is the registry up?)")
        }
        other => other.to_string(),
    }
}

/// The registry's answer as one line, with the OCI error code when it sent one.
fn status_error(url: &str, status: StatusCode, mut response: Response<Body>) -> Error {
    let body = response.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(|s| s.to_string()))
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(url);
    let hint = match status {
        StatusCode::NOT_FOUND => " (no such image or tag)".to_string(),
        StatusCode::UNAUTHORIZED => format!(" (the registry wants a login: hutch login {host})"),
        StatusCode::FORBIDDEN => " (this login may not do that)".to_string(),
        _ => String::new(),
    };
    Error::Registry(format!("{url}: {status}{detail}{hint}"))
}

fn basic(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// `Bearer realm="…",service="…"` → ("Bearer", {realm, service}).
fn parse_challenge(challenge: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = challenge.trim().split_once(' ').unwrap_or((challenge.trim(), ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, r)) => (v.to_string(), r),
                None => (quoted.to_string(), ""),
            },
            None => match after.split_once(',') {
                Some((v, r)) => (v.trim().to_string(), r),
                None => (after.trim().to_string(), ""),
            },
        };
        params.insert(key, value);
        rest = remaining.trim_start_matches(',').trim();
    }
    (scheme.to_string(), params)
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where logins are kept, read in this order: podman's auth.json
/// (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`), then
/// Docker's `~/.docker/config.json` (`$DOCKER_CONFIG`).
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => files.push(PathBuf::from(dir).join("config.json")),
        None => {
            if let Some(home) = crate::files::home_dir() {
                files.push(home.join(".docker/config.json"));
            }
        }
    }
    files
}

/// The file `hutch login` writes: `$REGISTRY_AUTH_FILE`, else podman's
/// `$XDG_RUNTIME_DIR/containers/auth.json`, else Docker's config.json.
pub fn login_file() -> Option<PathBuf> {
    auth_files().into_iter().next()
}

/// Adds (`Some`) or removes (`None`) the login for `registry` in `file`,
/// keeping everything else the file holds; written atomically, mode 0600.
/// Returns whether an entry was there before.
pub fn store_login(file: &std::path::Path, registry: &str, creds: Option<(&str, &str)>) -> Result<bool, Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut doc: serde_json::Value = match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: not JSON ({e}): fix or remove it", file.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(Error::Io(crate::files::IoError { op: "read", path: file.to_path_buf(), source: e })),
    };
    let Some(top) = doc.as_object_mut() else {
        return Err(Error::Invalid(format!("{}: not a JSON object: fix or remove it", file.display())));
    };
    let auths = top.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let Some(auths) = auths.as_object_mut() else { return Ok(false) };
    let key = normalise_auth_key(registry);
    let existed = auths.remove(&key).is_some();
    if let Some((user, pass)) = creds {
        auths.insert(key, serde_json::json!({ "auth": basic(user, pass) }));
    }
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Invalid(e.to_string()))?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(super::io("create", dir))?;
    }
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    let write = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    write.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(crate::files::IoError { op: "write", path: file.to_path_buf(), source: e })
    })?;
    Ok(existed)
}

/// host → (user, password) from the `auths` of every auth file; the first
/// file naming a host wins. Docker Hub's legacy key maps to docker.io.
fn read_credentials() -> HashMap<String, (String, String)> {
    let mut creds = HashMap::new();
    for file in auth_files() {
        let Ok(text) = std::fs::read(&file) else { continue };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else { continue };
        let Some(auths) = json["auths"].as_object() else { continue };
        for (key, entry) in auths {
            let Some(decoded) = entry["auth"]
                .as_str()
                .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
                .and_then(|d| String::from_utf8(d).ok())
            else {
                continue;
            };
            let Some((user, pass)) = decoded.split_once(':') else { continue };
            creds.entry(normalise_auth_key(key)).or_insert((user.to_string(), pass.to_string()));
        }
    }
    creds
}

pub fn normalise_auth_key(key: &str) -> String {
    let host = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/debian:pull");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!((scheme.as_str(), p["realm"].as_str()), ("Basic", "Registry Realm"));
    }

    #[test]
    fn auth_keys_are_hosts() {
        assert_eq!(normalise_auth_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise_auth_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
