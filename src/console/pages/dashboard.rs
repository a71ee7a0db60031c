//! `GET /console`: today's figures (a day of the console's zone) and what needs a human.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::html;
use wallyt_pay_actors::UnixMillis;

use super::failed;
use crate::console::{page, state, to_signin, when, yuan};
use crate::http::routes::admin::attention::attention_lines;
use crate::http::routes::admin::start_of_day;
use crate::storage::dashboard::Tally;

pub async fn show(req: HttpRequest) -> HttpResponse {
    let state = state(&req);
    let Some(session) = state.console.of(&req) else {
        return to_signin();
    };
    let zone = state.console_tz;
    let now = state.clock.now();
    let today = DateTime::<Utc>::from_timestamp_millis(now.0)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d")
        .to_string();
    let from = match start_of_day(zone, "today", &today) {
        Ok(from) => from,
        Err(error) => return failed(&session, &error),
    };
    let before = UnixMillis(from.0 + 86_400_000);
    let figures = match state.db.day_figures(from, before).await {
        Ok(figures) => figures,
        Err(error) => return failed(&session, &error.into()),
    };
    let attention = match attention_lines(state).await {
        Ok(lines) => lines,
        Err(error) => return failed(&session, &error),
    };
    let card = |id: &str, label: &str, tally: Tally| {
        html! {
            div.card id=(id) {
                div { (label) }
                div.n { (tally.count) }
                div { (yuan(tally.amount)) }
            }
        }
    };
    let body = html! {
        p { "Today, " (today) " (" (zone) ")" }
        div.cards {
            (card("paid", "Paid today", figures.paid))
            (card("refunded", "Refunded today", figures.refunded))
            (card("pending", "Pending now", figures.pending))
            (card("expired", "Expired today", figures.expired))
            div.card id="gateway-errors" title="gateway calls that failed today: timeouts, \
                unreachable, refused, bad signatures, garbage (not business answers such as \
                ORDERCLOSED)" {
                div { "Gateway errors today" }
                div.n { (figures.gateway_errors) }
                div { "failed calls" }
            }
        }
        h2 { "Needs attention" }
        @if attention.is_empty() {
            p id="attention-empty" { "Nothing needs a human now." }
        } @else {
            table id="attention" {
                thead { tr { th { "What" } th { "Order" } th { "Subject" } th { "Status" }
                    th { "Amount" } th { "Attempts" } th { "Since" } } }
                tbody {
                    @for line in &attention {
                        tr {
                            td { (line.kind) }
                            td { a href={ "/console/orders/" (line.order_id) } { (line.order_id) } }
                            td { (line.subject) }
                            td { (line.status) }
                            td { (yuan(line.amount)) }
                            td { @if let Some(n) = line.attempts { (n) } }
                            td { (when(&line.since)) }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, "Dashboard", Some(&session), None, body)
}
