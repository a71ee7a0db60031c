//! `POST /pay/bill`: the daily merchant bill of the sandbox's own trades (`pay.bill.merchant`),
//! at its own path because the real download gateway is a different URL from the payment
//! gateway. Checked like every request (signature, mch_id); the answer is the bill's text, or
//! an XML error like the gateway's. A trade's `bill_line` fault drops or alters its lines, so
//! tests can make the bill disagree with the engine.

use actix_web::web::{Bytes, Data};
use actix_web::HttpResponse;
use chrono::NaiveDate;
use wallyt_pay_actors::{Fen, UnixMillis};

use super::faults::BillLineFault;
use super::gateway::{signed, unsigned};
use super::services::BusinessError;
use super::state::{SandboxState, Trade};
use super::Sandbox;
use crate::gateway::wallyt::bill::{BillType, SERVICE};
use crate::gateway::wallyt::bill_format::{render, BillLine, BillRefund};
use crate::gateway::wallyt::fields::Fields;
use crate::gateway::wallyt::sign::declared_sign_type;
use crate::gateway::wallyt::time::parse_gmt8;
use crate::gateway::wallyt::xml::{decode, encode};

pub async fn bill(sandbox: Data<Sandbox>, body: Bytes) -> HttpResponse {
    match answer(&sandbox, &body) {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; charset=UTF-8")
            .body(text),
        Err(reply) => HttpResponse::Ok()
            .content_type("text/xml; charset=UTF-8")
            .body(encode(&reply)),
    }
}

fn answer(sandbox: &Sandbox, body: &[u8]) -> Result<String, Fields> {
    let fields = decode(body).map_err(|e| unsigned("400", &format!("Parse xml error: {e}")))?;
    let keys = declared_sign_type(&fields)
        .ok()
        .and_then(|declared| sandbox.keys_for(declared))
        .ok_or_else(|| unsigned("400", "Unsupported sign_type"))?;
    let config = sandbox.config();
    if fields.get("mch_id") != Some(config.mch_id.as_str()) || !keys.verify(&fields) {
        return Err(unsigned("400", "Signature error"));
    }
    let business = |code: &'static str, message: &str| {
        signed(
            sandbox,
            &keys,
            Err(BusinessError {
                code,
                message: message.to_owned(),
            }),
        )
    };
    if fields.get("service") != Some(SERVICE) {
        return Err(business("NOAUTH", "this URL serves pay.bill.merchant only"));
    }
    let date = fields
        .get("bill_date")
        .filter(|d| d.len() == 8)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .ok_or_else(|| business("PARAM_ERROR", "bill_date must be yyyyMMdd"))?;
    let bill_type = BillType::parse(fields.get("bill_type").unwrap_or("ALL"))
        .ok_or_else(|| business("PARAM_ERROR", "bill_type must be ALL, SUCCESS or REFUND"))?;
    let day = date.format("%Y%m%d").to_string();
    let now = sandbox.now().0;
    let lines =
        sandbox.with_state(|state| lines_of_day(state, &config.mch_id, &day, bill_type, now));
    Ok(render(&lines))
}

/// Every payment and refund of the day (GMT+8), trade by trade, as the bill lists them.
fn lines_of_day(
    state: &mut SandboxState,
    mch_id: &str,
    day: &str,
    bill_type: BillType,
    now: i64,
) -> Vec<BillLine> {
    let mut lines = Vec::new();
    let faults: Vec<(String, Option<BillLineFault>)> = state
        .trades
        .keys()
        .map(|no| (no.clone(), state.faults_for(Some(no)).bill_line))
        .collect();
    for (no, fault) in faults {
        let Some(trade) = state.trades.get_mut(&no) else {
            continue;
        };
        trade.refresh(now);
        if fault == Some(BillLineFault::Drop) || !trade.is_paid() {
            continue;
        }
        let base = |time: UnixMillis, refund| BillLine {
            time,
            appid: trade.sub_appid.clone(),
            mch_id: mch_id.to_owned(),
            transaction_id: trade.transaction_id.clone().unwrap_or_default(),
            out_trade_no: trade.out_trade_no.clone(),
            total_fee: Fen::new(trade.total_fee),
            refund,
        };
        let paid = trade.time_end.as_deref().filter(|t| t.starts_with(day));
        if let (Some(time_end), false) = (paid, bill_type == BillType::Refund) {
            let mut line = base(gmt8(time_end), None);
            if fault == Some(BillLineFault::AlterAmount) {
                line.total_fee = Fen::new(trade.total_fee + 1);
            }
            lines.push(line);
        }
        if bill_type == BillType::Success {
            continue;
        }
        lines.extend(refund_lines(trade, day).map(|(time, refund)| base(time, Some(refund))));
    }
    lines.sort_by_key(|l| l.time);
    lines
}

fn refund_lines<'t>(
    trade: &'t Trade,
    day: &'t str,
) -> impl Iterator<Item = (UnixMillis, BillRefund)> + 't {
    trade.refunds.iter().filter_map(move |r| {
        let time = r.refund_time.as_deref().unwrap_or(&r.requested_at);
        time.starts_with(day).then(|| {
            (
                gmt8(time),
                BillRefund {
                    refund_id: r.refund_id.clone(),
                    out_refund_no: r.out_refund_no.clone(),
                    refund_fee: Fen::new(r.refund_fee),
                    status: r.status,
                },
            )
        })
    })
}

fn gmt8(text: &str) -> UnixMillis {
    // The sandbox writes these times itself: always valid.
    parse_gmt8(text).unwrap_or(UnixMillis(0))
}
