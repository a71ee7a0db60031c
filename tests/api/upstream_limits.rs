//! Upstream replies are read with a byte cap even when they are chunked (no Content-Length to
//! refuse up front): a stand-in streams an endless chunked body, and the clients must give up
//! at the cap, quickly, instead of reading until the timeout (or memory) runs out.

use secrecy::SecretString;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wallyt_pay::config::{OutboundHttp, WechatSettings};
use wallyt_pay::gateway::http_client;
use wallyt_pay::gateway::wallyt::sign::SignKeys;
use wallyt_pay::gateway::wallyt::{ClientPolicy, GatewayError, WallytClient, WallytConfig};
use wallyt_pay::gateway::wechat::{WechatClient, WechatError};

/// Serves every connection an endless chunked 200 body; answers its address.
async fn endless_chunked_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let start = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\
                             Transfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                let until = Instant::now() + Duration::from_secs(30);
                while Instant::now() < until {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return; // the client hung up: what the cap should make it do
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

fn outbound() -> OutboundHttp {
    // Long enough that a client without a cap would still be reading when the test looks.
    OutboundHttp {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn wallyt_replies_are_capped_even_when_chunked() {
    let base = endless_chunked_server().await;
    let client = WallytClient::new(
        WallytConfig {
            api_url: format!("{base}/pay/gateway"),
            mch_id: "7551000001".into(),
            keys: SignKeys::Md5(SecretString::from("cap-test-key")),
        },
        http_client(&outbound()),
        ClientPolicy {
            max_attempts: 1,
            ..ClientPolicy::default()
        },
        None,
    );
    let started = Instant::now();
    let error = client.query("MP1_1717214712000").await.unwrap_err();
    assert!(
        matches!(&error, GatewayError::Garbage(text) if text.contains("larger than")),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn wechat_replies_are_capped_even_when_chunked() {
    let base = endless_chunked_server().await;
    let client = WechatClient::new(
        &WechatSettings {
            api_base: base,
            credentials: Some(("wx1".into(), SecretString::from("s"))),
        },
        http_client(&outbound()),
    );
    let started = Instant::now();
    let error = client.code_to_session("code").await.unwrap_err();
    assert!(
        matches!(&error, WechatError::Garbage(text) if text.contains("larger than")),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
