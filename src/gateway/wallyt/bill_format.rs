//! The daily merchant bill as text (`pay.bill.merchant`), in the style of WeChat's bill: a
//! header line of column names, one line per trade or refund with every field prefixed by a
//! backtick, then a totals header and one totals line. Parsing is strict — a line that does
//! not read is an error naming it, never skipped: a skipped line is exactly the money a
//! reconciliation exists to find. The sandbox renders its bills with [`render`], and the unit
//! tests pin a literal bill, so the two directions cannot drift together unnoticed.
//!
//! The columns are ours to define (the vendor's column list could not be confirmed; see
//! docs/wallyt-protocol.md): [`HEADER`]. Amounts are yuan with exactly two decimals,
//! converted to integer fen; times are `yyyy-MM-dd HH:mm:ss` on the Beijing wall clock.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use wallyt_pay_actors::{Fen, UnixMillis};

use super::refund::RefundStatus;

pub const HEADER: &str = "交易时间,公众账号ID,商户号,平台订单号,商户订单号,交易状态,总金额,平台退款单号,商户退款单号,退款金额,退款状态";
pub const TOTALS_HEADER: &str = "总交易单数,总交易额,总退款金额";
const COLUMNS: usize = 11;

/// One line of the bill: a payment (`SUCCESS`) or a refund of a trade (`REFUND`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillLine {
    /// Payment: when it was paid (the notify's `time_end`); refund: when it was made.
    pub time: UnixMillis,
    pub appid: String,
    pub mch_id: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    /// The trade's total (on a refund line too, as WeChat's bills do).
    pub total_fee: Fen,
    pub refund: Option<BillRefund>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillRefund {
    pub refund_id: String,
    pub out_refund_no: String,
    pub refund_fee: Fen,
    pub status: RefundStatus,
}

/// What the totals line says: the number of lines, the sum of the payments, and the sum of
/// the refunds that succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillTotals {
    pub lines: usize,
    pub trades: Fen,
    pub refunds: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    pub lines: Vec<BillLine>,
    pub totals: BillTotals,
}

/// A bill that does not read: which line (1-based) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bill line {line}: {reason}")]
pub struct BillFormatError {
    pub line: usize,
    pub reason: String,
}

fn error(line: usize, reason: impl Into<String>) -> BillFormatError {
    BillFormatError {
        line,
        reason: reason.into(),
    }
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

pub fn format_time(instant: UnixMillis) -> String {
    DateTime::from_timestamp_millis(instant.0)
        .unwrap_or_default()
        .with_timezone(&beijing())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn parse_time(text: &str) -> Option<UnixMillis> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
    let local = beijing().from_local_datetime(&naive).single()?;
    Some(UnixMillis(local.timestamp_millis()))
}

/// `12.34` → 1234 fen. Exactly two decimals: `1e2` or `12.3` is not how a bill writes money,
/// so it is a sign of a different file format, not something to guess at.
pub fn parse_amount(text: &str) -> Option<Fen> {
    let (whole, cents) = text.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || cents.len() != 2 || !digits(cents) {
        return None;
    }
    Fen::parse_yuan(text).ok()
}

pub fn format_amount(fen: Fen) -> String {
    format!("{}.{:02}", fen.get() / 100, fen.get() % 100)
}

/// The fields of a backtick line; `None` when a field lacks its backtick.
fn fields(text: &str) -> Option<Vec<&str>> {
    text.split(',').map(|f| f.strip_prefix('`')).collect()
}

pub fn parse(text: &str) -> Result<Bill, BillFormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if lines.first().map(|l| l.trim_end()) != Some(HEADER) {
        return Err(error(1, "not the bill's header line"));
    }
    let totals_at = lines
        .iter()
        .position(|l| l.trim_end() == TOTALS_HEADER)
        .ok_or_else(|| error(lines.len(), "no totals header"))?;
    let mut parsed = Vec::with_capacity(totals_at.saturating_sub(1));
    for (index, line) in lines.iter().enumerate().take(totals_at).skip(1) {
        parsed.push(parse_line(index + 1, line.trim_end())?);
    }
    let totals_number = totals_at + 2;
    let totals_text = lines
        .get(totals_at + 1)
        .ok_or_else(|| error(totals_number, "no totals line"))?;
    if lines.len() > totals_at + 2 {
        return Err(error(totals_at + 3, "text after the totals line"));
    }
    let totals = parse_totals(totals_number, totals_text.trim_end())?;
    let counted = totals_of(&parsed);
    if counted != totals {
        return Err(error(
            totals_number,
            format!(
                "totals say {} lines, {} and {} refunded; the lines add up to {} lines, {} and {}",
                totals.lines,
                format_amount(totals.trades),
                format_amount(totals.refunds),
                counted.lines,
                format_amount(counted.trades),
                format_amount(counted.refunds)
            ),
        ));
    }
    Ok(Bill {
        lines: parsed,
        totals,
    })
}

