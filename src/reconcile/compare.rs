//! The line-by-line comparison of a day's bill with our records. Pure: the caller reads both
//! sides, this decides what differs and which payments to apply, so every rule is unit-tested
//! without a gateway or a database.

use std::collections::{HashMap, HashSet};
use wallyt_pay_actors::{Fen, UnixMillis};

use crate::gateway::wallyt::bill_format::{format_amount, Bill, BillLine, BillRefund};
use crate::gateway::wallyt::refund::RefundStatus;
use crate::storage::reconciliation::{NewDifference, OurPayment, OurRefund};

/// Paid at the gateway, not here: applied as a notify would be (the action says how it went).
pub const PAID_AT_GATEWAY_ONLY: &str = "PAID_AT_GATEWAY_ONLY";
/// A payment line whose out_trade_no we never issued.
pub const UNKNOWN_TRADE: &str = "UNKNOWN_TRADE";
/// The bill's amount is not ours.
pub const AMOUNT_MISMATCH: &str = "AMOUNT_MISMATCH";
/// Paid here on that day, absent from the bill.
pub const NOT_IN_BILL: &str = "NOT_IN_BILL";
/// A refund line whose out_refund_no we never issued.
pub const REFUND_UNKNOWN: &str = "REFUND_UNKNOWN";
/// A refund whose amount or success differs (SUCCESS on one side only).
pub const REFUND_MISMATCH: &str = "REFUND_MISMATCH";
/// A refund that succeeded here on that day, absent from the bill.
pub const REFUND_NOT_IN_BILL: &str = "REFUND_NOT_IN_BILL";
/// The bill's totals are not the sums of our records of the day.
pub const TOTALS_MISMATCH: &str = "TOTALS_MISMATCH";

pub const KINDS: [&str; 8] = [
    PAID_AT_GATEWAY_ONLY,
    UNKNOWN_TRADE,
    AMOUNT_MISMATCH,
    NOT_IN_BILL,
    REFUND_UNKNOWN,
    REFUND_MISMATCH,
    REFUND_NOT_IN_BILL,
    TOTALS_MISMATCH,
];

/// A trade of ours that the bill names but that was not paid here that day.
#[derive(Debug, Clone)]
pub struct TradeHere {
    pub order_id: i64,
    pub amount: Fen,
    /// Money already received (on another day): only the amount is compared.
    pub received: bool,
}

/// Our side of the day, and what we hold about every other trade or refund the bill names.
#[derive(Debug, Default)]
pub struct OurDay {
    pub paid: HashMap<String, OurPayment>,
    pub refunds: HashMap<String, OurRefund>,
    /// Bill trades not among `paid`: `None` when we have no such trade at all.
    pub other_trades: HashMap<String, Option<TradeHere>>,
    /// Bill refunds not among `refunds`: `None` when we have no such refund.
    pub other_refunds: HashMap<String, Option<OurRefund>>,
}

/// A payment to apply through the order's actor, as a notify would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToApply {
    pub order_id: i64,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: Fen,
    pub paid_at: UnixMillis,
}

#[derive(Debug, Default)]
pub struct Comparison {
    pub differences: Vec<NewDifference>,
    pub to_apply: Vec<ToApply>,
}

fn difference(
    kind: &'static str,
    order_id: Option<i64>,
    trade: &str,
    amount: Fen,
) -> NewDifference {
    NewDifference {
        kind,
        order_id,
        out_trade_no: Some(trade.to_owned()),
        out_refund_no: None,
        bill_value: None,
        our_value: None,
        amount,
        action: None,
    }
}

