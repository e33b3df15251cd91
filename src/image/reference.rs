//! Image references as Docker users write them (`debian`, `debian:bookworm`,
//! `registry:5000/team/app@sha256:…`), normalised as Docker does.

use super::Error;
use crate::config::RegistriesConfig;
use std::fmt;

/// A fully qualified reference: registry, repository, and a tag or digest.
/// Parsed by hand after the distribution project's grammar: the regex
/// oci-spec compiles for it costs 25 ms per process, the whole of a
/// container's start several times over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Longest repository name a registry takes.
const NAME_MAX: usize = 255;

impl ImageRef {
    /// Parses a qualified or unqualified name; unqualified names land on
    /// docker.io (use `candidates` to honour the search list).
    pub fn parse(s: &str) -> Result<ImageRef, Error> {
        let bad = |why: &str| Error::Reference(s.to_string(), why.to_string());
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(checked_digest(digest).map_err(bad)?)),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let (name, tag) = match rest.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            Some((name, tag)) if is_tag(tag) => (name, Some(tag.to_string())),
            Some(_) => return Err(bad("invalid tag format")),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("repository name must have at least one component"));
        }
        if !is_name(name) {
            let uppercase = name.rsplit('/').next().is_some_and(|c| c.bytes().any(|b| b.is_ascii_uppercase()));
            return Err(bad(if uppercase { "repository name must be lowercase" } else { "invalid reference format" }));
        }
        let (registry, repository) = split_registry(name);
        // `Team/app`: a first component that could be a host but is not
        // taken for one is part of the repository, which is lowercase.
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if repository.len() > NAME_MAX {
            return Err(bad("repository name must not be more than 255 characters"));
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(ImageRef { registry, repository, tag, digest })
    }

    /// The references to try for what the user typed: itself when it names a
    /// registry, else the name in each search registry in order.
    pub fn candidates(s: &str, config: &RegistriesConfig) -> Result<Vec<ImageRef>, Error> {
        let parsed = ImageRef::parse(s)?;
        if names_registry(s) || config.search.is_empty() {
            return Ok(vec![parsed]);
        }
        let path = s.trim_start_matches("docker.io/");
        config.search.iter().map(|registry| ImageRef::parse(&format!("{registry}/{path}"))).collect()
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, or the digest, to ask the registry for.
    pub fn tag_or_digest(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The name without a digest, for `hutch images` (`repo:tag`), if tagged.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}/{}:{t}", self.registry, self.repository))
    }

    /// `registry/repository`, as image lists show it.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `[domain '/'] path-component ('/' path-component)*`.
