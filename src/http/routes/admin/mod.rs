//! The operations API (issue 12): find orders, read an order's whole story, act on it, and
//! the daily reconciliation against the gateway's bill (issue 13). Reads
//! want the admin token; actions (sync, replay, refunds) also want the operator's name in
//! `X-Operator`, are audited in `admin_audit` and honour `Idempotency-Key` (a double click
//! answers the first click's answer). Times are RFC 3339 in the console's zone (`CONSOLE_TZ`),
//! amounts JSON numbers of yuan.

pub mod actions;
pub mod attention;
pub mod csv;
pub mod orders;
pub mod reconciliation;
pub mod timeline;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use wallyt_pay_actors::UnixMillis;

use crate::http::request_id::RequestId;
use crate::http::ApiError;
use crate::startup::AppState;
use crate::storage::admin::AuditEntry;

/// An instant in the console's zone, e.g. `2024-12-06T20:05:00.000+08:00`.
pub fn local_time(zone: FixedOffset, instant: UnixMillis) -> String {
    DateTime::from_timestamp_millis(instant.0)
        .unwrap_or_default()
        .with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// The first instant of a `YYYY-MM-DD` day in the console's zone.
pub fn start_of_day(zone: FixedOffset, name: &str, text: &str) -> Result<UnixMillis, ApiError> {
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::validation(format!("{name} must be a date as YYYY-MM-DD")))?;
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_local_timezone(zone)
        .single()
        .ok_or_else(|| {
            ApiError::validation(format!("{name} is not a day of the console's zone"))
        })?;
    Ok(UnixMillis(midnight.timestamp_millis()))
}

const MAX_OPERATOR_CHARS: usize = 64;

/// Who acts: the `X-Operator` header, required for actions (an audit row needs a name). Read
/// as UTF-8, not only ASCII: operators of a Chinese ticket sale sign with Chinese names.
pub fn operator(req: &HttpRequest) -> Result<String, ApiError> {
    let name = req
        .headers()
        .get("X-Operator")
        .map(|v| std::str::from_utf8(v.as_bytes()).map(str::trim))
        .transpose()
        .map_err(|_| ApiError::validation("X-Operator must be UTF-8 text"))?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ApiError::validation("actions need the operator's name in X-Operator"))?;
    operator_name(name, "X-Operator")
}

/// An operator's name as the audit keeps it, from the header or the console's sign-in form.
pub fn operator_name(name: &str, field: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::validation(format!(
            "{field} must name the operator"
        )));
    }
    if name.chars().count() > MAX_OPERATOR_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{field} is at most {MAX_OPERATOR_CHARS} printable characters"
        )));
    }
    Ok(name.to_owned())
}

/// Who acts and the key that makes a double click one action: from the API's `X-Operator`
/// and `Idempotency-Key` headers, or from a console session and the key in its form.
pub struct Acting {
    pub operator: String,
    pub idempotency_key: Option<String>,
}

impl Acting {
    pub fn from_headers(req: &HttpRequest) -> Result<Acting, ApiError> {
        Ok(Acting {
            operator: operator(req)?,
            idempotency_key: crate::http::idempotency::header_key(req).map(str::to_owned),
        })
    }
}

/// `str::floor_char_boundary` is not stable yet.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, at: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, at: usize) -> usize {
        if at >= self.len() {
            return self.len();
        }
        (0..=at)
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}

/// What an action was, for its audit row.
pub struct Action<'a> {
    pub operator: &'a str,
    pub name: &'a str,
    pub order_id: Option<i64>,
    pub target: Option<String>,
    pub idempotency_key: Option<&'a str>,
}

/// Records one action with its answer's status. A failed audit write is logged, not answered:
/// the action has happened by then and its answer must reach the operator.
pub async fn audit(
    state: &AppState,
    req: &HttpRequest,
    action: &Action<'_>,
    response: &HttpResponse,
) {
    let status = response.status();
    let outcome = if status.is_success() {
        "done"
    } else if status == StatusCode::CONFLICT {
        "conflict"
    } else if status.is_client_error() {
        "refused"
    } else {
        "failed"
    };
    let ip = state.client_ip(req).to_string();
    // The id the request runs under (given and sane, or generated): the one its log lines carry.
    let request_id = RequestId::of(req);
    let entry = AuditEntry {
        operator: action.operator,
        action: action.name,
        order_id: action.order_id,
        target: action.target.as_deref(),
        client_ip: &ip,
        request_id: Some(request_id.as_str()),
        // Bounded like the headers: the key is the caller's text, stored as is.
        idempotency_key: action
            .idempotency_key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| &k[..k.floor_char_boundary_compat(128)]),
        status: status.as_u16(),
        outcome,
    };
    tracing::info!(
        event = "admin.action",
        operator = action.operator,
        action = action.name,
        order_id = action.order_id,
        status = status.as_u16(),
    );
    if let Err(error) = state.db.audit(&entry, state.clock.now()).await {
        tracing::error!(event = "admin.audit.not_stored", %error);
    }
}

/// The user row operators' idempotency keys belong to (keys are scoped to a user).
pub async fn operator_account(state: &AppState) -> Result<i64, ApiError> {
    use wallyt_pay_actors::UserStore;
    Ok(state
        .db
        .upsert_user(OPERATOR_ACCOUNT, None, state.clock.now())
        .await?
        .id)
}

pub const OPERATOR_ACCOUNT: &str = "operator:admin";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_local_midnight() {
        let shanghai = FixedOffset::east_opt(8 * 3600).unwrap();
        // 2024-12-06 00:00 +08:00 is 2024-12-05 16:00 UTC.
        assert_eq!(
            start_of_day(shanghai, "from", "2024-12-06").unwrap(),
            UnixMillis(1_733_414_400_000)
        );
        assert!(start_of_day(shanghai, "from", "06/12/2024").is_err());
        assert_eq!(
            local_time(shanghai, UnixMillis(1_733_414_400_000)),
            "2024-12-06T00:00:00.000+08:00"
        );
    }

    #[test]
    fn long_headers_are_cut_on_a_character() {
        let text = "票".repeat(100);
        let cut = text.floor_char_boundary_compat(128);
        assert!(text.is_char_boundary(cut) && cut <= 128);
    }
}
