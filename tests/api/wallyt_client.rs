//! The Wallyt client against an HTTP stand-in with exact call counts: retries only where the
//! protocol allows them, the circuit breaker, and the sorting of replies into typed errors.

use secrecy::SecretString;
use std::time::Duration;
use wallyt_pay::config::OutboundHttp;
use wallyt_pay::gateway::http_client;
use wallyt_pay::gateway::wallyt::refund::RefundRequest;
use wallyt_pay::gateway::wallyt::sign::{sign, KeyedHash, SignKeys};
use wallyt_pay::gateway::wallyt::xml::encode;
use wallyt_pay::gateway::wallyt::{ClientPolicy, Fields, GatewayError, WallytClient, WallytConfig};
use wallyt_pay_actors::Fen;
use wiremock::matchers::{body_string_contains, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "client-test-key";

async fn client(server: &MockServer, policy: ClientPolicy) -> WallytClient {
    WallytClient::new(
        WallytConfig {
            api_url: format!("{}/pay/gateway", server.uri()),
            mch_id: "7551000001".into(),
            keys: SignKeys::Md5(SecretString::from(KEY)),
        },
        http_client(&OutboundHttp {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_millis(300),
        }),
        policy,
        None,
    )
}

fn policy() -> ClientPolicy {
    ClientPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        breaker_threshold: 100,
        breaker_cooldown: Duration::from_millis(200),
    }
}

/// A signed success reply with these business fields.
fn signed_reply(fields: &[(&str, &str)]) -> String {
    let mut reply: Fields = fields.iter().map(|(k, v)| (*k, *v)).collect();
    reply
        .set("status", "0")
        .set("result_code", "0")
        .set("mch_id", "7551000001")
        .set("sign_type", "MD5")
        .set("nonce_str", "n");
    let signature = sign(&reply, KeyedHash::Md5, &SecretString::from(KEY));
    encode(&reply.with("sign", signature))
}

fn refund_request() -> RefundRequest<'static> {
    RefundRequest {
        out_trade_no: "MP1_1717214712000",
        out_refund_no: "RF1_1717214712000",
        total_fee: Fen::new(100),
        refund_fee: Fen::new(100),
    }
}

