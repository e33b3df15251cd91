//! A token server for the registry's token auth (the Bearer flow of the
//! distribution spec): it answers `GET /token?service=…&scope=…` with a
//! JWT signed by a key whose certificate the registry trusts (RS256, the
//! certificate in the `x5c` header), signed with the openssl command.
//! Only the right Basic login gets access to what its scopes ask for;
//! anyone else gets a token that grants nothing, and a wrong password a 401.
#![allow(dead_code)]

use super::Scratch;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

pub const SERVICE: &str = "hutch-test-registry";
pub const ISSUER: &str = "hutch-test-issuer";

pub struct TokenServer {
    pub realm: String,
    pub cert: PathBuf,
    signer: Arc<Signer>,
    /// The scopes of every request, as asked (`repository:NAME:pull`).
    pub scopes_asked: Arc<Mutex<Vec<String>>>,
    _dir: Scratch,
}

struct Signer {
    key: PathBuf,
    cert_der: String,
    login: String,
}

impl TokenServer {
    /// Grants access to the holder of `user`/`password`.
    pub fn start(test: &str, user: &str, password: &str) -> TokenServer {
        let dir = Scratch::new(&format!("token-{test}"));
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hutch-test-token"],
            &["-keyout", key.to_str().unwrap(), "-out", cert.to_str().unwrap()],
        );
        let der = openssl(&["x509", "-outform", "DER", "-in", cert.to_str().unwrap()], &[]);
        let cert_der = base64::engine::general_purpose::STANDARD.encode(der);
        let login = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let signer = Arc::new(Signer { key, cert_der, login });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let scopes_asked = Arc::new(Mutex::new(Vec::new()));
        let (s, asked) = (signer.clone(), scopes_asked.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let _ = serve(client, &s, &asked);
            }
        });
        TokenServer { realm, cert, signer, scopes_asked, _dir: dir }
    }

    /// A token that lets the tests push to (and pull from) `repos`.
    pub fn push_token(&self, repos: &[&str]) -> String {
        let access: Vec<_> = repos
            .iter()
            .map(|r| serde_json::json!({"type": "repository", "name": r, "actions": ["pull", "push"]}))
            .collect();
        self.signer.token("pusher", access)
    }

    /// The registry's `auth:` section for this server.
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm,
            self.cert.display()
        )
    }
}

impl Signer {
    fn token(&self, subject: &str, access: Vec<serde_json::Value>) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [self.cert_der]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", rand_suffix()),
            "access": access,
        });
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        child.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
        let signature = child.wait_with_output().unwrap().stdout;
        format!("{signing_input}.{}", b64(&signature))
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

fn openssl(args: &[&str], more: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).args(more).stderr(Stdio::null()).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

/// One request per connection.
fn serve(client: TcpStream, signer: &Signer, asked: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let query = request_line.split_whitespace().nth(1).and_then(|t| t.split_once('?')).map_or("", |(_, q)| q);
    let scopes: Vec<String> = query.split('&').filter_map(|p| p.strip_prefix("scope=")).map(percent_decode).collect();
    asked.lock().unwrap().extend(scopes.iter().cloned());
    let (status, body) = match authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) {
        Some(login) if login == signer.login => {
            let access = scopes.iter().filter_map(|s| scope_access(s)).collect();
            ("200 OK", serde_json::json!({"token": signer.token("tester", access)}).to_string())
        }
        Some(_) => ("401 Unauthorized", r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}"#.to_string()),
        None => ("200 OK", serde_json::json!({"token": signer.token("", Vec::new())}).to_string()),
    };
    let mut client = client;
    write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `repository:NAME:pull,push` → its access claim.
fn scope_access(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').collect();
    Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
