//! `GET /console/orders`: the admin API's search (same filters, same cursor) as a table.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::failed;
use crate::console::{page, state, to_signin, when, yuan};
use crate::http::routes::admin::orders::{search, OrderQuery};

/// The form's fields as typed, to show them again above the results.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    #[serde(default)]
    status: String,
    #[serde(default)]
    out_trade_no: String,
    #[serde(default)]
    openid: String,
    #[serde(default)]
    transaction_id: String,
}

pub async fn show(
    req: HttpRequest,
    query: web::Query<OrderQuery>,
    shown: web::Query<Shown>,
) -> HttpResponse {
    let state = state(&req);
    let Some(session) = state.console.of(&req) else {
        return to_signin();
    };
    let found = match search(state, &query).await {
        Ok(found) => found,
        Err(error) => return failed(&session, &error),
    };
    // The next page keeps the filters: this query with the cursor replaced.
    let next = found.next_cursor.as_ref().map(|cursor| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            if key != "cursor" {
                pairs.append_pair(&key, &value);
            }
        }
        pairs.append_pair("cursor", cursor);
        format!("/console/orders?{}", pairs.finish())
    });
    let body = html! {
        form.search method="get" action="/console/orders" {
            label { "Status"
                select name="status" {
                    @for option in ["", "PENDING", "CONFIRMED", "CANCELLED"] {
                        option value=(option) selected[shown.status.eq_ignore_ascii_case(option)] {
                            @if option.is_empty() { "any" } @else { (option) }
                        }
                    }
                }
            }
            label { "out_trade_no" input type="text" name="outTradeNo" value=(shown.out_trade_no); }
            label { "openid" input type="text" name="openid" value=(shown.openid); }
            label { "transaction_id" input type="text" name="transactionId" value=(shown.transaction_id); }
            button type="submit" id="search" { "Search" }
        }
        @if found.orders.is_empty() {
            p id="no-orders" { "No order matches." }
        } @else {
            table id="orders" {
                thead { tr { th { "Order" } th { "Status" } th { "Total" } th { "Refunded" }
                    th { "Buyer (openid)" } th { "out_trade_no" } th { "Created" } th { "Paid" } } }
                tbody {
                    @for order in &found.orders {
                        tr {
                            td { a href={ "/console/orders/" (order.id) } { "#" (order.id) } }
                            td { (order.status) }
                            td { (yuan(order.total_amount)) }
                            td { (yuan(order.refunded_amount)) }
                            td { (order.openid) }
                            td { (order.out_trade_no.as_deref().unwrap_or("")) }
                            td { (when(&order.created_at)) }
                            td { @if let Some(paid) = &order.paid_at { (when(paid)) } }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            a href=(next) id="next-page" { "Older orders →" }
        }
    };
    page(StatusCode::OK, "Orders", Some(&session), None, body)
}
