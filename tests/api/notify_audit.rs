//! Notify audit storage (contract: "Notify audit storage", "Safe defaults"): what a notify
//! leaves in the database depends on whether it verified — a refused one only as a bounded,
//! purged summary; a verified one whole, once.

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;
use wallyt_pay::gateway::wallyt::sign::{sign, KeyedHash};
use wallyt_pay::gateway::wallyt::xml::encode;
use wallyt_pay::storage::notify_audit::sha256_hex;
use wallyt_pay_actors::{Clock, SystemClock, UnixMillis};

use crate::helpers::{Backend, TestApp};
use crate::notify::{notify_fields, prepaid, signed};
use crate::on_both_backends;

on_both_backends!(
    refused_notifies_are_kept_as_a_summary,
    a_verified_notify_is_stored_whole_once,
    old_rejections_are_purged,
    a_declared_sign_type_other_than_ours_is_refused
);

type Rejection = (String, i64, Vec<u8>, String);

/// Stops the application and closes both pools: the PostgreSQL server's connection slots
/// are shared by the whole suite, and a finished test must not keep holding them.
pub async fn finish(app: TestApp) {
    app.handle.stop().await;
    app.db.close().await;
}

async fn rejections(app: &TestApp) -> Vec<Rejection> {
    sqlx::query_as(
        "SELECT body_sha256, body_len, body_prefix, verdict FROM notify_rejections ORDER BY id",
    )
    .fetch_all(app.db.pool())
    .await
    .expect("rejections")
}

async fn refused_notifies_are_kept_as_a_summary(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    // Byte 256 falls inside a two-byte character, and the body carries a NUL: the prefix
    // must keep the exact bytes on both backends.
    let mut garbage = vec![b'a'; 255];
    garbage.extend_from_slice("é".as_bytes());
    garbage.push(0);
    garbage.extend_from_slice(&[b'z'; 4000]);
    let unsigned = {
        let fields = notify_fields("MP1_1", &json!(1), "5000");
        encode(&fields).into_bytes()
    };
    for body in [&garbage, &unsigned] {
        let (status, answer) = app.notify_raw(body.clone()).await;
        assert_eq!((status, answer.as_str()), (StatusCode::OK, "fail"));
    }
    let rows = rejections(&app).await;
    assert_eq!(
        rows,
        vec![
            (
                sha256_hex(&garbage),
                garbage.len() as i64,
                garbage[..256].to_vec(),
                "malformed".to_owned()
            ),
            (
                sha256_hex(&unsigned),
                unsigned.len() as i64,
                unsigned[..256].to_vec(),
                "invalid_signature".to_owned()
            ),
        ]
    );
    // Never whole, anywhere: payment_events holds nothing of them.
    assert_eq!(app.count("SELECT COUNT(*) FROM payment_events").await, 0);
    finish(app).await;
}

async fn a_verified_notify_is_stored_whole_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = prepaid(&app, 1).await;
    let first = signed(&app, notify_fields(&otn, &p.order, "5000"));
    // The gateway's retry carries a new nonce_str: other bytes, the same notify.
    let retry = signed(
        &app,
        notify_fields(&otn, &p.order, "5000").with("nonce_str", "1717214799999"),
    );
    for body in [&first, &first, &retry] {
        let (status, answer) = app.notify_raw(body.clone()).await;
        assert_eq!((status, answer.as_str()), (StatusCode::OK, "success"));
    }
    let whole: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT raw, body_sha256, out_trade_no FROM payment_events WHERE kind = 'notify'",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        whole,
        vec![(first.clone(), sha256_hex(first.as_bytes()), otn.clone())]
    );
    let verdicts: Vec<(String, String)> = sqlx::query_as(
        "SELECT verdict, body_sha256 FROM payment_events WHERE kind = 'notify.verdict' ORDER BY id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let (first_digest, retry_digest) = (sha256_hex(first.as_bytes()), sha256_hex(retry.as_bytes()));
    assert_eq!(
        verdicts,
        vec![
            ("confirmed".to_owned(), first_digest.clone()),
            ("duplicate".to_owned(), first_digest),
            ("duplicate".to_owned(), retry_digest),
        ]
    );
    // A signed notify reporting something else about the trade is a new fact: stored too.
    let failed = signed(
        &app,
        notify_fields(&otn, &p.order, "5000").with("pay_result", "1"),
    );
    app.notify_raw(failed).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payment_events WHERE kind = 'notify'")
            .await,
        2
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM notify_rejections").await, 0);
    finish(app).await;
}

