//! `--format`: the Go templates Docker and podman take (`{{.Names}}`,
//! `{{json .}}`, `table {{.ID}}\t{{.Status}}`), rendered by gotmpl over a
//! command's rows, plus `json` for a JSON object per row. Docker's template
//! functions beyond Go's are added: json, lower, upper, title, join, split,
//! truncate.

use super::Error;
use gotmpl::{Template, Value};
use serde::Serialize;

/// A parsed `--format`.
pub enum Format {
    /// A JSON object per row, one per line.
    Json,
    /// A template per row; with `table`, a header line and aligned columns.
    Template { template: Template, table: bool, header: String },
}

impl Format {
    /// Parses `text`; `header_of` names a field's column (`ID` → `CONTAINER ID`).
    pub fn parse(text: &str, header_of: &dyn Fn(&str) -> String) -> Result<Format, Error> {
        let trimmed = text.trim();
        if trimmed == "json" || trimmed == "{{json .}}" {
            return Ok(Format::Json);
        }
        // As Docker: `\t` and `\n` typed in the shell are a tab and a newline.
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let (table, body) = match text.trim_start().strip_prefix("table") {
            Some(rest) => (true, rest.trim_start().to_string()),
            None => (false, text.clone()),
        };
        let shown = text.clone();
        let bad = |e: gotmpl::TemplateError| Error::Usage(format!("--format {shown:?}: {e}"));
        let template = with_functions(Template::new("format")).parse(&body).map_err(bad)?;
        Ok(Format::Template { header: header_line(&body, header_of), template, table })
    }

    /// The output for `rows`, a line (or more) per row.
    pub fn render<T: Serialize>(&self, rows: &[T]) -> Result<String, Error> {
        let mut lines = Vec::new();
        match self {
            Format::Json => {
                for row in rows {
                    lines.push(serde_json::to_string(row).unwrap_or_default());
                }
            }
            Format::Template { template, table, header } => {
                if *table {
                    lines.push(header.clone());
                }
                for row in rows {
                    let value = gotmpl::to_value(row).map_err(|e| Error::Usage(format!("--format: {e}")))?;
                    let text =
                        template.execute_to_string(&value).map_err(|e| Error::Usage(format!("--format: {e}")))?;
                    lines.push(text);
                }
                if *table {
                    return Ok(aligned(&lines));
                }
            }
        }
        Ok(lines.iter().map(|l| format!("{l}\n")).collect())
    }
}

/// The header row of a `table` template: each action `{{…}}` replaced by
/// the column name of the first field it uses, the text between kept.
fn header_line(body: &str, header_of: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let action = &rest[start + 2..start + end];
        let field = action.split(|c: char| c.is_whitespace() || c == '}').find_map(|w| w.strip_prefix('.'));
        out.push_str(
            &field.filter(|f| !f.is_empty()).map(|f| header_of(f.split('.').next().unwrap_or(f))).unwrap_or_default(),
        );
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Tab-separated cells as columns three spaces apart.
pub fn aligned(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |i: usize| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn text_arg(args: &[Value], i: usize) -> String {
    args.get(i).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).unwrap_or_default()
}

/// Docker's functions beyond Go's.
fn with_functions(template: Template) -> Template {
    template
        .func("json", |args| {
            let json = args.first().map(|v| serde_json::to_string(&to_json(v)).unwrap_or_default());
            Ok(Value::String(json.unwrap_or_default().into()))
        })
        .func("lower", |args| Ok(Value::String(text_arg(args, 0).to_lowercase().into())))
        .func("upper", |args| Ok(Value::String(text_arg(args, 0).to_uppercase().into())))
        .func("title", |args| {
            let text = text_arg(args, 0);
            let mut chars = text.chars();
            let titled = chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default();
            Ok(Value::String(titled.into()))
        })
        .func("join", |args| {
            let items: Vec<String> = match args.first() {
                Some(Value::List(items)) => items.iter().map(|v| text_arg(std::slice::from_ref(v), 0)).collect(),
                Some(other) => vec![text_arg(std::slice::from_ref(other), 0)],
                None => Vec::new(),
            };
            Ok(Value::String(items.join(&text_arg(args, 1)).into()))
        })
        .func("split", |args| {
            let (text, sep) = (text_arg(args, 0), text_arg(args, 1));
            Ok(Value::List(text.split(sep.as_str()).map(|p| Value::String(p.into())).collect::<Vec<_>>().into()))
        })
        .func("truncate", |args| {
            let n = args.get(1).and_then(Value::as_int).and_then(|n| usize::try_from(n).ok()).unwrap_or(usize::MAX);
            Ok(Value::String(text_arg(args, 0).chars().take(n).collect::<String>().into()))
        })
}

/// A template value as JSON, for `{{json .}}`.
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => (*f).into(),
        Value::String(s) => s.to_string().into(),
        Value::List(items) => items.iter().map(to_json).collect(),
        Value::Map(map) => {
            map.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect::<serde_json::Map<_, _>>().into()
        }
        other => other.to_string().into(),
    }
}
