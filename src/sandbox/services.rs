//! The five gateway services as the sandbox performs them, strict in the way the protocol
//! notes (§3, §6) describe. Each answers the business fields of a success, or a signed
//! business error (`result_code=1` with `err_code`/`err_msg`).

use super::faults::{Faults, RefundOutcome};
use super::state::{Refund, SandboxState, Trade};
use crate::gateway::wallyt::fields::Fields;
use crate::gateway::wallyt::jspay::valid_trade_no;
use crate::gateway::wallyt::refund::RefundStatus;
use crate::gateway::wallyt::time::{format_gmt8, parse_gmt8};
use crate::gateway::wallyt::trade::TradeState;
use wallyt_pay_actors::UnixMillis;

#[derive(Debug)]
pub struct BusinessError {
    pub code: &'static str,
    pub message: String,
}

fn fail(code: &'static str, message: impl Into<String>) -> BusinessError {
    BusinessError {
        code,
        message: message.into(),
    }
}

type Outcome = Result<Fields, BusinessError>;

/// Without the creator's time_expire a trade lives two hours, like WeChat's default.
const DEFAULT_TRADE_LIFETIME_MS: i64 = 2 * 3600 * 1000;

fn required<'a>(fields: &'a Fields, name: &str) -> Result<&'a str, BusinessError> {
    fields
        .get(name)
        .ok_or_else(|| fail("LACK_PARAMS", format!("缺少参数 {name}")))
}

fn amount(fields: &Fields, name: &str) -> Result<i64, BusinessError> {
    let value = required(fields, name)?;
    value
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0 && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            fail(
                "PARAM_ERROR",
                format!("{name} must be a positive integer of fen"),
            )
        })
}

pub struct Context<'a> {
    pub state: &'a mut SandboxState,
    pub now: UnixMillis,
    pub mch_id: &'a str,
}

pub fn jspay(ctx: Context<'_>, fields: &Fields) -> Outcome {
    let out_trade_no = required(fields, "out_trade_no")?;
    let body = required(fields, "body")?;
    let total_fee = amount(fields, "total_fee")?;
    let ip = required(fields, "mch_create_ip")?;
    let notify_url = required(fields, "notify_url")?;
    let sub_appid = required(fields, "sub_appid")?;
    let sub_openid = required(fields, "sub_openid")?;
    if required(fields, "is_raw")? != "1" {
        return Err(fail("PARAM_ERROR", "is_raw must be 1 for pay_info"));
    }
    if !valid_trade_no(out_trade_no) {
        return Err(fail(
            "PARAM_ERROR",
            "out_trade_no must be 5-32 of [A-Za-z0-9_]",
        ));
    }
    if body.chars().count() > 127
        || fields
            .get("attach")
            .is_some_and(|a| a.chars().count() > 127)
    {
        return Err(fail(
            "PARAM_ERROR",
            "body and attach are at most 127 characters",
        ));
    }
    let url_ok = url::Url::parse(notify_url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none());
    if !url_ok || notify_url.len() > 255 {
        return Err(fail(
            "PARAM_ERROR",
            "notify_url must be an absolute URL without query",
        ));
    }
    if ip.len() > 64 {
        return Err(fail("PARAM_ERROR", "mch_create_ip is not an IP"));
    }
    // time_start and time_expire count only as a pair; one alone is ignored.
    let expires_at = match (fields.get("time_start"), fields.get("time_expire")) {
        (Some(start), Some(expire)) => {
            let (Some(start), Some(expire)) = (parse_gmt8(start), parse_gmt8(expire)) else {
                return Err(fail("PARAM_ERROR", "times are yyyyMMddHHmmss in GMT+8"));
            };
            if expire <= start || expire <= ctx.now {
                return Err(fail(
                    "PARAM_ERROR",
                    "time_expire must be after time_start and now",
                ));
            }
            expire.0
        }
        _ => ctx.now.0 + DEFAULT_TRADE_LIFETIME_MS,
    };
    let fingerprint = fingerprint(fields);

    if let Some(trade) = ctx.state.trades.get_mut(out_trade_no) {
        trade.refresh(ctx.now.0);
        if trade.fingerprint != fingerprint {
            return Err(fail("INVALID_REQUEST", "201 商户订单号重复"));
        }
        return match trade.state {
            TradeState::NotPay => Ok(jspay_reply(trade)),
            TradeState::Closed => Err(fail("ORDERCLOSED", "Order closed")),
            _ => Err(fail("ORDERPAID", "Order paid")),
        };
    }

    let seq = ctx.state.next_seq();
    let stamp = ctx.now.0.to_string();
    let prepay_id = format!("wx{}{:016x}", format_gmt8(ctx.now), seq);
    let pay_sign = format!(
        "{:X}",
        md5::Md5::digest(format!("{prepay_id}{stamp}").as_bytes())
    );
    // The classic pay_info shape, key order and null included.
    let pay_info = format!(
        r#"{{"appId":"{sub_appid}","timeStamp":"{stamp}","status":"0","signType":"MD5","package":"prepay_id={prepay_id}","callback_url":null,"nonceStr":"{stamp}","paySign":"{pay_sign}"}}"#
    );
    let trade = Trade {
        out_trade_no: out_trade_no.to_owned(),
        state: TradeState::NotPay,
        total_fee,
        body: body.to_owned(),
        attach: fields.get("attach").map(str::to_owned),
        sub_appid: sub_appid.to_owned(),
        sub_openid: sub_openid.to_owned(),
        notify_url: notify_url.to_owned(),
        mch_create_ip: ip.to_owned(),
        time_start: fields.get("time_start").map(str::to_owned),
        time_expire: fields.get("time_expire").map(str::to_owned),
        expires_at,
        token_id: format!("{:x}{seq:08x}", ctx.now.0),
        pay_info,
        transaction_id: None,
        out_transaction_id: None,
        time_end: None,
        refunds: Vec::new(),
        notify_attempts: Vec::new(),
        query_calls: 0,
        close_calls: 0,
        fingerprint,
    };
    let reply = jspay_reply(&trade);
    ctx.state.trades.insert(out_trade_no.to_owned(), trade);
    Ok(reply)
}

