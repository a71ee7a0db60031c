//! Timing: closed-loop phases (at most N requests in flight), open-loop phases (requests sent
//! at a fixed rate whatever the server does, latency counted from the scheduled send time so
//! that queueing is not hidden), and the summary each prints.

use futures_util::future::join_all;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Latencies of one phase and how long it took.
pub struct Summary {
    pub name: String,
    pub count: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn new(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) -> Summary {
        assert!(!latencies.is_empty(), "{name}: no requests were timed");
        latencies.sort_unstable();
        let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        Summary {
            name: name.to_owned(),
            count: latencies.len(),
            elapsed,
            p50: at(0.5),
            p99: at(0.99),
            max: *latencies.last().expect("not empty"),
        }
    }

    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p99_ms(&self) -> f64 {
        self.p99.as_secs_f64() * 1000.0
    }

    pub fn print(&self) {
        println!(
            "  {:<30} {:>6} in {:>6.2}s {:>8.0}/s  p50 {:>7.2}ms  p99 {:>7.2}ms  max {:>7.2}ms",
            self.name,
            self.count,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.p50.as_secs_f64() * 1000.0,
            self.p99_ms(),
            self.max.as_secs_f64() * 1000.0,
        );
    }
}

/// Runs `make(i)` for i in 0..count with at most `concurrency` in flight; answers the
/// summary and every answer in order.
pub async fn closed_loop<T, F, Fut>(
    name: &str,
    count: usize,
    concurrency: usize,
    make: F,
) -> (Summary, Vec<T>)
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let tasks = (0..count).map(|i| {
        let gate = gate.clone();
        let request = make(i);
        tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate stays open");
            let sent = Instant::now();
            let value = request.await;
            (sent.elapsed(), value)
        })
    });
    let results = join_all(tasks).await;
    let elapsed = started.elapsed();
    let (latencies, values) = results
        .into_iter()
        .map(|r| r.expect("request task"))
        .unzip();
    (Summary::new(name, latencies, elapsed), values)
}

/// Sends request i at `start + i / rate` for i in 0..count, each on its own task, never
/// waiting for earlier answers. A request's latency runs from its scheduled time, so a
/// generator or server that falls behind shows as latency, not as a lower send rate.
pub async fn open_loop<T, F, Fut>(name: &str, count: usize, rate: f64, make: F) -> (Summary, Vec<T>)
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    assert!(rate > 0.0, "{name}: the rate must be positive");
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let request = make(i);
        tasks.push(tokio::spawn(async move {
            let value = request.await;
            (due.elapsed(), value)
        }));
    }
    let results = join_all(tasks).await;
    let elapsed = start.elapsed();
    let (latencies, values) = results
        .into_iter()
        .map(|r| r.expect("request task"))
        .unzip();
    (Summary::new(name, latencies, elapsed), values)
}
