//! The daily reconciliation against the gateway's bill (issue 13, part 2), over HTTP with the
//! built-in sandbox producing the bill: every kind of difference seeded at the sandbox is
//! found (and the lost payment applied), and a clean day of more than 1,000 trades and
//! refunds has none.

use chrono::{Duration as Days, FixedOffset, NaiveDate, Utc};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use wallyt_pay::gateway::wallyt::refund::RefundStatus;
use wallyt_pay::gateway::wallyt::time::format_gmt8;
use wallyt_pay::gateway::wallyt::trade::TradeState;
use wallyt_pay::sandbox::faults::RefundOutcome;
use wallyt_pay::sandbox::state::{Refund, Trade};
use wallyt_pay_actors::UnixMillis;

use crate::helpers::{expect_error, expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::shop::{paid_purchase, purchase};

on_both_backends!(
    every_kind_of_difference_is_found,
    a_clean_day_has_no_difference,
    a_date_is_run_by_one_node,
);

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn today() -> NaiveDate {
    Utc::now().with_timezone(&beijing()).date_naive()
}

fn day_start(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(beijing())
        .unwrap()
        .timestamp_millis()
}

/// Nothing queries the gateway by itself (`,` is an empty schedule) and the daily timer is
/// off: what the reconciler finds, only the reconciler found.
async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with_sandbox(backend, |vars| {
        vars.insert("QUERY_SCHEDULE".into(), ",".into());
        vars.insert("RECONCILE_AT".into(), "off".into());
    })
    .await
}

async fn run(app: &TestApp, date: NaiveDate, operator: Option<&str>) -> Response {
    let mut request = app
        .client
        .post(app.url(&format!("/admin/reconciliation/{date}/run")))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Request-Id", "req-reconcile-test");
    if let Some(operator) = operator {
        request = request.header("X-Operator", operator);
    }
    request.send().await.expect("POST")
}

async fn report(app: &TestApp, date: NaiveDate) -> Value {
    let path = format!("/admin/reconciliation/{date}");
    let response = app.get_with_token(&path, ADMIN_TOKEN).await;
    expect_status(response, StatusCode::OK).await["data"].clone()
}

