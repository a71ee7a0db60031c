//! Prometheus metrics, rendered at `GET /metrics`. One registry per application so that
//! tests running many apps in one process do not share counters.

use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Calls to Wallyt by service and outcome (ok, business, refused, timeout, ...).
    pub gateway_calls: IntCounterVec,
    /// Notifies received, by verdict (confirmed, duplicate, invalid_signature, ...).
    pub notifies: IntCounterVec,
    /// Order actors alive now; set from the registry's count when rendered.
    pub live_order_actors: IntGauge,
    /// Refund outcomes: succeeded, failed, change, unknown.
    pub refunds: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let gateway_calls = IntCounterVec::new(
            Opts::new("wallyt_gateway_calls_total", "Calls to the Wallyt gateway"),
            &["service", "outcome"],
        )
        .expect("valid metric");
        let notifies = IntCounterVec::new(
            Opts::new(
                "wallyt_notifies_total",
                "Payment notifies received, by verdict",
            ),
            &["verdict"],
        )
        .expect("valid metric");
        let live_order_actors =
            IntGauge::new("live_order_actors", "Order actors alive").expect("valid metric");
        let refunds = IntCounterVec::new(
            Opts::new("wallyt_refunds_total", "Refund outcomes"),
            &["outcome"],
        )
        .expect("valid metric");
        for metric in [
            Box::new(gateway_calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(notifies.clone()),
            Box::new(live_order_actors.clone()),
            Box::new(refunds.clone()),
        ] {
            registry.register(metric).expect("registered once");
        }
        Metrics {
            registry,
            gateway_calls,
            notifies,
            live_order_actors,
            refunds,
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

/// The engine reports refund outcomes here.
impl wallyt_pay_actors::ports::Observer for Metrics {
    fn refund(&self, outcome: &'static str) {
        self.refunds.with_label_values(&[outcome]).inc();
    }
}
