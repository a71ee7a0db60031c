//! Issue 10: a flood of forged notifies must not delay a genuine one. The regular test posts
//! 1,000 forgeries; the benchmark (ignored by default, PostgreSQL) posts the 5,000
//! and prints the genuine notify's latency without and during the flood:
//!
//! `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --test api
//!  notify_flood::benchmark -- --ignored --nocapture`

use futures_util::stream::{self, StreamExt};
use reqwest::StatusCode;
use secrecy::SecretString;
use std::time::{Duration, Instant};
use wallyt_pay::gateway::wallyt::sign::{sign, KeyedHash};
use wallyt_pay::gateway::wallyt::xml::encode;

use crate::helpers::{Backend, TestApp};
use crate::notify::{notify_fields, prepaid, signed};
use crate::on_both_backends;

on_both_backends!(a_thousand_forgeries_do_not_delay_a_genuine_notify);

/// Posts every body to the notify endpoint, `concurrency` at a time; answers the answers.
pub async fn post_all(
    app: &TestApp,
    bodies: impl Iterator<Item = Vec<u8>>,
    concurrency: usize,
) -> Vec<String> {
    stream::iter(bodies)
        .map(|body| async move { app.notify_raw(body).await.1 })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// A notify as the gateway would send it, signed with a key that is not ours.
fn forged(i: usize) -> Vec<u8> {
    let fields = notify_fields(&format!("MP{i}_1"), &serde_json::json!(i), "5000");
    let wrong_key = SecretString::from(format!("forger-key-{i:026}"));
    let signature = sign(&fields, KeyedHash::Md5, &wrong_key);
    encode(&fields.with("sign", signature)).into_bytes()
}

/// The time a genuine first notify takes to answer `success`.
async fn genuine_notify_latency(app: &TestApp) -> Duration {
    let (p, otn) = prepaid(app, 1).await;
    // transaction_id is unique across payments: one of its own per trade.
    let fields = notify_fields(&otn, &p.order, "5000").with("transaction_id", format!("TX{otn}"));
    let body = signed(app, fields);
    let started = Instant::now();
    let (status, answer) = app.notify_raw(body).await;
    let took = started.elapsed();
    assert_eq!((status, answer.as_str()), (StatusCode::OK, "success"));
    took
}

/// The genuine notify's latency without a flood, then in the middle of `forgeries` forged
/// notifies posted 16 at a time.
async fn latencies(app: &TestApp, forgeries: usize) -> (Duration, Duration) {
    let quiet = genuine_notify_latency(app).await;
    let flood = post_all(app, (0..forgeries).map(forged), 16);
    let genuine = async {
        // Let the flood reach full speed first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        genuine_notify_latency(app).await
    };
    let (answers, during) = tokio::join!(flood, genuine);
    assert_eq!(answers.len(), forgeries);
    assert!(answers.iter().all(|a| a == "fail"));
    (quiet, during)
}

async fn a_thousand_forgeries_do_not_delay_a_genuine_notify(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (quiet, during) = latencies(&app, 1000).await;
    assert!(
        during < Duration::from_secs(1),
        "genuine notify took {during:?} during the flood, {quiet:?} without"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notify_rejections").await,
        1000
    );
    crate::notify_audit::finish(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture (PostgreSQL)"]
async fn benchmark() {
    let Some(app) = TestApp::spawn_with_sandbox(Backend::Postgres, |_| {}).await else {
        panic!("the benchmark needs TEST_DATABASE_URL");
    };
    let started = Instant::now();
    let (quiet, during) = latencies(&app, 5000).await;
    println!(
        "genuine notify: {quiet:?} without a flood, {during:?} during 5,000 forged \
         (16 at a time; whole run {:?})",
        started.elapsed()
    );
    assert!(during < quiet + Duration::from_secs(1));
    crate::notify_audit::finish(app).await;
}
