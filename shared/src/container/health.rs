//! Docker's health checks as a container's record keeps them: the check
//! (`Config.Healthcheck`, the image's merged with `ctr-run --health-*`),
//! and its state (`State.Health`: status, failing streak, the last five
//! probe results). The monitor's prober runs the probes; what a result
//! does to the state is decided here, as Docker's engine decides it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Docker's defaults for a check that leaves a value at zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps the last five results.
const KEPT_RESULTS: usize = 5;
/// And at most this many bytes of a probe's output.
pub const MOST_OUTPUT: usize = 4096;

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Docker's `Config.Healthcheck`: durations in nanoseconds, a zero one
/// (absent in JSON, as Docker omits it) meaning "the default, or the
/// image's".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` (inherit the image's), `["NONE"]`, `["CMD", args…]` or
    /// `["CMD-SHELL", command]`.
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

impl HealthConfig {
    /// Docker's merge of a container's check over its image's: no check of
    /// the container's takes the image's; an empty test takes the image's
    /// test, and each zero value the image's value.
    pub fn merged(ours: Option<HealthConfig>, image: Option<HealthConfig>) -> Option<HealthConfig> {
        let Some(image) = image else {
            return ours;
        };
        let Some(mut ours) = ours else {
            return Some(image);
        };
        if ours.test.is_empty() {
            ours.test = image.test;
        }
        for (mine, theirs) in [
            (&mut ours.interval, image.interval),
            (&mut ours.timeout, image.timeout),
            (&mut ours.start_period, image.start_period),
            (&mut ours.start_interval, image.start_interval),
            (&mut ours.retries, image.retries),
        ] {
            if *mine == 0 {
                *mine = theirs;
            }
        }
        Some(ours)
    }

    /// The command a probe runs in the container, if the check has one
    /// (none for `NONE` or an empty test). CMD-SHELL runs through
    /// `/bin/sh -c`, as Docker's engine runs it on Linux.
    pub fn probe_command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, [command])) if kind == "CMD-SHELL" => Some(vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                command.clone(),
            ]),
            _ => None,
        }
    }

    fn or(nanos: i64, default: Duration) -> Duration {
        if nanos > 0 {
            Duration::from_nanos(nanos as u64)
        } else {
            default
        }
    }

    pub fn interval(&self) -> Duration {
        HealthConfig::or(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        HealthConfig::or(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        HealthConfig::or(self.start_period, Duration::ZERO)
    }

    pub fn start_interval(&self) -> Duration {
        HealthConfig::or(self.start_interval, DEFAULT_START_INTERVAL)
    }

    pub fn retries(&self) -> i64 {
        if self.retries > 0 {
            self.retries
        } else {
            DEFAULT_RETRIES
        }
    }

    /// How long to wait before the next probe: the start interval while
    /// the container is starting within its start period (Docker 25's
    /// `--start-interval`, only when one was set), the interval otherwise.
    pub fn next_wait(&self, status: HealthStatus, since_start: Duration) -> Duration {
        if status == HealthStatus::Starting
            && self.start_interval > 0
            && since_start < self.start_period()
        {
            self.start_interval()
        } else {
            self.interval()
        }
    }
}

/// Docker's health status words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// One probe's result, as Docker's `State.Health.Log` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    /// 0 healthy, anything else a failure; -1 when the probe could not
    /// run or exceeded its timeout (Docker's value).
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    pub log: Vec<HealthResult>,
}

