//! From text to instructions: directives at the top, then one logical
//! line per instruction (continuations joined, comments dropped), its
//! here-documents read from the lines after it.

use super::{SyntaxError, KEYWORDS};

#[derive(Clone, Debug, PartialEq)]
pub struct Dockerfile {
    /// `# escape=` (`\` unless set to `` ` ``).
    pub escape: char,
    /// `# syntax=`: noted, not acted on.
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    /// Where the instruction starts (1-based).
    pub line: usize,
    /// Upper case.
    pub keyword: String,
    /// `--name[=value]` before the arguments (FROM, RUN, COPY, ADD, HEALTHCHECK).
    pub flags: Vec<Flag>,
    pub args: Args,
    /// `<<NAME` bodies, in the order they are named.
    pub heredocs: Vec<Heredoc>,
    /// The instruction as written, on one line (history, messages).
    pub source: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Args {
    /// `["a", "b"]`.
    Exec(Vec<String>),
    /// Anything else, as written (leading and trailing blanks dropped).
    Shell(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Heredoc {
    pub name: String,
    /// Every line, each ending in a newline.
    pub body: String,
    /// Unquoted name: variables in the body are expanded (COPY does).
    pub expand: bool,
}

/// Keywords that take `--flags` before their arguments.
const TAKES_FLAGS: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];
/// Keywords whose arguments may be a JSON array.
const TAKES_EXEC_FORM: &[&str] = &["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];
/// Keywords whose arguments may name here-documents.
const TAKES_HEREDOCS: &[&str] = &["RUN", "COPY", "ADD"];

/// Parses a whole Dockerfile; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, SyntaxError> {
    let lines: Vec<&str> = text.lines().collect();
    let error = |line: usize, instruction: &str, why: String| SyntaxError {
        file: file.to_string(),
        line,
        instruction: if instruction.is_empty() { String::new() } else { format!("{instruction}: ") },
        why,
    };
    let mut escape = '\\';
    let mut syntax = None;
    let mut next = 0;
    while let Some((key, value)) = lines.get(next).and_then(|l| directive(l)) {
        match key.as_str() {
            "escape" if value == "\\" || value == "`" => escape = value.chars().next().unwrap_or('\\'),
            "escape" => return Err(error(next + 1, "", format!("invalid escape token {value:?}: use \\ or `"))),
            "syntax" => syntax = Some(value),
            _ => {}
        }
        next += 1;
    }
    let mut instructions = Vec::new();
    while next < lines.len() {
        if is_blank_or_comment(lines[next]) {
            next += 1;
            continue;
        }
        let line = next + 1;
        let logical = logical_line(&lines, &mut next, escape);
        let trimmed = logical.trim();
        let (word, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(error(line, "", format!("unknown instruction: {word}")));
        }
        let mut rest = rest.trim();
        let mut flags = Vec::new();
        if TAKES_FLAGS.contains(&keyword.as_str()) {
            while let Some(flag) = rest.strip_prefix("--") {
                let (word, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
                let (name, value) = match word.split_once('=') {
                    Some((name, value)) => (name, Some(value.to_string())),
                    None => (word, None),
                };
                flags.push(Flag { name: name.to_string(), value });
                rest = after.trim_start();
            }
        }
        let heredocs = match TAKES_HEREDOCS.contains(&keyword.as_str()) {
            true => read_heredocs(rest, &lines, &mut next).map_err(|why| error(line, &keyword, why))?,
            false => Vec::new(),
        };
        let args = match rest.starts_with('[') && TAKES_EXEC_FORM.contains(&keyword.as_str()) {
            true => serde_json::from_str(rest).map_or_else(|_| Args::Shell(rest.to_string()), Args::Exec),
            false => Args::Shell(rest.to_string()),
        };
        if args == Args::Shell(String::new()) {
            return Err(error(line, &keyword, "needs an argument".into()));
        }
        instructions.push(Instruction { line, keyword, flags, args, heredocs, source: trimmed.to_string() });
    }
    Ok(Dockerfile { escape, syntax, instructions })
}

/// `# key=value` at the top of the file.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim().strip_prefix('#')?;
    let (key, value) = body.split_once('=')?;
    let key = key.trim().to_ascii_lowercase();
    let known = matches!(key.as_str(), "escape" | "syntax" | "check");
    (known && !value.trim().is_empty()).then(|| (key, value.trim().to_string()))
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim_start();
    line.is_empty() || line.starts_with('#')
}

/// Joins the lines of one instruction (ending in the escape character),
/// skipping comments and blank lines between them; `next` moves past.
fn logical_line(lines: &[&str], next: &mut usize, escape: char) -> String {
    let mut logical = String::new();
    while let Some(raw) = lines.get(*next) {
        *next += 1;
        match raw.trim_end().strip_suffix(escape) {
            Some(continued) => {
                logical.push_str(continued);
                while lines.get(*next).is_some_and(|l| is_blank_or_comment(l)) {
                    *next += 1;
                }
            }
            None => {
                logical.push_str(raw);
                break;
            }
        }
    }
    logical
}

/// The bodies of the `<<NAME` (or `<<-NAME`, `<<"NAME"`) markers in
/// `args`, read from the lines at `next`, which moves past them.
fn read_heredocs(args: &str, lines: &[&str], next: &mut usize) -> Result<Vec<Heredoc>, String> {
    let mut heredocs = Vec::new();
    for (name, strip_tabs, quoted) in heredoc_markers(args) {
        let mut body = String::new();
        loop {
            let Some(raw) = lines.get(*next) else {
                return Err(format!("here-document {name:?} is not terminated (no line {name:?} follows)"));
            };
            *next += 1;
            let line = if strip_tabs { raw.trim_start_matches('\t') } else { raw };
            if line == name {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        heredocs.push(Heredoc { name, body, expand: !quoted });
    }
    Ok(heredocs)
}

/// (name, `<<-`, quoted) for each here-document marker in `args`.
pub(crate) fn heredoc_markers(args: &str) -> Vec<(String, bool, bool)> {
    let mut markers = Vec::new();
    let mut rest = args;
    while let Some(at) = rest.find("<<") {
        let mut after = &rest[at + 2..];
        rest = after;
        if after.starts_with('<') {
            rest = after.trim_start_matches('<'); // a here-string, not a document
            continue;
        }
        let strip_tabs = after.starts_with('-');
        after = after.strip_prefix('-').unwrap_or(after);
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        let after_quote = quote.map_or(after, |q| &after[q.len_utf8()..]);
        let name: String = after_quote.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let closed = quote.is_none_or(|q| after_quote[name.len()..].starts_with(q));
        if first_ok && closed {
            markers.push((name, strip_tabs, quote.is_some()));
        }
    }
    markers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Instruction {
        parse("Dockerfile", text).unwrap().instructions.remove(0)
    }

    #[test]
    fn continuations_comments_and_forms() {
        let df = parse(
            "Dockerfile",
            "# syntax=docker/dockerfile:1\n# escape=\\\n\nFROM busybox AS base\n# a comment\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\nCMD [not json\n",
        )
        .unwrap();
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!((i[0].line, i[0].keyword.as_str()), (4, "FROM"));
        assert_eq!(i[1].args, Args::Shell("echo a   && echo b".into()));
        assert_eq!(i[1].line, 6);
        assert_eq!(i[2].args, Args::Exec(vec!["sh".into(), "-c".into(), "x".into()]));
        assert_eq!(i[3].args, Args::Shell("[not json".into()));
    }

    #[test]
    fn escape_directive_changes_the_continuation() {
        let df = parse("D", "# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n").unwrap();
        assert_eq!(df.instructions[1].args, Args::Shell("dir c:\\   /w".into()));
        assert!(parse("D", "# escape=x\nFROM x\n").is_err());
    }

    #[test]
    fn flags_and_heredocs() {
        let i = one("RUN --mount=type=cache,target=/c --network=none <<EOF\nset -e\n  echo hi\nEOF\n");
        assert_eq!(i.flags.len(), 2);
        assert_eq!(i.flags[0], Flag { name: "mount".into(), value: Some("type=cache,target=/c".into()) });
        assert_eq!(i.args, Args::Shell("<<EOF".into()));
        assert_eq!(i.heredocs[0].body, "set -e\n  echo hi\n");
        let i = one("COPY <<-\"A\" <<B /dst/\n\tx $V\n\tA\ny\nB\n");
        assert_eq!(i.heredocs.len(), 2);
        assert_eq!(i.heredocs[0], Heredoc { name: "A".into(), body: "x $V\n".into(), expand: false });
        assert_eq!(i.heredocs[1].body, "y\n");
        assert!(parse("D", "FROM x\nRUN <<EOF\necho\n").is_err());
        assert!(heredoc_markers("cat <<< word").is_empty());
    }

    #[test]
    fn errors_name_the_line_and_the_instruction() {
        let e = parse("Dockerfile", "FROM x\n\nFOO bar\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction: FOO");
        let e = parse("Dockerfile", "FROM x\nRUN\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:2: RUN: needs an argument");
    }
}
