//! Instants in JSON: RFC 3339 UTC with milliseconds (`2024-12-06T12:05:00.000Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use wallyt_pay_actors::UnixMillis;

pub fn rfc3339(instant: UnixMillis) -> String {
    DateTime::<Utc>::from_timestamp_millis(instant.0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        assert_eq!(
            rfc3339(UnixMillis(1_733_486_700_000)),
            "2024-12-06T12:05:00.000Z"
        );
    }
}
