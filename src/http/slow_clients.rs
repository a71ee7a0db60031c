//! Bounds on slow clients that actix-web does not give on its own. The head has
//! `client_request_timeout`; a body has no deadline, so a client that sends a head and then one
//! byte every few seconds holds its connection (and, while a handler awaits the body, the
//! handler) for as long as it likes. Here every request body gets a deadline counted from the
//! head, and an answer sent before its body was fully read closes the connection, so an unread
//! body cannot be trickled into the next request's time.

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::{FutureExt, Stream, StreamExt};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

const READING: u8 = 0;
const COMPLETE: u8 = 1;
const EXPIRED: u8 = 2;

/// What became of a request's body, seen from the middleware once the answer is ready.
#[derive(Clone)]
pub struct BodyProgress(Arc<AtomicU8>);

impl BodyProgress {
    /// The connection must not be reused: the body was cut off, or never read to its end.
    pub fn must_close(&self) -> bool {
        self.0.load(Ordering::Acquire) != COMPLETE
    }
}

/// Replaces the request's payload by one that fails once `timeout` has passed. Answers `None`
/// for requests without a body (nothing to bound, nothing left unread).
pub fn bound_body(req: &mut ServiceRequest, timeout: Duration) -> Option<BodyProgress> {
    if !has_body(req) {
        return None;
    }
    let progress = BodyProgress(Arc::new(AtomicU8::new(READING)));
    let inner = req.take_payload();
    let stream = Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        progress: progress.clone(),
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    req.set_payload(Payload::from(boxed));
    Some(progress)
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    declared.is_some_and(|len| len > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    progress: BodyProgress,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.progress.0.load(Ordering::Acquire) {
            COMPLETE | EXPIRED => return Poll::Ready(None),
            _ => {}
        }
        // The deadline first: a trickling client always has a byte ready.
        if self.sleep.poll_unpin(cx).is_ready() {
            self.progress.0.store(EXPIRED, Ordering::Release);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body not received in time",
            )))));
        }
        let item = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(None) = item {
            self.progress.0.store(COMPLETE, Ordering::Release);
        }
        item
    }
}

/// Whether an extractor's payload error is this deadline's.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}