async fn old_rejections_are_purged(backend: Backend) {
    // A one-second retention makes the background purge run every second.
    let Some(app) = TestApp::spawn_with_sandbox(backend, |vars| {
        vars.insert("NOTIFY_REJECTED_RETENTION".into(), "1s".into());
    })
    .await
    else {
        return;
    };
    app.notify_raw("<xml><a>").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM notify_rejections").await, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.count("SELECT COUNT(*) FROM notify_rejections").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the background purge never deleted the rejection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The purge function itself: a row is kept for the retention, deleted after it.
    app.notify_raw("not xml").await;
    let week = Duration::from_secs(7 * 86400);
    let now = SystemClock.now();
    assert_eq!(app.db.purge_notify_rejections(now, week).await.unwrap(), 0);
    let later = UnixMillis(now.0 + 8 * 86_400_000);
    assert_eq!(
        app.db.purge_notify_rejections(later, week).await.unwrap(),
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM notify_rejections").await, 0);
    // Verified notifies are never purged (payment_events stays append-only).
    assert_eq!(app.count("SELECT COUNT(*) FROM payment_events").await, 0);
    finish(app).await;
}

async fn a_declared_sign_type_other_than_ours_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = prepaid(&app, 1).await;
    // Correctly signed with our key — but under SHA256, while we are configured for MD5.
    let key: SecretString = app.sandbox.as_ref().unwrap().config().key.clone();
    let fields = notify_fields(&otn, &p.order, "5000").with("sign_type", "SHA256");
    let signature = sign(&fields, KeyedHash::Sha256, &key);
    let downgraded = encode(&fields.with("sign", signature));
    let (status, answer) = app.notify_raw(downgraded.clone()).await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, "fail"));
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("PENDING")
    );
    let rows = rejections(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, sha256_hex(downgraded.as_bytes()));
    assert_eq!(rows[0].3, "sign_type_mismatch");
    // Our own sign type still works.
    let (_, answer) = app
        .notify_raw(signed(&app, notify_fields(&otn, &p.order, "5000")))
        .await;
    assert_eq!(answer, "success");
    finish(app).await;
}

/// The contract's bound: 2,000 unsigned 32 KiB bodies grow a PostgreSQL database by under
/// 2 MiB (stored whole they would take over 60 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_unsigned_bodies_grow_postgres_by_under_two_mib() {
    let Some(app) = TestApp::spawn_with_sandbox(Backend::Postgres, |_| {}).await else {
        return;
    };
    let size = || async {
        // Flush what is buffered so that the files show it; best effort (needs superuser).
        let _ = sqlx::raw_sql("CHECKPOINT").execute(app.db.pool()).await;
        sqlx::query_scalar::<_, i64>("SELECT pg_database_size(current_database())")
            .fetch_one(app.db.pool())
            .await
            .unwrap()
    };
    let before = size().await;
    let bodies = (0..2000).map(|i| unsigned_body(i, 32 * 1024));
    let answers = crate::notify_flood::post_all(&app, bodies, 16).await;
    assert!(answers.iter().all(|a| a == "fail"), "{:?}", &answers[..3]);
    let grown = size().await - before;
    eprintln!("2,000 unsigned 32 KiB notifies grew the database by {grown} bytes");
    assert!(grown < 2 * 1024 * 1024, "grew by {grown} bytes");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notify_rejections").await,
        2000
    );
    finish(app).await;
}

/// A well-formed notify without a signature, padded to `len` bytes, distinct per `i`.
pub fn unsigned_body(i: usize, len: usize) -> Vec<u8> {
    let head = format!("<xml><out_trade_no>MP{i}_1</out_trade_no><attach>");
    let tail = "</attach></xml>";
    let mut body = head.into_bytes();
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}
