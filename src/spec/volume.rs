//! What `-v`, `--mount` and `--volumes-from` give a container: binds of
//! host paths, named and anonymous volumes, tmpfs mounts.

use super::Error;
use std::path::PathBuf;

/// A bind mount: of a host path, or of a named or anonymous volume's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The host path; for a volume, its data directory once the engine
    /// has found or made it (empty until then).
    pub source: PathBuf,
    /// The named volume, for `-v NAME:/path` (for an anonymous one, the
    /// name the engine gave it).
    pub name: Option<String>,
    /// `-v /path`, or an image's VOLUME: a volume made for this container.
    pub anonymous: bool,
    pub destination: PathBuf,
    /// Mount options for the runtime: `ro`, `nosuid`, `nodev`, `noexec`,
    /// and `copy` (fill an empty volume with the image's files there).
    pub options: Vec<String>,
}

/// Option asking the runtime to fill an empty volume with the image's
/// content at its destination, as Docker does (podman's name for it).
pub const COPY_UP: &str = "copy";

/// A `--mount` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountArg {
    Bind(Volume),
    /// `PATH[:OPTIONS]`, as `--tmpfs` takes it.
    Tmpfs(String),
}

impl Volume {
    /// Parses `HOST-PATH|NAME:CONTAINER[:OPTIONS]`, or `CONTAINER` alone
    /// (an anonymous volume); a host path must exist.
    pub fn parse(arg: &str) -> Result<Volume, Error> {
        let parts: Vec<&str> = arg.split(':').collect();
        let (source, destination, options) = match parts.as_slice() {
            [d] => ("", *d, ""),
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => return Err(Error::VolumeSyntax(arg.into())),
        };
        let options = parse_options(arg, options.split(',').filter(|o| !o.is_empty()))?;
        if !destination.starts_with('/') {
            return Err(Error::VolumeSyntax(arg.into()));
        }
        if source.is_empty() {
            return Ok(Volume { anonymous: true, ..Volume::at(destination, copied_up(options)) });
        }
        Volume::from_source(arg, source, destination, options)
    }

    fn at(destination: &str, options: Vec<String>) -> Volume {
        Volume { source: PathBuf::new(), name: None, anonymous: false, destination: destination.into(), options }
    }

    /// A named volume (copied up unless `nocopy` was given: `options`
    /// then holds `nocopy`, dropped here) or a host path.
    fn from_source(arg: &str, source: &str, destination: &str, mut options: Vec<String>) -> Result<Volume, Error> {
        if crate::volumes::is_volume_name(source) {
            if crate::volumes::check_name(source).is_err() {
                return Err(Error::VolumeName(arg.into()));
            }
            return Ok(Volume { name: Some(source.into()), ..Volume::at(destination, copied_up(options)) });
        }
        options.retain(|o| o != "nocopy");
        let source =
            std::fs::canonicalize(source).map_err(|e| Error::VolumeSource { path: source.into(), source: e })?;
        Ok(Volume { source, ..Volume::at(destination, options) })
    }

    /// The `-v` value that gives this bind again (what `--volumes-from`
    /// reads): `NAME:/dst[:opts]` or `/host:/dst[:opts]`.
    pub fn to_bind(&self) -> String {
        let source = self.name.clone().unwrap_or_else(|| self.source.display().to_string());
        let mut options: Vec<&str> = self.options.iter().map(String::as_str).filter(|o| *o != COPY_UP).collect();
        if self.name.is_some() && !self.options.iter().any(|o| o == COPY_UP) {
            options.push("nocopy");
        }
        match options.is_empty() {
            true => format!("{source}:{}", self.destination.display()),
            false => format!("{source}:{}:{}", self.destination.display(), options.join(",")),
        }
    }

    /// The same bind, read-only (`--volumes-from C:ro`) or writable.
    pub fn with_read_only(mut self, read_only: bool) -> Volume {
        self.options.retain(|o| o != "ro");
        if read_only {
            self.options.push("ro".into());
        }
        self
    }
}

/// A volume's options: `copy` added unless `nocopy` was given.
fn copied_up(mut options: Vec<String>) -> Vec<String> {
    if !options.iter().any(|o| o == "nocopy") {
        options.push(COPY_UP.into());
    }
    options.retain(|o| o != "nocopy");
    options
}

/// `ro`, `rw`, `nosuid`…: the flags kept for the runtime, in order; the
/// later of two opposites wins.
fn parse_options<'a>(arg: &str, given: impl Iterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    let mut flags: Vec<String> = Vec::new();
    for option in given {
        match option {
            "ro" | "nosuid" | "nodev" | "noexec" | "nocopy" => flags.push(option.to_string()),
            "readonly" => flags.push("ro".into()),
            "rw" => flags.retain(|f| f != "ro"),
            "suid" | "dev" | "exec" => flags.retain(|f| *f != format!("no{option}")),
            // SELinux relabelling and propagation requests: nothing to do rootless.
            "z" | "Z" | "rprivate" | "private" => {}
            other => return Err(Error::VolumeOption { volume: arg.into(), option: other.into() }),
        }
    }
    Ok(flags)
}

