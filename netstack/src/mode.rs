//! `--network`: which network a container gets, and the default.

use crate::Error;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// How a container is connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// Share the host's network namespace (the HPC choice: MPI, InfiniBand).
    Host,
    /// A network namespace of its own with only loopback.
    None,
    /// A namespace of its own, connected by slirp4netns.
    Slirp4netns(SlirpOptions),
    /// A namespace of its own, connected by pasta; the strings are extra
    /// pasta options (`pasta:-T,5000` as with podman).
    Pasta(Vec<String>),
}

/// `slirp4netns:allow_host_loopback=true,mtu=N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlirpOptions {
    /// Let the container reach the host's loopback at 10.0.2.2.
    pub allow_host_loopback: bool,
    pub mtu: u32,
}

impl Default for SlirpOptions {
    fn default() -> Self {
        SlirpOptions { allow_host_loopback: false, mtu: crate::MTU }
    }
}

impl NetworkMode {
    /// Whether the container needs a network namespace of its own.
    pub fn needs_namespace(&self) -> bool {
        !matches!(self, NetworkMode::Host)
    }

    /// Whether a user-mode helper carries the container's traffic.
    pub fn has_helper(&self) -> bool {
        matches!(self, NetworkMode::Slirp4netns(_) | NetworkMode::Pasta(_))
    }

    /// The default: `configured` (a config-file setting) if given, else
    /// pasta when installed (it is the faster), else slirp4netns.
    pub fn default_mode(configured: Option<&str>) -> Result<NetworkMode, Error> {
        if let Some(mode) = configured {
            return mode.parse();
        }
        if find_program("pasta").is_some() {
            Ok(NetworkMode::Pasta(Vec::new()))
        } else if find_program("slirp4netns").is_some() {
            Ok(NetworkMode::Slirp4netns(SlirpOptions::default()))
        } else {
            Err(Error::NoHelper)
        }
    }
}

/// `name` on $PATH (or the usual system directories when PATH is unset).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

impl FromStr for NetworkMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (name, options) = s.split_once(':').unwrap_or((s, ""));
        let options = options.split(',').filter(|o| !o.is_empty());
        match name {
            "host" | "none" if s.contains(':') => Err(Error::UnknownMode(s.to_string())),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            "pasta" => Ok(NetworkMode::Pasta(options.map(str::to_string).collect())),
            "slirp4netns" => {
                let mut o = SlirpOptions::default();
                for option in options {
                    match option.split_once('=') {
                        Some(("allow_host_loopback", v @ ("true" | "false"))) => o.allow_host_loopback = v == "true",
                        Some(("mtu", v)) => {
                            o.mtu = v.parse().map_err(|_| Error::ModeOption(s.to_string(), option.to_string()))?
                        }
                        _ => return Err(Error::ModeOption(s.to_string(), option.to_string())),
                    }
                }
                Ok(NetworkMode::Slirp4netns(o))
            }
            _ => Err(Error::UnknownMode(s.to_string())),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Slirp4netns(o) => {
                write!(f, "slirp4netns:allow_host_loopback={},mtu={}", o.allow_host_loopback, o.mtu)
            }
            NetworkMode::Pasta(args) if args.is_empty() => f.write_str("pasta"),
            NetworkMode::Pasta(args) => write!(f, "pasta:{}", args.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_back() {
        for s in ["host", "none", "pasta", "pasta:-T,5000", "slirp4netns:allow_host_loopback=true,mtu=1500"] {
            assert_eq!(s.parse::<NetworkMode>().unwrap().to_string(), s);
        }
        assert_eq!(
            "slirp4netns".parse::<NetworkMode>().unwrap(),
            NetworkMode::Slirp4netns(SlirpOptions { allow_host_loopback: false, mtu: 65520 })
        );
        assert!(matches!("bridge".parse::<NetworkMode>(), Err(Error::UnknownMode(_))));
        assert!(matches!("host:x".parse::<NetworkMode>(), Err(Error::UnknownMode(_))));
        assert!(matches!("slirp4netns:port_handler=x".parse::<NetworkMode>(), Err(Error::ModeOption(..))));
    }
}
