//! A model of the Wallyt gateway. Trades by out_trade_no (open, paid, closed), refunds by
//! out_refund_no (a resend of the same number is the same refund, never a second one; the sum
//! of a trade's live refunds never exceeds what was paid), refund progress that settles over
//! time (SUCCESS, rarely FAIL or CHANGE, now and then NOTSURE), notifies after a payment
//! (duplicated, lost, late; redelivered until acknowledged).
//!
//! Every call the engine makes is *parked* until the simulator answers it as a step
//! ([`ModelGateway::answer`]); only then does the gateway act — normally, or failing before
//! acting (5xx: `Unavailable`), or acting and answering `Timeout` (a late answer).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

use super::SimRng;
use crate::money::Fen;
use crate::ports::{
    GatewayFailure, PrepayCreated, PrepayRequest, RefundAccepted, RefundProgress, RefundRequest,
    TradeStatus,
};
use crate::time::UnixMillis;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TradeState {
    Open,
    Paid {
        transaction_id: String,
        paid_at: UnixMillis,
    },
    Closed,
}

#[derive(Clone, Debug)]
pub struct Trade {
    pub amount: Fen,
    pub state: TradeState,
    pub time_expire: UnixMillis,
    /// The buyer got its pay params (only such trades can be paid).
    pub known_to_buyer: bool,
}

impl Trade {
    /// Open and before its `time_expire`: what the customer can pay normally.
    pub fn payable(&self, now: UnixMillis) -> bool {
        self.state == TradeState::Open && now < self.time_expire
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GwRefundState {
    Processing,
    Success,
    Fail,
    Change,
}

#[derive(Clone, Debug)]
pub struct GwRefund {
    pub out_trade_no: String,
    pub amount: Fen,
    pub state: GwRefundState,
}

/// A payment notify on its way to us.
#[derive(Clone, Debug)]
pub struct Notify {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: Fen,
    pub paid_at: UnixMillis,
    pub due: UnixMillis,
    pub attempts: u32,
}

/// A call the engine made, waiting for the simulator.
pub enum Call {
    Prepay(
        PrepayRequest,
        oneshot::Sender<Result<PrepayCreated, GatewayFailure>>,
    ),
    Query(String, oneshot::Sender<Result<TradeStatus, GatewayFailure>>),
    Close(String, oneshot::Sender<Result<(), GatewayFailure>>),
    Refund(
        RefundRequest,
        oneshot::Sender<Result<RefundAccepted, GatewayFailure>>,
    ),
    Progress(
        String,
        oneshot::Sender<Result<RefundProgress, GatewayFailure>>,
    ),
}

impl Call {
    fn kind(&self) -> &'static str {
        match self {
            Call::Prepay(..) => "prepay",
            Call::Query(..) => "query",
            Call::Close(..) => "close",
            Call::Refund(..) => "refund",
            Call::Progress(..) => "refundquery",
        }
    }

    fn describe(&self) -> String {
        match self {
            Call::Prepay(r, _) => format!("prepay {}", r.out_trade_no),
            Call::Query(no, _) => format!("query {no}"),
            Call::Close(no, _) => format!("close {no}"),
            Call::Refund(r, _) => format!("refund {} of {}", r.out_refund_no, r.amount.get()),
            Call::Progress(no, _) => format!("refundquery {no}"),
        }
    }
}

/// How answers go wrong, per thousand.
#[derive(Clone, Copy, Debug)]
pub struct GatewayRates {
    /// 5xx: nothing done.
    pub down: u32,
    /// Done, but the caller hears `Timeout`.
    pub late: u32,
    /// A refundquery answers NOTSURE.
    pub not_sure: u32,
    /// A refundquery finds a PROCESSING refund settled.
    pub settle: u32,
    /// Of settled refunds: FAIL, and CHANGE (the rest succeed).
    pub fail: u32,
    pub change: u32,
    /// A notify is lost / duplicated.
    pub notify_lost: u32,
    pub notify_dup: u32,
}

impl Default for GatewayRates {
    fn default() -> GatewayRates {
        GatewayRates {
            down: 60,
            late: 60,
            not_sure: 40,
            settle: 500,
            fail: 60,
            change: 30,
            notify_lost: 250,
            notify_dup: 200,
        }
    }
}

#[derive(Default)]
pub struct GatewayState {
    pub trades: BTreeMap<String, Trade>,
    pub refunds: BTreeMap<String, GwRefund>,
    pub notifies: Vec<Notify>,
    /// Refund requests that reused an out_refund_no for a different refund (another trade or
    /// amount): the gateway treats them as the first, so the second refund never happens.
    pub reused_refund_numbers: Vec<String>,
    /// Calls answered, by kind (`prepay`, `query`, `close`, `refund`, `refundquery`).
    pub calls: BTreeMap<&'static str, usize>,
    parked: BTreeMap<u64, (usize, Call)>,
    next_call: u64,
    next_tx: u64,
}

impl GatewayState {
    /// Money a trade's refunds hold (processing, succeeded, or stuck in CHANGE).
    pub fn held(&self, out_trade_no: &str) -> Fen {
        let held: i64 = self
            .refunds
            .values()
            .filter(|r| r.out_trade_no == out_trade_no && r.state != GwRefundState::Fail)
            .map(|r| r.amount.get())
            .sum();
        Fen::new(held)
    }