#[tokio::test]
async fn queries_are_retried_on_gateway_faults() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(3)
        .mount(&server)
        .await;
    let result = client(&server, policy())
        .await
        .query("MP1_1717214712000")
        .await;
    assert!(
        matches!(result, Err(GatewayError::Transport(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_retried_close_succeeds_after_garbage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>busy</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("unified.trade.close"))
        .and(header("content-type", "text/xml; charset=UTF-8"))
        .respond_with(ResponseTemplate::new(200).set_body_string(signed_reply(&[])))
        .expect(1)
        .mount(&server)
        .await;
    client(&server, policy())
        .await
        .close("MP1_1717214712000")
        .await
        .unwrap();
}

#[tokio::test]
async fn jspay_is_never_resent_by_the_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let now = wallyt_pay_actors::UnixMillis(1_717_214_712_000);
    let result = client(&server, policy())
        .await
        .jspay(&wallyt_pay::gateway::wallyt::jspay::JspayRequest {
            out_trade_no: "MP1_1717214712000",
            body: "VIP",
            total_fee: Fen::new(100),
            mch_create_ip: "127.0.0.1",
            sub_appid: "wx1",
            sub_openid: "o1",
            notify_url: "https://example.com/notify",
            attach: None,
            time_start: now,
            time_expire: now.plus(Duration::from_secs(300)),
        })
        .await;
    assert!(matches!(result, Err(GatewayError::Transport(_))));
}

#[tokio::test]
async fn a_refund_that_times_out_is_not_resent_and_reports_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(signed_reply(&[("out_refund_no", "RF1_1717214712000")]))
                .set_delay(Duration::from_millis(800)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let result = client(&server, policy())
        .await
        .refund(&refund_request())
        .await;
    assert_eq!(result.unwrap_err(), GatewayError::Timeout);
    assert!(GatewayError::Timeout.outcome_unknown());
}

/// What a reply must turn into.
type Expectation = fn(&GatewayError) -> bool;

#[tokio::test]
async fn replies_are_sorted_into_refused_business_bad_signature_and_garbage() {
    let server = MockServer::start().await;
    let c = client(&server, policy()).await;
    let cases: Vec<(String, Expectation)> = vec![
        (
            "<xml><status>400</status><message>Signature error</message></xml>".into(),
            |e| matches!(e, GatewayError::Refused { status, message } if status == "400" && message == "Signature error"),
        ),
        (
            {
                let mut reply: Fields = [
                    ("status", "0"),
                    ("result_code", "1"),
                    ("err_code", "NOTENOUGH"),
                    ("err_msg", "余额不足"),
                ]
                .into_iter()
                .collect();
                let signature = sign(&reply, KeyedHash::Md5, &SecretString::from(KEY));
                reply.set("sign", signature);
                encode(&reply)
            },
            |e| matches!(e, GatewayError::Business { code, .. } if code == "NOTENOUGH"),
        ),
        (
            signed_reply(&[("out_refund_no", "RF1_1717214712000")])
                .replace("RF1_1717214712000", "RF1_1717214712001"),
            |e| matches!(e, GatewayError::BadSignature),
        ),
        ("not xml at all".into(), |e| {
            matches!(e, GatewayError::Garbage(_))
        }),
        (
            "<xml><status>0</status><result_code>0</result_code></xml>".into(),
            |e| matches!(e, GatewayError::BadSignature),
        ),
    ];
    for (body, expected) in cases {
        server.reset().await;
        // Refund is never retried, so each reply is seen exactly once.
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body.clone()))
            .expect(1)
            .mount(&server)
            .await;
        let error = c.refund(&refund_request()).await.unwrap_err();
        assert!(expected(&error), "{body} gave {error:?}");
        server.verify().await;
    }
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_faults_and_recovers_through_a_probe() {
    let server = MockServer::start().await;
    let c = client(
        &server,
        ClientPolicy {
            max_attempts: 1,
            breaker_threshold: 3,
            ..policy()
        },
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .with_priority(1)
        .expect(3)
        .mount(&server)
        .await;
    for _ in 0..3 {
        assert!(matches!(
            c.query("MP1_1717214712000").await,
            Err(GatewayError::Transport(_))
        ));
    }
    assert!(c.breaker_open());
    // Open: fail fast, no HTTP call at all.
    for _ in 0..5 {
        assert_eq!(
            c.query("MP1_1717214712000").await.unwrap_err(),
            GatewayError::CircuitOpen
        );
    }
    server.verify().await;

    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(signed_reply(&[("trade_state", "NOTPAY")])),
        )
        .expect(1)
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let probe = c.query("MP1_1717214712000").await.unwrap();
    assert_eq!(probe.trade_state.as_str(), "NOTPAY");
    assert!(!c.breaker_open());
}

#[tokio::test]
async fn requests_carry_the_common_fields_and_a_valid_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(signed_reply(&[("trade_state", "NOTPAY")])),
        )
        .expect(1)
        .mount(&server)
        .await;
    client(&server, policy())
        .await
        .query("MP1_1717214712000")
        .await
        .unwrap();
    let request = &server.received_requests().await.unwrap()[0];
    let fields = wallyt_pay::gateway::wallyt::xml::decode(&request.body).unwrap();
    for (name, value) in [
        ("service", "unified.trade.query"),
        ("version", "2.0"),
        ("charset", "UTF-8"),
        ("sign_type", "MD5"),
        ("mch_id", "7551000001"),
        ("out_trade_no", "MP1_1717214712000"),
    ] {
        assert_eq!(fields.get(name), Some(value), "{name}");
    }
    assert!(fields.get("nonce_str").is_some_and(|n| n.len() <= 32));
    assert!(wallyt_pay::gateway::wallyt::sign::verify(
        &fields,
        KeyedHash::Md5,
        &SecretString::from(KEY)
    ));
    assert!(
        !String::from_utf8_lossy(&request.body).contains(KEY),
        "the key never travels"
    );
}
