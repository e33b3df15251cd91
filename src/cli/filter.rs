//! `--filter KEY=VALUE` as Docker takes it: the same key given twice
//! matches either value, different keys must all match.

use super::Error;
use std::collections::BTreeMap;

pub struct Filters {
    by_key: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `given`, refusing keys the command does not know (`known`).
    pub fn parse(given: &[String], known: &[&str]) -> Result<Filters, Error> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for filter in given {
            let Some((key, value)) = filter.split_once('=') else {
                return Err(Error::Usage(format!("--filter {filter}: give KEY=VALUE")));
            };
            if !known.contains(&key) {
                return Err(Error::Usage(format!("--filter {filter}: the filters here are {}", known.join(", "))));
            }
            by_key.entry(key.to_string()).or_default().push(value.to_string());
        }
        Ok(Filters { by_key })
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The values given for `key`.
    pub fn values(&self, key: &str) -> &[String] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// Whether the values given for `key` (if any) let `matches` through.
    pub fn allows(&self, key: &str, matches: impl Fn(&str) -> bool) -> bool {
        self.by_key.get(key).is_none_or(|values| values.iter().any(|v| matches(v)))
    }
}

/// `label=KEY` (the label is set) or `label=KEY=VALUE` (set to VALUE).
pub fn label_matches<'a>(mut labels: impl Iterator<Item = (&'a String, &'a String)>, wanted: &str) -> bool {
    let (key, value) = match wanted.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (wanted, None),
    };
    labels.any(|(k, v)| k == key && value.is_none_or(|value| v == value))
}

/// Docker's `reference` patterns: `*` matches within a path component.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else { return false };
            (0..=after.len())
                .filter(|&i| after.is_char_boundary(i) && !after[..i].contains('/'))
                .any(|i| glob_match(rest, &after[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_combine_as_docker_does() {
        let f =
            Filters::parse(&["name=a".into(), "name=b".into(), "status=running".into()], &["name", "status"]).unwrap();
        assert!(f.allows("name", |v| v == "b") && !f.allows("name", |v| v == "c"));
        assert!(f.allows("id", |_| false), "a key not given lets everything through");
        assert!(Filters::parse(&["colour=red".into()], &["name"]).is_err());
        assert!(Filters::parse(&["name".into()], &["name"]).is_err());
    }

    #[test]
    fn reference_globs_stay_within_a_component() {
        assert!(glob_match("docker.io/library/*:latest", "docker.io/library/busybox:latest"));
        assert!(!glob_match("docker.io/*:latest", "docker.io/library/busybox:latest"));
        assert!(glob_match("*box*", "busybox:1"));
    }
}
