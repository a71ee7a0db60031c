//! A mini-program user. WeChat identifies them by `openid` (per mini-program); our own id is
//! what tokens and orders carry.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub openid: String,
    pub unionid: Option<String>,
}
