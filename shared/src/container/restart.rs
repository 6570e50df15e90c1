//! Docker's restart policies as a container's record keeps them
//! (`HostConfig.RestartPolicy`), the decision its monitor takes when the
//! container's process exits (Docker's restart manager: whether, and after
//! which back-off), and the mark a user's stop or kill leaves so that the
//! policy never undoes it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Docker's policy names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartName {
    #[default]
    #[serde(rename = "no")]
    No,
    #[serde(rename = "always")]
    Always,
    #[serde(rename = "unless-stopped")]
    UnlessStopped,
    #[serde(rename = "on-failure")]
    OnFailure,
}

impl RestartName {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartName::No => "no",
            RestartName::Always => "always",
            RestartName::UnlessStopped => "unless-stopped",
            RestartName::OnFailure => "on-failure",
        }
    }
}

/// Docker's `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: RestartName,
    pub maximum_retry_count: i64,
}

/// A `--restart` value Docker refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRestartPolicy(pub String);

impl FromStr for RestartPolicy {
    type Err = BadRestartPolicy;
    /// Docker's `no|always|unless-stopped|on-failure[:N]`; its client's
    /// and engine's checks, in their words.
    fn from_str(text: &str) -> Result<RestartPolicy, BadRestartPolicy> {
        let bad = |why: String| Err(BadRestartPolicy(why));
        let parts: Vec<&str> = text.split(':').collect();
        let (name, count) = match parts.as_slice() {
            [name] => (*name, 0),
            [name, count] => match count.parse::<i64>() {
                Ok(n) => (*name, n),
                Err(_) => return bad("maximum retry count must be an integer".into()),
            },
            _ => return bad("invalid restart policy format".into()),
        };
        let name = match name {
            "" | "no" => RestartName::No,
            "always" => RestartName::Always,
            "unless-stopped" => RestartName::UnlessStopped,
            "on-failure" => RestartName::OnFailure,
            other => return bad(format!("invalid restart policy '{other}'")),
        };
        if name == RestartName::OnFailure && count < 0 {
            return bad("maximum retry count cannot be negative".into());
        }
        if name != RestartName::OnFailure && count != 0 {
            return bad(format!(
                "maximum retry count cannot be used with restart policy '{}'",
                name.as_str()
            ));
        }
        Ok(RestartPolicy {
            name,
            maximum_retry_count: count,
        })
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if self.maximum_retry_count > 0 {
            write!(f, ":{}", self.maximum_retry_count)?;
        }
        Ok(())
    }
}

impl RestartPolicy {
    pub fn is_none(&self) -> bool {
        self.name == RestartName::No
    }

    /// Docker's restart manager: whether a process that exited with
    /// `code` is started again, after `restarts` restarts so far, when a
    /// user did (`stopped_by_user`) or did not stop it.
    pub fn restarts(&self, code: i32, stopped_by_user: bool, restarts: i64) -> bool {
        if stopped_by_user {
            // Docker: a manual stop is never undone by the policy.
            return false;
        }
        match self.name {
            RestartName::No => false,
            RestartName::Always | RestartName::UnlessStopped => true,
            RestartName::OnFailure => {
                code != 0 && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count)
            }
        }
    }
}

/// Docker's back-off between restarts: 100 ms, doubled each time up to a
/// minute, and back to 100 ms once a run lasted 10 seconds.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    delay: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(60);
    const RESET_AFTER: Duration = Duration::from_secs(10);

    /// The wait before the next start, after a run that lasted `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        if ran >= Backoff::RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            Backoff::FIRST
        } else {
            (self.delay * 2).min(Backoff::MOST)
        };
        self.delay
    }
}

/// The file whose presence says a user stopped or killed the container
/// (Docker's HasBeenManuallyStopped): its monitor does not restart it.
const STOPPED_BY_USER: &str = "stopped-by-user";

/// Marks the container in directory `dir` as stopped by its user.
pub fn mark_stopped_by_user(dir: &Path) {
    let _ = std::fs::write(dir.join(STOPPED_BY_USER), b"");
}

pub fn stopped_by_user(dir: &Path) -> bool {
    dir.join(STOPPED_BY_USER).exists()
}

/// A start by the user clears the mark, as Docker's does.
pub fn clear_stopped_by_user(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(STOPPED_BY_USER));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_are_refused_in_dockers_words() {
        let p: RestartPolicy = "on-failure:2".parse().unwrap();
        assert_eq!((p.name, p.maximum_retry_count), (RestartName::OnFailure, 2));
        assert_eq!(p.to_string(), "on-failure:2");
        assert_eq!(
            "unless-stopped".parse::<RestartPolicy>().unwrap().name,
            RestartName::UnlessStopped
        );
        assert!("no".parse::<RestartPolicy>().unwrap().is_none());
        for (text, why) in [
            ("sometimes", "invalid restart policy 'sometimes'"),
            ("on-failure:x", "maximum retry count must be an integer"),
            ("on-failure:1:2", "invalid restart policy format"),
            ("on-failure:-1", "maximum retry count cannot be negative"),
            (
                "always:3",
                "maximum retry count cannot be used with restart policy 'always'",
            ),
        ] {
            assert_eq!(
                text.parse::<RestartPolicy>().unwrap_err().to_string(),
                why,
                "{text}"
            );
        }
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"Name":"on-failure","MaximumRetryCount":2}"#);
    }

    #[test]
    fn the_restart_manager_decides_as_docker_s_does() {
        let on_failure: RestartPolicy = "on-failure:2".parse().unwrap();
        assert!(on_failure.restarts(3, false, 0));
        assert!(on_failure.restarts(3, false, 1));
        assert!(!on_failure.restarts(3, false, 2), "at most 2 restarts");
        assert!(
            !on_failure.restarts(0, false, 0),
            "success is not a failure"
        );
        let always: RestartPolicy = "always".parse().unwrap();
        assert!(always.restarts(0, false, 100));
        assert!(!always.restarts(0, true, 0), "a user's stop stands");
        assert!(!RestartPolicy::default().restarts(1, false, 0));
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..4)
            .map(|_| backoff.next(Duration::ZERO).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 800]);
        assert_eq!(
            backoff.next(Duration::from_secs(11)),
            Duration::from_millis(100)
        );
    }
}
