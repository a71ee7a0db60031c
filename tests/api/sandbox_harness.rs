//! A standalone sandbox on port 0, our Wallyt client pointed at it, and a notify receiver.

use secrecy::SecretString;
use serde_json::Value;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use wallyt_pay::config::OutboundHttp;
use wallyt_pay::gateway::http_client;
use wallyt_pay::gateway::wallyt::jspay::{JspayReply, JspayRequest};
use wallyt_pay::gateway::wallyt::sign::{sign, KeyedHash, SignKeys};
use wallyt_pay::gateway::wallyt::xml::{decode, encode};
use wallyt_pay::gateway::wallyt::{ClientPolicy, Fields, GatewayError, WallytClient, WallytConfig};
use wallyt_pay::sandbox::{Sandbox, SandboxConfig};
use wallyt_pay_actors::{Clock, Fen, SystemClock};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const MCH_ID: &str = "7551000001";
pub const KEY: &str = "9d101c97133837e13dde2d32a5054abb";
/// The notify schedule runs at 1/100 speed: 15 s becomes 150 ms.
pub const SCALE: f64 = 0.01;

pub struct Harness {
    /// One instant for every prepay of the harness, so that a resend is byte-for-byte the same
    /// request (its times included).
    pub started: wallyt_pay_actors::UnixMillis,
    pub base: String,
    pub client: WallytClient,
    pub receiver: MockServer,
    pub http: reqwest::Client,
}

pub fn key() -> SecretString {
    SecretString::from(KEY)
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(ClientPolicy {
            backoff: Duration::from_millis(10),
            ..ClientPolicy::default()
        })
        .await
    }

    pub async fn start_with(policy: ClientPolicy) -> Harness {
        let sandbox = Sandbox::new(SandboxConfig {
            mch_id: MCH_ID.into(),
            key: key(),
            rsa: None,
            appid: "wxsandbox00000001".into(),
            app_secret: SecretString::from("sandbox-secret"),
            notify_time_scale: SCALE,
            notify_timeout: Duration::from_millis(300),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(sandbox.serve(listener).unwrap());
        let http = http_client(&OutboundHttp {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
        });
        let client = WallytClient::new(
            WallytConfig {
                api_url: format!("{base}/pay/gateway"),
                mch_id: MCH_ID.into(),
                keys: SignKeys::Md5(key()),
            },
            http.clone(),
            policy,
            None,
        );
        let receiver = MockServer::start().await;
        Harness {
            started: SystemClock.now(),
            base,
            client,
            receiver,
            http,
        }
    }

    pub fn notify_url(&self) -> String {
        format!("{}/notify", self.receiver.uri())
    }

    /// The merchant answers every notify with `answer`.
    pub async fn receiver_answers(&self, answer: &str) {
        Mock::given(method("POST"))
            .and(path("/notify"))
            .respond_with(ResponseTemplate::new(200).set_body_string(answer))
            .mount(&self.receiver)
            .await;
    }

    pub async fn prepay(&self, out_trade_no: &str, fee: i64) -> Result<JspayReply, GatewayError> {
        let now = self.started;
        let notify_url = self.notify_url();
        self.client
            .jspay(&JspayRequest {
                out_trade_no,
                body: "VIP 门票",
                total_fee: Fen::new(fee),
                mch_create_ip: "203.0.113.7",
                sub_appid: "wxsandbox00000001",
                sub_openid: "oUser",
                notify_url: &notify_url,
                attach: Some(r#"{"orderId":1,"userId":1}"#),
                time_start: now,
                time_expire: now.plus(Duration::from_secs(300)),
            })
            .await
    }

    pub async fn pay(&self, out_trade_no: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/sandbox/trades/{out_trade_no}/pay", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn trade(&self, out_trade_no: &str) -> Value {
        self.http
            .get(format!("{}/sandbox/trades/{out_trade_no}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn set_faults(&self, trade: Option<&str>, faults: Value) {
        let url = match trade {
            Some(no) => format!("{}/sandbox/trades/{no}/faults", self.base),
            None => format!("{}/sandbox/faults", self.base),
        };
        let response = self.http.put(url).json(&faults).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }

    /// Waits until the trade shows `count` notify attempts (copies included), or times out.
    pub async fn wait_for_attempts(
        &self,
        out_trade_no: &str,
        count: usize,
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let trade = self.trade(out_trade_no).await;
            let seen = trade["notify_attempts"].as_array().map_or(0, Vec::len);
            if seen >= count || Instant::now() > deadline {
                return trade;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends hand-made fields (signed with `key` unless `sign` is already set) and decodes
    /// the reply without any of the client's checks.
    pub async fn raw(&self, mut fields: Fields, key: &str) -> Fields {
        if !fields.contains("sign") {
            let signature = sign(&fields, KeyedHash::Md5, &SecretString::from(key.to_owned()));
            fields.set("sign", signature);
        }
        self.raw_body(encode(&fields).into_bytes()).await
    }

    pub async fn raw_body(&self, body: Vec<u8>) -> Fields {
        let reply = self
            .http
            .post(format!("{}/pay/gateway", self.base))
            .body(body)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        decode(&reply).unwrap()
    }
}

/// The common fields of a request, for hand-made messages.
pub fn common(service: &str) -> Fields {
    Fields::new()
        .with("service", service)
        .with("version", "2.0")
        .with("charset", "UTF-8")
        .with("sign_type", "MD5")
        .with("mch_id", MCH_ID)
        .with("nonce_str", "0123456789abcdef")
}
