//! Healthchecks: the check a container is given (`--health-*`, or the
//! image's HEALTHCHECK) and its recorded results (`health.json`), in
//! Docker's shape so `inspect` shows them as Docker does.

use super::{Container, Error};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Docker's `Healthcheck`: durations in nanoseconds, 0 for the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["CMD", prog, args…]`, `["CMD-SHELL", command]` or `["NONE"]`.
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: u64,
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub start_period: u64,
    #[serde(default)]
    pub retries: u32,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Results kept, as Docker keeps them.
const KEPT_RESULTS: usize = 5;
/// Output kept of each result.
const KEPT_OUTPUT: usize = 4096;

const FILE: &str = "health.json";

impl HealthConfig {
    /// The command to run, as a process's arguments; None for `NONE` (or
    /// no test at all).
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, [command])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), command.clone()])
            }
            _ => None,
        }
    }

    /// These settings over `base` (the image's): what is unset here is
    /// taken from there.
    pub fn over(&self, base: Option<&HealthConfig>) -> HealthConfig {
        let Some(base) = base else { return self.clone() };
        let pick = |ours: u64, theirs: u64| if ours == 0 { theirs } else { ours };
        HealthConfig {
            test: if self.test.is_empty() { base.test.clone() } else { self.test.clone() },
            interval: pick(self.interval, base.interval),
            timeout: pick(self.timeout, base.timeout),
            start_period: pick(self.start_period, base.start_period),
            retries: if self.retries == 0 { base.retries } else { self.retries },
        }
    }

    pub fn interval(&self) -> Duration {
        nanos_or(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        nanos_or(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }

    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

fn nanos_or(nanos: u64, default: Duration) -> Duration {
    if nanos == 0 {
        default
    } else {
        Duration::from_nanos(nanos)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One run of the check.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    /// The check's status; -1 when it timed out or could not run.
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// Counts one result: a pass makes the container healthy; `retries`
    /// failures in a row make it unhealthy, except that failures within
    /// the start period do not count.
    pub fn record(&mut self, mut result: ProbeResult, retries: u32, in_start_period: bool) {
        if result.exit_code == 0 {
            self.status = HealthStatus::Healthy;
            self.failing_streak = 0;
        } else if !in_start_period {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        if result.output.len() > KEPT_OUTPUT {
            let mut end = KEPT_OUTPUT;
            while !result.output.is_char_boundary(end) {
                end -= 1;
            }
            result.output.truncate(end);
        }
        self.log.push(result);
        let excess = self.log.len().saturating_sub(KEPT_RESULTS);
        self.log.drain(..excess);
    }
}

impl Container {
    /// The recorded health, when the container has a check.
    pub fn health(&self) -> Option<Health> {
        self.record.healthcheck.as_ref().and_then(HealthConfig::command)?;
        let bytes = std::fs::read(self.path(FILE)).ok();
        Some(bytes.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default())
    }

    /// Starts the count again (a new start of the container).
    pub fn reset_health(&self) -> Result<(), Error> {
        self.write(FILE, &Health::default())
    }

    /// Adds one result to the recorded health; returns the new health.
    pub fn record_health(&self, result: ProbeResult, in_start_period: bool) -> Result<Health, Error> {
        let retries = self.record.healthcheck.as_ref().map_or(DEFAULT_RETRIES, HealthConfig::retries);
        let mut health = self.health().unwrap_or_default();
        health.record(result, retries, in_start_period);
        self.write(FILE, &health)?;
        Ok(health)
    }
}

/// A Go duration, as Docker takes them: `1h2m3.5s`, `500ms`, `10us`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> ProbeResult {
        ProbeResult { exit_code: code, ..Default::default() }
    }

    #[test]
    fn retries_failures_make_it_unhealthy_and_one_pass_healthy_again() {
        let mut health = Health::default();
        health.record(result(1), 2, false);
        assert_eq!(health.status, HealthStatus::Starting);
        health.record(result(1), 2, false);
        assert_eq!((health.status, health.failing_streak), (HealthStatus::Unhealthy, 2));
        health.record(result(0), 2, false);
        assert_eq!((health.status, health.failing_streak), (HealthStatus::Healthy, 0));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_and_the_log_keeps_five() {
        let mut health = Health::default();
        for _ in 0..7 {
            health.record(result(1), 1, true);
        }
        assert_eq!((health.status, health.failing_streak, health.log.len()), (HealthStatus::Starting, 0, 5));
    }

    #[test]
    fn tests_become_commands() {
        let shell = HealthConfig { test: vec!["CMD-SHELL".into(), "true".into()], ..Default::default() };
        assert_eq!(shell.command(), Some(vec!["/bin/sh".into(), "-c".into(), "true".into()]));
        let none = HealthConfig { test: vec!["NONE".into()], ..Default::default() };
        assert_eq!(none.command(), None);
    }
}
