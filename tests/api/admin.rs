//! The operations API (issue 12) over real HTTP: the order search and its cursor, an order's
//! timeline, sync, replay, the attention list, the CSV export, and the audit of actions.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::shop::{paid_purchase, Purchase};

on_both_backends!(
    the_search_filters_and_pages_newest_first,
    the_timeline_of_a_paid_then_refunded_order_is_in_order,
    sync_applies_a_payment_whose_notify_was_dropped,
    attention_lists_a_refund_in_change,
);

impl TestApp {
    async fn admin_get(&self, path: &str) -> Response {
        self.get_with_token(path, ADMIN_TOKEN).await
    }

    async fn admin_data(&self, path: &str) -> Value {
        expect_status(self.admin_get(path).await, StatusCode::OK).await["data"].clone()
    }

    /// An action as operator `who` (none: no X-Operator), with an optional Idempotency-Key.
    async fn admin_post(
        &self,
        path: &str,
        who: Option<&str>,
        key: Option<&str>,
        body: Value,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("X-Request-Id", "req-admin-test")
            .json(&body);
        if let Some(who) = who {
            request = request.header("X-Operator", who);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST")
    }

    async fn audit_rows(&self, operator: &str, action: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM admin_audit WHERE operator = $1 AND action = $2 \
             AND request_id = 'req-admin-test' AND client_ip = '127.0.0.1'",
        )
        .bind(operator)
        .bind(action)
        .fetch_one(self.db.pool())
        .await
        .expect("audit count")
    }
}

fn ids(page: &Value) -> Vec<i64> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect()
}

/// Today and yesterday as days of Asia/Shanghai (the default CONSOLE_TZ).
fn shanghai_days() -> (String, String) {
    let zone = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let yesterday = today.pred_opt().unwrap();
    (
        today.format("%Y-%m-%d").to_string(),
        yesterday.format("%Y-%m-%d").to_string(),
    )
}

