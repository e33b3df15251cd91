//! Image references as Docker users write them (`debian`, `debian:bookworm`,
//! `registry:5000/team/app@sha256:…`), normalised as Docker does.

use super::Error;
use crate::config::RegistriesConfig;
use oci_spec::distribution::Reference;
use std::fmt;

/// A fully qualified reference: registry, repository, and a tag or digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses a qualified or unqualified name; unqualified names land on
    /// docker.io (use `candidates` to honour the search list).
    pub fn parse(s: &str) -> Result<ImageRef, Error> {
        let inner: Reference = s
            .parse()
            .map_err(|e: oci_spec::distribution::ParseError| Error::Reference(s.to_string(), e.to_string()))?;
        Ok(ImageRef { inner })
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
        self.inner.registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, or the digest, to ask the registry for.
    pub fn tag_or_digest(&self) -> &str {
        self.inner.digest().or(self.inner.tag()).unwrap_or("latest")
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The name without a digest, for `hutch images` (`repo:tag`), if tagged.
    pub fn tagged_name(&self) -> Option<String> {
        self.inner.tag().map(|t| format!("{}/{}:{t}", self.registry(), self.repository()))
    }

    /// `registry/repository`, as image lists show it.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
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
