//! Prometheus metrics, rendered at `GET /metrics`. One registry per application so that
//! tests running many apps in one process do not share counters.

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Calls to Wallyt by service and outcome (ok, business, refused, timeout, ...).
    pub gateway_calls: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let gateway_calls = IntCounterVec::new(
            Opts::new("wallyt_gateway_calls_total", "Calls to the Wallyt gateway"),
            &["service", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(gateway_calls.clone()))
            .expect("registered once");
        Metrics {
            registry,
            gateway_calls,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
