//! `GET /console/refunds`: every refund, newest first, filtered by status, a page at a time
//! (an opaque cursor on the refund id, as the orders page pages). Each line links to its
//! order, whose page has the refund's whole story and timeline.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use maud::html;
use serde::Deserialize;
use wallyt_pay_actors::RefundStatus;

use super::failed;
use crate::console::{page, state, to_signin, when, yuan};
use crate::http::routes::admin::local_time;
use crate::http::ApiError;

const PAGE: i64 = 20;
const STATUSES: [&str; 4] = ["PROCESSING", "SUCCESS", "FAIL", "CHANGE"];

#[derive(Deserialize, Default)]
pub struct RefundQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("r:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<Option<i64>, ApiError> {
    if cursor.trim().is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("r:")?.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::validation("cursor is not one this page gave out"))
}

fn status_filter(text: &str) -> Result<Option<RefundStatus>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    RefundStatus::parse(&text.to_ascii_uppercase())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(format!("status must be one of {}", STATUSES.join(", ")))
        })
}

pub async fn show(req: HttpRequest, query: web::Query<RefundQuery>) -> HttpResponse {
    let state = state(&req);
    let Some(session) = state.console.of(&req) else {
        return to_signin();
    };
    let (status, before) = match (status_filter(&query.status), decode_cursor(&query.cursor)) {
        (Ok(status), Ok(before)) => (status, before),
        (Err(error), _) | (_, Err(error)) => return failed(&session, &error),
    };
    // One more than the page: whether a next page exists without a COUNT.
    let mut lines = match state.db.refund_lines(status, before, PAGE + 1).await {
        Ok(lines) => lines,
        Err(error) => return failed(&session, &error.into()),
    };
    let more = lines.len() as i64 > PAGE;
    lines.truncate(PAGE as usize);
    let next = more.then(|| lines.last()).flatten().map(|last| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        if let Some(status) = status {
            pairs.append_pair("status", status.as_str());
        }
        pairs.append_pair("cursor", &encode_cursor(last.id));
        format!("/console/refunds?{}", pairs.finish())
    });
    let zone = state.console_tz;
    let at = |t| when(&local_time(zone, t));
    let body = html! {
        form.search method="get" action="/console/refunds" {
            label { "Status"
                select name="status" {
                    option value="" selected[status.is_none()] { "any" }
                    @for option in STATUSES {
                        option value=(option) selected[status.is_some_and(|s| s.as_str() == option)] { (option) }
                    }
                }
            }
            button type="submit" id="filter" { "Filter" }
        }
        @if lines.is_empty() {
            p id="no-refunds" { "No refund matches." }
        } @else {
            table id="refunds" {
                thead { tr { th { "out_refund_no" } th { "Order" } th { "Status" } th { "Amount" }
                    th { "Kind" } th { "Operator" } th { "Reason" } th { "Attempts" }
                    th { "Requested" } th { "Finished" } th { "Request id" } } }
                tbody {
                    @for r in &lines {
                        tr {
                            td { (r.out_refund_no) }
                            td { a href={ "/console/orders/" (r.order_id) } { "#" (r.order_id) } }
                            td.status { (r.status) }
                            td { (yuan(r.amount)) }
                            td { (r.kind) }
                            td { (r.operator.as_deref().unwrap_or("")) }
                            td.reason { (r.reason.as_deref().unwrap_or("")) }
                            td { (r.attempts) }
                            td { (at(r.created_at)) }
                            td { @if let Some(t) = r.finished_at { (at(t)) } }
                            td.request-id { (r.request_id.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            a href=(next) id="next-page" { "Older refunds →" }
        }
    };
    page(StatusCode::OK, "Refunds", Some(&session), None, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), Some(42));
        assert_eq!(decode_cursor("").unwrap(), None);
        assert!(decode_cursor("42").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("o:1")).is_err());
        assert_eq!(status_filter("fail").unwrap(), Some(RefundStatus::Fail));
        assert!(status_filter("DONE").is_err());
    }
}
