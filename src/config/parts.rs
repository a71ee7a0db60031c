//! The pieces of validation: the query schedule, and the secrets development generates.

use rand::RngCore;
use std::path::Path;
use std::time::Duration;

use super::ConfigError;

/// `10s,30s,1m` → increasing delays; empty turns the active queries off.
pub(super) fn parse_schedule(text: &str) -> Result<Vec<Duration>, ConfigError> {
    let schedule = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            humantime::parse_duration(s)
                .map_err(|e| ConfigError::Invalid(format!("QUERY_SCHEDULE: {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ConfigError::Invalid(
            "QUERY_SCHEDULE must be increasing delays, e.g. 10s,30s,1m,3m,5m".into(),
        ));
    }
    Ok(schedule)
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The development admin token survives restarts so that the README's curl lines keep
/// working; it is created once, readable by its owner only.
pub(super) fn dev_admin_token(path: &Path) -> std::io::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_owned());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = format!("dev-{}", random_hex(16));
    write_private(path, &token)?;
    Ok(token)
}

/// Writes `text` to `path` so that no one else can read it at any moment: the bytes go to a
/// temporary file created 0600 (a write-then-chmod leaves a window where the umask's mode, often
/// 0644, applies), which is then renamed over `path` — a reader sees no file or the whole one.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", random_hex(4)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_dev_token_file_is_created_owner_only_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/dev-admin-token");
        let token = dev_admin_token(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
        assert_eq!(
            dev_admin_token(&path).unwrap(),
            token,
            "kept across restarts"
        );
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    /// A write-then-chmod follows whatever sits at the path: an empty file (or a symlink to
    /// one) planted there with loose permissions would receive the token. The rename replaces
    /// the entry instead, so the token only ever lands in the file created 0600.
    #[test]
    fn the_token_never_lands_in_a_file_someone_else_created() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("planted");
        std::fs::write(&planted, "").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.path().join("dev-admin-token");
        std::os::unix::fs::symlink(&planted, &path).unwrap();

        let token = dev_admin_token(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&planted).unwrap(), "");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "the symlink was replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
    }
}

/// `CONSOLE_TZ`: a fixed offset. The zones operators of a Chinese ticket sale use have had no
/// summer time for decades, so a name maps to its one offset and no zone database is needed;
/// anything else is written as an offset (`+08:00`, `-05:00`).
/// `HH:MM` (24 h), or `off`.
pub(super) fn parse_time_of_day(
    name: &str,
    text: &str,
) -> Result<Option<chrono::NaiveTime>, ConfigError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    chrono::NaiveTime::parse_from_str(text, "%H:%M")
        .map(Some)
        .map_err(|_| ConfigError::Invalid(format!("{name} must be HH:MM or off, not {text:?}")))
}

pub(super) fn parse_zone(text: &str) -> Result<chrono::FixedOffset, ConfigError> {
    let text = text.trim();
    let hours = match text {
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Hong_Kong" | "Asia/Macau" | "Asia/Taipei"
        | "Asia/Singapore" | "Asia/Kuala_Lumpur" | "PRC" => Some(8),
        "Asia/Tokyo" | "Asia/Seoul" => Some(9),
        "UTC" | "Etc/UTC" | "Z" => Some(0),
        _ => None,
    };
    if let Some(hours) = hours {
        return Ok(chrono::FixedOffset::east_opt(hours * 3600).expect("a valid offset"));
    }
    let invalid = || {
        ConfigError::Invalid(format!(
            "CONSOLE_TZ must be a zone such as Asia/Shanghai or an offset such as +08:00, not {text:?}"
        ))
    };
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(invalid()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(invalid)?;
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(invalid());
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(invalid)
}

#[cfg(test)]
mod zone_tests {
    use super::parse_zone;

    #[test]
    fn names_and_offsets() {
        assert_eq!(
            parse_zone("Asia/Shanghai").unwrap().local_minus_utc(),
            8 * 3600
        );
        assert_eq!(
            parse_zone("-05:30").unwrap().local_minus_utc(),
            -(5 * 3600 + 1800)
        );
        assert!(parse_zone("Europe/Paris").is_err());
        assert!(parse_zone("+8").is_err());
    }
}