impl MountArg {
    /// `type=bind|volume|tmpfs,source=…,destination=…,readonly,…` as
    /// Docker's `--mount` takes it (`src`, `dst`, `target` too).
    pub fn parse(arg: &str) -> Result<MountArg, Error> {
        let bad = |why: &str| Error::MountSyntax { mount: arg.into(), why: why.into() };
        let (mut kind, mut source, mut destination) = ("volume", None, None);
        let mut flags = Vec::new();
        let mut tmpfs = Vec::new();
        for field in arg.split(',').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=').map_or((field, None), |(k, v)| (k, Some(v)));
            match (key, value) {
                ("type", Some(v @ ("bind" | "volume" | "tmpfs"))) => kind = v,
                ("type", _) => return Err(bad("type must be bind, volume or tmpfs")),
                ("source" | "src", Some(v)) => source = Some(v),
                ("destination" | "dst" | "target", Some(v)) => destination = Some(v),
                ("readonly" | "ro", None | Some("true" | "1")) => flags.push("ro"),
                ("readonly" | "ro", Some("false" | "0")) => flags.retain(|f| *f != "ro"),
                ("volume-nocopy", None | Some("true" | "1")) => flags.push("nocopy"),
                ("tmpfs-size", Some(v)) => tmpfs.push(format!("size={v}")),
                ("tmpfs-mode", Some(v)) => tmpfs.push(format!("mode={v}")),
                ("bind-propagation" | "consistency", Some(_)) => {}
                _ => return Err(bad(&format!("unknown field {field:?}"))),
            }
        }
        let destination = destination.ok_or_else(|| bad("no destination (dst=/path in the container)"))?;
        if !destination.starts_with('/') {
            return Err(bad("the destination must be an absolute path"));
        }
        let options = parse_options(arg, flags.into_iter())?;
        match (kind, source) {
            ("tmpfs", None) => {
                let opts: Vec<String> = options.into_iter().chain(tmpfs).collect();
                Ok(MountArg::Tmpfs(format!("{destination}:{}", opts.join(","))))
            }
            ("tmpfs", Some(_)) => Err(bad("a tmpfs has no source")),
            (_, _) if !tmpfs.is_empty() => Err(bad("tmpfs-size and tmpfs-mode are for type=tmpfs")),
            ("bind", None) => Err(bad("a bind needs a source (src=/host/path)")),
            ("bind", Some(s)) if !s.starts_with('/') => Err(bad("a bind's source must be an absolute host path")),
            ("volume", Some(s)) if !crate::volumes::is_volume_name(s) => {
                Err(bad("a volume's source is a volume name (use type=bind for a host path)"))
            }
            ("volume", None) => {
                Ok(MountArg::Bind(Volume { anonymous: true, ..Volume::at(destination, copied_up(options)) }))
            }
            (_, Some(s)) => Ok(MountArg::Bind(Volume::from_source(arg, s, destination, options)?)),
            _ => Err(bad("type must be bind, volume or tmpfs")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn volumes_parse_like_docker() {
        let v = Volume::parse("/tmp:/data:ro").unwrap();
        assert_eq!((v.destination.as_path(), v.options.clone()), (Path::new("/data"), vec!["ro".to_string()]));
        let v = Volume::parse("/tmp:/data:ro,noexec,rw").unwrap();
        assert_eq!(v.options, vec!["noexec".to_string()]);
        assert!(matches!(Volume::parse("/tmp:data"), Err(Error::VolumeSyntax(_))));
        let named = Volume::parse("myvol:/data").unwrap();
        assert_eq!((named.name.as_deref(), named.options.clone()), (Some("myvol"), vec![COPY_UP.to_string()]));
        assert_eq!(Volume::parse("myvol:/data:nocopy").unwrap().options, Vec::<String>::new());
        assert!(Volume::parse("/data").unwrap().anonymous);
        assert!(matches!(Volume::parse("data"), Err(Error::VolumeSyntax(_))));
        assert!(matches!(Volume::parse("my vol:/data"), Err(Error::VolumeName(_))));
        assert!(matches!(Volume::parse("/tmp:/data:bogus"), Err(Error::VolumeOption { .. })));
        assert!(matches!(Volume::parse("/no/such/dir/here:/data"), Err(Error::VolumeSource { .. })));
    }

    #[test]
    fn binds_read_back_as_they_were_given() {
        for given in ["myvol:/data:ro", "myvol:/data:nocopy", "/tmp:/data", "/tmp:/data:ro,noexec"] {
            assert_eq!(Volume::parse(given).unwrap().to_bind(), given);
        }
    }

    #[test]
    fn mounts_parse_like_docker() {
        let m = MountArg::parse("type=bind,src=/tmp,dst=/data,readonly").unwrap();
        assert_eq!(m, MountArg::Bind(Volume::parse("/tmp:/data:ro").unwrap()));
        let m = MountArg::parse("type=volume,source=vol,target=/data").unwrap();
        assert_eq!(m, MountArg::Bind(Volume::parse("vol:/data").unwrap()));
        assert_eq!(MountArg::parse("dst=/data").unwrap(), MountArg::Bind(Volume::parse("/data").unwrap()));
        let m = MountArg::parse("type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(m, MountArg::Tmpfs("/scratch:size=1m,mode=1770".into()));
        for bad in ["type=bind,dst=/x", "type=nfs,dst=/x", "src=v", "type=volume,src=/tmp,dst=/x", "dst=/x,colour=red"]
        {
            assert!(matches!(MountArg::parse(bad), Err(Error::MountSyntax { .. })), "{bad}");
        }
    }
}
