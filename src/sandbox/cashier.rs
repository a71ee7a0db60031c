//! `GET /sandbox/cashier/{out_trade_no}`: the sandbox's pay sheet, for a person walking the
//! payment flow by hand — what WeChat shows the buyer after `wx.requestPayment` (merchant,
//! what is bought, the amount in yuan, the trade's status) with three buttons:
//!
//! - **Pay**: the buyer pays (`control::pay_trade`): SUCCESS, and the signed notify goes to
//!   the merchant on the real retry schedule, exactly as `POST /sandbox/trades/{no}/pay`;
//! - **Fail**: the buyer's payment fails (`control::fail_trade`): PAYERROR, unpaid, no notify
//!   (the merchant learns it by query and treats the trade as closed);
//! - **Close**: the gateway closes the unpaid trade on its own (`control::close_trade`).
//!
//! Development tooling, behind the same loopback guard as the other controls. Server-rendered
//! (maud escapes every interpolated string; the trade's body is the merchant's text), no
//! script and nothing loaded from elsewhere. A button is a POST carrying the sandbox's form
//! token (random per process, only readable from this page) and is refused when the browser
//! says it comes from another site (`Origin`, `Sec-Fetch-Site`): a page on the internet cannot
//! make a developer's browser pay their sandbox trades.

use actix_web::http::{header, StatusCode};
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use wallyt_pay_actors::Fen;

use super::control::{close_trade, fail_trade, pay_trade};
use super::state::Trade;
use super::Sandbox;
use crate::gateway::wallyt::trade::TradeState;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#ededed;margin:0}\
main{max-width:26rem;margin:2rem auto;background:#fff;border-radius:.5rem;padding:1.5rem}\
.amount{font-size:2.2rem;text-align:center;margin:.5rem 0}\
.status{text-align:center;font-weight:bold}dl{display:grid;grid-template-columns:auto 1fr;\
gap:.3rem 1rem;font-size:.9rem}dt{color:#666}dd{margin:0;word-break:break-all}\
form{display:flex;gap:.5rem;margin-top:1rem}button{flex:1;padding:.7rem;font-size:1rem;\
border:0;border-radius:.3rem;cursor:pointer}#pay{background:#07c160;color:#fff}\
#fail{background:#fa5151;color:#fff}#close{background:#ddd}\
.flash{padding:.5rem;border-radius:.3rem;background:#f0f9eb}.flash.error{background:#fde2e2}\
.note{color:#666;font-size:.8rem}";

#[derive(Deserialize)]
pub struct Shown {
    /// What the last button did (from the redirect after a POST).
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct Button {
    action: String,
    token: String,
}

pub async fn show(
    sandbox: Data<Sandbox>,
    out_trade_no: Path<String>,
    shown: Query<Shown>,
) -> HttpResponse {
    let flash = shown.done.as_deref().and_then(|done| match done {
        "pay" => Some((
            true,
            "Paid. The signed notify is on its way to the merchant.",
        )),
        "fail" => Some((
            true,
            "The payment failed: the trade is PAYERROR and stays unpaid.",
        )),
        "close" => Some((true, "The gateway closed the trade.")),
        _ => None,
    });
    render(&sandbox, &out_trade_no, flash, StatusCode::OK)
}

pub async fn act(
    req: HttpRequest,
    sandbox: Data<Sandbox>,
    out_trade_no: Path<String>,
    button: Form<Button>,
) -> HttpResponse {
    let token_ok = constant_time_eq::constant_time_eq(
        button.token.as_bytes(),
        sandbox.cashier_token().as_bytes(),
    );
    if !token_ok || !same_origin(&req) {
        let refused = (
            false,
            "Refused: this form did not come from this page. Nothing was done.",
        );
        return render(
            &sandbox,
            &out_trade_no,
            Some(refused),
            StatusCode::FORBIDDEN,
        );
    }
    let done = match button.action.as_str() {
        "pay" => pay_trade(&sandbox, &out_trade_no, false),
        "fail" => fail_trade(&sandbox, &out_trade_no),
        "close" => close_trade(&sandbox, &out_trade_no),
        _ => Err((StatusCode::BAD_REQUEST, "no such button")),
    };
    match done {
        // Post/redirect/get: a reload shows the trade, it does not press the button again.
        Ok(_) => HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!(
                    "{}?done={}",
                    req.path(),
                    match button.action.as_str() {
                        "pay" => "pay",
                        "fail" => "fail",
                        _ => "close",
                    }
                ),
            ))
            .finish(),
        Err((status, message)) => render(&sandbox, &out_trade_no, Some((false, message)), status),
    }
}

/// What the browser says of where the form came from. Browsers send `Origin` on every POST
/// (and `Sec-Fetch-Site`); either naming another site refuses. A client that sends neither
/// (curl) is not a browser being tricked, and still needs the token.
fn same_origin(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let host = req.connection_info().host().to_owned();
            url::Url::parse(origin).is_ok_and(|url| {
                let authority = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_owned(),
                    _ => return false,
                };
                authority.eq_ignore_ascii_case(&host)
            })
        }
    }
}

