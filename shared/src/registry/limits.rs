//! How much a registry may send and how long it may stay silent: manifests
//! and configs are capped at 4 MiB (Docker's and containerd's limit) and
//! read through a bound, and every connection and read has a deadline
//! (`BERTH_REGISTRY_TIMEOUT` seconds when set), so a hostile or hung
//! registry costs a pull neither unbounded memory nor unbounded time.

use super::RegistryError;
use std::time::Duration;

/// The largest manifest, index or image config we accept. Docker and
/// containerd refuse anything larger; real ones are a few KiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The variable that overrides both deadlines, in (fractional) seconds.
pub const TIMEOUT_ENV: &str = "BERTH_REGISTRY_TIMEOUT";
/// A TCP (and TLS) connection that is not up by then will not come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A registry silent this long (before its answer, or mid-body) has hung;
/// a live one on a slow link still sends something every few seconds.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The deadlines of one registry conversation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    /// The longest silence: waiting for response headers, or between two
    /// reads of a body.
    pub read: Duration,
}

impl Timeouts {
    /// `timeout` if the caller chose one, else `$BERTH_REGISTRY_TIMEOUT`,
    /// else the defaults; one value bounds both phases.
    pub fn resolve(timeout: Option<Duration>) -> Result<Timeouts, RegistryError> {
        let chosen = match timeout {
            Some(t) => Some(t),
            None => match std::env::var(TIMEOUT_ENV) {
                Ok(text) => Some(parse_seconds(&text)?),
                Err(_) => None,
            },
        };
        Ok(match chosen {
            Some(t) => Timeouts {
                connect: t,
                read: t,
            },
            None => Timeouts {
                connect: CONNECT_TIMEOUT,
                read: READ_TIMEOUT,
            },
        })
    }
}

fn parse_seconds(text: &str) -> Result<Duration, RegistryError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| RegistryError::BadTimeout(text.to_string()))
}

/// A body read through a bound.
pub(crate) enum Limited {
    Within(bytes::Bytes),
    /// The body went past the limit; reading stopped there.
    TooLarge,
}

/// Reads `response`'s body, but never more than `limit` + 1 bytes: a
/// declared length over the limit is refused before reading, and an
/// endless body is cut off one byte past it.
pub(crate) async fn read_limited(
    response: reqwest::Response,
    limit: u64,
) -> Result<Limited, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Ok(Limited::TooLarge);
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Ok(Limited::TooLarge);
        }
    }
    Ok(Limited::Within(body.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_timeout_bounds_both_phases() {
        let t = Timeouts::resolve(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(t.connect, Duration::from_secs(2));
        assert_eq!(t.read, Duration::from_secs(2));
    }

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(parse_seconds("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        for bad in ["", "0", "-1", "ten", "inf"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
    }
}
