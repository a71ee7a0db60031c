//! The login token: HS256 only, with an expiry. `jsonwebtoken` refuses any algorithm not in
//! the validation's list, which is what shuts out `alg: none` and RS/HS confusion.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use wallyt_pay_actors::UnixMillis;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Our user id, as a string (JWT's `sub`).
    pub sub: String,
    pub uid: i64,
    pub openid: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

impl JwtKeys {
    pub fn new(secret: &SecretString, ttl: Duration) -> JwtKeys {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl,
        }
    }

    /// Issues a token for the user; answers it with its expiry.
    pub fn issue(&self, user_id: i64, openid: &str, now: UnixMillis) -> (String, UnixMillis) {
        let expires = now.plus(self.ttl);
        let claims = Claims {
            sub: user_id.to_string(),
            uid: user_id,
            openid: openid.to_owned(),
            iat: now.0 / 1000,
            exp: expires.0 / 1000,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, UnixMillis(claims.exp * 1000))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        if data.claims.sub != data.claims.uid.to_string() {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wallyt_pay_actors::{Clock, SystemClock};

    fn keys() -> JwtKeys {
        JwtKeys::new(&SecretString::from("s".repeat(32)), Duration::from_secs(60))
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_user() {
        let (token, _) = keys().issue(7, "o-abc", SystemClock.now());
        let claims = keys().verify(&token).unwrap();
        assert_eq!((claims.uid, claims.openid.as_str()), (7, "o-abc"));
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let old = UnixMillis(SystemClock.now().0 - 3_600_000);
        let (token, _) = keys().issue(7, "o-abc", old);
        assert!(matches!(keys().verify(&token), Err(TokenError::Expired)));
        let other = JwtKeys::new(&SecretString::from("t".repeat(32)), Duration::from_secs(60));
        let (token, _) = other.issue(7, "o-abc", SystemClock.now());
        assert!(matches!(keys().verify(&token), Err(TokenError::Invalid)));
    }
}