/// The trade's path segment as written in a URL (ids are ASCII tokens; anything else is
/// percent-encoded rather than trusted).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The buyer's words for a trade state.
fn status_words(state: TradeState) -> &'static str {
    match state {
        TradeState::NotPay => "Waiting for payment",
        TradeState::Success => "Paid",
        TradeState::Refund => "Paid (refunded in part or whole)",
        TradeState::Closed => "Closed",
        TradeState::PayError => "Payment failed",
        TradeState::UserPaying => "Paying",
        TradeState::Reverse | TradeState::Revoked => "Cancelled",
    }
}

fn render(
    sandbox: &Sandbox,
    out_trade_no: &str,
    flash: Option<(bool, &str)>,
    status: StatusCode,
) -> HttpResponse {
    let now = sandbox.now().0;
    let trade = sandbox.with_state(|s| {
        s.trades.get_mut(out_trade_no).map(|t| {
            t.refresh(now);
            t.clone()
        })
    });
    let (status, body) = match trade {
        Some(trade) => (status, sheet(sandbox, &trade, flash)),
        None => (
            StatusCode::NOT_FOUND,
            html! { p.flash.error { "No trade " (out_trade_no) " at this sandbox." } },
        ),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sandbox cashier · " (out_trade_no) }
                style { (STYLE) }
            }
            body { main { (body) } }
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ))
        .body(markup.into_string())
}

fn sheet(sandbox: &Sandbox, trade: &Trade, flash: Option<(bool, &str)>) -> Markup {
    let unpaid = matches!(trade.state, TradeState::NotPay | TradeState::PayError);
    let last_notify = trade.notify_attempts.last();
    html! {
        p.note { "SANDBOX — no real money moves. This page imitates the WeChat pay sheet." }
        @if let Some((ok, text)) = flash {
            p.flash.error[!ok] id="flash" { (text) }
        }
        h1 { (trade.body) }
        p.amount id="amount" { "¥" (Fen::new(trade.total_fee).to_yuan_string()) }
        p.status id="trade-status" data-state=(trade.state.as_str()) {
            (status_words(trade.state)) " (" (trade.state.as_str()) ")"
        }
        dl {
            dt { "Merchant" } dd id="merchant" { (sandbox.config().mch_id) }
            dt { "out_trade_no" } dd id="out-trade-no" { (trade.out_trade_no) }
            dt { "Buyer (openid)" } dd { (trade.sub_openid) }
            @if let Some(expire) = &trade.time_expire {
                dt { "Pay before (GMT+8)" } dd { (expire) }
            }
            @if let Some(id) = &trade.transaction_id {
                dt { "transaction_id" } dd id="transaction-id" { (id) }
            }
            @if let Some(attempt) = last_notify {
                dt { "Notify" }
                dd id="notify" {
                    (trade.notify_attempts.len()) " attempt(s); last: "
                    @if attempt.acknowledged { "acknowledged" }
                    @else { (attempt.answer.as_deref().or(attempt.error.as_deref()).unwrap_or("no answer")) }
                }
            }
        }
        @if unpaid {
            form method="post" action={ "/sandbox/cashier/" (segment(&trade.out_trade_no)) } {
                input type="hidden" name="token" value=(sandbox.cashier_token());
                @if trade.state == TradeState::NotPay {
                    button type="submit" name="action" value="pay" id="pay" { "Pay" }
                    button type="submit" name="action" value="fail" id="fail" { "Fail" }
                }
                button type="submit" name="action" value="close" id="close" { "Close" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_ids_and_encode_the_rest() {
        assert_eq!(segment("MP12_1733414400000"), "MP12_1733414400000");
        assert_eq!(segment("a/b c\"<"), "a%2Fb%20c%22%3C");
    }
}