use md5::Digest as _;

fn jspay_reply(trade: &Trade) -> Fields {
    Fields::new()
        .with("token_id", trade.token_id.as_str())
        .with("pay_info", trade.pay_info.as_str())
        .with("appid", trade.sub_appid.as_str())
}

/// The business fields of a jspay request: a resend has the same, a reuse does not.
fn fingerprint(fields: &Fields) -> String {
    fields
        .iter()
        .filter(|(name, _)| !matches!(*name, "nonce_str" | "sign" | "sign_type"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn find_trade<'a>(
    state: &'a mut SandboxState,
    fields: &Fields,
) -> Result<&'a mut Trade, BusinessError> {
    let trade = if let Some(transaction_id) = fields.get("transaction_id") {
        state.trade_by_transaction(transaction_id)
    } else if let Some(out_trade_no) = fields.get("out_trade_no") {
        state.trades.get_mut(out_trade_no)
    } else {
        return Err(fail("LACK_PARAMS", "缺少参数 out_trade_no"));
    };
    trade.ok_or_else(|| fail("ORDERNOTEXIST", "Order not exist"))
}

pub fn query(ctx: Context<'_>, fields: &Fields) -> Outcome {
    let trade = find_trade(ctx.state, fields)?;
    trade.refresh(ctx.now.0);
    trade.query_calls += 1;
    let mut reply = Fields::new()
        .with("trade_state", trade.state.as_str())
        .with("out_trade_no", trade.out_trade_no.as_str())
        .with("total_fee", trade.total_fee.to_string())
        .with("trade_type", "pay.weixin.jspay")
        .with("fee_type", "CNY");
    if let Some(attach) = &trade.attach {
        reply.set("attach", attach.as_str());
    }
    if trade.is_paid() {
        reply
            .set(
                "transaction_id",
                trade.transaction_id.clone().unwrap_or_default(),
            )
            .set(
                "out_transaction_id",
                trade.out_transaction_id.clone().unwrap_or_default(),
            )
            .set("time_end", trade.time_end.clone().unwrap_or_default())
            .set("openid", trade.sub_openid.as_str())
            .set("sub_openid", trade.sub_openid.as_str())
            .set("bank_type", "CFT");
    }
    Ok(reply)
}

pub fn close(ctx: Context<'_>, fields: &Fields) -> Outcome {
    required(fields, "out_trade_no")?;
    let trade = find_trade(ctx.state, fields)?;
    trade.refresh(ctx.now.0);
    trade.close_calls += 1;
    match trade.state {
        // A trade whose payment failed (PAYERROR) is unpaid: it closes like a NOTPAY one.
        TradeState::NotPay | TradeState::PayError => {
            trade.state = TradeState::Closed;
            Ok(Fields::new())
        }
        // As the gateway does: a second close, or a close after time_expire, is refused with
        // ORDERCLOSED — never a quiet success that would hide a caller treating it as a failure.
        TradeState::Closed => Err(fail("ORDERCLOSED", "Order closed")),
        _ => Err(fail("ORDERPAID", "Order paid")),
    }
}

pub fn refund(ctx: Context<'_>, fields: &Fields, faults: &Faults) -> Outcome {
    let out_refund_no = required(fields, "out_refund_no")?;
    let total_fee = amount(fields, "total_fee")?;
    let refund_fee = amount(fields, "refund_fee")?;
    let op_user_id = required(fields, "op_user_id")?;
    if !valid_trade_no(out_refund_no) {
        return Err(fail(
            "PARAM_ERROR",
            "out_refund_no must be 5-32 of [A-Za-z0-9_]",
        ));
    }
    if op_user_id != ctx.mch_id {
        return Err(fail("PARAM_ERROR", "op_user_id must be the merchant"));
    }
    let seq = ctx.state.next_seq();
    let trade = find_trade(ctx.state, fields)?;
    trade.refresh(ctx.now.0);
    if !trade.is_paid() {
        return Err(fail("TRADE_STATE_ERROR", "Order not paid"));
    }
    if total_fee != trade.total_fee {
        return Err(fail("PARAM_ERROR", "total_fee differs from the order"));
    }
    // The same out_refund_no is the same refund, however often it is sent.
    if let Some(at) = trade
        .refunds
        .iter()
        .position(|r| r.out_refund_no == out_refund_no)
    {
        let existing = &mut trade.refunds[at];
        if existing.refund_fee != refund_fee {
            return Err(fail(
                "PARAM_ERROR",
                "out_refund_no already used with another refund_fee",
            ));
        }
        existing.requests += 1;
        if existing.status == RefundStatus::NotSure {
            // Resending an uncertain refund settles it.
            existing.status = RefundStatus::Processing;
            existing.outcome = RefundOutcome::Success;
            existing.processing_queries_left = 0;
        }
        return Ok(refund_reply(trade, &trade.refunds[at]));
    }
    if trade.refunds_committed() + refund_fee > trade.total_fee {
        return Err(fail("NOTENOUGH", "退款金额大于可退金额"));
    }
    let refund = Refund {
        out_refund_no: out_refund_no.to_owned(),
        refund_id: format!("{}{:010}", ctx.mch_id, seq),
        refund_fee,
        status: RefundStatus::Processing,
        processing_queries_left: faults.refund_processing_queries.unwrap_or(0),
        outcome: faults.refund_outcome.unwrap_or(RefundOutcome::Success),
        requests: 1,
        refund_time: None,
        requested_at: format_gmt8(ctx.now),
    };
    let reply = refund_reply(trade, &refund);
    trade.refunds.push(refund);
    trade.sync_refund_state();
    Ok(reply)
}

fn refund_reply(trade: &Trade, refund: &Refund) -> Fields {
    Fields::new()
        .with(
            "transaction_id",
            trade.transaction_id.clone().unwrap_or_default(),
        )
        .with("out_trade_no", trade.out_trade_no.as_str())
        .with("out_refund_no", refund.out_refund_no.as_str())
        .with("refund_id", refund.refund_id.as_str())
        .with("refund_channel", "ORIGINAL")
        .with("refund_fee", refund.refund_fee.to_string())
        .with("coupon_refund_fee", "0")
}

pub fn refund_query(ctx: Context<'_>, fields: &Fields) -> Outcome {
    let now_gmt8 = format_gmt8(ctx.now);
    // Priority: refund_id > out_refund_no > transaction_id > out_trade_no.
    let by_refund = |r: &Refund| match (fields.get("refund_id"), fields.get("out_refund_no")) {
        (Some(id), _) => r.refund_id == id,
        (None, Some(no)) => r.out_refund_no == no,
        (None, None) => true,
    };
    let trade = if fields.contains("refund_id") || fields.contains("out_refund_no") {
        ctx.state
            .trades
            .values_mut()
            .find(|t| t.refunds.iter().any(by_refund))
            .ok_or_else(|| fail("REFUNDNOTEXIST", "Refund not exist"))?
    } else {
        find_trade(ctx.state, fields)?
    };
    let mut reply = Fields::new()
        .with("out_trade_no", trade.out_trade_no.as_str())
        .with(
            "transaction_id",
            trade.transaction_id.clone().unwrap_or_default(),
        );
    let mut count = 0;
    for refund in trade.refunds.iter_mut().filter(|r| by_refund(r)) {
        refund.observe(&now_gmt8);
        let n = count;
        reply
            .set(&format!("out_refund_no_{n}"), refund.out_refund_no.as_str())
            .set(&format!("refund_id_{n}"), refund.refund_id.as_str())
            .set(&format!("refund_channel_{n}"), "ORIGINAL")
            .set(&format!("refund_fee_{n}"), refund.refund_fee.to_string())
            .set(&format!("coupon_refund_fee_{n}"), "0")
            .set(&format!("refund_status_{n}"), refund.status.as_str())
            .set(
                &format!("refund_time_{n}"),
                refund.refund_time.clone().unwrap_or_default(),
            );
        count += 1;
    }
    if count == 0 {
        return Err(fail("REFUNDNOTEXIST", "Refund not exist"));
    }
    trade.sync_refund_state();
    Ok(reply.with("refund_count", count.to_string()))
}
