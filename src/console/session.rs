//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie, mapped in this node's
//! memory to the operator's name, the session's CSRF token and its expiry.
//!
//! In memory rather than a cookie signed with a key derived from the admin token: signing out
//! really ends the session (a copied cookie is dead after sign-out), and the cookie carries
//! nothing but an unguessable id. The cost: a restart signs everyone out, and with several
//! nodes the load balancer must keep an operator on one node (sticky sessions) — an operator
//! on another node is asked to sign in again, never let in.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "console_session";
/// A working day: after it the operator signs in again.
const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// More live sessions than any operations team has; beyond it the oldest go first.
const MAX_SESSIONS: usize = 1000;

#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub operator: String,
    /// Every form of this session carries it; every POST must (see `csrf`).
    pub csrf: String,
    expires: Instant,
}

pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    /// `Secure` on the cookie: production is served over TLS, tests and development are not.
    secure: bool,
}

/// 32 random bytes as hex: session ids, CSRF tokens and form idempotency keys.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    pub fn new(secure: bool) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            secure,
        }
    }

    pub fn start(&self, operator: String) -> Session {
        let session = Session {
            id: random_token(),
            operator,
            csrf: random_token(),
            expires: Instant::now() + LIFETIME,
        };
        let mut live = self.live.lock().expect("session map");
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live
                .values()
                .min_by_key(|s| s.expires)
                .map(|s| s.id.clone())
            {
                live.remove(&oldest);
            }
        }
        live.insert(session.id.clone(), session.clone());
        session
    }

    /// The request's live session, if its cookie names one.
    pub fn of(&self, req: &HttpRequest) -> Option<Session> {
        let id = req.cookie(COOKIE)?;
        let live = self.live.lock().expect("session map");
        live.get(id.value())
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    pub fn end(&self, id: &str) {
        self.live.lock().expect("session map").remove(id);
    }

    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        self.base(session.id.clone())
            .max_age(time::Duration::seconds(LIFETIME.as_secs() as i64))
            .finish()
    }

    /// A cookie that makes the browser forget the session.
    pub fn removal(&self) -> Cookie<'static> {
        self.base(String::new())
            .max_age(time::Duration::ZERO)
            .finish()
    }

    fn base(&self, value: String) -> actix_web::cookie::CookieBuilder<'static> {
        Cookie::build(COOKIE, value)
            .path("/console")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
    }
}
