//! Compute prices (算力价格) that providers list, and what a candidate costs.
//!
//! Amounts are whole units of 0.0001 CNY (`cny_e4`), so sums and comparisons
//! are exact; they are read and written as decimal strings ("18.50").

use serde::Serialize;

use crate::accel::model_matches;

/// The most a price may say per hour: a million yuan.
const MAX_CNY_E4: i64 = 1_000_000 * 10_000;

/// What a price is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priced {
    /// One accelerator-hour, for the provider's accelerators of a model.
    Accelerator,
    /// One logical-core-hour of a host.
    Cpu,
}

impl Priced {
    pub fn as_str(self) -> &'static str {
        match self {
            Priced::Accelerator => "accelerator",
            Priced::Cpu => "cpu",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "accelerator" => Some(Priced::Accelerator),
            "cpu" => Some(Priced::Cpu),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub resource: Priced,
    /// Words the accelerator's name must contain ("H100"); empty for any.
    pub model: String,
    pub per_hour_cny_e4: i64,
}

/// One provider's prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceList(pub Vec<Price>);

impl PriceList {
    /// The price of one hour of an accelerator named `model_key` (lower
    /// case): the entry whose model names it most exactly, the catch-all
    /// entry if none does.
    pub fn accelerator(&self, model_key: &str) -> Option<i64> {
        self.0
            .iter()
            .filter(|p| p.resource == Priced::Accelerator)
            .filter(|p| p.model.is_empty() || model_matches(model_key, &p.model.to_lowercase()))
            .max_by_key(|p| p.model.split_whitespace().count())
            .map(|p| p.per_hour_cny_e4)
    }

    pub fn core(&self) -> Option<i64> {
        self.0
            .iter()
            .find(|p| p.resource == Priced::Cpu)
            .map(|p| p.per_hour_cny_e4)
    }
}

/// Reads "18.5" or 18.5 as CNY: not negative, at most four decimals.
pub fn parse_cny(value: &serde_json::Value) -> Result<i64, String> {
    const RULE: &str =
        "an amount in yuan such as \"18.50\": not negative, at most 4 decimals, at most 1000000";
    let text = match value {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(RULE.into()),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 4 {
        return Err(RULE.into());
    }
    let whole: i64 = whole.parse().map_err(|_| RULE.to_owned())?;
    let fraction: i64 = format!("{fraction:0<4}")
        .parse()
        .map_err(|_| RULE.to_owned())?;
    whole
        .checked_mul(10_000)
        .and_then(|w| w.checked_add(fraction))
        .filter(|v| *v <= MAX_CNY_E4)
        .ok_or_else(|| RULE.into())
}

/// Writes an amount with at least two decimals and no trailing zeros past them.
pub fn format_cny(cny_e4: i64) -> String {
    let sign = if cny_e4 < 0 { "-" } else { "" };
    let v = cny_e4.unsigned_abs();
    let mut fraction = format!("{:04}", v % 10_000);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{sign}{}.{fraction}", v / 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_read_and_write_exactly() {
        assert_eq!(parse_cny(&json!("18.50")), Ok(185_000));
        assert_eq!(parse_cny(&json!(18.5)), Ok(185_000));
        assert_eq!(parse_cny(&json!("0.035")), Ok(350));
        assert_eq!(parse_cny(&json!(7)), Ok(70_000));
        assert_eq!(parse_cny(&json!("1000000")), Ok(MAX_CNY_E4));
        for bad in [
            json!("-1"),
            json!(-1),
            json!("1.23456"),
            json!("1e3"),
            json!(""),
            json!(".5"),
            json!("1000000.01"),
            json!("99999999999999999999"),
            json!(null),
            json!(true),
        ] {
            assert!(parse_cny(&bad).is_err(), "{bad}");
        }
        assert_eq!(format_cny(185_000), "18.50");
        assert_eq!(format_cny(350), "0.035");
        assert_eq!(format_cny(0), "0.00");
        assert_eq!(format_cny(12_345), "1.2345");
    }

    #[test]
    fn the_most_exact_model_price_wins() {
        let list = PriceList(vec![
            Price {
                resource: Priced::Accelerator,
                model: String::new(),
                per_hour_cny_e4: 50_000,
            },
            Price {
                resource: Priced::Accelerator,
                model: "H100".into(),
                per_hour_cny_e4: 180_000,
            },
            Price {
                resource: Priced::Accelerator,
                model: "H100 SXM5".into(),
                per_hour_cny_e4: 200_000,
            },
            Price {
                resource: Priced::Cpu,
                model: String::new(),
                per_hour_cny_e4: 800,
            },
        ]);
        assert_eq!(list.accelerator("nvidia h100 80gb hbm3"), Some(180_000));
        assert_eq!(list.accelerator("nvidia h100 sxm5 80gb"), Some(200_000));
        assert_eq!(list.accelerator("nvidia a100-sxm4-80gb"), Some(50_000));
        assert_eq!(list.core(), Some(800));
        assert_eq!(PriceList::default().accelerator("nvidia h100"), None);
    }
}
