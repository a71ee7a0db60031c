//! WeChat's `jscode2session`: turns a mini-program login code into the user's openid.
//! The answer also carries `session_key`, which we neither return nor log: it would let anyone
//! decrypt the user's WeChat data.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::WechatSettings;
use crate::gateway::body::{read_capped, ReadError};

/// A `jscode2session` answer is a few hundred bytes; anything near this is not WeChat.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub struct WechatSession {
    pub openid: String,
    pub unionid: Option<String>,
    #[allow(dead_code)] // kept typed and redacted; no endpoint needs it yet
    session_key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// WeChat refused the code (40029 invalid code, 40163 code used, 45011 rate limit, ...).
    #[error("WeChat rejected the login code (errcode {errcode})")]
    Rejected { errcode: i64, errmsg: String },
    #[error("WeChat login is not configured")]
    NotConfigured,
    #[error("WeChat did not answer in time")]
    Timeout,
    #[error("WeChat could not be reached: {0}")]
    Unreachable(String),
    #[error("WeChat answered something unreadable: {0}")]
    Garbage(String),
}

#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    endpoint: String,
    credentials: Option<(String, SecretString)>,
}

/// The union of WeChat's two answer shapes.
#[derive(Deserialize)]
struct Reply {
    openid: Option<String>,
    unionid: Option<String>,
    session_key: Option<String>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl WechatClient {
    pub fn new(settings: &WechatSettings, http: reqwest::Client) -> WechatClient {
        WechatClient {
            http,
            endpoint: format!("{}/sns/jscode2session", settings.api_base),
            credentials: settings.credentials.clone(),
        }
    }

    #[tracing::instrument(name = "wechat.jscode2session", skip_all)]
    pub async fn code_to_session(&self, code: &str) -> Result<WechatSession, WechatError> {
        let (appid, secret) = self
            .credentials
            .as_ref()
            .ok_or(WechatError::NotConfigured)?;
        let response = self
            .http
            .get(&self.endpoint)
            .query(&[
                ("appid", appid.as_str()),
                ("secret", secret.expose_secret()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(WechatError::Unreachable(format!("HTTP {status}")));
        }
        // WeChat answers JSON with a text/plain content type, so read bytes and parse them.
        let body = match read_capped(response, MAX_REPLY_BYTES).await {
            Ok(body) => body,
            Err(ReadError::TooLarge { limit }) => {
                return Err(WechatError::Garbage(format!(
                    "reply larger than {limit} bytes"
                )))
            }
            Err(ReadError::Transport(error)) => return Err(transport_error(error)),
        };
        let reply: Reply = serde_json::from_slice(&body)
            .map_err(|e| WechatError::Garbage(format!("not JSON: {e}")))?;
        if reply.errcode != 0 {
            return Err(WechatError::Rejected {
                errcode: reply.errcode,
                errmsg: reply.errmsg,
            });
        }
        match (reply.openid, reply.session_key) {
            (Some(openid), Some(session_key)) if valid_openid(&openid) => Ok(WechatSession {
                openid,
                unionid: reply.unionid.filter(|u| !u.is_empty()),
                session_key: SecretString::from(session_key),
            }),
            _ => Err(WechatError::Garbage(
                "no usable openid in the answer".into(),
            )),
        }
    }
}

fn valid_openid(openid: &str) -> bool {
    (1..=128).contains(&openid.len())
        && openid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// reqwest's errors print the URL, and this URL carries the app secret: strip it.
fn transport_error(error: reqwest::Error) -> WechatError {
    if error.is_timeout() {
        WechatError::Timeout
    } else {
        WechatError::Unreachable(error.without_url().to_string())
    }
}