fn parse_line(number: usize, text: &str) -> Result<BillLine, BillFormatError> {
    let f = fields(text).ok_or_else(|| error(number, "a field without its backtick"))?;
    if f.len() != COLUMNS {
        return Err(error(
            number,
            format!("{} fields, expected {COLUMNS}", f.len()),
        ));
    }
    let amount = |i: usize, name: &str| {
        parse_amount(f[i]).ok_or_else(|| error(number, format!("{name} {:?} is not yuan", f[i])))
    };
    let time = parse_time(f[0]).ok_or_else(|| error(number, format!("bad time {:?}", f[0])))?;
    if f[4].is_empty() {
        return Err(error(number, "no out_trade_no"));
    }
    let total_fee = amount(6, "total")?;
    let refund = match f[5] {
        "SUCCESS" => {
            if amount(9, "refund")? != Fen::ZERO || !f[10].is_empty() {
                return Err(error(number, "a payment line with refund fields"));
            }
            None
        }
        "REFUND" => {
            if f[8].is_empty() || f[8] == "0" {
                return Err(error(number, "a refund line without out_refund_no"));
            }
            let refund_fee = amount(9, "refund")?;
            if refund_fee == Fen::ZERO {
                return Err(error(number, "a refund of 0.00"));
            }
            let status = RefundStatus::parse(f[10])
                .map_err(|_| error(number, format!("unknown refund state {:?}", f[10])))?;
            Some(BillRefund {
                refund_id: f[7].to_owned(),
                out_refund_no: f[8].to_owned(),
                refund_fee,
                status,
            })
        }
        other => return Err(error(number, format!("unknown trade state {other:?}"))),
    };
    Ok(BillLine {
        time,
        appid: f[1].to_owned(),
        mch_id: f[2].to_owned(),
        transaction_id: f[3].to_owned(),
        out_trade_no: f[4].to_owned(),
        total_fee,
        refund,
    })
}

fn parse_totals(number: usize, text: &str) -> Result<BillTotals, BillFormatError> {
    let f = fields(text).ok_or_else(|| error(number, "a field without its backtick"))?;
    let [count, trades, refunds] = f.as_slice() else {
        return Err(error(number, format!("{} totals, expected 3", f.len())));
    };
    Ok(BillTotals {
        lines: count
            .parse()
            .map_err(|_| error(number, format!("bad line count {count:?}")))?,
        trades: parse_amount(trades)
            .ok_or_else(|| error(number, format!("bad trade total {trades:?}")))?,
        refunds: parse_amount(refunds)
            .ok_or_else(|| error(number, format!("bad refund total {refunds:?}")))?,
    })
}

/// The totals the lines add up to: payments, and refunds that succeeded.
pub fn totals_of(lines: &[BillLine]) -> BillTotals {
    let mut totals = BillTotals {
        lines: lines.len(),
        trades: Fen::ZERO,
        refunds: Fen::ZERO,
    };
    for line in lines {
        match &line.refund {
            None => totals.trades = Fen::new(totals.trades.get() + line.total_fee.get()),
            Some(r) if r.status == RefundStatus::Success => {
                totals.refunds = Fen::new(totals.refunds.get() + r.refund_fee.get())
            }
            Some(_) => {}
        }
    }
    totals
}

/// The bill's text for these lines (the sandbox's side), `\r\n` line ends as WeChat's.
pub fn render(lines: &[BillLine]) -> String {
    let mut out = String::with_capacity(64 + lines.len() * 160);
    out.push_str(HEADER);
    out.push_str("\r\n");
    for line in lines {
        let (state, refund_id, out_refund_no, refund_fee, refund_state) = match &line.refund {
            None => ("SUCCESS", "0", "0", Fen::ZERO, ""),
            Some(r) => (
                "REFUND",
                r.refund_id.as_str(),
                r.out_refund_no.as_str(),
                r.refund_fee,
                r.status.as_str(),
            ),
        };
        let values = [
            format_time(line.time),
            line.appid.clone(),
            line.mch_id.clone(),
            line.transaction_id.clone(),
            line.out_trade_no.clone(),
            state.to_owned(),
            format_amount(line.total_fee),
            refund_id.to_owned(),
            out_refund_no.to_owned(),
            format_amount(refund_fee),
            refund_state.to_owned(),
        ];
        out.push_str(&backticked(&values));
        out.push_str("\r\n");
    }
    let totals = totals_of(lines);
    out.push_str(TOTALS_HEADER);
    out.push_str("\r\n");
    out.push_str(&backticked(&[
        totals.lines.to_string(),
        format_amount(totals.trades),
        format_amount(totals.refunds),
    ]));
    out.push_str("\r\n");
    out
}