    pub fn refunded(&self, out_trade_no: &str) -> Fen {
        let done: i64 = self
            .refunds
            .values()
            .filter(|r| r.out_trade_no == out_trade_no && r.state == GwRefundState::Success)
            .map(|r| r.amount.get())
            .sum();
        Fen::new(done)
    }
}

pub struct ModelGateway {
    state: Mutex<GatewayState>,
    rng: Mutex<SimRng>,
    rates: GatewayRates,
    /// Quiescence: every answer is a normal one, refunds settle on the first query.
    quiet: std::sync::atomic::AtomicBool,
    activity: Arc<AtomicU64>,
}

impl ModelGateway {
    pub fn new(rates: GatewayRates, rng: SimRng, activity: Arc<AtomicU64>) -> ModelGateway {
        ModelGateway {
            state: Mutex::new(GatewayState::default()),
            rng: Mutex::new(rng),
            rates,
            quiet: Default::default(),
            activity,
        }
    }

    pub fn set_quiet(&self) {
        self.quiet.store(true, Ordering::Relaxed);
    }

    pub fn inspect<T>(&self, look: impl FnOnce(&GatewayState) -> T) -> T {
        look(&self.state.lock().unwrap())
    }

    fn roll(&self, per_mille: u32) -> bool {
        self.rng.lock().unwrap().chance(per_mille)
    }

    /// Parks a call of `node`; it is answered by [`ModelGateway::answer`].
    pub fn park(&self, node: usize, call: Call) {
        self.activity.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().unwrap();
        s.next_call += 1;
        let id = s.next_call;
        s.parked.insert(id, (node, call));
    }

    /// The calls waiting for an answer, oldest first.
    pub fn parked(&self) -> Vec<u64> {
        self.state.lock().unwrap().parked.keys().copied().collect()
    }

    /// Answers one parked call; describes what happened.
    pub fn answer(&self, id: u64, now: UnixMillis) -> String {
        let call = {
            let mut s = self.state.lock().unwrap();
            let Some((_, call)) = s.parked.remove(&id) else {
                return "no such call".into();
            };
            *s.calls.entry(call.kind()).or_default() += 1;
            call
        };
        let quiet = self.quiet.load(Ordering::Relaxed);
        let down = !quiet && self.roll(self.rates.down);
        let late = !quiet && !down && self.roll(self.rates.late);
        let what = call.describe();
        self.respond(call, now, down, late);
        let how = if down {
            "5xx"
        } else if late {
            "late (Timeout)"
        } else {
            "ok"
        };
        format!("{what}: {how}")
    }

