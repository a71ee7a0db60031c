//! The status read's own connections (`DATABASE_READ_CONNECTIONS`, PostgreSQL): they go back
//! unpinged, so a connection the database dropped meanwhile must not turn into an error for
//! the buyer polling; and what they answer is the last commit, with no cache in between.

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_poll_survives_the_database_dropping_its_connections,
    a_poll_sees_the_commit_before_it,
);

const KILL_READS: &str = "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
     WHERE application_name = 'wallyt-pay-reads' AND datname = current_database()";

async fn a_poll_survives_the_database_dropping_its_connections(backend: Backend) {
    // SQLite reads through its pool; there is no connection of its own to lose.
    if matches!(backend, Backend::Sqlite) {
        return;
    }
    let Some(app) = TestApp::spawn_with(backend, |vars| {
        vars.insert("DATABASE_READ_CONNECTIONS".into(), "2".into());
    })
    .await
    else {
        return;
    };
    let tt = app.create_ticket_type("Reads", "10.00", 5).await["id"].clone();
    let (token, _, _) = app.login("oReads").await;
    let order = app.order_of(&token, &tt, 1).await["id"].clone();
    // Two polls at once open both connections.
    let (a, b) = tokio::join!(app.status(&token, &order), app.status(&token, &order));
    assert_eq!(
        (&a["status"], &b["status"]),
        (&json!("PENDING"), &json!("PENDING"))
    );

    for round in 0..3 {
        let killed = app.count(KILL_READS).await;
        assert!(killed >= 1, "round {round}: no read connection to kill");
        // The next polls land on dead connections: each is retried on a fresh one.
        let (a, b) = tokio::join!(app.status(&token, &order), app.status(&token, &order));
        assert_eq!(a["status"], json!("PENDING"), "round {round}");
        assert_eq!(b["status"], json!("PENDING"), "round {round}");
    }
}

async fn a_poll_sees_the_commit_before_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let tt = app.create_ticket_type("Fresh", "10.00", 50).await["id"].clone();
    let (token, _, _) = app.login("oFresh").await;
    // Each order is polled PENDING (warming whatever could cache it), then cancelled by a
    // committed write, then polled again at once: the poll shows the write.
    for _ in 0..10 {
        let order = app.order_of(&token, &tt, 1).await["id"].clone();
        assert_eq!(app.status(&token, &order).await["status"], json!("PENDING"));
        let sql = format!("UPDATE orders SET status = 'CANCELLED', cancel_reason = 'EXPIRED', cancelled_at = 1 WHERE id = {order}");
        sqlx::query(&sql)
            .execute(app.db.pool())
            .await
            .expect("cancel");
        assert_eq!(
            app.status(&token, &order).await["status"],
            json!("CANCELLED")
        );
    }
}
