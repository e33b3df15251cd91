//! fuse-overlayfs' `-o` option syntax.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("mount options name no lowerdir")]
    NoLowerdir,
    #[error("upperdir and workdir go together: only {0} was given")]
    UpperWithoutWork(&'static str),
    #[error("empty path in option {0}")]
    EmptyPath(&'static str),
}

/// One overlay mount: the read-only layers (topmost first, as overlayfs
/// orders them), the writable layer and its work directory, and every other
/// option passed through as given.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OverlayOptions {
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    pub other: Vec<String>,
}

/// Parses one or more `-o` strings (comma separated; lowerdir lists colon
/// separated, `\:` and `\,` escaping those characters in paths).
pub fn parse_mount_options<'a>(groups: impl IntoIterator<Item = &'a str>) -> Result<OverlayOptions, Error> {
    let mut opts = OverlayOptions::default();
    for group in groups {
        for option in split_unescaped(group, ',') {
            match option.split_once('=') {
                Some(("lowerdir", v)) => {
                    opts.lowerdirs = split_unescaped(v, ':').into_iter().map(unescape).map(PathBuf::from).collect();
                    if opts.lowerdirs.iter().any(|p| p.as_os_str().is_empty()) {
                        return Err(Error::EmptyPath("lowerdir"));
                    }
                }
                Some(("upperdir", v)) => opts.upperdir = Some(non_empty(v, "upperdir")?),
                Some(("workdir", v)) => opts.workdir = Some(non_empty(v, "workdir")?),
                _ if option.is_empty() => {}
                _ => opts.other.push(option),
            }
        }
    }
    if opts.lowerdirs.is_empty() {
        return Err(Error::NoLowerdir);
    }
    match (&opts.upperdir, &opts.workdir) {
        (Some(_), None) => Err(Error::UpperWithoutWork("upperdir")),
        (None, Some(_)) => Err(Error::UpperWithoutWork("workdir")),
        _ => Ok(opts),
    }
}

fn non_empty(v: &str, name: &'static str) -> Result<PathBuf, Error> {
    if v.is_empty() {
        Err(Error::EmptyPath(name))
    } else {
        Ok(PathBuf::from(unescape(v.to_string())))
    }
}

/// Splits at `sep` where it is not escaped by a backslash; keeps escapes.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        let last = parts.last_mut().expect("parts is never empty");
        if escaped {
            last.push('\\');
            last.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            last.push(c);
        }
    }
    parts
}

fn unescape(s: String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fuse_overlayfs_form() {
        let o = parse_mount_options(["lowerdir=/l1:/l2,upperdir=/u,workdir=/w", "allow_other"]).unwrap();
        assert_eq!(o.lowerdirs, vec![PathBuf::from("/l1"), PathBuf::from("/l2")]);
        assert_eq!(o.upperdir, Some(PathBuf::from("/u")));
        assert_eq!(o.workdir, Some(PathBuf::from("/w")));
        assert_eq!(o.other, vec!["allow_other".to_string()]);
    }

    #[test]
    fn escaped_separators_stay_in_paths() {
        let o = parse_mount_options([r"lowerdir=/a\:b:/c\,d"]).unwrap();
        assert_eq!(o.lowerdirs, vec![PathBuf::from("/a:b"), PathBuf::from("/c,d")]);
    }

    #[test]
    fn rejects_incomplete_options() {
        assert_eq!(parse_mount_options(["upperdir=/u"]), Err(Error::NoLowerdir));
        assert_eq!(parse_mount_options(["lowerdir=/l,upperdir=/u"]), Err(Error::UpperWithoutWork("upperdir")));
        assert_eq!(parse_mount_options(["lowerdir=/l::/m"]), Err(Error::EmptyPath("lowerdir")));
    }
}
