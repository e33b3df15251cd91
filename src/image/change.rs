//! Dockerfile instructions that change an image's config (`commit
//! --change`): CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL and
//! STOPSIGNAL, in Dockerfile syntax, applied to the config's JSON.

use serde_json::{json, Map, Value};

/// Why an instruction was refused.
#[derive(Debug, thiserror::Error)]
#[error("--change {change:?}: {why}")]
pub struct BadChange {
    pub change: String,
    pub why: &'static str,
}

/// One `--change` instruction, Dockerfile syntax: JSON arrays or the
/// shell form for CMD and ENTRYPOINT, `KEY=VALUE` pairs for ENV and LABEL.
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<(), BadChange> {
    let bad = |why: &'static str| BadChange { change: change.to_string(), why };
    let (instruction, rest) = change.trim().split_once(char::is_whitespace).ok_or_else(|| bad("no value"))?;
    let rest = rest.trim();
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => config.insert("Cmd".into(), json!(command_form(rest))),
        "ENTRYPOINT" => config.insert("Entrypoint".into(), json!(command_form(rest))),
        "WORKDIR" => config.insert("WorkingDir".into(), json!(rest)),
        "USER" => config.insert("User".into(), json!(rest)),
        "STOPSIGNAL" => config.insert("StopSignal".into(), json!(rest)),
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            for port in rest.split_whitespace() {
                let port = if port.contains('/') { port.to_string() } else { format!("{port}/tcp") };
                ports[port] = json!({});
            }
            None
        }
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            for (key, value) in pairs(rest).ok_or_else(|| bad("expected KEY=VALUE"))? {
                if let Some(list) = env.as_array_mut() {
                    list.retain(|e| e.as_str().and_then(|e| e.split('=').next()) != Some(key.as_str()));
                    list.push(json!(format!("{key}={value}")));
                }
            }
            None
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            for (key, value) in pairs(rest).ok_or_else(|| bad("expected KEY=VALUE"))? {
                labels[key] = json!(value);
            }
            None
        }
        _ => return Err(bad("supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL")),
    };
    Ok(())
}

/// `["a", "b"]` as it is; anything else is run by `/bin/sh -c`.
fn command_form(value: &str) -> Vec<String> {
    serde_json::from_str(value).unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), value.into()])
}

/// `A=1 B="two words"`, or the old `ENV KEY value` form.
fn pairs(value: &str) -> Option<Vec<(String, String)>> {
    if !value.contains('=') {
        let (key, val) = value.split_once(char::is_whitespace)?;
        return Some(vec![(key.to_string(), val.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (val, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"')?,
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        out.push((key.trim().to_string(), val.to_string()));
        rest = next.trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_dockerfile_syntax() {
        let mut config = Map::new();
        apply_change(&mut config, r#"CMD ["sleep", "5"]"#).unwrap();
        apply_change(&mut config, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut config, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut config, "ENV A 3").unwrap();
        apply_change(&mut config, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(config["Cmd"], json!(["sleep", "5"]));
        assert_eq!(config["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(config["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert!(apply_change(&mut config, "RUN true").is_err());
        assert!(apply_change(&mut config, "ENV").is_err());
    }
}
