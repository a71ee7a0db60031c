//! Money is an integer number of fen. The JSON API speaks yuan as JSON numbers with at most
//! two decimals; the conversion here works on the number's *text*, so no float ever touches an
//! amount (50.1 as an f64 is 50.099999…, and that is how payment systems lose fen).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// An amount of money in fen (1 yuan = 100 fen). Never negative when it comes from outside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be a plain decimal number of yuan")]
    NotANumber,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount has more than 2 decimals")]
    TooPrecise,
    #[error("amount is too large")]
    TooLarge,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);
    /// 100 million yuan: far above any ticket order, far below anything that could overflow
    /// when multiplied by quantities and summed over lines.
    pub const MAX: Fen = Fen(10_000_000_000);

    pub const fn new(fen: i64) -> Fen {
        Fen(fen)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    pub fn checked_mul(self, times: i64) -> Option<Fen> {
        self.0.checked_mul(times).map(Fen)
    }

    /// Parses a JSON number literal of yuan (`100`, `100.00`, `50.5`, `1e2`) into fen exactly.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        let text = text.trim();
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => {
                let exp: i32 = text[at + 1..].parse().map_err(|_| MoneyError::NotANumber)?;
                (&text[..at], exp)
            }
            None => (text, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let well_formed = !int_part.is_empty()
            && int_part.bytes().all(|b| b.is_ascii_digit())
            && frac_part.bytes().all(|b| b.is_ascii_digit())
            && !(mantissa.contains('.') && frac_part.is_empty());
        if !well_formed {
            return Err(MoneyError::NotANumber);
        }
        // value = digits × 10^(exponent − frac_len); in fen that is 10^(exponent − frac_len + 2).
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let shift = i64::from(exponent) - frac_part.len() as i64 + 2;
        let (kept, dropped) = if shift >= 0 {
            (digits, "")
        } else {
            let cut = digits.len().saturating_sub(shift.unsigned_abs() as usize);
            digits.split_at(cut)
        };
        if dropped.bytes().any(|b| b != b'0') {
            return Err(MoneyError::TooPrecise);
        }
        if kept.is_empty() {
            return Ok(Fen::ZERO);
        }
        let zeros = shift.max(0) as usize;
        if kept.len() + zeros > 18 {
            return Err(MoneyError::TooLarge);
        }
        let fen: i64 = format!("{kept}{}", "0".repeat(zeros))
            .parse()
            .map_err(|_| MoneyError::TooLarge)?;
        if fen > Fen::MAX.0 {
            return Err(MoneyError::TooLarge);
        }
        Ok(Fen(fen))
    }

    /// The yuan text with exactly two decimals, e.g. `100.00`, `0.05`.
    pub fn to_yuan_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fen", self.0)
    }
}

/// Serialized as a JSON number of yuan with two decimals (`100.00`), written verbatim.
impl Serialize for Fen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw =
            RawValue::from_string(self.to_yuan_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Deserialized from the raw text of a JSON number of yuan; strings, null and floats that
/// need rounding are refused.
impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(deserializer)?;
        let text = raw.get();
        if !text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            return Err(D::Error::custom(MoneyError::NotANumber));
        }
        Fen::parse_yuan(text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_yuan_literals_exactly() {
        assert_eq!(Fen::parse_yuan("100.00"), Ok(Fen(10_000)));
        assert_eq!(Fen::parse_yuan("100"), Ok(Fen(10_000)));
        assert_eq!(Fen::parse_yuan("50.5"), Ok(Fen(5_050)));
        assert_eq!(Fen::parse_yuan("0.01"), Ok(Fen(1)));
        assert_eq!(Fen::parse_yuan("50.10"), Ok(Fen(5_010)));
        assert_eq!(Fen::parse_yuan("1e2"), Ok(Fen(10_000)));
        assert_eq!(Fen::parse_yuan("1.5E1"), Ok(Fen(1_500)));
        assert_eq!(Fen::parse_yuan("123e-2"), Ok(Fen(123)));
        assert_eq!(Fen::parse_yuan("1.230"), Ok(Fen(123)));
        assert_eq!(Fen::parse_yuan("0"), Ok(Fen::ZERO));
    }

    #[test]
    fn refuses_what_would_need_rounding_or_is_not_money() {
        assert_eq!(Fen::parse_yuan("0.001"), Err(MoneyError::TooPrecise));
        assert_eq!(Fen::parse_yuan("100.005"), Err(MoneyError::TooPrecise));
        assert_eq!(Fen::parse_yuan("1e-3"), Err(MoneyError::TooPrecise));
        assert_eq!(Fen::parse_yuan("-1"), Err(MoneyError::Negative));
        assert_eq!(Fen::parse_yuan("1e30"), Err(MoneyError::TooLarge));
        assert_eq!(Fen::parse_yuan("100000001"), Err(MoneyError::TooLarge));
        for bad in ["", ".5", "5.", "abc", "1.2.3", "NaN", "1e", "0x10"] {
            assert_eq!(Fen::parse_yuan(bad), Err(MoneyError::NotANumber), "{bad}");
        }
    }

    #[test]
    fn json_round_trip_is_a_number_with_two_decimals() {
        let fen: Fen = serde_json::from_str("50.5").unwrap();
        assert_eq!(fen, Fen(5_050));
        assert_eq!(serde_json::to_string(&fen).unwrap(), "50.50");
        assert!(serde_json::from_str::<Fen>("\"50.5\"").is_err());
        assert!(serde_json::from_str::<Fen>("null").is_err());
        assert!(serde_json::from_str::<Fen>("true").is_err());
        assert!(serde_json::from_str::<Fen>("0.015").is_err());
    }

    proptest! {
        #[test]
        fn every_fen_amount_survives_yuan_text(fen in 0i64..=Fen::MAX.get()) {
            let text = Fen(fen).to_yuan_string();
            prop_assert_eq!(Fen::parse_yuan(&text), Ok(Fen(fen)));
            let json = serde_json::to_string(&Fen(fen)).unwrap();
            prop_assert_eq!(serde_json::from_str::<Fen>(&json).unwrap(), Fen(fen));
        }

        #[test]
        fn a_third_decimal_is_refused_unless_zero(yuan in 0i64..1_000_000, milli in 0u8..10) {
            let text = format!("{yuan}.12{milli}");
            let parsed = Fen::parse_yuan(&text);
            if milli == 0 {
                prop_assert_eq!(parsed, Ok(Fen(yuan * 100 + 12)));
            } else {
                prop_assert_eq!(parsed, Err(MoneyError::TooPrecise));
            }
        }
    }
}