async fn order_status(app: &TestApp, order: &Value) -> String {
    sqlx::query_scalar::<_, String>("SELECT status FROM orders WHERE id = $1")
        .bind(order.as_i64().unwrap())
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

async fn eventually(app: &TestApp, sql: &str, wanted: i64) {
    for _ in 0..100 {
        if app.count(sql).await == wanted {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{sql} never became {wanted}");
}

async fn every_kind_of_difference_is_found(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let sandbox = app.sandbox.clone().unwrap();

    // A payment whose notify was lost, and nobody asks: PENDING here, SUCCESS at the gateway.
    let lost = purchase(&app, 5, 1).await;
    app.sandbox_faults(None, json!({ "notify_drop": true }))
        .await;
    let prepay = expect_status(
        app.prepay(&lost.token, &lost.order, &lost.openid).await,
        StatusCode::OK,
    )
    .await;
    let lost_otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    assert!(app.sandbox_pay(&lost_otn).await.status().is_success());
    app.sandbox_faults(None, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(order_status(&app, &lost.order).await, "PENDING");

    // An amount the bill gets wrong.
    let (_, altered_otn) = paid_purchase(&app, 5, 1).await;
    app.sandbox_faults(Some(&altered_otn), json!({ "bill_line": "alter_amount" }))
        .await;

    // A refund the engine never asked for, made at the gateway directly.
    let (_, ghost_otn) = paid_purchase(&app, 5, 1).await;
    sandbox.with_state(|state| {
        let now = format_gmt8(UnixMillis(Utc::now().timestamp_millis()));
        let trade = state.trades.get_mut(&ghost_otn).unwrap();
        trade.refunds.push(Refund {
            out_refund_no: "RFGHOST0001".into(),
            refund_id: "75510000019999999999".into(),
            refund_fee: 1000,
            status: RefundStatus::Success,
            processing_queries_left: 0,
            outcome: RefundOutcome::Success,
            requests: 1,
            refund_time: Some(now.clone()),
            requested_at: now,
        });
        trade.sync_refund_state();
    });

    // A refund the engine recorded as SUCCESS that the gateway then reports failed.
    let (failed, failed_otn) = paid_purchase(&app, 5, 1).await;
    let path = format!("/admin/orders/{}/refunds", failed.order);
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Operator", "ops-a")
        .json(&json!({ "amount": 10.00, "reason": "goodwill" }))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await;
    let order_id = failed.order.as_i64().unwrap();
    eventually(
        &app,
        &format!("SELECT COUNT(*) FROM refunds WHERE order_id = {order_id} AND status = 'SUCCESS'"),
        1,
    )
    .await;
    let failed_refund_no: String =
        sqlx::query_scalar("SELECT out_refund_no FROM refunds WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    sandbox.with_state(|state| {
        let trade = state.trades.get_mut(&failed_otn).unwrap();
        let refund = trade
            .refunds
            .iter_mut()
            .find(|r| r.out_refund_no == failed_refund_no)
            .unwrap();
        refund.status = RefundStatus::Fail;
        trade.sync_refund_state();
    });

    let date = today();
    // An action needs its operator.
    expect_error(
        run(&app, date, None).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    let answer = expect_status(run(&app, date, Some("ops-b")).await, StatusCode::OK).await;
    assert_eq!(answer["data"]["applied"], json!(1), "{answer}");

    let data = report(&app, date).await;
    assert_eq!(data["run"]["status"], json!("DONE"), "{data}");
    assert_eq!(data["run"]["triggerBy"], json!("ops-b"));
    let found: HashMap<String, Value> = data["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].as_str().unwrap().to_owned(), d.clone()))
        .collect();
    let mut kinds: Vec<&str> = found.keys().map(String::as_str).collect();
    kinds.sort();
    // Exactly these: the other trades and refunds of the day agree.
    assert_eq!(
        kinds,
        [
            "AMOUNT_MISMATCH",
            "PAID_AT_GATEWAY_ONLY",
            "REFUND_MISMATCH",
            "REFUND_UNKNOWN",
            "TOTALS_MISMATCH"
        ],
        "{data}"
    );
    assert_eq!(data["differences"].as_array().unwrap().len(), 5, "{data}");
    let applied = &found["PAID_AT_GATEWAY_ONLY"];
    assert_eq!(applied["outTradeNo"], json!(lost_otn));
    assert_eq!(applied["action"], json!("applied: order confirmed"));
    assert_eq!(order_status(&app, &lost.order).await, "CONFIRMED");
    assert_eq!(found["AMOUNT_MISMATCH"]["outTradeNo"], json!(altered_otn));
    assert_eq!(
        found["AMOUNT_MISMATCH"]["billValue"],
        json!("SUCCESS 50.01")
    );
    assert_eq!(found["AMOUNT_MISMATCH"]["ourValue"], json!("50.00"));
    assert_eq!(found["REFUND_UNKNOWN"]["outRefundNo"], json!("RFGHOST0001"));
    assert_eq!(found["REFUND_UNKNOWN"]["outTradeNo"], json!(ghost_otn));
    assert_eq!(
        found["REFUND_MISMATCH"]["outRefundNo"],
        json!(failed_refund_no)
    );
    assert_eq!(found["REFUND_MISMATCH"]["billValue"], json!("FAIL 10.00"));
    assert_eq!(found["REFUND_MISMATCH"]["ourValue"], json!("SUCCESS 10.00"));
    // The lost payment's application is on its order's timeline.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM payment_events WHERE kind = 'reconcile.apply' \
             AND out_trade_no = '{lost_otn}'"
        ))
        .await,
        1
    );

    // A person must look at the four open ones; the applied payment needs nobody.
    let attention = app.get_with_token("/admin/attention", ADMIN_TOKEN).await;
    let attention = expect_status(attention, StatusCode::OK).await;
    let bill_lines: Vec<&Value> = attention["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == json!("BILL_DIFFERENCE"))
        .collect();
    assert_eq!(bill_lines.len(), 4, "{attention}");
    assert!(bill_lines
        .iter()
        .any(|l| l["status"] == json!("REFUND_UNKNOWN") && l["subject"] == json!("RFGHOST0001")));

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for kind in ["AMOUNT_MISMATCH", "PAID_AT_GATEWAY_ONLY", "REFUND_UNKNOWN"] {
        let line = format!("wallyt_reconciliation_differences_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} missing");
    }
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM admin_audit WHERE operator = 'ops-b' AND action = 'reconcile' \
             AND status = 200"
        )
        .await,
        1
    );

    // Run again: the payment is ours now, so it is not applied twice; its record stays.
    let again = expect_status(run(&app, date, Some("ops-b")).await, StatusCode::OK).await;
    assert_eq!(again["data"]["applied"], json!(0), "{again}");
    let data = report(&app, date).await;
    assert_eq!(data["differences"].as_array().unwrap().len(), 5, "{data}");
}

/// Seeds a day of `trades` payments, every third with a refund that succeeded and every
/// seventh with one that failed, on both sides as a real day would leave them; plus one
/// trade just before and one just after the day, which belong to other bills.
async fn seed_day(app: &TestApp, date: NaiveDate, trades: i64) -> i64 {
    let sandbox = app.sandbox.clone().unwrap();
    let appid = sandbox.config().appid.clone();
    let start = day_start(date);
    let pool = app.db.pool();
    sqlx::query(
        "INSERT INTO users (id, openid, created_at, last_login_at) VALUES (900000, 'oSeed', 0, 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut bill_lines = 0;
    let mut orders = Vec::new();
    let mut payments = Vec::new();
    let mut refunds = Vec::new();
    let mut gateway = Vec::new();
    let seeded: Vec<(i64, i64)> = (0..trades)
        .map(|i| (i, start + 3_600_000 + i * 10_000))
        .chain([(trades, start - 1_000), (trades + 1, start + 86_400_000)])
        .collect();
    for (i, paid_at) in seeded {
        let id = 900_000 + i;
        let amount = 5000 + (i % 13) * 100;
        let otn = format!("SEED{id}");
        let in_day = i < trades;
        let mut refunded = 0;
        let mut sandbox_refunds = Vec::new();
        for (n, (every, status)) in [(3, "SUCCESS"), (7, "FAIL")].into_iter().enumerate() {
            if i % every != 0 {
                continue;
            }
            let no = format!("RF{id}{n}");
            let fee = 1000;
            let finished = paid_at + 5_000;
            if status == "SUCCESS" {
                refunded += fee;
            }
            refunds.push(format!(
                "({id}{n}, {id}, {id}, '{no}', 'R{id}{n}', {fee}, '{status}', 1, {finished}, \
                 {finished}, {finished})"
            ));
            sandbox_refunds.push(Refund {
                out_refund_no: no,
                refund_id: format!("R{id}{n}"),
                refund_fee: fee,
                status: if status == "SUCCESS" {
                    RefundStatus::Success
                } else {
                    RefundStatus::Fail
                },
                processing_queries_left: 0,
                outcome: RefundOutcome::Success,
                requests: 1,
                refund_time: (status == "SUCCESS").then(|| format_gmt8(UnixMillis(finished))),
                requested_at: format_gmt8(UnixMillis(finished)),
            });
            if in_day {
                bill_lines += 1;
            }
        }
        if in_day {
            bill_lines += 1;
        }
        let status = if refunded > 0 {
            "PARTIALLY_REFUNDED"
        } else {
            "PAID"
        };
        orders.push(format!(
            "({id}, 900000, 'CONFIRMED', {amount}, {refunded}, {paid_at}, {paid_at}, {paid_at}, \
             {paid_at})"
        ));
        payments.push(format!(
            "({id}, {id}, '{otn}', 'T{otn}', '{status}', {amount}, {refunded}, {refunded}, \
             'oSeed', {paid_at}, {paid_at}, {paid_at}, {paid_at})"
        ));
        let time_end = format_gmt8(UnixMillis(paid_at));
        gateway.push(Trade {
            out_trade_no: otn.clone(),
            state: if refunded > 0 {
                TradeState::Refund
            } else {
                TradeState::Success
            },
            total_fee: amount,
            body: "seed".into(),
            attach: None,
            sub_appid: appid.clone(),
            sub_openid: "oSeed".into(),
            notify_url: String::new(),
            mch_create_ip: "127.0.0.1".into(),
            time_start: None,
            time_expire: None,
            expires_at: paid_at,
            token_id: String::new(),
            pay_info: String::new(),
            transaction_id: Some(format!("T{otn}")),
            out_transaction_id: None,
            time_end: Some(time_end),
            refunds: sandbox_refunds,
            notify_attempts: Vec::new(),
            query_calls: 0,
            close_calls: 0,
            fingerprint: String::new(),
        });
    }
    let inserts = [
        (
            "INSERT INTO orders (id, user_id, status, total_fen, refunded_fen, expires_at, \
             created_at, paid_at, updated_at) VALUES ",
            orders,
        ),
        (
            "INSERT INTO payments (id, order_id, out_trade_no, transaction_id, status, amount_fen, \
             refunded_fen, refund_committed_fen, openid, prepay_expires_at, created_at, paid_at, \
             updated_at) VALUES ",
            payments,
        ),
        (
            "INSERT INTO refunds (id, order_id, payment_id, out_refund_no, refund_id, amount_fen, \
             status, attempts, created_at, updated_at, finished_at) VALUES ",
            refunds,
        ),
    ];
    let mut tx = pool.begin().await.unwrap();
    for (head, rows) in inserts {
        for chunk in rows.chunks(200) {
            sqlx::query(&format!("{head}{}", chunk.join(", ")))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    tx.commit().await.unwrap();
    sandbox.with_state(|state| {
        for trade in gateway {
            state.trades.insert(trade.out_trade_no.clone(), trade);
        }
    });
    bill_lines
}

async fn a_clean_day_has_no_difference(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let yesterday = today() - Days::days(1);
    let lines = seed_day(&app, yesterday, 1_000).await;
    assert!(lines > 1_000, "{lines}");
    let started = std::time::Instant::now();
    let answer = expect_status(run(&app, yesterday, Some("ops-a")).await, StatusCode::OK).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Every line read (the day's bill, not the neighbours'), and nothing differs.
    assert_eq!(answer["data"]["billLines"], json!(lines), "{answer}");
    assert_eq!(answer["data"]["differences"], json!(0), "{answer}");
    assert_eq!(answer["data"]["applied"], json!(0), "{answer}");
    let data = report(&app, yesterday).await;
    assert_eq!(data["run"]["status"], json!("DONE"));
    assert_eq!(data["differences"], json!([]));

    // The same day with one line dropped at the gateway is no longer clean: the comparison
    // above could have failed.
    app.sandbox_faults(Some("SEED900003"), json!({ "bill_line": "drop" }))
        .await;
    let answer = expect_status(run(&app, yesterday, Some("ops-a")).await, StatusCode::OK).await;
    assert_eq!(answer["data"]["billLines"], json!(lines - 2), "{answer}");
    let data = report(&app, yesterday).await;
    let kinds: Vec<&str> = data["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["NOT_IN_BILL", "REFUND_NOT_IN_BILL", "TOTALS_MISMATCH"],
        "{data}"
    );
}

/// Two nodes waking at RECONCILE_AT: the second's claim of the date fails and it skips; an
/// operator may redo a finished date, never one in progress. Without a bill URL the endpoint
/// says so instead of pretending to run.
async fn a_date_is_run_by_one_node(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = UnixMillis(Utc::now().timestamp_millis());
    let date = "2024-06-01";
    assert!(app
        .db
        .claim_reconciliation(date, "daily", false, now)
        .await
        .unwrap());
    assert!(!app
        .db
        .claim_reconciliation(date, "daily", false, now)
        .await
        .unwrap());
    assert!(!app
        .db
        .claim_reconciliation(date, "ops", true, now)
        .await
        .unwrap());
    app.db
        .finish_reconciliation(date, Ok((10, 0)), now)
        .await
        .unwrap();
    assert!(!app
        .db
        .claim_reconciliation(date, "daily", false, now)
        .await
        .unwrap());
    assert!(app
        .db
        .claim_reconciliation(date, "ops", true, now)
        .await
        .unwrap());
    let run = app.db.reconciliation_run(date).await.unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.trigger_by.as_str()),
        ("RUNNING", "ops")
    );

    expect_error(
        run_date(&app, "2024-06-02").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "WALLYT_NOT_CONFIGURED",
    )
    .await;
    expect_error(
        run_date(&app, "2024-13-01").await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
}

async fn run_date(app: &TestApp, date: &str) -> Response {
    app.client
        .post(app.url(&format!("/admin/reconciliation/{date}/run")))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Operator", "ops-a")
        .send()
        .await
        .expect("POST")
}
