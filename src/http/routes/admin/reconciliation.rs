//! The daily reconciliation against the gateway's bill, for operators:
//! `GET /admin/reconciliation/{date}` (the run of that GMT+8 day and every difference found)
//! and `POST /admin/reconciliation/{date}/run` (run it now; needs `X-Operator`, audited, a
//! double click answers the first click's answer).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use wallyt_pay_actors::Fen;

use super::actions::act;
use super::local_time;
use super::Acting;
use crate::http::envelope;
use crate::http::extractors::Admin;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ApiError;
use crate::reconcile::{gateway_zone, ReconcileError};
use crate::startup::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// RUNNING, DONE or FAILED.
    status: String,
    /// `daily`, or the operator who ran it.
    trigger_by: String,
    started_at: String,
    finished_at: Option<String>,
    bill_lines: Option<i64>,
    differences: Option<i64>,
    /// Why it failed (the gateway's own words).
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DifferenceView {
    id: i64,
    /// PAID_AT_GATEWAY_ONLY, UNKNOWN_TRADE, AMOUNT_MISMATCH, NOT_IN_BILL, REFUND_UNKNOWN,
    /// REFUND_MISMATCH, REFUND_NOT_IN_BILL, TOTALS_MISMATCH.
    kind: String,
    order_id: Option<i64>,
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    /// What the bill says, e.g. `SUCCESS 50.01`.
    bill_value: Option<String>,
    /// What we hold.
    our_value: Option<String>,
    /// The money at stake.
    #[schema(value_type = f64, example = 50.00)]
    amount: Fen,
    /// What the reconciler did (a payment applied); null: a person must look.
    action: Option<String>,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationView {
    bill_date: String,
    /// Null when the date was never reconciled.
    run: Option<RunView>,
    differences: Vec<DifferenceView>,
}

/// A `YYYY-MM-DD` day of GMT+8 that has begun (a bill of the future has nothing in it).
fn bill_date(state: &AppState, text: &str) -> Result<NaiveDate, ApiError> {
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::validation("the date must be YYYY-MM-DD"))?;
    let today = chrono::DateTime::from_timestamp_millis(state.clock.now().0)
        .unwrap_or_default()
        .with_timezone(&gateway_zone())
        .date_naive();
    if date > today {
        return Err(ApiError::validation("that day has not begun (GMT+8)"));
    }
    Ok(date)
}

#[utoipa::path(get, path = "/admin/reconciliation/{date}", tag = "operations", security(("admin" = [])),
    params(("date" = String, Path, description = "a day of GMT+8, YYYY-MM-DD")),
    responses(
        (status = 200, description = "the run of that day and every difference found", body = inline(Envelope<ReconciliationView>)),
        (status = 400, description = "VALIDATION_ERROR (not a date)", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure)))]
pub async fn show(
    _admin: Admin,
    state: web::Data<AppState>,
    date: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let date = bill_date(&state, &date)?;
    let key = date.format("%Y-%m-%d").to_string();
    let zone = state.console_tz;
    let run = state.db.reconciliation_run(&key).await?.map(|r| RunView {
        status: r.status,
        trigger_by: r.trigger_by,
        started_at: local_time(zone, r.started_at),
        finished_at: r.finished_at.map(|t| local_time(zone, t)),
        bill_lines: r.bill_lines,
        differences: r.differences,
        error: r.error,
    });
    let differences = state
        .db
        .reconciliation_differences(&key)
        .await?
        .into_iter()
        .map(|d| DifferenceView {
            id: d.id,
            kind: d.kind,
            order_id: d.order_id,
            out_trade_no: d.out_trade_no,
            out_refund_no: d.out_refund_no,
            bill_value: d.bill_value,
            our_value: d.our_value,
            amount: d.amount,
            action: d.action,
            created_at: local_time(zone, d.created_at),
        })
        .collect();
    Ok(envelope::ok(ReconciliationView {
        bill_date: key,
        run,
        differences,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunAnswer {
    bill_date: String,
    bill_lines: usize,
    differences: usize,
    /// Payments found in the bill and applied now.
    applied: usize,
}

#[utoipa::path(post, path = "/admin/reconciliation/{date}/run", tag = "operations", security(("admin" = [])),
    params(("date" = String, Path, description = "a day of GMT+8, YYYY-MM-DD"),
        ("X-Operator" = String, Header, description = "who acts (audited)"),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, description = "the run's counts; the differences are at GET /admin/reconciliation/{date}", body = inline(Envelope<RunAnswer>)),
        (status = 400, description = "VALIDATION_ERROR (X-Operator missing, not a date)", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 409, description = "CONFLICT (a run of that date is in progress)", body = Failure),
        (status = 502, description = "GATEWAY_ERROR (the bill could not be had or read)", body = Failure),
        (status = 503, description = "WALLYT_NOT_CONFIGURED (no bill URL)", body = Failure)))]
pub async fn run(
    _admin: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    date: web::Path<String>,
) -> HttpResponse {
    let text = date.into_inner();
    let target = Some(format!("bill {text}"));
    let acting = match Acting::from_headers(&req) {
        Ok(acting) => acting,
        Err(error) => return error.error_response(),
    };
    let operator = acting.operator.clone();
    act(&state, &req, acting, "reconcile", None, target, || async {
        let date = bill_date(&state, &text)?;
        let reconciler = state
            .reconciler
            .as_ref()
            .ok_or(ApiError::WallytNotConfigured)?;
        let summary = reconciler
            .run(date, &operator, true)
            .await
            .map_err(|error| match error {
                ReconcileError::Claimed(date) => {
                    ApiError::Conflict(format!("a reconciliation of {date} is running"))
                }
                ReconcileError::Bill(error) => ApiError::GatewayError(error.to_string()),
                ReconcileError::Store(error) => error.into(),
            })?;
        Ok(RunAnswer {
            bill_date: date.format("%Y-%m-%d").to_string(),
            bill_lines: summary.bill_lines,
            differences: summary.differences,
            applied: summary.applied,
        })
    })
    .await
}
