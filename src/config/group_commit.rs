//! `STORE_GROUP_COMMIT`: which store transitions share a transaction with the others that
//! arrive together (see `storage::batcher`, and docs/benchmarks.md for the default).

use super::limits::parse_switch;
use super::ConfigError;

/// What the store group-commits (see `storage::batcher`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCommit {
    /// Every transition has a transaction of its own.
    Off,
    /// `POST /orders` reservations are batched (they queue on one stock row).
    Reservations,
    /// Reservations and payment applications (notifies, queries) are batched.
    On,
    /// The default, `On` on both backends. It once meant `Reservations` on PostgreSQL, while
    /// a batch of payments ran in one lane and locked the hot stock row at its first member;
    /// with several lanes and the stock moved once at each batch's end, batching won there
    /// too (docs/benchmarks.md, "Group commit").
    Auto,
}

impl GroupCommit {
    pub(super) fn parse(text: &str) -> Result<GroupCommit, ConfigError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "reservations" => Ok(GroupCommit::Reservations),
            "auto" => Ok(GroupCommit::Auto),
            other => Ok(match parse_switch("STORE_GROUP_COMMIT", other) {
                Ok(true) => GroupCommit::On,
                Ok(false) => GroupCommit::Off,
                Err(_) => {
                    return Err(ConfigError::Invalid(format!(
                        "STORE_GROUP_COMMIT must be auto, on, off or reservations, not {other:?}"
                    )))
                }
            }),
        }
    }
}
