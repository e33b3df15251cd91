//! The user's settings: `$HUTCH_CONFIG`, else `$XDG_CONFIG_HOME/hutch/config.toml`
//! (`~/.config/hutch/config.toml`). A missing file means the defaults.
//!
//! ```toml
//! [network]
//! default = "slirp4netns"   # pasta, slirp4netns[:OPTIONS], host or none
//!
//! [registries]
//! search = ["docker.io"]                     # tried in order for names without a registry
//! insecure = ["registry.lan:5000"]           # plain HTTP (localhost always may)
//! mirrors = { "docker.io" = ["mirror.lan:5000"] }   # tried before the registry itself
//! ```

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: line {line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub registries: RegistriesConfig,
    #[serde(default)]
    pub storage: StorageConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `auto` (the kernel overlay where it works and is exact, else
    /// fuse-overlay), `overlay` or `fuse-overlay`.
    pub driver: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    /// Registries tried, in order, for a name without one (default: docker.io).
    #[serde(default)]
    pub search: Vec<String>,
    /// Registries spoken to over plain HTTP.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Mirrors per registry, tried before it.
    #[serde(default)]
    pub mirrors: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The `--network` used when none is given.
    pub default: Option<String>,
}

impl Config {
    pub fn load() -> Result<Config, Error> {
        let Some(path) = config_path() else { return Ok(Config::default()) };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(Error::Read { path, source }),
        };
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            Error::Parse { path, line, message: e.message().trim().to_string() }
        })
    }
}

fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HUTCH_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| crate::files::home_dir().map(|h| h.join(".config")))?;
    Some(base.join("hutch").join("config.toml"))
}
