//! `GET /admin/orders.csv`: the search of `GET /admin/orders` as a file for accounting.
//! UTF-8 with a byte order mark (spreadsheet programs otherwise read the Chinese names as
//! mojibake), CRLF lines (RFC 4180), amounts in yuan with two decimals, times in the
//! console's zone. The columns are documented in docs/operations.md.

use actix_web::{web, HttpResponse};
use chrono::FixedOffset;
use std::collections::BTreeMap;
use wallyt_pay_actors::UnixMillis;

use super::orders::OrderQuery;
use crate::http::extractors::Admin;
use crate::http::openapi::Failure;
use crate::http::ApiError;
use crate::startup::AppState;
use crate::storage::admin::{NamedItem, OrderSummary};

/// The most rows one file holds; a larger export is narrowed with `from`/`to`. The answer says
/// when it was cut (`X-Rows-Capped`), so a short file is never taken for the whole.
pub const MAX_ROWS: usize = 20_000;
const PAGE: i64 = 500;

pub const COLUMNS: [&str; 11] = [
    "order_id",
    "created_at",
    "status",
    "cancel_reason",
    "openid",
    "items",
    "total_yuan",
    "refunded_yuan",
    "out_trade_no",
    "transaction_id",
    "paid_at",
];

/// One field, quoted when it must be (RFC 4180). Text a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) is made plain text with a leading `'`: names and openids are
/// data, never formulas.
fn field(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn time(zone: FixedOffset, instant: UnixMillis) -> String {
    chrono::DateTime::from_timestamp_millis(instant.0)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `VIP×2@100.00; 学生票×1@50.00`
fn items_text(items: &[&NamedItem]) -> String {
    items
        .iter()
        .map(|i| {
            format!(
                "{}×{}@{}",
                i.name,
                i.quantity,
                i.unit_price.to_yuan_string()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn row(zone: FixedOffset, order: &OrderSummary, items: &[&NamedItem]) -> String {
    let fields = [
        order.id.to_string(),
        field(&time(zone, order.created_at)),
        field(&order.status),
        field(order.cancel_reason.as_deref().unwrap_or("")),
        field(&order.openid),
        field(&items_text(items)),
        order.total.to_yuan_string(),
        order.refunded.to_yuan_string(),
        field(order.out_trade_no.as_deref().unwrap_or("")),
        field(order.transaction_id.as_deref().unwrap_or("")),
        field(&order.paid_at.map(|t| time(zone, t)).unwrap_or_default()),
    ];
    format!("{}\r\n", fields.join(","))
}

#[utoipa::path(get, path = "/admin/orders.csv", tag = "operations", security(("admin" = [])),
    params(OrderQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String,
            description = "UTF-8 with BOM; columns in docs/operations.md; `X-Rows-Capped` when cut at 20,000 rows"),
        (status = 400, description = "VALIDATION_ERROR", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure)))]
pub async fn export(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let zone = state.console_tz;
    let mut filter = query.filter(zone)?;
    let mut body = String::from("\u{feff}");
    body.push_str(&COLUMNS.join(","));
    body.push_str("\r\n");
    let mut rows = 0;
    let mut capped = false;
    // Page by page on the same keyset as the API: memory holds one page of orders at a time.
    loop {
        let page = state.db.admin_orders(&filter, PAGE).await?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            break;
        };
        let items = state.db.named_items(last.id, first.id).await?;
        let mut by_order: BTreeMap<i64, Vec<&NamedItem>> = BTreeMap::new();
        for item in &items {
            by_order.entry(item.order_id).or_default().push(item);
        }
        for order in &page {
            if rows == MAX_ROWS {
                capped = true;
                break;
            }
            let lines = by_order.get(&order.id).map(Vec::as_slice).unwrap_or(&[]);
            body.push_str(&row(zone, order, lines));
            rows += 1;
        }
        if capped || (page.len() as i64) < PAGE {
            break;
        }
        filter.before_id = Some(last.id);
    }
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"orders.csv\""));
    if capped {
        response.insert_header(("X-Rows-Capped", MAX_ROWS.to_string()));
    }
    Ok(response.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_never_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1,2"), "\"'-1,2\"");
    }
}