pub fn compare(bill: &Bill, ours: &OurDay) -> Comparison {
    let mut out = Comparison::default();
    let mut seen_trades = HashSet::new();
    let mut seen_refunds = HashSet::new();
    for line in &bill.lines {
        match &line.refund {
            None => {
                seen_trades.insert(line.out_trade_no.as_str());
                payment_line(line, ours, &mut out);
            }
            Some(refund) => {
                seen_refunds.insert(refund.out_refund_no.as_str());
                refund_line(line, refund, ours, &mut out);
            }
        }
    }
    let mut missing: Vec<&OurPayment> = ours
        .paid
        .values()
        .filter(|p| !seen_trades.contains(p.out_trade_no.as_str()))
        .collect();
    missing.sort_by(|a, b| a.out_trade_no.cmp(&b.out_trade_no));
    for p in missing {
        out.differences.push(NewDifference {
            our_value: Some(format!("PAID {}", format_amount(p.amount))),
            ..difference(NOT_IN_BILL, Some(p.order_id), &p.out_trade_no, p.amount)
        });
    }
    let mut missing: Vec<&OurRefund> = ours
        .refunds
        .values()
        .filter(|r| !seen_refunds.contains(r.out_refund_no.as_str()))
        .collect();
    missing.sort_by(|a, b| a.out_refund_no.cmp(&b.out_refund_no));
    for r in missing {
        out.differences.push(NewDifference {
            out_refund_no: Some(r.out_refund_no.clone()),
            our_value: Some(format!("{} {}", r.status, format_amount(r.amount))),
            ..difference(
                REFUND_NOT_IN_BILL,
                Some(r.order_id),
                &r.out_trade_no,
                r.amount,
            )
        });
    }
    out
}

fn payment_line(line: &BillLine, ours: &OurDay, out: &mut Comparison) {
    let otn = line.out_trade_no.as_str();
    let bill_value = Some(format!("SUCCESS {}", format_amount(line.total_fee)));
    let (order_id, amount, received) = match (ours.paid.get(otn), ours.other_trades.get(otn)) {
        (Some(p), _) => (p.order_id, p.amount, true),
        (None, Some(Some(t))) => (t.order_id, t.amount, t.received),
        (None, _) => {
            out.differences.push(NewDifference {
                bill_value,
                ..difference(UNKNOWN_TRADE, None, otn, line.total_fee)
            });
            return;
        }
    };
    if line.total_fee != amount {
        // Never applied: a notify with a wrong amount is refused too.
        out.differences.push(NewDifference {
            bill_value,
            our_value: Some(format_amount(amount)),
            ..difference(AMOUNT_MISMATCH, Some(order_id), otn, line.total_fee)
        });
    } else if !received {
        out.to_apply.push(ToApply {
            order_id,
            out_trade_no: otn.to_owned(),
            transaction_id: line.transaction_id.clone(),
            amount: line.total_fee,
            paid_at: line.time,
        });
    }
}