async fn the_search_filters_and_pages_newest_first(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    // One paid order of a buyer, three pending ones of another, of a ticket with a Chinese
    // name (the CSV must carry it readably).
    let (paid, otn) = paid_purchase(&app, 10, 1).await;
    let (token, openid, _) = app.login("oPendingBuyer").await;
    let student = app.create_ticket_type("学生票", "25.50", 10).await["id"].clone();
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(
            app.order_of(&token, &student, 2).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let paid_id = paid.order.as_i64().unwrap();

    expect_error(
        app.get("/admin/orders").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // Newest first, two at a time, to the end.
    let first = app.admin_data("/admin/orders?limit=2").await;
    assert_eq!(ids(&first), vec![pending[2], pending[1]]);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = app
        .admin_data(&format!("/admin/orders?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), vec![pending[0], paid_id]);
    assert!(second["nextCursor"].is_null(), "{second}");
    assert_eq!(first["orders"][0]["openid"], json!(openid));
    assert!(first["orders"][0]["createdAt"]
        .as_str()
        .unwrap()
        .ends_with("+08:00"));

    // Each filter finds the paid order alone.
    let confirmed = app.admin_data("/admin/orders?status=CONFIRMED").await;
    assert_eq!(ids(&confirmed), vec![paid_id]);
    let by_openid = app
        .admin_data(&format!("/admin/orders?openid={}", paid.openid))
        .await;
    assert_eq!(ids(&by_openid), vec![paid_id]);
    let by_trade = app
        .admin_data(&format!("/admin/orders?outTradeNo={otn}"))
        .await;
    assert_eq!(ids(&by_trade), vec![paid_id]);
    let transaction = by_trade["orders"][0]["transactionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_transaction = app
        .admin_data(&format!("/admin/orders?transactionId={transaction}"))
        .await;
    assert_eq!(ids(&by_transaction), vec![paid_id]);
    assert_eq!(
        ids(&app.admin_data("/admin/orders?outRefundNo=nothing").await),
        Vec::<i64>::new()
    );

    // Dates are days of the console's zone on the creation time.
    let (today, yesterday) = shanghai_days();
    let from_today = app
        .admin_data(&format!("/admin/orders?from={today}&to={today}"))
        .await;
    assert_eq!(ids(&from_today).len(), 4);
    let until_yesterday = app
        .admin_data(&format!("/admin/orders?to={yesterday}"))
        .await;
    assert!(ids(&until_yesterday).is_empty());

    for bad in [
        "limit=0",
        "limit=101",
        "cursor=forged",
        "from=2024-13-01",
        "status=LOST",
    ] {
        expect_error(
            app.admin_get(&format!("/admin/orders?{bad}")).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        )
        .await;
    }

    // The same search as CSV: BOM, the documented header, yuan, the Chinese name.
    let response = app
        .admin_get(&format!("/admin/orders.csv?openid={openid}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte order mark");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "order_id,created_at,status,cancel_reason,openid,items,total_yuan,refunded_yuan,\
         out_trade_no,transaction_id,paid_at"
    );
    assert_eq!(lines.len(), 4, "{text}");
    let newest: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(newest[0], pending[2].to_string());
    assert_eq!(newest[2], "PENDING");
    assert_eq!(newest[5], "学生票×2@25.50");
    assert_eq!((newest[6], newest[7]), ("51.00", "0.00"));
    assert!(newest[1].starts_with(&today), "{}", lines[1]);
    expect_error(
        app.get("/admin/orders.csv").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

fn kinds(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn position(kinds: &[String], kind: &str) -> usize {
    kinds
        .iter()
        .position(|k| k == kind)
        .unwrap_or_else(|| panic!("no {kind} in {kinds:?}"))
}

async fn the_timeline_of_a_paid_then_refunded_order_is_in_order(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    let order = app.order(&p.token, &p.order).await;
    let first_ticket = order["tickets"][0]["id"].as_i64().unwrap();
    let second_ticket = order["tickets"][1]["id"].as_i64().unwrap();
    // The buyer gives back one ticket; an operator refunds the other.
    let buyer = expect_status(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "ticketIds": [first_ticket] }),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(buyer["data"]["status"], json!("SUCCESS"));
    let path = format!("/admin/orders/{}/refunds", p.order);
    let body = json!({ "reason": "event moved", "ticketIds": [second_ticket] });
    expect_error(
        app.admin_post(&path, None, None, body.clone()).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    let operator = expect_status(
        app.admin_post(&path, Some("李雷"), None, body).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(operator["data"]["status"], json!("SUCCESS"));
    assert_eq!(app.audit_rows("李雷", "refund").await, 1);

    let detail = app.admin_data(&format!("/admin/orders/{}", p.order)).await;
    assert_eq!(detail["status"], json!("CANCELLED"));
    assert_eq!(detail["openid"], json!(p.openid));
    assert_eq!(detail["payments"][0]["outTradeNo"], json!(otn));
    let refunds = detail["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0]["ticketIds"], json!([first_ticket]));
    assert!(refunds[0]["operator"].is_null());
    assert_eq!(refunds[1]["operator"], json!("李雷"));
    assert_eq!(refunds[1]["ticketIds"], json!([second_ticket]));
    assert_eq!(refunds[1]["amount"], json!(50.00));

    let timeline = &detail["timeline"];
    let kinds = kinds(timeline);
    let order_of = [
        "order.created",
        "payment.created",
        "notify.received",
        "notify.apply",
        "notify.verdict",
        "refund.requested",
        "refund.outcome",
        "order.cancelled",
    ];
    let positions: Vec<usize> = order_of.iter().map(|k| position(&kinds, k)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {kinds:?}"
    );
    let entries = timeline.as_array().unwrap();
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.iter().all(|t| t.ends_with("+08:00")), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let applied = &entries[position(&kinds, "notify.apply")];
    assert_eq!(applied["verdict"], json!("confirmed"));
    let outcomes: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == json!("refund.outcome"))
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|e| e["verdict"] == json!("succeeded")));
    let asked: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == json!("refund.requested"))
        .collect();
    assert_eq!(asked[1]["operator"], json!("李雷"));
    assert_eq!(asked[1]["amount"], json!(50.00));
    assert_eq!(asked[1]["detail"], json!("event moved"));

    expect_error(
        app.admin_get("/admin/orders/999999").await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
    expect_error(
        app.get(&format!("/admin/orders/{}", p.order)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

async fn sync_applies_a_payment_whose_notify_was_dropped(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let p: Purchase = crate::shop::purchase(&app, 5, 1).await;
    app.sandbox_faults(None, json!({ "notify_drop": true }))
        .await;
    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    assert!(app.sandbox_pay(&otn).await.status().is_success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let path = format!("/admin/orders/{}", p.order);
    assert_eq!(app.admin_data(&path).await["status"], json!("PENDING"));

    let sync = format!("{path}/sync");
    expect_error(
        app.admin_post(&sync, None, None, json!({})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(app.sandbox_trade(&otn).await["query_calls"], json!(0));

    let first = app
        .admin_post(&sync, Some("ops-a"), Some("sync-1"), json!({}))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = first.text().await.unwrap();
    let answer: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        answer["data"]["orderStatus"],
        json!("CONFIRMED"),
        "{answer}"
    );
    assert_eq!(answer["data"]["trades"][0]["outTradeNo"], json!(otn));
    assert_eq!(answer["data"]["trades"][0]["gatewayStatus"], json!("PAID"));
    assert_eq!(answer["data"]["trades"][0]["applied"], json!(true));
    assert_eq!(app.admin_data(&path).await["status"], json!("CONFIRMED"));

    // A double click answers the first click's answer without asking the gateway again.
    let again = app
        .admin_post(&sync, Some("ops-a"), Some("sync-1"), json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.text().await.unwrap(), first);
    assert_eq!(app.sandbox_trade(&otn).await["query_calls"], json!(1));
    // Both clicks are on record; only one ran.
    assert_eq!(app.audit_rows("ops-a", "sync").await, 2);

    let timeline = app.admin_data(&path).await["timeline"].clone();
    let kinds = kinds(&timeline);
    assert!(position(&kinds, "query.apply") < position(&kinds, "sync.query"));
    assert!(!kinds.contains(&"notify.received".to_owned()), "{kinds:?}");

    expect_error(
        app.admin_post("/admin/orders/999999/sync", Some("ops-a"), None, json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn replaying_a_stored_notify_answers_duplicate() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let (p, _) = paid_purchase(&app, 5, 1).await;
    let path = format!("/admin/orders/{}", p.order);
    let timeline = app.admin_data(&path).await["timeline"].clone();
    let entries = timeline.as_array().unwrap();
    let event_of = |kind: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == json!(kind))
            .unwrap_or_else(|| panic!("no {kind}: {timeline}"))["eventId"]
            .as_i64()
            .unwrap()
    };
    let notify = event_of("notify.received");
    let verdict = event_of("notify.verdict");

    let replay = format!("/admin/events/{notify}/replay");
    expect_error(
        app.admin_post(&replay, None, None, json!({})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    let answer = expect_status(
        app.admin_post(&replay, Some("ops-b"), None, json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["data"]["verdict"], json!("duplicate"), "{answer}");
    assert_eq!(answer["data"]["orderId"], p.order);
    assert_eq!(app.audit_rows("ops-b", "replay").await, 1);
    // The replay's verdict joins the timeline; the order is unchanged.
    let detail = app.admin_data(&path).await;
    assert_eq!(detail["status"], json!("CONFIRMED"));
    assert_eq!(detail["tickets"].as_array().unwrap().len(), 1);
    let verdicts: Vec<&Value> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == json!("notify.verdict"))
        .map(|e| &e["verdict"])
        .collect();
    assert_eq!(verdicts, vec![&json!("confirmed"), &json!("duplicate")]);

    // Only a stored notify can be replayed.
    expect_error(
        app.admin_post(
            &format!("/admin/events/{verdict}/replay"),
            Some("ops-b"),
            None,
            json!({}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        app.admin_post(
            "/admin/events/999999/replay",
            Some("ops-b"),
            None,
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let unauthenticated = app
        .client
        .post(app.url(&replay))
        .header("X-Operator", "ops-b")
        .send()
        .await
        .unwrap();
    expect_error(unauthenticated, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

async fn attention_lists_a_refund_in_change(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = paid_purchase(&app, 10, 1).await;
    let before = app.admin_data("/admin/attention").await;
    assert_eq!(before, json!([]));
    app.sandbox_faults(Some(&otn), json!({ "refund_outcome": "CHANGE" }))
        .await;
    expect_error(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::BAD_GATEWAY,
        "GATEWAY_ERROR",
    )
    .await;
    let attention = app.admin_data("/admin/attention").await;
    let items = attention.as_array().unwrap();
    assert_eq!(items.len(), 1, "{attention}");
    assert_eq!(items[0]["kind"], json!("REFUND_NOT_DELIVERED"));
    assert_eq!(items[0]["status"], json!("CHANGE"));
    assert_eq!(items[0]["orderId"], p.order);
    assert_eq!(items[0]["amount"], json!(50.00));
    expect_error(
        app.get("/admin/attention").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}
