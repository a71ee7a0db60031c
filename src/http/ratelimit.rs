//! Token-bucket rate limits, per node (governor's GCRA buckets, kept in memory): per client IP
//! on `/auth/*`, per caller on the endpoints that create orders, trades and refunds, and per
//! client IP on failed admin authentications. Over a limit → 429 `RATE_LIMITED` with a
//! `Retry-After` in whole seconds. `RATE_LIMIT=off` builds [`RateLimits::off`], which lets
//! everything through.
//!
//! Failed admin authentications lock the IP out, correct token or not: if a brute-forcer over
//! the limit were still told when a guess is right, the limit would slow nothing down. So
//! once an IP has used up its failures, every admin request from it answers 429 until its
//! bucket holds a cell again; governor cannot look at a bucket without taking from it, so the
//! lock is remembered beside the bucket.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::config::{Rate, RateLimitSettings};
use crate::startup::AppState;

/// The contract's fixed allowance of failed admin authentications per client IP.
pub const ADMIN_FAILURES: Rate = Rate::per_minute(match NonZeroU32::new(10) {
    Some(count) => count,
    None => panic!("10 is not zero"),
});
/// Buckets untouched for a full period are full again and can be forgotten.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Who a per-caller limit is kept for.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Caller {
    /// A logged-in buyer (`POST /orders`, prepay, refund).
    User(i64),
    /// The admin token's holder: the operator refund endpoint
    /// (`POST /admin/orders/{id}/refunds`) calls `limits.per_caller(Caller::Operator)` first.
    Operator,
}

type Keyed<K> = DefaultKeyedRateLimiter<K>;
type KeyedWithState<K> = RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct RateLimits {
    limiters: Option<Limiters>,
}

struct Limiters {
    ip: Keyed<IpAddr>,
    caller: Keyed<Caller>,
    admin_failures: KeyedWithState<IpAddr>,
    /// One cell of the failure bucket: how long a locked IP waits for its next guess.
    admin_cell: Duration,
    admin_locked: Mutex<HashMap<IpAddr, Instant>>,
}

fn quota(rate: Rate) -> Quota {
    // A full bucket of `count`, refilled evenly over the period.
    Quota::with_period(rate.period / rate.count.get())
        .expect("a rate's period is at least a second")
        .allow_burst(rate.count)
}

fn limited(wait: Duration) -> ApiError {
    // Whole seconds, rounded up, never 0: "retry now" would only be refused again.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        retry_after: seconds.max(1),
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> RateLimits {
        if !settings.enabled {
            return RateLimits::off();
        }
        RateLimits {
            limiters: Some(Limiters {
                ip: RateLimiter::keyed(quota(settings.ip)),
                caller: RateLimiter::keyed(quota(settings.user)),
                admin_failures: RateLimiter::keyed(quota(ADMIN_FAILURES))
                    .with_middleware::<StateInformationMiddleware>(),
                admin_cell: ADMIN_FAILURES.period / ADMIN_FAILURES.count.get(),
                admin_locked: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn off() -> RateLimits {
        RateLimits { limiters: None }
    }

    /// Takes one request from the client IP's bucket (`RATE_LIMIT_IP`).
    pub fn per_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(l) = &self.limiters else {
            return Ok(());
        };
        l.ip.check_key(&ip)
            .map_err(|not_until| limited(not_until.wait_time_from(l.ip.clock().now())))
    }

    /// Takes one request from the caller's bucket (`RATE_LIMIT_USER`).
    pub fn per_caller(&self, caller: Caller) -> Result<(), ApiError> {
        let Some(l) = &self.limiters else {
            return Ok(());
        };
        l.caller
            .check_key(&caller)
            .map_err(|not_until| limited(not_until.wait_time_from(l.caller.clock().now())))
    }

    /// Before an admin token is even compared: 429 while the IP is locked out.
    pub fn admin_gate(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(l) = &self.limiters else {
            return Ok(());
        };
        let locked = l.admin_locked.lock().expect("lock map");
        match locked.get(&ip) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(limited(wait)),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Records a failed admin authentication from `ip` and answers the error to send: the
    /// 401 itself, or 429 when this failure is one too many.
    pub fn admin_failed(&self, ip: IpAddr, unauthorized: ApiError) -> ApiError {
        let Some(l) = &self.limiters else {
            return unauthorized;
        };
        let (answer, lock_for) = match l.admin_failures.check_key(&ip) {
            // The last cell is gone: lock until the next one has surely refilled (one cell's
            // time, a little more than GCRA may need).
            Ok(snapshot) if snapshot.remaining_burst_capacity() == 0 => {
                (unauthorized, Some(l.admin_cell))
            }
            Ok(_) => (unauthorized, None),
            Err(not_until) => {
                let wait = not_until.wait_time_from(l.admin_failures.clock().now());
                (limited(wait), Some(wait))
            }
        };
        if let Some(wait) = lock_for {
            tracing::warn!(event = "admin.auth.locked", %ip, seconds = wait.as_secs());
            let mut locked = l.admin_locked.lock().expect("lock map");
            locked.insert(ip, Instant::now() + wait);
        }
        answer
    }

    /// Forgets full buckets and expired locks, so that a stream of new IPs does not grow
    /// memory without end.
    fn housekeeping(&self) {
        if let Some(l) = &self.limiters {
            l.ip.retain_recent();
            l.caller.retain_recent();
            l.admin_failures.retain_recent();
            l.ip.shrink_to_fit();
            l.caller.shrink_to_fit();
            l.admin_failures.shrink_to_fit();
            let now = Instant::now();
            l.admin_locked
                .lock()
                .expect("lock map")
                .retain(|_, until| *until > now);
        }
    }

    /// Runs [`housekeeping`](Self::housekeeping) every minute while the limits are alive.
    pub fn spawn_housekeeping(limits: &Arc<RateLimits>) {
        if limits.limiters.is_none() {
            return;
        }
        let weak: Weak<RateLimits> = Arc::downgrade(limits);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(limits) => limits.housekeeping(),
                    None => break,
                }
            }
        });
    }
}

/// Middleware for `/auth/*`: the client IP's bucket, before the body is even read.
pub async fn per_ip(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup")
        .clone();
    let ip = state.client_ips.resolve(req.peer_addr(), req.headers());
    match state.limits.per_ip(ip) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(error) => Ok(req
            .into_response(error.error_response())
            .map_into_right_body()),
    }
}