    /// A node died: its calls either reached the gateway or not; nobody hears the answers.
    pub fn drop_node_calls(&self, node: usize, now: UnixMillis) {
        let ids: Vec<u64> = {
            let s = self.state.lock().unwrap();
            s.parked
                .iter()
                .filter(|(_, (n, _))| *n == node)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in ids {
            let call = self.state.lock().unwrap().parked.remove(&id);
            if let Some((_, call)) = call {
                let reached = self.roll(500);
                self.respond(call, now, !reached, reached);
            }
        }
    }

    fn respond(&self, call: Call, now: UnixMillis, down: bool, late: bool) {
        self.activity.fetch_add(1, Ordering::Relaxed);
        let unavailable = || GatewayFailure::Unavailable("HTTP 503".into());
        macro_rules! reply {
            ($tx:expr, $work:expr) => {{
                let answer = if down { Err(unavailable()) } else { $work };
                let _ = $tx.send(if late && !down {
                    Err(GatewayFailure::Timeout)
                } else {
                    answer
                });
            }};
        }
        match call {
            Call::Prepay(request, tx) => reply!(tx, self.create(&request)),
            Call::Query(no, tx) => reply!(tx, Ok(self.query(&no, now))),
            Call::Close(no, tx) => reply!(tx, self.close(&no, now)),
            Call::Refund(request, tx) => reply!(tx, self.refund(&request)),
            Call::Progress(no, tx) => reply!(tx, Ok(self.progress(&no))),
        }
    }

    fn create(&self, request: &PrepayRequest) -> Result<PrepayCreated, GatewayFailure> {
        let mut s = self.state.lock().unwrap();
        if s.trades.contains_key(&request.out_trade_no) {
            return Err(GatewayFailure::Refused(
                "ORDERPAID or duplicate out_trade_no".into(),
            ));
        }
        s.trades.insert(
            request.out_trade_no.clone(),
            Trade {
                amount: request.amount,
                state: TradeState::Open,
                time_expire: request.time_expire,
                known_to_buyer: false,
            },
        );
        Ok(PrepayCreated {
            pay_params: format!(r#"{{"package":"prepay_id={}"}}"#, request.out_trade_no),
        })
    }

    fn query(&self, no: &str, now: UnixMillis) -> TradeStatus {
        let s = self.state.lock().unwrap();
        match s.trades.get(no) {
            None => TradeStatus::Unknown,
            Some(t) => match &t.state {
                TradeState::Paid {
                    transaction_id,
                    paid_at,
                } => TradeStatus::Paid {
                    transaction_id: transaction_id.clone(),
                    amount: t.amount,
                    paid_at: *paid_at,
                },
                TradeState::Open if now < t.time_expire => TradeStatus::Open,
                _ => TradeStatus::Closed,
            },
        }
    }

    fn close(&self, no: &str, _now: UnixMillis) -> Result<(), GatewayFailure> {
        let mut s = self.state.lock().unwrap();
        match s.trades.get_mut(no) {
            None => Err(GatewayFailure::Refused("ORDERNOTEXIST".into())),
            Some(t) => match t.state {
                TradeState::Paid { .. } => Err(GatewayFailure::AlreadyPaid),
                // ORDERCLOSED maps to Ok in the adapter.
                TradeState::Open | TradeState::Closed => {
                    t.state = TradeState::Closed;
                    Ok(())
                }
            },
        }
    }

    fn refund(&self, request: &RefundRequest) -> Result<RefundAccepted, GatewayFailure> {
        let mut s = self.state.lock().unwrap();
        let accepted = RefundAccepted {
            refund_id: Some(format!("G{}", request.out_refund_no)),
        };
        if let Some(existing) = s.refunds.get(&request.out_refund_no) {
            // The same number is the same refund: no second effect, whatever the amount.
            return if existing.out_trade_no == request.out_trade_no {
                Ok(accepted)
            } else {
                Err(GatewayFailure::Refused(
                    "out_refund_no of another trade".into(),
                ))
            };
        }
        let Some(trade) = s.trades.get(&request.out_trade_no) else {
            return Err(GatewayFailure::Refused("ORDERNOTEXIST".into()));
        };
        if !matches!(trade.state, TradeState::Paid { .. }) {
            return Err(GatewayFailure::Refused("TRADE_STATE_ERROR".into()));
        }
        let amount = trade.amount;
        let held = s.held(&request.out_trade_no);
        if held.get() + request.amount.get() > amount.get() || !request.amount.is_positive() {
            return Err(GatewayFailure::Refused("REFUND_FEE_INVALID".into()));
        }
        s.refunds.insert(
            request.out_refund_no.clone(),
            GwRefund {
                out_trade_no: request.out_trade_no.clone(),
                amount: request.amount,
                state: GwRefundState::Processing,
            },
        );
        Ok(accepted)
    }

    fn progress(&self, no: &str) -> RefundProgress {
        let quiet = self.quiet.load(Ordering::Relaxed);
        if !quiet && self.roll(self.rates.not_sure) {
            return RefundProgress::NotSure;
        }
        let settle = quiet || self.roll(self.rates.settle);
        let pick = self.rng.lock().unwrap().below(1000) as u32;
        let mut s = self.state.lock().unwrap();
        let Some(refund) = s.refunds.get_mut(no) else {
            return RefundProgress::Unknown;
        };
        if refund.state == GwRefundState::Processing && settle {
            refund.state = if pick < self.rates.fail {
                GwRefundState::Fail
            } else if pick < self.rates.fail + self.rates.change {
                GwRefundState::Change
            } else {
                GwRefundState::Success
            };
        }
        match refund.state {
            GwRefundState::Processing => RefundProgress::Processing,
            GwRefundState::Success => RefundProgress::Success {
                refund_id: Some(format!("G{no}")),
                at: None,
            },
            GwRefundState::Fail => RefundProgress::Fail,
            GwRefundState::Change => RefundProgress::Change,
        }
    }

    /// The buyer got the pay params of this trade.
    pub fn mark_known(&self, out_trade_no: &str) {
        if let Some(t) = self.state.lock().unwrap().trades.get_mut(out_trade_no) {
            t.known_to_buyer = true;
        }
    }

    /// The customer pays a trade. A normal payment needs a payable trade; a late one (`late`)
    /// pays a closed or expired trade as the real gateway rarely does. Notifies follow: maybe
    /// lost (only for normal payments, which active queries still find), maybe duplicated.
    pub fn pay(&self, out_trade_no: &str, late: bool, now: UnixMillis) -> bool {
        let (lost, dup, delay) = {
            let mut rng = self.rng.lock().unwrap();
            (
                rng.chance(self.rates.notify_lost),
                rng.chance(self.rates.notify_dup),
                rng.below(3_000) as i64,
            )
        };
        let mut s = self.state.lock().unwrap();
        s.next_tx += 1;
        let transaction_id = format!("WX{}", s.next_tx);
        let Some(trade) = s.trades.get_mut(out_trade_no) else {
            return false;
        };
        let ok = trade.known_to_buyer
            && match trade.state {
                TradeState::Paid { .. } => false,
                _ if trade.payable(now) => true,
                _ => late,
            };
        if !ok {
            return false;
        }
        let normal = trade.payable(now);
        trade.state = TradeState::Paid {
            transaction_id: transaction_id.clone(),
            paid_at: now,
        };
        let amount = trade.amount;
        let copies = if lost && normal {
            0
        } else if dup {
            2
        } else {
            1
        };
        for copy in 0..copies {
            s.notifies.push(Notify {
                out_trade_no: out_trade_no.to_owned(),
                transaction_id: transaction_id.clone(),
                amount,
                paid_at: now,
                due: UnixMillis(now.0 + delay + copy * 1_500),
                attempts: 0,
            });
        }
        true
    }

    /// Takes a notify that is due, by index in the due list.
    pub fn take_due_notify(&self, now: UnixMillis, pick: usize) -> Option<Notify> {
        let mut s = self.state.lock().unwrap();
        let due: Vec<usize> = (0..s.notifies.len())
            .filter(|i| s.notifies[*i].due <= now)
            .collect();
        let at = *due.get(pick % due.len().max(1))?;
        Some(s.notifies.remove(at))
    }

    pub fn due_notifies(&self, now: UnixMillis) -> usize {
        let s = self.state.lock().unwrap();
        s.notifies.iter().filter(|n| n.due <= now).count()
    }

    pub fn pending_notifies(&self) -> usize {
        self.state.lock().unwrap().notifies.len()
    }

    /// The notify was not acknowledged: the gateway sends it again later.
    pub fn redeliver(&self, mut notify: Notify, now: UnixMillis) {
        const BACKOFF_MS: [i64; 6] = [2_000, 15_000, 30_000, 180_000, 600_000, 1_200_000];
        notify.due = UnixMillis(now.0 + BACKOFF_MS[(notify.attempts as usize).min(5)]);
        notify.attempts += 1;
        self.state.lock().unwrap().notifies.push(notify);
    }
}
