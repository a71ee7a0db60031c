//! Prometheus metrics, rendered at `GET /metrics`. One registry per application so that
//! tests running many apps in one process do not share counters.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Calls to Wallyt by service and outcome (ok, business, refused, timeout, ...).
    pub gateway_calls: IntCounterVec,
    /// HTTP requests by method, route pattern (not the raw path: bounded labels) and status.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by method and route pattern, in seconds.
    pub http_latency: HistogramVec,
    /// Notifies received, by verdict (confirmed, duplicate, invalid_signature, ...).
    pub notifies: IntCounterVec,
    /// Order actors alive now; set from the registry's count when rendered.
    pub live_order_actors: IntGauge,
    /// Refund outcomes: succeeded, failed, change, unknown.
    pub refunds: IntCounterVec,
    /// Deadlines fired, by kind (prepay, order, reconcile).
    pub deadlines_fired: IntCounterVec,
    /// Deadlines waiting in the timer service; set when rendered.
    pub pending_deadlines: IntGauge,
    /// Unpaid trades closed at the gateway.
    pub trades_closed: prometheus::IntCounter,
    /// Payments for orders no longer waiting: reconfirmed, refunded, double_refunded.
    pub late_payments: IntCounterVec,
    /// Active queries that found a payment no notify had announced.
    pub reconciliation_hits: prometheus::IntCounter,
    /// Follow-ups (deadlines, refund polls) scheduled again because they did not finish.
    pub followup_retries: IntCounterVec,
    /// Differences the daily reconciliation found between the bill and the database, by kind.
    pub reconciliation_differences: IntCounterVec,
    /// Reconciliation runs by outcome (done, failed).
    pub reconciliation_runs: IntCounterVec,
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
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency"),
            &["method", "route"],
        )
        .expect("valid metric");
        let deadlines_fired = IntCounterVec::new(
            Opts::new("expiry_deadlines_fired_total", "Deadlines fired, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let pending_deadlines =
            IntGauge::new("expiry_pending_deadlines", "Deadlines waiting").expect("valid metric");
        let trades_closed =
            prometheus::IntCounter::new("wallyt_trades_closed_total", "Unpaid trades closed")
                .expect("valid metric");
        let late_payments = IntCounterVec::new(
            Opts::new(
                "late_payments_total",
                "Payments for orders no longer waiting",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let reconciliation_hits = prometheus::IntCounter::new(
            "reconciliation_hits_total",
            "Payments found by active queries",
        )
        .expect("valid metric");
        let followup_retries = IntCounterVec::new(
            Opts::new(
                "wallyt_followup_retries_total",
                "Follow-ups scheduled again because they did not finish, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let reconciliation_differences = IntCounterVec::new(
            Opts::new(
                "wallyt_reconciliation_differences_total",
                "Differences between the gateway's daily bill and the database, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let reconciliation_runs = IntCounterVec::new(
            Opts::new(
                "wallyt_reconciliation_runs_total",
                "Daily bill reconciliations, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for metric in [
            Box::new(gateway_calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(followup_retries.clone()),
            Box::new(notifies.clone()),
            Box::new(live_order_actors.clone()),
            Box::new(refunds.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_latency.clone()),
            Box::new(deadlines_fired.clone()),
            Box::new(pending_deadlines.clone()),
            Box::new(trades_closed.clone()),
            Box::new(late_payments.clone()),
            Box::new(reconciliation_hits.clone()),
            Box::new(reconciliation_differences.clone()),
            Box::new(reconciliation_runs.clone()),
        ] {
            registry.register(metric).expect("registered once");
        }
        Metrics {
            registry,
            gateway_calls,
            http_requests,
            http_latency,
            notifies,
            live_order_actors,
            refunds,
            deadlines_fired,
            pending_deadlines,
            trades_closed,
            late_payments,
            reconciliation_hits,
            followup_retries,
            reconciliation_differences,
            reconciliation_runs,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_latency
            .with_label_values(&[method, route])
            .observe(seconds);
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

    fn deadline_fired(&self, kind: &'static str) {
        self.deadlines_fired.with_label_values(&[kind]).inc();
    }

    fn trade_closed(&self) {
        self.trades_closed.inc();
    }

    fn late_payment(&self, outcome: &'static str) {
        self.late_payments.with_label_values(&[outcome]).inc();
    }

    fn reconciliation_hit(&self) {
        self.reconciliation_hits.inc();
    }

    fn followup_retried(&self, kind: &'static str) {
        self.followup_retries.with_label_values(&[kind]).inc();
    }
}
