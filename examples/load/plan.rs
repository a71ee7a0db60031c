//! Which scenarios run, how big, and what each reports. Shared by the load generator's
//! command line and the CI smoke test (tests/bench_smoke.rs), which runs the same scenarios
//! small and for correctness only.

use crate::harness::Harness;
use crate::stats::Summary;

pub const SCENARIOS: [&str; 5] = [
    "notify",
    "notify-open-loop",
    "flash-sale",
    "status",
    "mixed",
];

/// The open loop sends at this share of the closed loop's measured notify rate.
pub const OPEN_LOOP_SHARE: f64 = 0.7;

#[derive(Clone, Debug)]
pub struct Sizes {
    /// Requests in flight in the closed-loop phases.
    pub concurrency: usize,
    pub notify_orders: usize,
    pub open_loop_secs: f64,
    /// The open loop's rate when `notify` did not run first (`LOAD_OPEN_LOOP_RATE`).
    pub open_loop_rate: Option<f64>,
    pub flash_stock: usize,
    pub flash_buyers: usize,
    pub status_orders: usize,
    pub status_connections: usize,
    pub status_secs: f64,
    pub mixed_users: usize,
}

impl Sizes {
    /// The benchmark's sizes, each overridable by `LOAD_<FIELD>` (e.g. `LOAD_NOTIFY_ORDERS`).
    pub fn full() -> Sizes {
        Sizes {
            concurrency: 32,
            notify_orders: 2000,
            open_loop_secs: 6.0,
            open_loop_rate: None,
            flash_stock: 2000,
            flash_buyers: 3000,
            status_orders: 300,
            status_connections: 32,
            status_secs: 10.0,
            mixed_users: 200,
        }
        .with_env()
    }

    /// A few seconds per scenario, for correctness (CI: tests/bench_smoke.rs).
    #[allow(dead_code)] // the example's command line runs the full sizes only
    pub fn smoke() -> Sizes {
        Sizes {
            concurrency: 8,
            notify_orders: 60,
            open_loop_secs: 2.0,
            open_loop_rate: None,
            flash_stock: 40,
            flash_buyers: 60,
            status_orders: 20,
            status_connections: 8,
            status_secs: 2.0,
            mixed_users: 12,
        }
    }

    fn with_env(mut self) -> Sizes {
        let number = |name: &str| {
            std::env::var(format!("LOAD_{name}"))
                .ok()?
                .parse::<f64>()
                .ok()
        };
        let count = |name: &str, into: &mut usize| {
            if let Some(n) = number(name) {
                *into = n as usize;
            }
        };
        count("CONCURRENCY", &mut self.concurrency);
        count("NOTIFY_ORDERS", &mut self.notify_orders);
        count("FLASH_STOCK", &mut self.flash_stock);
        count("FLASH_BUYERS", &mut self.flash_buyers);
        count("STATUS_ORDERS", &mut self.status_orders);
        count("STATUS_CONNECTIONS", &mut self.status_connections);
        count("MIXED_USERS", &mut self.mixed_users);
        self.open_loop_secs = number("OPEN_LOOP_SECS").unwrap_or(self.open_loop_secs);
        self.status_secs = number("STATUS_SECS").unwrap_or(self.status_secs);
        self.open_loop_rate = number("OPEN_LOOP_RATE");
        self
    }
}

/// What a scenario reports: its rate (requests, accepted orders or flows per second) and
/// latency percentiles.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub scenario: &'static str,
    pub count: usize,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Outcome {
    pub fn of(scenario: &'static str, summary: &Summary) -> Outcome {
        Outcome {
            scenario,
            count: summary.count,
            rate: summary.rate(),
            p50_ms: summary.p50.as_secs_f64() * 1000.0,
            p99_ms: summary.p99_ms(),
        }
    }

    /// The line scripts/bench.sh reads.
    pub fn line(&self, backend: &str) -> String {
        format!(
            "result scenario={} backend={backend} rate={:.1} p50_ms={:.2} p99_ms={:.2} count={}",
            self.scenario, self.rate, self.p50_ms, self.p99_ms, self.count
        )
    }
}

/// Runs the named scenarios in order against one application; each verifies its effects and
/// panics when they are wrong.
pub async fn run(h: &Harness, names: &[String], sizes: &Sizes) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    for name in names {
        println!("== {name} ({})", h.backend());
        let outcome = match name.as_str() {
            "notify" => crate::notify::notify(h, sizes).await,
            "notify-open-loop" => {
                let peak = outcomes.iter().find(|o| o.scenario == "notify");
                let rate = sizes
                    .open_loop_rate
                    .or(peak.map(|o| o.rate * OPEN_LOOP_SHARE))
                    .expect("notify-open-loop needs `notify` first or LOAD_OPEN_LOOP_RATE");
                crate::notify::notify_open_loop(h, sizes, rate).await
            }
            "flash-sale" => crate::flash::flash_sale(h, sizes).await,
            "status" => crate::status::status(h, sizes).await,
            "mixed" => crate::mixed::mixed(h, sizes).await,
            other => panic!("unknown scenario {other}; known: {}", SCENARIOS.join(", ")),
        };
        // The machine's 1-minute load average beside each figure: other work on the same
        // cores moves these numbers, and the reader should see how much.
        println!("{} load1={}", outcome.line(h.backend()), load_average());
        outcomes.push(outcome);
    }
    outcomes
}

/// The 1-minute load average (Linux), or `-`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}
