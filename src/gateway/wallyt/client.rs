//! The one place that sends Wallyt messages. Adds the common fields, signs, posts
//! `text/xml; charset=UTF-8`, and sorts the reply into success or a [`GatewayError`]:
//! `status≠0` is an unsigned refusal, a bad signature is never believed, `result_code≠0` is a
//! signed business error.
//!
//! Only the idempotent services (query, refundquery, close) are retried here. A jspay or a
//! refund whose answer was lost is not resent by the client: the caller decides, and resends
//! with the *same* out_trade_no / out_refund_no.

use prometheus::IntCounterVec;
use rand::RngCore;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::breaker::CircuitBreaker;
use super::error::GatewayError;
use super::failures::{failure_outcome, CallFailure, FailureLog};
use super::fields::Fields;
use super::jspay::{parse_reply, JspayReply, JspayRequest};
use super::notify::{verify_notify, NotifyError, PaymentNotify};
use super::refund::{
    parse_refund_query_reply, parse_refund_reply, refund_query_fields, RefundItem, RefundQueryBy,
    RefundReply, RefundRequest,
};
use super::sign::SignKeys;
use super::trade::{close_fields, parse_query_reply, query_fields, TradeQueryReply};
use super::xml::{decode, encode, MAX_XML_BYTES};
use crate::gateway::body::{read_capped, ReadError};

#[derive(Clone, Debug)]
pub struct WallytConfig {
    pub api_url: String,
    pub mch_id: String,
    /// The sign type and its keys: requests are signed and replies verified with these.
    pub keys: SignKeys,
}

#[derive(Clone, Copy, Debug)]
pub struct ClientPolicy {
    /// Attempts for the idempotent services; 1 means no retry.
    pub max_attempts: u32,
    /// First backoff; doubled each retry.
    pub backoff: Duration,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl Default for ClientPolicy {
    fn default() -> ClientPolicy {
        ClientPolicy {
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Jspay,
    Query,
    Refund,
    RefundQuery,
    Close,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Jspay => "pay.weixin.jspay",
            Service::Query => "unified.trade.query",
            Service::Refund => "unified.trade.refund",
            Service::RefundQuery => "unified.trade.refundquery",
            Service::Close => "unified.trade.close",
        }
    }

    /// Safe to send twice: reads, and closing (which is idempotent at the gateway).
    fn retryable(self) -> bool {
        match self {
            Service::Query | Service::RefundQuery | Service::Close => true,
            Service::Jspay | Service::Refund => false,
        }
    }
}

#[derive(Clone)]
pub struct WallytClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: WallytConfig,
    policy: ClientPolicy,
    breaker: CircuitBreaker,
    calls: Option<IntCounterVec>,
    /// Where failed calls are recorded durably, once wired (`log_failures_to`).
    failures: OnceLock<Arc<dyn FailureLog>>,
}

impl WallytClient {
    pub fn new(
        config: WallytConfig,
        http: reqwest::Client,
        policy: ClientPolicy,
        calls: Option<IntCounterVec>,
    ) -> WallytClient {
        WallytClient {
            inner: Arc::new(Inner {
                http,
                breaker: CircuitBreaker::new(policy.breaker_threshold, policy.breaker_cooldown),
                config,
                policy,
                calls,
                failures: OnceLock::new(),
            }),
        }
    }

    /// Records every failed call (see `failures`) in `log` from now on; a second log is
    /// ignored (one client, one record).
    pub fn log_failures_to(&self, log: Arc<dyn FailureLog>) {
        drop(self.inner.failures.set(log));
    }

    pub fn mch_id(&self) -> &str {
        &self.inner.config.mch_id
    }

    pub fn breaker_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    pub async fn jspay(&self, request: &JspayRequest<'_>) -> Result<JspayReply, GatewayError> {
        let fields = request.to_fields()?;
        let reply = self
            .call(Service::Jspay, request.out_trade_no, fields)
            .await?;
        parse_reply(&reply)
    }

    pub async fn query(&self, out_trade_no: &str) -> Result<TradeQueryReply, GatewayError> {
        let reply = self
            .call(Service::Query, out_trade_no, query_fields(out_trade_no))
            .await?;
        parse_query_reply(&reply)
    }

    pub async fn close(&self, out_trade_no: &str) -> Result<(), GatewayError> {
        self.call(Service::Close, out_trade_no, close_fields(out_trade_no))
            .await
            .map(drop)
    }

    pub async fn refund(&self, request: &RefundRequest<'_>) -> Result<RefundReply, GatewayError> {
        let fields = request.to_fields(&self.inner.config.mch_id)?;
        let reply = self
            .call(Service::Refund, request.out_trade_no, fields)
            .await?;
        parse_refund_reply(&reply)
    }

    pub async fn refund_query(
        &self,
        by: RefundQueryBy<'_>,
    ) -> Result<Vec<RefundItem>, GatewayError> {
        let trade = match &by {
            RefundQueryBy::OutTradeNo(no) => *no,
            _ => "",
        };
        let reply = self
            .call(Service::RefundQuery, trade, refund_query_fields(by))
            .await?;
        parse_refund_query_reply(&reply)
    }

