//! The abuse-limit settings: rates (`300/min`), the `RATE_LIMIT` switch and the proxies whose
//! `X-Forwarded-For` is believed.

use ipnet::IpNet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::ConfigError;

/// `count` requests per `period`, with a burst of `count` (a full bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    pub const fn per_minute(count: NonZeroU32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimitSettings {
    /// `RATE_LIMIT=off` turns every rate limit off (load tests, trusted networks).
    pub enabled: bool,
    /// Per client IP on `/auth/*`.
    pub ip: Rate,
    /// Per authenticated user on the endpoints that create orders, trades and refunds.
    pub user: Rate,
}

/// `300/min`, `10/s`, `5000/h` (also `sec`, `second`, `m`, `minute`, `hour`).
pub(super) fn parse_rate(name: &str, text: &str) -> Result<Rate, ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "{name} must be a count per unit such as 300/min, 10/s or 5000/h (count at least 1), \
             not {text:?}"
        ))
    };
    let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        _ => return Err(bad()),
    };
    Ok(Rate {
        count,
        period: Duration::from_secs(seconds),
    })
}

pub(super) fn parse_switch(name: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(ConfigError::Invalid(format!(
            "{name} must be on or off, not {other:?}"
        ))),
    }
}

/// Comma-separated CIDRs; a bare address means that one host.
pub(super) fn parse_proxies(text: &str) -> Result<Vec<IpNet>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::Invalid(format!(
                        "TRUSTED_PROXIES must be comma-separated CIDRs such as 10.0.0.0/8, \
                         not {s:?}"
                    ))
                })
        })
        .collect()
}
