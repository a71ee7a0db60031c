//! Logging through `tracing`. `RUST_LOG` filters (default `info`); production logs JSON lines.
//! Nothing here ever formats a secret: secrets are `SecretString`s and print `[REDACTED]`.
//!
//! Each HTTP request runs inside a root span named `request` whose `request_id` field is the
//! request's id (`http::request_id`): the pretty format prints it before every line of the
//! request, the JSON format lists it in each line's `spans`.

use crate::config::LogFormat;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls (tests spawning many apps) are no-ops.
pub fn init(format: LogFormat) {
    init_with_writer(format, std::io::stdout);
}

/// As [`init`], writing somewhere else: the load generator keeps the server's log in a file
/// so that a benchmark pays for logging as a deployed server does without flooding its table.
pub fn init_with_writer<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    drop(subscriber(format, filter, writer).try_init());
}

/// The subscriber [`init`] installs, writing to `writer`: a test can capture the lines of a
/// request exactly as they would be logged.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => Box::new(
            fmt()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_env_filter(filter)
                .with_writer(writer)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(fmt().with_env_filter(filter).with_writer(writer).finish()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request_id::{assign, RequestSpan};
    use actix_web::middleware::from_fn;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::{web, App, HttpResponse};
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_actix_web::TracingLogger;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn handler() -> HttpResponse {
        tracing::info!(event = "test.inside", "a line of the request");
        HttpResponse::Ok().finish()
    }

    /// The production (JSON) format: a line logged by a handler names the request's id.
    #[actix_web::test]
    async fn a_request_s_log_lines_carry_its_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), move || {
            writer.clone()
        });
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = init_service(
            App::new()
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(assign))
                .route("/x", web::get().to(handler)),
        )
        .await;
        let request = TestRequest::get()
            .uri("/x")
            .insert_header(("X-Request-Id", "given-42"))
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.headers().get("x-request-id").unwrap(), "given-42");
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("test.inside"))
            .unwrap_or_else(|| panic!("no line of the handler in {text}"));
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["spans"][0]["name"], "request", "{line}");
        assert_eq!(line["spans"][0]["request_id"], "given-42", "{line}");
        assert_eq!(line["spans"][0]["route"], "/x", "{line}");
    }
}
