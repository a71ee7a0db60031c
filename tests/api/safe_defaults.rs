//! Safe defaults over real HTTP: the sandbox's controls answer loopback peers only, decided by
//! the TCP peer address whatever `X-Forwarded-For` says.

use reqwest::StatusCode;
use serde_json::json;
use std::net::{IpAddr, UdpSocket};

use crate::helpers::{expect_error, expect_status, Backend, TestApp};

/// An address of this machine that is not loopback (the one it would use towards a network),
/// if it has one. A UDP "connect" sends nothing; it only picks the route.
fn non_loopback_local_ip() -> Option<IpAddr> {
    [
        "192.0.2.1:9",
        "10.0.0.1:9",
        "172.16.0.1:9",
        "192.168.0.1:9",
        "8.8.8.8:53",
    ]
    .iter()
    .find_map(|target| {
        let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.connect(target).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    })
}

#[tokio::test]
async fn sandbox_controls_refuse_peers_that_are_not_loopback() {
    let Some(ip) = non_loopback_local_ip() else {
        // The guard's unit test (src/sandbox/loopback.rs) still covers the rule.
        eprintln!("no non-loopback interface on this machine: case did not run");
        return;
    };
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("HTTP_ADDR".into(), format!("{ip}:0"));
    })
    .await
    .unwrap();
    assert!(app.address.contains(&ip.to_string()), "{}", app.address);
    // The server itself answers on that interface...
    expect_status(app.get("/healthz").await, StatusCode::OK).await;
    // ...but not the controls, even to a client claiming to be local.
    let client = &app.client;
    let requests = [
        client.get(app.url("/sandbox/trades")),
        client.get(app.url("/sandbox/trades/MP1_1")),
        client.post(app.url("/sandbox/trades/MP1_1/pay")),
        client.post(app.url("/sandbox/trades/MP1_1/close")),
        client.post(app.url("/sandbox/trades/MP1_1/notify")),
        client
            .put(app.url("/sandbox/trades/MP1_1/faults"))
            .json(&json!({})),
        client.get(app.url("/sandbox/faults")),
        client
            .put(app.url("/sandbox/faults"))
            .json(&json!({ "gateway_5xx": 3 })),
        client.delete(app.url("/sandbox/faults")),
    ];
    for request in requests {
        let response = request
            .header("X-Forwarded-For", "127.0.0.1")
            .header("Forwarded", "for=127.0.0.1")
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    let faults = app
        .sandbox
        .as_ref()
        .unwrap()
        .with_state(|s| s.global_faults.clone());
    assert_eq!(
        faults,
        Default::default(),
        "the refused PUT changed nothing"
    );
}
