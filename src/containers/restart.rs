//! Restart policies (`--restart`), as Docker's daemon applies them; here
//! the container's monitor does, since hutch has no daemon.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When the monitor starts a container's process again after it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "Name")]
pub enum RestartPolicy {
    #[default]
    No,
    /// On a non-zero status, at most `max_retries` times (0: no limit).
    OnFailure {
        #[serde(rename = "MaximumRetryCount", default)]
        max_retries: u32,
    },
    Always,
    /// As `Always`: without a daemon there is no daemon restart to tell
    /// them apart.
    UnlessStopped,
}

/// The first pause before a restart; it doubles with each restart in a row.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between restarts.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A process that ran this long resets the pause to the first one.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    /// `no`, `on-failure[:N]`, `always` or `unless-stopped`.
    pub fn parse(text: &str) -> Result<RestartPolicy, String> {
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let policy = match name {
            "no" | "" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max_retries = match count {
                    None => 0,
                    Some(n) => n.parse::<u32>().map_err(|_| {
                        format!("invalid --restart {text:?}: the retry count must be a whole number of at least 0")
                    })?,
                };
                return Ok(RestartPolicy::OnFailure { max_retries });
            }
            _ => {
                return Err(format!(
                    "invalid --restart {text:?}: use no, on-failure[:MAX-RETRIES], always or unless-stopped"
                ))
            }
        };
        if count.is_some() {
            return Err(format!("invalid --restart {text:?}: only on-failure takes a retry count"));
        }
        Ok(policy)
    }

    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }

    /// Whether a process that ended with `code`, after `restarts` restarts,
    /// is started again. A stop or kill the user asked for ends it for good.
    pub fn restarts(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => code != 0 && (max_retries == 0 || restarts < max_retries),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// Docker's back-off: 100 ms, doubled for each restart in a row, at most
/// a minute; back to 100 ms after a process that ran `RESET_AFTER`.
pub fn delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    match previous {
        Some(previous) if ran_for < RESET_AFTER => (previous * 2).min(MAX_DELAY),
        _ => FIRST_DELAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_docker_writes_them() {
        assert_eq!(RestartPolicy::parse("no"), Ok(RestartPolicy::No));
        assert_eq!(RestartPolicy::parse("always"), Ok(RestartPolicy::Always));
        assert_eq!(RestartPolicy::parse("on-failure:3"), Ok(RestartPolicy::OnFailure { max_retries: 3 }));
        assert_eq!(RestartPolicy::parse("on-failure"), Ok(RestartPolicy::OnFailure { max_retries: 0 }));
        assert!(RestartPolicy::parse("on-failure:-1").unwrap_err().contains("at least 0"));
        assert!(RestartPolicy::parse("always:2").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
    }

    #[test]
    fn on_failure_counts_and_a_user_stop_ends_every_policy() {
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(p.restarts(1, 1, false) && !p.restarts(1, 2, false) && !p.restarts(0, 0, false));
        assert!(RestartPolicy::Always.restarts(0, 100, false));
        assert!(!RestartPolicy::Always.restarts(1, 0, true));
    }

    #[test]
    fn the_pause_doubles_up_to_a_minute_and_resets_after_a_long_run() {
        let first = delay(None, Duration::ZERO);
        assert_eq!(first, Duration::from_millis(100));
        assert_eq!(delay(Some(first), Duration::ZERO), Duration::from_millis(200));
        assert_eq!(delay(Some(Duration::from_secs(50)), Duration::ZERO), Duration::from_secs(60));
        assert_eq!(delay(Some(Duration::from_secs(50)), RESET_AFTER), first);
    }
}
