//! Path patterns: COPY's source globs and `.dockerignore`, with Go's
//! `filepath.Match` rules per path component (`*`, `?`, `[a-z]`, `[^x]`,
//! `\` escapes) plus `**` for any number of components, as Docker has them.

/// A pattern, cleaned (no leading `/`, no `.` components, `..` applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern { parts: clean(text).split('/').filter(|p| !p.is_empty()).map(str::to_string).collect() }
    }

    /// Whether the pattern has wildcards (a plain path names one source).
    pub fn has_wildcards(&self) -> bool {
        self.parts.iter().any(|p| p.contains(['*', '?', '[']))
    }

    /// The path as written, when it has no wildcards.
    pub fn text(&self) -> String {
        self.parts.join("/")
    }

    /// Whether `path` (relative, `/`-separated) matches as a whole.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        match_parts(&self.parts, &path)
    }

    /// Whether `path` or one of the directories above it matches (a
    /// `.dockerignore` line excludes a directory's contents with it).
    pub fn matches_path_or_parent(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        (1..=parts.len()).any(|n| match_parts(&self.parts, &parts[..n]))
    }
}

/// `path` with `.` and empty components dropped and `..` applied (never
/// above the root), without a leading `/`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

fn match_parts(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            match_parts(rest, path) || (!path.is_empty() && match_parts(pattern, &path[1..]))
        }
        Some((first, rest)) => {
            path.split_first().is_some_and(|(name, others)| match_name(first, name) && match_parts(rest, others))
        }
    }
}

/// One component against one name, Go's `filepath.Match`.
fn match_name(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_chars(&pattern, &name)
}

fn match_chars(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| match_chars(rest, &name[skip..])),
        '?' => !name.is_empty() && match_chars(rest, &name[1..]),
        '[' => match (name.first(), class(rest)) {
            (Some(&c), Some((set, after))) => set.contains(c) && match_chars(after, &name[1..]),
            _ => false,
        },
        '\\' if !rest.is_empty() => name.first() == Some(&rest[0]) && match_chars(&rest[1..], &name[1..]),
        c => name.first() == Some(&c) && match_chars(rest, &name[1..]),
    }
}

/// A `[…]` class: its set and what follows the `]`.
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != self.negated
    }
}

fn class(pattern: &[char]) -> Option<(Class, &[char])> {
    let mut at = 0;
    let negated = matches!(pattern.first(), Some('^' | '!'));
    at += usize::from(negated);
    let mut ranges = Vec::new();
    let literal = |at: &mut usize| -> Option<char> {
        let c = *pattern.get(*at)?;
        *at += 1;
        if c == '\\' {
            let escaped = *pattern.get(*at)?;
            *at += 1;
            return Some(escaped);
        }
        Some(c)
    };
    loop {
        if pattern.get(at) == Some(&']') && !ranges.is_empty() {
            return Some((Class { negated, ranges }, &pattern[at + 1..]));
        }
        let lo = literal(&mut at)?;
        let hi = if pattern.get(at) == Some(&'-') && pattern.get(at + 1) != Some(&']') {
            at += 1;
            literal(&mut at)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// The rules of a `.dockerignore` file, in order; the last that matches
/// a path decides (`!` lines let paths back in).
#[derive(Clone, Debug, Default)]
pub struct IgnoreRules {
    rules: Vec<(Pattern, bool)>,
}

impl IgnoreRules {
    pub fn parse(text: &str) -> IgnoreRules {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| match line.strip_prefix('!') {
                Some(kept) => (Pattern::new(kept.trim()), false),
                None => (Pattern::new(line), true),
            })
            .filter(|(p, _)| !p.parts.is_empty())
            .collect();
        IgnoreRules { rules }
    }

    /// Whether the context path `path` is left out.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (pattern, excludes) in &self.rules {
            if excluded != *excludes && pattern.matches_path_or_parent(path) {
                excluded = *excludes;
            }
        }
        excluded
    }

    /// Whether a directory left out may still hold a path let back in
    /// (then its contents must be looked at one by one).
    pub fn may_keep_below(&self, dir: &str) -> bool {
        self.rules.iter().any(|(pattern, excludes)| {
            !excludes
                && (pattern.parts.first().is_some_and(|p| p.contains(['*', '?', '['])) || {
                    let text = pattern.text();
                    text.starts_with(&format!("{dir}/")) || text == dir
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_go_rules() {
        let p = |pattern: &str, path: &str| Pattern::new(pattern).matches(path);
        assert!(p("*.txt", "a.txt"));
        assert!(!p("*.txt", "dir/a.txt"));
        assert!(p("dir/*.txt", "dir/a.txt"));
        assert!(p("a?c", "abc"));
        assert!(p("[a-c]x", "bx") && !p("[^a-c]x", "bx") && p("[!a-c]x", "dx"));
        assert!(p("\\*", "*") && !p("\\*", "a"));
        assert!(p("**/*.go", "a/b/c.go") && p("**/*.go", "c.go"));
        assert!(p("/./a/../b", "b"));
        assert!(Pattern::new("a*").has_wildcards() && !Pattern::new("a/b").has_wildcards());
    }

    #[test]
    fn dockerignore_rules_with_exceptions() {
        let rules = IgnoreRules::parse("# comment\n*.md\n!README.md\nbuild\n**/*.tmp\n/secret/\n");
        assert!(rules.excludes("notes.md"));
        assert!(!rules.excludes("README.md"));
        assert!(rules.excludes("build/out/x"));
        assert!(rules.excludes("a/b/c.tmp"));
        assert!(rules.excludes("secret/key"));
        assert!(!rules.excludes("src/main.rs"));
        assert!(!rules.excludes("docs/x.md"), "*.md matches the top level only");
        let rules = IgnoreRules::parse("data\n!data/keep\n");
        assert!(rules.excludes("data/x") && !rules.excludes("data/keep"));
        assert!(rules.may_keep_below("data") && !rules.may_keep_below("other"));
    }
}
