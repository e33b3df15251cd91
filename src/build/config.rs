//! A stage's run config (the image config's `config` object, Docker's
//! keys) as the config instructions change it.

use crate::dockerfile::{Args, Flag};
use serde_json::{json, Map, Value};

pub type RunConfig = Map<String, Value>;

/// `ENV KEY=VALUE`: replaces an earlier value of KEY, in place.
pub fn set_env(config: &mut RunConfig, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    let env = config.entry("Env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    if let Some(list) = env.as_array_mut() {
        match list.iter_mut().find(|e| e.as_str().and_then(|e| e.split('=').next()) == Some(key)) {
            Some(existing) => *existing = json!(entry),
            None => list.push(json!(entry)),
        }
    }
}

/// The environment, `KEY` → value, in order.
pub fn env(config: &RunConfig) -> Vec<(String, String)> {
    let list = config.get("Env").and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter()
        .filter_map(Value::as_str)
        .map(|e| e.split_once('=').map_or((e.to_string(), String::new()), |(k, v)| (k.into(), v.into())))
        .collect()
}

/// Adds `key` to the object `field` (Labels, ExposedPorts, Volumes).
pub fn insert(config: &mut RunConfig, field: &str, key: &str, value: Value) {
    let map = config.entry(field).or_insert_with(|| json!({}));
    if !map.is_object() {
        *map = json!({});
    }
    map[key] = value;
}

/// The VOLUMEs declared so far.
pub fn volumes(config: &RunConfig) -> Vec<std::path::PathBuf> {
    config.get("Volumes").and_then(Value::as_object).map(|v| v.keys().map(Into::into).collect()).unwrap_or_default()
}

pub fn text(config: &RunConfig, key: &str) -> Option<String> {
    config.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The shell of RUN, CMD and ENTRYPOINT's shell forms.
pub fn shell(config: &RunConfig) -> Vec<String> {
    let set: Option<Vec<String>> = config.get("Shell").and_then(|v| serde_json::from_value(v.clone()).ok());
    set.filter(|s| !s.is_empty()).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// CMD's or ENTRYPOINT's value: the exec form as it is, the shell form run by the shell.
pub fn command(config: &RunConfig, args: &Args) -> Vec<String> {
    match args {
        Args::Exec(words) => words.clone(),
        Args::Shell(text) => shell(config).into_iter().chain([text.clone()]).collect(),
    }
}

/// `HEALTHCHECK [--interval=…] CMD …` or `HEALTHCHECK NONE`, as Docker's `Healthcheck`.
pub fn healthcheck(flags: &[Flag], args: &Args) -> Result<Value, String> {
    let test: Vec<String> = match args {
        Args::Shell(text) if text.eq_ignore_ascii_case("none") => return Ok(json!({"Test": ["NONE"]})),
        Args::Shell(text) => {
            let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            if !word.eq_ignore_ascii_case("cmd") {
                return Err("expected HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE".into());
            }
            let rest = rest.trim();
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(words) if rest.starts_with('[') => ["CMD".to_string()].into_iter().chain(words).collect(),
                _ => vec!["CMD-SHELL".into(), rest.to_string()],
            }
        }
        Args::Exec(_) => return Err("expected HEALTHCHECK [OPTIONS] CMD command".into()),
    };
    let mut check = json!({"Test": test});
    for flag in flags {
        let value = flag.value.as_deref().unwrap_or_default();
        let key = match flag.name.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let retries: u32 = value.parse().map_err(|_| format!("--retries={value}: not a number"))?;
                check["Retries"] = json!(retries);
                continue;
            }
            other => return Err(format!("unknown flag --{other}")),
        };
        let duration = crate::containers::health::parse_go_duration(value)
            .ok_or_else(|| format!("--{}={value}: not a duration (as 30s, 1m30s)", flag.name))?;
        check[key] = json!(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_in_place_and_healthchecks_parse() {
        let mut config = RunConfig::new();
        set_env(&mut config, "PATH", "/bin");
        set_env(&mut config, "A", "1");
        set_env(&mut config, "PATH", "/usr/bin");
        assert_eq!(config["Env"], json!(["PATH=/usr/bin", "A=1"]));
        let flags = [Flag { name: "interval".into(), value: Some("5s".into()) }];
        let check = healthcheck(&flags, &Args::Shell("CMD curl -f http://x/".into())).unwrap();
        assert_eq!(check, json!({"Test": ["CMD-SHELL", "curl -f http://x/"], "Interval": 5_000_000_000u64}));
        let check = healthcheck(&[], &Args::Shell("CMD [\"true\"]".into())).unwrap();
        assert_eq!(check["Test"], json!(["CMD", "true"]));
        assert_eq!(healthcheck(&[], &Args::Shell("NONE".into())).unwrap()["Test"], json!(["NONE"]));
    }
}