    /// Verifies a notify body with our key, merchant id and sign type.
    pub fn verify_notify(&self, body: &[u8]) -> Result<(PaymentNotify, Fields), NotifyError> {
        let config = &self.inner.config;
        verify_notify(body, &config.mch_id, &config.keys)
    }

    #[tracing::instrument(name = "wallyt.call", skip_all, fields(service = service.name(), out_trade_no = trade_no))]
    async fn call(
        &self,
        service: Service,
        trade_no: &str,
        fields: Fields,
    ) -> Result<Fields, GatewayError> {
        let policy = self.inner.policy;
        let attempts = if service.retryable() {
            policy.max_attempts.max(1)
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let result = self.call_once(&fields).await;
            self.observe(service, &result);
            match result {
                Err(error) if error.is_gateway_fault() && attempt < attempts => {
                    tracing::info!(event = "wallyt.call.retry", attempt, error = %error);
                    tokio::time::sleep(policy.backoff * 2u32.pow(attempt - 1)).await;
                    attempt += 1;
                }
                other => {
                    self.remember(service, trade_no, &other);
                    return other;
                }
            }
        }
    }

    async fn call_once(&self, fields: &Fields) -> Result<Fields, GatewayError> {
        let inner = &self.inner;
        if !inner.breaker.allow() {
            return Err(GatewayError::CircuitOpen);
        }
        let mut message = fields.clone();
        message
            .set("version", "2.0")
            .set("charset", "UTF-8")
            .set("sign_type", inner.config.keys.sign_type().as_str())
            .set("mch_id", inner.config.mch_id.as_str())
            .set("nonce_str", nonce());
        let signature = inner.config.keys.sign(&message);
        message.set("sign", signature);
        let result = self.send(encode(&message)).await;
        match &result {
            Err(error) if error.is_gateway_fault() => inner.breaker.record_failure(),
            _ => inner.breaker.record_success(),
        }
        result
    }

    async fn send(&self, body: String) -> Result<Fields, GatewayError> {
        let inner = &self.inner;
        let response = inner
            .http
            .post(&inner.config.api_url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(GatewayError::Transport(format!("HTTP {status}")));
        }
        let bytes = match read_capped(response, MAX_XML_BYTES).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge { limit }) => {
                return Err(GatewayError::Garbage(format!(
                    "reply larger than {limit} bytes"
                )))
            }
            Err(ReadError::Transport(error)) => return Err(transport_error(error)),
        };
        let fields = decode(&bytes).map_err(|e| GatewayError::Garbage(e.to_string()))?;
        self.classify(fields)
    }

    fn classify(&self, fields: Fields) -> Result<Fields, GatewayError> {
        match fields.get("status") {
            Some("0") => {}
            Some(status) => {
                return Err(GatewayError::Refused {
                    status: status.to_owned(),
                    message: fields.get("message").unwrap_or("").to_owned(),
                })
            }
            None => return Err(GatewayError::Garbage("reply without status".into())),
        }
        if !self.inner.config.keys.verify(&fields) {
            tracing::warn!(event = "wallyt.reply.invalid_signature");
            return Err(GatewayError::BadSignature);
        }
        match fields.get("result_code") {
            Some("0") => Ok(fields),
            Some(code) => Err(GatewayError::Business {
                code: fields.get("err_code").unwrap_or(code).to_owned(),
                message: fields.get("err_msg").unwrap_or("").to_owned(),
            }),
            None => Err(GatewayError::Garbage("reply without result_code".into())),
        }
    }

    /// Hands a failed call to the failure log, after its retries.
    fn remember(&self, service: Service, trade_no: &str, result: &Result<Fields, GatewayError>) {
        let (Err(error), Some(log)) = (result, self.inner.failures.get()) else {
            return;
        };
        if let Some(outcome) = failure_outcome(error) {
            log.record(CallFailure {
                service: service.name(),
                outcome,
                out_trade_no: (!trade_no.is_empty()).then(|| trade_no.to_owned()),
                detail: error.to_string(),
            });
        }
    }

    fn observe(&self, service: Service, result: &Result<Fields, GatewayError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(GatewayError::Timeout) => "timeout",
            Err(GatewayError::Transport(_)) => "transport",
            Err(GatewayError::Refused { .. }) => "refused",
            Err(GatewayError::Business { .. }) => "business",
            Err(GatewayError::BadSignature) => "bad_signature",
            Err(GatewayError::Garbage(_)) => "garbage",
            Err(GatewayError::InvalidRequest(_)) => "invalid_request",
            Err(GatewayError::CircuitOpen) => "circuit_open",
        };
        if let Some(calls) = &self.inner.calls {
            calls.with_label_values(&[service.name(), outcome]).inc();
        }
    }
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn transport_error(error: reqwest::Error) -> GatewayError {
    if error.is_timeout() {
        GatewayError::Timeout
    } else {
        GatewayError::Transport(error.without_url().to_string())
    }
}
