//! `status`: GET /payments/status/{id} over C keep-alive connections for a fixed time, round
//! robin over the confirmed orders of one buyer. The requests go over a minimal HTTP/1.1
//! client (a request written, a response read by its Content-Length): the generator shares
//! the machine's cores with the server, so it should spend as little of them as it can.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Harness;
use crate::notify::{prepare, send_all};
use crate::plan::{Outcome, Sizes};
use crate::stats::Summary;
use crate::verify::Checker;

pub async fn status(h: &Harness, sizes: &Sizes) -> Outcome {
    let p = prepare(h, "status", sizes.status_orders, sizes.concurrency).await;
    send_all(h, &p, "setup: POST notify", sizes.concurrency)
        .await
        .print();
    let checker = Checker::connect(&h.database_url).await;
    checker
        .all_confirmed_once(p.ticket_type, sizes.status_orders)
        .await;
    checker.close().await;
    let duration = Duration::from_secs_f64(sizes.status_secs);
    let started = Instant::now();
    let connections = (0..sizes.status_connections).map(|c| {
        let orders = p.orders.clone();
        let (port, token) = (h.port, p.buyer.token.clone());
        tokio::spawn(async move { connection(port, &token, &orders, c, started + duration).await })
    });
    let mut latencies = Vec::new();
    for c in futures_util::future::join_all(connections).await {
        latencies.extend(c.expect("status connection"));
    }
    let elapsed = started.elapsed();
    let name = format!("GET status ({} conns)", sizes.status_connections);
    let summary = Summary::new(&name, latencies, elapsed);
    summary.print();
    println!("  verified: every answer 200, CONFIRMED, PAID");
    Outcome::of("status", &summary)
}

/// One keep-alive connection asking until `until`; answers each request's latency.
async fn connection(
    port: u16,
    token: &str,
    orders: &[i64],
    first: usize,
    until: Instant,
) -> Vec<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut latencies = Vec::new();
    let mut buffer = Vec::with_capacity(4096);
    let mut next = first;
    while Instant::now() < until {
        let order = orders[next % orders.len()];
        next += 7;
        let request = format!(
            "GET /payments/status/{order} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        let sent = Instant::now();
        stream.write_all(request.as_bytes()).await.expect("write");
        let (head, body) = read_response(&mut stream, &mut buffer).await;
        latencies.push(sent.elapsed());
        assert!(head.starts_with("HTTP/1.1 200"), "status answered {head}");
        assert!(
            body.contains("\"status\":\"CONFIRMED\"")
                && body.contains("\"paymentStatus\":\"PAID\""),
            "order {order}: {body}"
        );
    }
    latencies
}

/// Reads one response: the head up to the blank line, then Content-Length bytes of body.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> (String, String) {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await;
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    buffer.drain(..head_end + length);
    (head, body)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let read = stream.read(&mut chunk).await.expect("read");
    assert!(read > 0, "the server closed a keep-alive connection");
    buffer.extend_from_slice(&chunk[..read]);
}
