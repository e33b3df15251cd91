//! ADD's remote sources: an http(s) URL downloaded into a scratch
//! directory as the file ADD copies (mode 0600, as Docker makes it),
//! checked against `--checksum` when given.

use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Downloads `url` into `dir`, named by the last part of its path; the
/// file's path.
pub fn download(url: &str, dir: &Path, checksum: Option<&str>) -> Result<PathBuf, String> {
    let agent = crate::image::registry::http_agent();
    let response = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: the server answered {status}"));
    }
    let path = dir.join(file_name(url));
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut body = response.into_body().into_reader();
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(|e| format!("{url}: the download broke off: {e}"))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let got = format!("sha256:{}", hex::encode(sha.finalize()));
    if let Some(expected) = checksum.filter(|c| *c != got) {
        return Err(format!("{url}: checksum mismatch: --checksum={expected}, the download is {got}"));
    }
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The last part of the URL's path (no query), or `index.html` (a
/// trailing slash, no path).
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    match after_host.rsplit('/').next().filter(|n| !n.is_empty() && *n != "." && *n != "..") {
        Some(name) => name.to_string(),
        None => "index.html".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(file_name("https://example.org/a/b/tool.tar.gz?x=1"), "tool.tar.gz");
        assert_eq!(file_name("http://127.0.0.1:8000/"), "index.html");
        assert_eq!(file_name("http://host"), "index.html");
        assert_eq!(file_name("http://host/dir/.."), "index.html");
    }
}
