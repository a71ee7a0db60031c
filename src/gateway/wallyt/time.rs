//! Gateway times: `yyyyMMddHHmmss` on the Beijing wall clock (GMT+8). Formatting UTC instead
//! would put every deadline eight hours in the past.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use wallyt_pay_actors::UnixMillis;

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Formats an instant, cut to whole seconds.
pub fn format_gmt8(instant: UnixMillis) -> String {
    let utc = DateTime::from_timestamp_millis(instant.0).unwrap_or_default();
    utc.with_timezone(&beijing())
        .format("%Y%m%d%H%M%S")
        .to_string()
}

pub fn parse_gmt8(text: &str) -> Option<UnixMillis> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").ok()?;
    let local = beijing().from_local_datetime(&naive).single()?;
    Some(UnixMillis(local.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_wall_clock_both_ways() {
        // 2024-06-01T04:05:12Z is 12:05:12 in Beijing.
        let instant = UnixMillis(1_717_214_712_000);
        assert_eq!(format_gmt8(instant), "20240601120512");
        assert_eq!(parse_gmt8("20240601120512"), Some(instant));
        assert_eq!(format_gmt8(UnixMillis(1_717_214_712_999)), "20240601120512");
        for bad in ["2024060112051", "20241301120512", "2024060112051x", ""] {
            assert_eq!(parse_gmt8(bad), None, "{bad}");
        }
    }
}
