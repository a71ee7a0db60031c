//! The sandbox's own controls, under `/sandbox`: look at trades and their notify attempts,
//! make the user pay (or fail to), close a trade on the gateway's side, redeliver a notify,
//! and inject faults. The cashier page (`cashier`) acts through the same functions.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Json, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

use super::faults::Faults;
use super::notify::spawn_delivery;
use super::state::Trade;
use super::Sandbox;
use crate::gateway::wallyt::time::format_gmt8;
use crate::gateway::wallyt::trade::TradeState;

fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

pub async fn list_trades(sandbox: Data<Sandbox>) -> HttpResponse {
    let now = sandbox.now().0;
    let trades: Vec<_> = sandbox.with_state(|s| {
        s.trades
            .values_mut()
            .map(|t| {
                t.refresh(now);
                t.clone()
            })
            .collect()
    });
    HttpResponse::Ok().json(trades)
}

pub async fn get_trade(sandbox: Data<Sandbox>, out_trade_no: Path<String>) -> HttpResponse {
    let now = sandbox.now().0;
    let trade = sandbox.with_state(|s| {
        s.trades.get_mut(out_trade_no.as_str()).map(|t| {
            t.refresh(now);
            t.clone()
        })
    });
    match trade {
        Some(trade) => HttpResponse::Ok().json(trade),
        None => refuse(StatusCode::NOT_FOUND, "no such trade"),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PayOptions {
    /// Pay a trade that is already CLOSED (a late payment).
    force: bool,
}

/// Why a control could not act: the status and a message for the caller.
pub type Refusal = (StatusCode, &'static str);

/// The user pays: the trade becomes SUCCESS and its notify goes out.
pub async fn pay(
    sandbox: Data<Sandbox>,
    out_trade_no: Path<String>,
    options: Option<Json<PayOptions>>,
) -> HttpResponse {
    let force = options.map(|o| o.force).unwrap_or(false);
    answer(pay_trade(&sandbox, &out_trade_no, force))
}

/// The buyer's payment fails (bank refused, wrong password too often): the trade becomes
/// PAYERROR and stays unpaid. No notify goes out — the sandbox notifies payments only — so
/// the merchant learns of it by query, and reads PAYERROR as a trade that can no longer be
/// paid (the engine treats it as closed and a new prepay may follow).
pub async fn fail(sandbox: Data<Sandbox>, out_trade_no: Path<String>) -> HttpResponse {
    answer(fail_trade(&sandbox, &out_trade_no))
}

/// The gateway closes an unpaid trade on its own (an operator in the merchant console, a
/// cleanup of its own), without the merchant asking: the engine learns of it only when it
/// queries or closes the trade itself.
pub async fn close(sandbox: Data<Sandbox>, out_trade_no: Path<String>) -> HttpResponse {
    answer(close_trade(&sandbox, &out_trade_no))
}

fn answer(result: Result<Trade, Refusal>) -> HttpResponse {
    match result {
        Ok(trade) => HttpResponse::Ok().json(trade),
        Err((status, message)) => refuse(status, message),
    }
}

/// Pays a NOTPAY trade (or, with `force`, a CLOSED one: a late payment) and starts the
/// delivery of its signed notify. The cashier page's Pay button comes here too.
pub fn pay_trade(sandbox: &Sandbox, out_trade_no: &str, force: bool) -> Result<Trade, Refusal> {
    let now = sandbox.now();
    let mch_id = sandbox.config().mch_id.clone();
    let paid = sandbox.with_state(|s| {
        let seq = s.next_seq();
        let Some(trade) = s.trades.get_mut(out_trade_no) else {
            return Err((StatusCode::NOT_FOUND, "no such trade"));
        };
        trade.refresh(now.0);
        match trade.state {
            TradeState::NotPay => {}
            TradeState::Closed if force => {}
            TradeState::Closed => return Err((StatusCode::CONFLICT, "trade is closed")),
            _ => return Err((StatusCode::CONFLICT, "trade is not payable")),
        }
        let stamp = format_gmt8(now);
        trade.state = TradeState::Success;
        trade.transaction_id = Some(format!("{mch_id}{}{seq:010}", &stamp[..8]));
        trade.out_transaction_id = Some(format!("4200{}{seq:014}", &stamp[..8]));
        trade.time_end = Some(stamp);
        Ok(trade.clone())
    })?;
    spawn_delivery(sandbox.clone(), paid.out_trade_no.clone());
    Ok(paid)
}

/// NOTPAY → PAYERROR (see [`fail`]).
pub fn fail_trade(sandbox: &Sandbox, out_trade_no: &str) -> Result<Trade, Refusal> {
    let now = sandbox.now().0;
    sandbox.with_state(|s| {
        let Some(trade) = s.trades.get_mut(out_trade_no) else {
            return Err((StatusCode::NOT_FOUND, "no such trade"));
        };
        trade.refresh(now);
        match trade.state {
            TradeState::NotPay => {
                trade.state = TradeState::PayError;
                Ok(trade.clone())
            }
            TradeState::Closed => Err((StatusCode::CONFLICT, "trade is closed")),
            _ => Err((StatusCode::CONFLICT, "trade is not payable")),
        }
    })
}

/// An unpaid trade (NOTPAY, or PAYERROR after a failed payment) → CLOSED.
pub fn close_trade(sandbox: &Sandbox, out_trade_no: &str) -> Result<Trade, Refusal> {
    let now = sandbox.now().0;
    sandbox.with_state(|s| {
        let Some(trade) = s.trades.get_mut(out_trade_no) else {
            return Err((StatusCode::NOT_FOUND, "no such trade"));
        };
        trade.refresh(now);
        match trade.state {
            TradeState::NotPay | TradeState::PayError => {
                trade.state = TradeState::Closed;
                Ok(trade.clone())
            }
            TradeState::Closed => Err((StatusCode::CONFLICT, "trade is already closed")),
            _ => Err((StatusCode::CONFLICT, "trade is paid")),
        }
    })
}

/// Starts another round of notify delivery for a paid trade.
pub async fn redeliver(sandbox: Data<Sandbox>, out_trade_no: Path<String>) -> HttpResponse {
    let paid = sandbox.with_state(|s| s.trades.get(out_trade_no.as_str()).map(|t| t.is_paid()));
    match paid {
        Some(true) => {
            spawn_delivery(sandbox.get_ref().clone(), out_trade_no.into_inner());
            HttpResponse::Accepted().json(json!({ "redelivering": true }))
        }
        Some(false) => refuse(StatusCode::CONFLICT, "trade is not paid"),
        None => refuse(StatusCode::NOT_FOUND, "no such trade"),
    }
}

/// Faults for one trade; may be set before the trade exists.
pub async fn set_trade_faults(
    sandbox: Data<Sandbox>,
    out_trade_no: Path<String>,
    faults: Json<Faults>,
) -> HttpResponse {
    let faults = faults.into_inner();
    sandbox.with_state(|s| {
        s.trade_faults
            .insert(out_trade_no.into_inner(), faults.clone())
    });
    HttpResponse::Ok().json(faults)
}

pub async fn get_faults(sandbox: Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(sandbox.with_state(|s| s.global_faults.clone()))
}

pub async fn set_faults(sandbox: Data<Sandbox>, faults: Json<Faults>) -> HttpResponse {
    let faults = faults.into_inner();
    sandbox.with_state(|s| s.global_faults = faults.clone());
    HttpResponse::Ok().json(faults)
}

pub async fn clear_faults(sandbox: Data<Sandbox>) -> HttpResponse {
    sandbox.with_state(|s| {
        s.global_faults = Faults::default();
        s.trade_faults.clear();
    });
    HttpResponse::NoContent().finish()
}