fn is_name(name: &str) -> bool {
    let mut components = name.split('/');
    let first = components.next().unwrap_or_default();
    let rest: Vec<&str> = components.collect();
    let path_after = |rest: &[&str]| rest.iter().all(|c| is_path_component(c));
    (is_path_component(first) && path_after(&rest)) || (is_domain(first) && !rest.is_empty() && path_after(&rest))
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*`, a separator being `.`, `_`, `__`
/// or any run of `-`.
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (mut i, mut after_alnum) = (0, false);
    while i < bytes.len() {
        if alnum(bytes[i]) {
            after_alnum = true;
            i += 1;
            continue;
        }
        // A separator sits between alphanumerics.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let known = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !after_alnum || !known || i == bytes.len() {
            return false;
        }
    }
    after_alnum
}

/// `domain-component ('.' domain-component)* (':' [0-9]+)?`, a component
/// being letters, digits and inner hyphens.
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (d, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    port_ok && host.split('.').all(component)
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match tag.as_bytes() {
        [first, rest @ ..] => {
            word(*first) && rest.len() <= 127 && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        [] => false,
    }
}

/// `algorithm:hex`, with the hex length its algorithm has.
fn checked_digest(digest: &str) -> Result<String, &'static str> {
    let (algorithm, hex) = digest.split_once(':').ok_or("invalid checksum digest format")?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() < 32 {
        return Err("invalid checksum digest format");
    }
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != length {
        return Err("invalid checksum digest length");
    }
    Ok(digest.to_string())
}

/// Docker's normalisation: the first component is the registry when it
/// names one (see [`names_registry`]), else docker.io; docker.io's
/// one-component names live in `library/`.
fn split_registry(name: &str) -> (String, String) {
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((first, rest)) if names_registry(name) => (first.to_string(), rest.to_string()),
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if registry == "index.docker.io" {
        registry = "docker.io".to_string();
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    (registry, repository)
}

/// Docker's rule: the first component names a registry when it has a dot or
/// a port, or is `localhost`.
fn names_registry(s: &str) -> bool {
    match s.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

/// Whether to speak plain HTTP to `registry`: loopback always may (as in
/// Docker), others only when the config lists them as insecure.
pub fn is_insecure(registry: &str, config: &RegistriesConfig) -> bool {
    let host =
        registry.rsplit_once(':').map_or(
            registry,
            |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    registry
                }
            },
        );
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback || config.insecure.iter().any(|r| r == registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_are_normalised() {
        let r = ImageRef::parse("debian").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/debian:latest");
        let r = ImageRef::parse("team/app:1.0").unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag_or_digest()), ("docker.io", "team/app", "1.0"));
        let d = format!("sha256:{}", "0".repeat(64));
        let r = ImageRef::parse(&format!("localhost:5000/a/b@{d}")).unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag_or_digest()), ("localhost:5000", "a/b", d.as_str()));
        assert!(ImageRef::parse("Debian").is_err());
        assert!(ImageRef::parse("a/../b").is_err());
    }

    #[test]
    fn the_distribution_grammar_is_followed() {
        let whole = |s: &str| ImageRef::parse(s).map(|r| r.to_string()).map_err(|e| e.to_string());
        assert_eq!(whole("test.com:tag").unwrap(), "docker.io/library/test.com:tag");
        assert_eq!(whole("test.com:5000").unwrap(), "docker.io/library/test.com:5000");
        assert_eq!(whole("test.com/repo:tag").unwrap(), "test.com/repo:tag");
        assert_eq!(whole("test:5000/repo").unwrap(), "test:5000/repo:latest");
        assert_eq!(whole("index.docker.io/a/b--c__d.e_f").unwrap(), "docker.io/a/b--c__d.e_f:latest");
        assert_eq!(whole("localhost/x:1").unwrap(), "localhost/x:1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(whole(&format!("r.io/x:1@{d}")).unwrap(), format!("r.io/x:1@{d}"));
        for bad in ["", ":tag", "a:", "a:-x", "a//b", "a_", "-a", "a___b", "A/b", "x:a/y", "a@sha256:abc", "a@md5:0123"]
        {
            assert!(whole(bad).is_err(), "{bad:?} is refused");
        }
        assert!(whole(&format!("a@sha512:{}", "0".repeat(64))).unwrap_err().contains("digest length"));
        assert!(whole(&"a".repeat(256)).unwrap_err().contains("255"));
    }

    #[test]
    fn unqualified_names_use_the_search_list() {
        let config = RegistriesConfig { search: vec!["quay.io".into(), "docker.io".into()], ..Default::default() };
        let c: Vec<String> = ImageRef::candidates("fedora", &config).unwrap().iter().map(|r| r.to_string()).collect();
        assert_eq!(c, ["quay.io/fedora:latest", "docker.io/library/fedora:latest"]);
        let c = ImageRef::candidates("127.0.0.1:5000/x", &config).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn plain_http_only_for_loopback_or_listed() {
        let config = RegistriesConfig { insecure: vec!["reg.lan:5000".into()], ..Default::default() };
        assert!(is_insecure("127.0.0.1:5000", &config));
        assert!(is_insecure("localhost", &config));
        assert!(is_insecure("[::1]:5000", &config));
        assert!(is_insecure("reg.lan:5000", &config));
        assert!(!is_insecure("reg.lan", &config));
        assert!(!is_insecure("docker.io", &config));
    }
}
