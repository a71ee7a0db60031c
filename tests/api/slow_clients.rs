//! A slow-loris attack: many connections each send a request head, then trickle its body a
//! byte at a time. The server must keep answering everyone else, and cut each trickling
//! connection off at the body deadline. `cargo test --test api slow_clients -- --nocapture`
//! prints the numbers recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp};

const CONNECTIONS: usize = 1_000;
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
const TRICKLE_EVERY: Duration = Duration::from_millis(300);
/// After its 408 the server waits this long for the client to close first (a graceful close
/// lets the client read the answer), then drops the connection.
const DISCONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long past the deadline a close may take (scheduling on a loaded 2-core machine).
const SLACK: Duration = Duration::from_millis(500);

/// Sends a head announcing a 1,000-byte body, then one byte every `TRICKLE_EVERY` until the
/// server closes the connection. Answers how long after the head the server's answer (if any)
/// and the close came (`None`: the connection could not be made, or was never closed within
/// the test's patience).
async fn trickle(
    address: String,
    connected: tokio::sync::mpsc::Sender<()>,
) -> Option<(Option<Duration>, Duration)> {
    let mut socket = TcpStream::connect(&address).await.ok()?;
    let head = format!(
        "POST /auth/wechat/login HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    socket.write_all(head.as_bytes()).await.ok()?;
    let sent = Instant::now();
    let _ = connected.send(()).await;
    let mut ticker = tokio::time::interval(TRICKLE_EVERY);
    let mut buf = [0u8; 1024];
    let mut answered = None;
    let patience = sent + BODY_TIMEOUT * 5;
    loop {
        tokio::select! {
            read = socket.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some((answered, sent.elapsed())),
                Ok(_) => {
                    // the 408 answer; the close follows
                    answered.get_or_insert(sent.elapsed());
                }
            },
            _ = ticker.tick() => {
                if Instant::now() > patience {
                    return None;
                }
                if socket.write_all(b" ").await.is_err() {
                    return Some((answered, sent.elapsed()));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_neither_starves_others_nor_holds_its_connections() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("HTTP_REQUEST_BODY_TIMEOUT".into(), "2s".into());
        vars.insert("HTTP_REQUEST_HEAD_TIMEOUT".into(), "2s".into());
        vars.insert("HTTP_DISCONNECT_TIMEOUT".into(), "250ms".into());
    })
    .await
    .unwrap();
    let address = app.address.trim_start_matches("http://").to_owned();

    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel(CONNECTIONS);
    let mut attackers = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        attackers.push(tokio::spawn(trickle(address.clone(), connected_tx.clone())));
        // Batches of 100 keep the listen backlog from overflowing (a SYN retry costs 1 s).
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(connected_tx);
    for _ in 0..CONNECTIONS {
        connected_rx.recv().await.expect("every attacker connects");
    }

    // Every attacker is now trickling: a fresh client must still be answered promptly.
    let mut worst_healthz = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .get(app.url("/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("healthz answers during the attack");
        assert!(response.status().is_success());
        worst_healthz = worst_healthz.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut answers = Vec::with_capacity(CONNECTIONS);
    let mut closes = Vec::with_capacity(CONNECTIONS);
    for attacker in attackers {
        let (answered, closed) = attacker
            .await
            .unwrap()
            .expect("the server closed the connection");
        answers.push(answered.expect("the server answered 408 before closing"));
        closes.push(closed);
    }
    let range = |times: &[Duration]| {
        let min = times.iter().min().copied().unwrap();
        let max = times.iter().max().copied().unwrap();
        (min, max)
    };
    let (first_answer, last_answer) = range(&answers);
    let (first_close, last_close) = range(&closes);
    eprintln!(
        "slow loris, {CONNECTIONS} connections: worst /healthz {worst_healthz:?}; \
         408 after {first_answer:?} to {last_answer:?}; closed after {first_close:?} to \
         {last_close:?} (body timeout {BODY_TIMEOUT:?}, disconnect timeout \
         {DISCONNECT_TIMEOUT:?})"
    );
    assert!(
        worst_healthz < Duration::from_secs(1),
        "healthz took {worst_healthz:?} under the attack"
    );
    assert!(
        // The server's deadline starts when it has parsed the head, which may be a moment
        // before the client notes the head as sent.
        first_answer >= BODY_TIMEOUT - Duration::from_millis(100)
            && last_answer <= BODY_TIMEOUT + SLACK,
        "answers came after {first_answer:?} to {last_answer:?}"
    );
    assert!(
        last_close <= BODY_TIMEOUT + DISCONNECT_TIMEOUT + SLACK,
        "a trickling connection lived {last_close:?}"
    );
}
