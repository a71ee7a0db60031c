//! `GET /console/orders/{id}`: one order's whole story (the admin API's `order_story`) with
//! its actions: sync, refund one ticket or an amount, replay a stored notify. Every action
//! form carries the session's CSRF token and a fresh idempotency key of its own, so a double
//! click (or a reload of the answer) is one action.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::failed;
use crate::console::session::{random_token, Session};
use crate::console::{csrf_field, page, state, to_signin, when, yuan, Flash};
use crate::http::routes::admin::orders::order_story;
use crate::startup::AppState;

pub async fn show(req: HttpRequest, id: web::Path<i64>) -> HttpResponse {
    let state = state(&req);
    let Some(session) = state.console.of(&req) else {
        return to_signin();
    };
    render(state, &session, id.into_inner(), None).await
}

/// The hidden fields of an action form: the session's CSRF token and this form's key.
fn action_fields(session: &Session) -> Markup {
    html! {
        (csrf_field(session))
        input type="hidden" name="idempotencyKey" value=(random_token());
    }
}

/// The order page, with what an action just did above it.
pub async fn render(
    state: &AppState,
    session: &Session,
    order_id: i64,
    flash: Option<Flash>,
) -> HttpResponse {
    let order = match order_story(state, order_id).await {
        Ok(order) => order,
        Err(error) => return failed(session, &error),
    };
    let names = match state.db.named_items(order_id, order_id).await {
        Ok(names) => names,
        Err(error) => return failed(session, &error.into()),
    };
    let status = if flash.as_ref().is_some_and(|f| !f.ok) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    // `named_items` lists an order's lines by ticket type id.
    let mut type_ids: Vec<i64> = order.items.iter().map(|i| i.ticket_type_id).collect();
    type_ids.sort_unstable();
    let name_of = |ticket_type_id: i64| {
        type_ids
            .iter()
            .position(|&t| t == ticket_type_id)
            .and_then(|at| names.get(at))
            .map(|n| n.name.clone())
            .unwrap_or_else(|| format!("type {ticket_type_id}"))
    };
    let body = html! {
        table id="summary" {
            tr { th { "Status" } td id="order-status" { (order.status)
                @if let Some(reason) = order.cancel_reason { " (" (reason) ")" } } }
            tr { th { "Total" } td { (yuan(order.total_amount)) } }
            tr { th { "Refunded" } td id="order-refunded" { (yuan(order.refunded_amount)) } }
            tr { th { "Buyer (openid)" } td id="openid" { (order.openid.as_deref().unwrap_or("")) } }
            tr { th { "Created" } td { (when(&order.created_at)) } }
            tr { th { "Expires" } td { (when(&order.expires_at)) } }
            tr { th { "Paid" } td { @if let Some(t) = &order.paid_at { (when(t)) } } }
        }
        form.act method="post" action={ "/console/orders/" (order.id) "/sync" } {
            (action_fields(session))
            button type="submit" id="sync" { "Sync with the gateway" }
        }

        h2 { "Tickets" }
        table id="tickets" {
            thead { tr { th { "Ticket" } th { "Type" } th { "Code" } th { "Status" } th { "Refund" } } }
            tbody {
                @for ticket in &order.tickets {
                    tr {
                        td { "#" (ticket.id) }
                        td.ticket-name { (name_of(ticket.ticket_type_id)) }
                        td { (ticket.code) }
                        td { (ticket.status) }
                        td {
                            @if ticket.status == "VALID" && order.status == "CONFIRMED" {
                                form.inline method="post" action={ "/console/orders/" (order.id) "/refunds" } {
                                    (action_fields(session))
                                    input type="hidden" name="ticketId" value=(ticket.id);
                                    input type="text" name="reason" placeholder="reason" required;
                                    button.danger type="submit" id={ "refund-ticket-" (ticket.id) } { "Refund this ticket" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if order.status == "CONFIRMED" {
            h2 { "Refund an amount" }
            form.act method="post" action={ "/console/orders/" (order.id) "/refunds" } id="refund-amount" {
                (action_fields(session))
                label { "Amount (yuan)" input type="text" name="amount" inputmode="decimal" placeholder="10.00" required; }
                label { "Reason" input type="text" name="reason" required; }
                button.danger type="submit" { "Refund" }
            }
        }

        h2 { "Payments" }
        table id="payments" {
            thead { tr { th { "out_trade_no" } th { "Status" } th { "Amount" } th { "Refunded" }
                th { "transaction_id" } th { "Created" } th { "Paid" } } }
            tbody {
                @for p in &order.payments {
                    tr {
                        td { (p.out_trade_no) } td { (p.status) } td { (yuan(p.amount)) }
                        td { (yuan(p.refunded_amount)) }
                        td { (p.transaction_id.as_deref().unwrap_or("")) }
                        td { (when(&p.created_at)) }
                        td { @if let Some(t) = &p.paid_at { (when(t)) } }
                    }
                }
            }
        }

        h2 { "Refunds" }
        table id="refunds" {
            thead { tr { th { "out_refund_no" } th { "Status" } th { "Amount" } th { "Kind" }
                th { "Reason" } th { "Operator" } th { "Attempts" } th { "Created" } } }
            tbody {
                @for r in &order.refunds {
                    tr {
                        td { (r.out_refund_no) } td { (r.status) } td { (yuan(r.amount)) }
                        td { (r.kind) }
                        td.reason { (r.reason.as_deref().unwrap_or("")) }
                        td { (r.operator.as_deref().unwrap_or("")) }
                        td { (r.attempts) }
                        td { (when(&r.created_at)) }
                    }
                }
            }
        }

        h2 { "Timeline" }
        table id="timeline" {
            thead { tr { th { "When" } th { "What" } th { "Outcome" } th { "Trade / refund" }
                th { "Amount" } th { "Operator" } th { "Detail" } th { "Request id" } th {} } }
            tbody {
                @for entry in &order.timeline {
                    tr {
                        td { (when(&entry.at)) }
                        td.kind { (entry.kind) }
                        td { (entry.verdict.as_deref().unwrap_or("")) }
                        td { (entry.out_trade_no.as_deref().or(entry.out_refund_no.as_deref()).unwrap_or("")) }
                        td { @if let Some(a) = entry.amount { (yuan(a)) } }
                        td { (entry.operator.as_deref().unwrap_or("")) }
                        td.detail { (entry.detail.as_deref().unwrap_or("")) }
                        td.request-id { (entry.request_id.as_deref().unwrap_or("")) }
                        td {
                            @if let (Some(event), "notify.received") = (entry.event_id, entry.kind.as_str()) {
                                form.inline method="post" action={ "/console/events/" (event) "/replay" } {
                                    (action_fields(session))
                                    input type="hidden" name="orderId" value=(order.id);
                                    button type="submit" { "Replay" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = format!("Order #{}", order.id);
    page(status, &title, Some(session), flash.as_ref(), body)
}