fn backticked(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by hand, not by `render`: what the parser must read.
    const SAMPLE: &str = "交易时间,公众账号ID,商户号,平台订单号,商户订单号,交易状态,总金额,平台退款单号,商户退款单号,退款金额,退款状态\r\n\
`2024-06-01 12:05:12,`wx1234567890abcdef,`7551000001,`7551000001202406011234567890,`ORD20240601000001,`SUCCESS,`88.00,`0,`0,`0.00,`\r\n\
`2024-06-01 13:00:00,`wx1234567890abcdef,`7551000001,`7551000001202406011234567890,`ORD20240601000001,`REFUND,`88.00,`75510000010000000007,`RF20240601000001,`0.01,`SUCCESS\r\n\
`2024-06-01 13:30:00,`wx1234567890abcdef,`7551000001,`7551000001202406011234567890,`ORD20240601000001,`REFUND,`88.00,`75510000010000000008,`RF20240601000002,`10.50,`FAIL\r\n\
总交易单数,总交易额,总退款金额\r\n\
`3,`88.00,`0.01\r\n";

    #[test]
    fn a_hand_written_bill_reads_to_the_fen() {
        let bill = parse(SAMPLE).unwrap();
        assert_eq!(bill.lines.len(), 3);
        assert_eq!(bill.lines[0].total_fee, Fen::new(8800));
        assert_eq!(bill.lines[0].time, UnixMillis(1_717_214_712_000));
        let refund = bill.lines[1].refund.as_ref().unwrap();
        assert_eq!(refund.refund_fee, Fen::new(1));
        assert_eq!(refund.status, RefundStatus::Success);
        assert_eq!(
            bill.lines[2].refund.as_ref().unwrap().refund_fee,
            Fen::new(1050)
        );
        assert_eq!(bill.totals.refunds, Fen::new(1));
        // Rendering the parsed lines gives the same text back.
        assert_eq!(render(&bill.lines), SAMPLE);
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        let broken = SAMPLE.replace("`10.50", "`10.5");
        assert_eq!(parse(&broken).unwrap_err().line, 4);
        let broken = SAMPLE.replace("`88.00,`0,", "88.00,`0,");
        assert_eq!(parse(&broken).unwrap_err().line, 2);
        let broken = SAMPLE.replace("`FAIL", "`LOST");
        assert_eq!(parse(&broken).unwrap_err().line, 4);
        let broken = SAMPLE.replace("`SUCCESS,`88.00", "`PAID,`88.00");
        assert_eq!(parse(&broken).unwrap_err().line, 2);
        // A line dropped without the totals following: the totals line says so.
        let dropped: String = SAMPLE
            .split_inclusive("\r\n")
            .filter(|l| !l.contains("RF20240601000002"))
            .collect();
        assert_eq!(parse(&dropped).unwrap_err().line, 5);
        assert_eq!(parse("<html>").unwrap_err().line, 1);
        assert!(parse(&format!("{SAMPLE}extra\r\n")).is_err());
    }

    #[test]
    fn amounts_are_yuan_with_two_decimals() {
        assert_eq!(parse_amount("0.01"), Some(Fen::new(1)));
        assert_eq!(parse_amount("1234.50"), Some(Fen::new(123_450)));
        for bad in ["1", "1.5", "1.005", "1e2", "-1.00", ".50", "1,00", ""] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        assert_eq!(format_amount(Fen::new(5)), "0.05");
        assert_eq!(format_amount(Fen::new(123_450)), "1234.50");
    }

    #[test]
    fn an_empty_day_is_a_header_and_zero_totals() {
        let text = render(&[]);
        let bill = parse(&text).unwrap();
        assert!(bill.lines.is_empty());
        assert_eq!(bill.totals.trades, Fen::ZERO);
    }
}
