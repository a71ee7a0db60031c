//! The JSON shapes of orders and payments, as the contract words them.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use wallyt_pay_actors::{Fen, Order, Payment, Refund, Ticket};

use super::time::rfc3339;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    ticket_type_id: i64,
    quantity: i64,
    #[schema(value_type = f64, example = 100.00)]
    unit_price: Fen,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    id: i64,
    code: String,
    ticket_type_id: i64,
    status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderRefund)]
pub struct RefundView {
    out_refund_no: String,
    refund_id: Option<String>,
    #[schema(value_type = f64, example = 100.00)]
    amount: Fen,
    #[schema(value_type = String)]
    status: &'static str,
    reason: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    ticket_ids: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    id: i64,
    out_trade_no: String,
    #[schema(value_type = String)]
    status: &'static str,
    #[schema(value_type = f64, example = 100.00)]
    amount: Fen,
    #[schema(value_type = f64, example = 100.00)]
    refunded_amount: Fen,
    transaction_id: Option<String>,
    paid_at: Option<String>,
    expires_at: String,
}

/// `POST /orders` answers this; `GET /orders/{id}` adds payment, tickets and the rest.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderView {
    id: i64,
    #[schema(value_type = String)]
    status: &'static str,
    #[schema(value_type = f64, example = 100.00)]
    total_amount: Fen,
    items: Vec<ItemView>,
    expires_at: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    id: i64,
    #[schema(value_type = String)]
    status: &'static str,
    #[schema(value_type = f64, example = 100.00)]
    total_amount: Fen,
    #[schema(value_type = f64, example = 100.00)]
    refunded_amount: Fen,
    items: Vec<ItemView>,
    tickets: Vec<TicketView>,
    payment: Option<PaymentView>,
    refunds: Vec<RefundView>,
    created_at: String,
    expires_at: String,
    paid_at: Option<String>,
    cancelled_at: Option<String>,
    #[schema(value_type = Option<String>)]
    cancel_reason: Option<&'static str>,
}

fn items(order: &Order) -> Vec<ItemView> {
    order
        .items
        .iter()
        .map(|i| ItemView {
            ticket_type_id: i.ticket_type_id,
            quantity: i.quantity,
            unit_price: i.unit_price,
        })
        .collect()
}

/// The payment that speaks for the order: the one that received money, else the newest.
pub fn current_payment(payments: &[Payment]) -> Option<&Payment> {
    payments
        .iter()
        .rev()
        .find(|p| p.status.money_received())
        .or_else(|| payments.last())
}

pub fn payment_view(payment: &Payment) -> PaymentView {
    PaymentView {
        id: payment.id,
        out_trade_no: payment.out_trade_no.clone(),
        status: payment.status.as_str(),
        amount: payment.amount,
        refunded_amount: payment.refunded,
        transaction_id: payment.transaction_id.clone(),
        paid_at: payment.paid_at.map(rfc3339),
        expires_at: rfc3339(payment.prepay_expires_at),
    }
}

pub fn new_order_view(order: &Order) -> NewOrderView {
    NewOrderView {
        id: order.id,
        status: order.status.as_str(),
        total_amount: order.total,
        items: items(order),
        expires_at: rfc3339(order.expires_at),
        created_at: rfc3339(order.created_at),
    }
}

pub fn order_view(
    order: &Order,
    payments: &[Payment],
    tickets: &[Ticket],
    refunds: &[Refund],
) -> OrderView {
    OrderView {
        id: order.id,
        status: order.status.as_str(),
        total_amount: order.total,
        refunded_amount: order.refunded,
        items: items(order),
        tickets: tickets
            .iter()
            .map(|t| TicketView {
                id: t.id,
                code: t.code.clone(),
                ticket_type_id: t.ticket_type_id,
                status: t.status.clone(),
            })
            .collect(),
        payment: current_payment(payments).map(payment_view),
        refunds: refunds
            .iter()
            .map(|r| RefundView {
                out_refund_no: r.out_refund_no.clone(),
                refund_id: r.refund_id.clone(),
                amount: r.amount,
                status: r.status.as_str(),
                reason: r.reason.clone(),
                created_at: rfc3339(r.created_at),
                finished_at: r.finished_at.map(rfc3339),
                ticket_ids: r.ticket_ids.clone(),
            })
            .collect(),
        created_at: rfc3339(order.created_at),
        expires_at: rfc3339(order.expires_at),
        paid_at: order.paid_at.map(rfc3339),
        cancelled_at: order.cancelled_at.map(rfc3339),
        cancel_reason: order.cancel_reason.map(|r| r.as_str()),
    }
}

/// The stored `wx.requestPayment` fields, written into the answer byte for byte.
pub fn pay_params(payment: &Payment) -> Option<Box<RawValue>> {
    payment
        .pay_params
        .as_deref()
        .and_then(|json| RawValue::from_string(json.to_owned()).ok())
}