fn refund_line(line: &BillLine, refund: &BillRefund, ours: &OurDay, out: &mut Comparison) {
    let no = refund.out_refund_no.as_str();
    let bill_value = Some(format!(
        "{} {}",
        refund.status.as_str(),
        format_amount(refund.refund_fee)
    ));
    let ours = match ours.refunds.get(no) {
        Some(r) => Some(r),
        None => ours.other_refunds.get(no).and_then(Option::as_ref),
    };
    let Some(ours) = ours else {
        out.differences.push(NewDifference {
            out_refund_no: Some(no.to_owned()),
            bill_value,
            ..difference(REFUND_UNKNOWN, None, &line.out_trade_no, refund.refund_fee)
        });
        return;
    };
    let bill_success = refund.status == RefundStatus::Success;
    let our_success = ours.status == "SUCCESS";
    // PROCESSING against NOTSURE is the same unfinished refund seen at two moments: only
    // money that moved on one side and not the other is a difference.
    if refund.refund_fee != ours.amount || bill_success != our_success {
        out.differences.push(NewDifference {
            out_refund_no: Some(no.to_owned()),
            bill_value,
            our_value: Some(format!("{} {}", ours.status, format_amount(ours.amount))),
            ..difference(
                REFUND_MISMATCH,
                Some(ours.order_id),
                &ours.out_trade_no,
                refund.refund_fee,
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::wallyt::bill_format::totals_of;

    fn pay_line(otn: &str, fen: i64) -> BillLine {
        BillLine {
            time: UnixMillis(1_717_214_712_000),
            appid: "wx".into(),
            mch_id: "7551000001".into(),
            transaction_id: format!("T{otn}"),
            out_trade_no: otn.into(),
            total_fee: Fen::new(fen),
            refund: None,
        }
    }

    fn refund_line(otn: &str, no: &str, fen: i64, status: RefundStatus) -> BillLine {
        BillLine {
            refund: Some(BillRefund {
                refund_id: format!("R{no}"),
                out_refund_no: no.into(),
                refund_fee: Fen::new(fen),
                status,
            }),
            ..pay_line(otn, 5000)
        }
    }

    fn ours_paid(otn: &str, order_id: i64, fen: i64) -> (String, OurPayment) {
        (
            otn.into(),
            OurPayment {
                order_id,
                out_trade_no: otn.into(),
                amount: Fen::new(fen),
            },
        )
    }

    fn our_refund(otn: &str, no: &str, fen: i64, status: &str) -> OurRefund {
        OurRefund {
            order_id: 1,
            out_trade_no: otn.into(),
            out_refund_no: no.into(),
            amount: Fen::new(fen),
            status: status.into(),
        }
    }

    fn bill(lines: Vec<BillLine>) -> Bill {
        Bill {
            totals: totals_of(&lines),
            lines,
        }
    }

    fn kinds(c: &Comparison) -> Vec<&'static str> {
        c.differences.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn agreeing_sides_have_no_difference() {
        let b = bill(vec![
            pay_line("A", 5000),
            refund_line("A", "RA", 5000, RefundStatus::Success),
            refund_line("A", "RB", 100, RefundStatus::Processing),
        ]);
        let ours = OurDay {
            paid: [ours_paid("A", 1, 5000)].into(),
            refunds: [("RA".into(), our_refund("A", "RA", 5000, "SUCCESS"))].into(),
            other_refunds: [("RB".into(), Some(our_refund("A", "RB", 100, "PROCESSING")))].into(),
            ..OurDay::default()
        };
        let c = compare(&b, &ours);
        assert!(c.differences.is_empty() && c.to_apply.is_empty(), "{c:?}");
    }

    #[test]
    fn each_kind_is_found() {
        let b = bill(vec![
            pay_line("LOST", 5000),
            pay_line("WRONG", 5001),
            pay_line("STRANGER", 100),
            refund_line("A", "R-UNKNOWN", 100, RefundStatus::Success),
            refund_line("A", "R-FAILED", 200, RefundStatus::Fail),
        ]);
        let ours = OurDay {
            paid: [ours_paid("WRONG", 2, 5000), ours_paid("MISSING", 3, 700)].into(),
            refunds: [
                (
                    "R-FAILED".into(),
                    our_refund("A", "R-FAILED", 200, "SUCCESS"),
                ),
                ("R-GONE".into(), our_refund("A", "R-GONE", 300, "SUCCESS")),
            ]
            .into(),
            other_trades: [
                (
                    "LOST".into(),
                    Some(TradeHere {
                        order_id: 4,
                        amount: Fen::new(5000),
                        received: false,
                    }),
                ),
                ("STRANGER".into(), None),
            ]
            .into(),
            other_refunds: [("R-UNKNOWN".into(), None)].into(),
        };
        let c = compare(&b, &ours);
        assert_eq!(
            kinds(&c),
            [
                AMOUNT_MISMATCH,
                UNKNOWN_TRADE,
                REFUND_UNKNOWN,
                REFUND_MISMATCH,
                NOT_IN_BILL,
                REFUND_NOT_IN_BILL
            ]
        );
        assert_eq!(c.to_apply.len(), 1);
        assert_eq!(c.to_apply[0].order_id, 4);
        assert_eq!(c.to_apply[0].transaction_id, "TLOST");
        assert_eq!(
            c.differences[0].bill_value.as_deref(),
            Some("SUCCESS 50.01")
        );
        assert_eq!(c.differences[0].our_value.as_deref(), Some("50.00"));
    }

    #[test]
    fn a_lost_payment_with_a_wrong_amount_is_not_applied() {
        let b = bill(vec![pay_line("LOST", 4999)]);
        let ours = OurDay {
            other_trades: [(
                "LOST".into(),
                Some(TradeHere {
                    order_id: 4,
                    amount: Fen::new(5000),
                    received: false,
                }),
            )]
            .into(),
            ..OurDay::default()
        };
        let c = compare(&b, &ours);
        assert!(c.to_apply.is_empty());
        assert_eq!(kinds(&c), [AMOUNT_MISMATCH]);
    }
}
