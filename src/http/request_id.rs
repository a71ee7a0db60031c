//! Request ids: what lets an operator go from a complaint ("my refund at 14:02 failed") to the
//! log lines of that one request. Every request gets one — the caller's `X-Request-Id` when it
//! is sane (a proxy or the mini-program may already have named the request), else a fresh
//! random one — and it is echoed in the answer's `X-Request-Id`, set as the `request_id`
//! field of the request's root span (so every log line of the request carries it), and
//! stored with what the request causes (notify audit rows, prepays, refunds, admin audit).
//!
//! "Sane" is bounded and boring on purpose: the id lands in log lines, database columns and
//! the console, so a caller must not be able to write newlines, markup or a megabyte there.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use rand::RngCore;
use std::convert::Infallible;
use std::future::{ready, Ready};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

pub const HEADER: &str = "x-request-id";

/// The longest id taken from a caller (a UUID is 36, a W3C trace id 32).
pub const MAX_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// 128 random bits as 32 lower-case hex digits.
    pub fn generate() -> RequestId {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        RequestId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The caller's id when it is sane, else a fresh one.
    pub fn from_header(value: Option<&HeaderValue>) -> RequestId {
        value
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane(v))
            .map(|v| RequestId(v.to_owned()))
            .unwrap_or_else(RequestId::generate)
    }

    /// The id the middleware gave this request (a fresh one where no middleware ran, e.g. a
    /// handler called from a unit test).
    pub fn of(req: &HttpRequest) -> RequestId {
        req.extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1 to [`MAX_LEN`] characters, each an HTTP token character (RFC 9110 `tchar`): letters,
/// digits and ``!#$%&'*+-.^_`|~``. No spaces, quotes, angle brackets or control characters.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl FromRequest for RequestId {
    type Error = Infallible;
    type Future = Ready<Result<RequestId, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(RequestId::of(req)))
    }
}

/// The outermost middleware: decides the id before the root span opens (the span reads it
/// from the request's extensions) and writes it on every answer, errors included.
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = RequestId::from_header(req.headers().get(HEADER));
    let value = HeaderValue::from_str(id.as_str()).expect("a sane id is a valid header value");
    let name = HeaderName::from_static(HEADER);
    req.extensions_mut().insert(id);
    // The request is not kept (routing needs it unshared), so an error is rendered from
    // itself: its answer carries the id too.
    match next.call(req).await {
        Ok(mut response) => {
            response.headers_mut().insert(name, value);
            Ok(response.map_into_boxed_body())
        }
        Err(error) => {
            let mut response = error.error_response();
            response.headers_mut().insert(name, value);
            Err(InternalError::from_response(error, response).into())
        }
    }
}

/// The root span of each request (for `tracing_actix_web::TracingLogger`): our request id
/// instead of the crate's own, the method, the route pattern (never the raw path: query
/// strings may hold openids) and, at the end, the status.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate);
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = %route,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.error_response().status(),
        };
        span.record("status", status.as_u16());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_bounded_tokens() {
        for id in [
            "abc",
            "req-1_2.3",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "a~b|c",
        ] {
            assert!(is_sane(id), "{id}");
        }
        let too_long = "a".repeat(MAX_LEN + 1);
        for id in [
            "",
            "a b",
            "<script>",
            "a\"b",
            "é",
            "a\tb",
            too_long.as_str(),
        ] {
            assert!(!is_sane(id), "{id:?}");
        }
        assert!(is_sane(&"a".repeat(MAX_LEN)));
    }

    #[test]
    fn insane_or_missing_ids_are_replaced() {
        let kept = RequestId::from_header(Some(&HeaderValue::from_static("given-1")));
        assert_eq!(kept.as_str(), "given-1");
        for replaced in [
            RequestId::from_header(None),
            RequestId::from_header(Some(&HeaderValue::from_static("two words"))),
        ] {
            assert_eq!(replaced.as_str().len(), 32);
            assert!(replaced.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
