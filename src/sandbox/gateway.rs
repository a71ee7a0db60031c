//! `POST /pay/gateway`: one URL, the `service` field picks the operation. Refusals of the call
//! itself (XML, signature, merchant) are unsigned `status≠0` replies; everything after that is
//! a signed reply, success or business error, sorted alphabetically in CDATA.

use actix_web::web::{Bytes, Data};
use actix_web::HttpResponse;
use std::time::Duration;

use super::services::{self, BusinessError, Context};
use super::Sandbox;
use crate::gateway::wallyt::fields::Fields;
use crate::gateway::wallyt::sign::{declared_sign_type, SignKeys};
use crate::gateway::wallyt::xml::{decode, encode, XmlError};

pub async fn gateway(sandbox: Data<Sandbox>, body: Bytes) -> HttpResponse {
    let parsed = decode(&body);
    let hint = |name: &str| {
        parsed
            .as_ref()
            .ok()
            .and_then(|f| f.get(name).map(str::to_owned))
    };
    let (trade_hint, service_hint) = (hint("out_trade_no"), hint("service"));
    let fault = sandbox.take_call_fault(trade_hint.as_deref(), service_hint.as_deref());
    if fault.slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.slow_ms)).await;
    }
    if fault.server_error {
        return HttpResponse::InternalServerError().body("Internal Server Error");
    }
    if fault.garbage {
        return HttpResponse::Ok()
            .content_type("text/html")
            .body("<html><body><h1>502 Bad Gateway</h1></body></html>");
    }
    let reply = handle(&sandbox, parsed);
    if fault.late_ms > 0 {
        // The work is done and kept: a caller that gives up waiting has not undone it.
        tokio::time::sleep(Duration::from_millis(fault.late_ms)).await;
    }
    HttpResponse::Ok()
        .content_type("text/xml; charset=UTF-8")
        .body(encode(&reply))
}

fn handle(sandbox: &Sandbox, parsed: Result<Fields, XmlError>) -> Fields {
    let fields = match parsed {
        Ok(fields) => fields,
        Err(XmlError::NotUtf8) => {
            return unsigned("400", "Parse xml error,please use UTF-8 encoded")
        }
        Err(error) => return unsigned("400", &format!("Parse xml error: {error}")),
    };
    let Some(keys) = declared_sign_type(&fields)
        .ok()
        .and_then(|declared| sandbox.keys_for(declared))
    else {
        return unsigned("400", "Unsupported sign_type");
    };
    let config = sandbox.config();
    // A foreign mch_id is reported as a signature error, as the gateway does.
    if fields.get("mch_id") != Some(config.mch_id.as_str()) || !keys.verify(&fields) {
        return unsigned("400", "Signature error");
    }
    let Some(service) = fields.get("service") else {
        return unsigned("400", "Require service");
    };
    let nonce_ok = fields.get("nonce_str").is_some_and(|n| n.len() <= 32);
    let outcome = if !nonce_ok {
        Err(BusinessError {
            code: "PARAM_ERROR",
            message: "nonce_str is required, at most 32 characters".into(),
        })
    } else {
        let trade = fields.get("out_trade_no");
        let faults = sandbox.with_state(|state| state.faults_for(trade));
        sandbox
            .with_state(|state| {
                let ctx = Context {
                    state,
                    now: sandbox.now(),
                    mch_id: &config.mch_id,
                };
                match service {
                    "pay.weixin.jspay" => Some(services::jspay(ctx, &fields)),
                    "unified.trade.query" => Some(services::query(ctx, &fields)),
                    "unified.trade.close" => Some(services::close(ctx, &fields)),
                    "unified.trade.refund" => Some(services::refund(ctx, &fields, &faults)),
                    "unified.trade.refundquery" => Some(services::refund_query(ctx, &fields)),
                    _ => None,
                }
            })
            .unwrap_or_else(|| {
                Err(BusinessError {
                    code: "NOAUTH",
                    message: format!("service {service} is not supported"),
                })
            })
    };
    signed(sandbox, &keys, outcome)
}

/// A refusal of the call itself: only these four fields, and no signature.
pub(super) fn unsigned(status: &str, message: &str) -> Fields {
    Fields::new()
        .with("version", "2.0")
        .with("charset", "UTF-8")
        .with("status", status)
        .with("message", message)
}

pub(super) fn signed(
    sandbox: &Sandbox,
    keys: &SignKeys,
    outcome: Result<Fields, BusinessError>,
) -> Fields {
    let config = sandbox.config();
    let mut reply = match outcome {
        Ok(fields) => fields.with("result_code", "0"),
        Err(error) => Fields::new()
            .with("result_code", "1")
            .with("err_code", error.code)
            .with("err_msg", error.message),
    };
    reply
        .set("version", "2.0")
        .set("charset", "UTF-8")
        .set("sign_type", keys.sign_type().as_str())
        .set("status", "0")
        .set("mch_id", config.mch_id.as_str())
        .set("nonce_str", sandbox.nonce());
    let signature = keys.sign(&reply);
    reply.with("sign", signature)
}