impl Health {
    /// What a (re)started container's health is: starting, no streak; the
    /// results of earlier runs stay, as Docker keeps them.
    pub fn restarted(earlier: Option<Health>) -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: earlier.map(|h| h.log).unwrap_or_default(),
        }
    }

    /// Docker's handling of a probe result: success makes the container
    /// healthy; a failure adds to the streak (not while it is starting
    /// within its start period) and `retries` of them make it unhealthy.
    pub fn record(&mut self, result: HealthResult, retries: i64, within_start_period: bool) {
        if self.log.len() >= KEPT_RESULTS {
            self.log.drain(..self.log.len() + 1 - KEPT_RESULTS);
        }
        let healthy = result.exit_code == 0;
        self.log.push(result);
        if healthy {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
            return;
        }
        if self.status == HealthStatus::Starting && within_start_period {
            return;
        }
        self.failing_streak += 1;
        if self.failing_streak >= retries {
            self.status = HealthStatus::Unhealthy;
        }
    }

    /// What `docker ps` adds to `Up …`, inside the parentheses.
    pub fn ps_text(&self) -> &'static str {
        match self.status {
            HealthStatus::Starting => "health: starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// A probe's output as Docker keeps it: the first 4096 bytes (cut at a
/// character boundary), then "..." if there was more.
pub fn kept_output(bytes: &[u8], truncated: bool) -> String {
    let mut end = bytes.len().min(MOST_OUTPUT);
    let text = loop {
        match std::str::from_utf8(&bytes[..end]) {
            Ok(text) => break text.to_string(),
            Err(e) if e.error_len().is_none() => end = e.valid_up_to(),
            Err(_) => break String::from_utf8_lossy(&bytes[..end]).into_owned(),
        }
    };
    if truncated || bytes.len() > MOST_OUTPUT {
        text + "..."
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..HealthResult::default()
        }
    }

    #[test]
    fn a_container_s_check_is_merged_over_the_image_s_as_docker_merges() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 5,
            retries: 7,
            ..HealthConfig::default()
        };
        assert_eq!(
            HealthConfig::merged(None, Some(image.clone())),
            Some(image.clone())
        );
        let ours = HealthConfig {
            interval: 9,
            ..HealthConfig::default()
        };
        let merged = HealthConfig::merged(Some(ours), Some(image.clone())).unwrap();
        assert_eq!(
            (merged.test.clone(), merged.interval, merged.retries),
            (image.test.clone(), 9, 7)
        );
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        let merged = HealthConfig::merged(Some(none), Some(image)).unwrap();
        assert_eq!(merged.probe_command(), None, "--no-healthcheck");
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "exit 1".into()],
            ..HealthConfig::default()
        };
        assert_eq!(shell.probe_command().unwrap(), ["/bin/sh", "-c", "exit 1"]);
        assert_eq!(shell.interval(), Duration::from_secs(30));
        assert_eq!(shell.retries(), 3);
    }

    #[test]
    fn results_move_the_status_as_docker_s_engine_moves_it() {
        let mut health = Health::restarted(None);
        health.record(result(1), 2, true);
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Starting, 0)
        );
        health.record(result(1), 2, false);
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Starting, 1)
        );
        health.record(result(1), 2, false);
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Unhealthy, 2)
        );
        health.record(result(0), 2, false);
        assert_eq!(
            (health.status, health.failing_streak),
            (HealthStatus::Healthy, 0)
        );
        health.record(result(1), 2, true);
        assert_eq!(
            health.failing_streak, 1,
            "the start period counts only while starting"
        );
        for _ in 0..10 {
            health.record(result(0), 2, false);
        }
        assert_eq!(health.log.len(), 5);
        assert_eq!(health.ps_text(), "healthy");
        let again = Health::restarted(Some(health));
        assert_eq!((again.status, again.log.len()), (HealthStatus::Starting, 5));
        assert_eq!(again.ps_text(), "health: starting");
    }

    #[test]
    fn output_is_kept_to_4096_bytes() {
        assert_eq!(kept_output(b"ok\n", false), "ok\n");
        let long = vec![b'x'; 5000];
        let kept = kept_output(&long, false);
        assert_eq!(kept.len(), 4096 + 3);
        assert!(kept.ends_with("x..."));
        let mut split = vec![b'x'; 4095];
        split.extend("é".as_bytes());
        assert_eq!(kept_output(&split, false).len(), 4095 + 3);
    }
}
