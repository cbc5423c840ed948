//! Field checks: a request hears about every wrong field at once.
//!
//! One [`Check`] collects [`FieldProblem`]s while a request is read; the
//! operation that read it turns a non-empty collection into its "invalid
//! fields" error, which the API answers with a 422 naming each field.
//! Readers for particular shapes (a demand's JSON) add methods to `Check`
//! in their own modules.

use serde::Serialize;
use suanli_protocol::identifier::RegionCode;

use crate::i18n::{Lang, Text};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    /// In English; the API gives it in the reader's language where
    /// `text` has it.
    pub message: String,
    #[serde(skip)]
    pub text: Option<Text>,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            text: None,
        }
    }

    /// A problem whose message is words of the catalog.
    pub fn text(field: impl Into<String>, text: Text) -> Self {
        Self {
            field: field.into(),
            message: text.render(Lang::En),
            text: Some(text),
        }
    }
}

/// Longer passwords are refused, so hashing one costs a bounded time.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Every field that was wrong, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldProblem>);

impl Invalid {
    /// One bad field, with words of the catalog.
    pub fn one_text(field: impl Into<String>, text: Text) -> Self {
        Self(vec![FieldProblem::text(field, text)])
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The command line shows this: each field with what is wrong.
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        write!(f, "invalid fields: {}", fields.join("; "))
    }
}

impl std::error::Error for Invalid {}

/// Collects field problems.
#[derive(Debug, Default)]
pub struct Check(Vec<FieldProblem>);

impl Check {
    /// Fails `field` with words of the catalog.
    pub fn fail_text(&mut self, field: &str, text: Text) {
        self.0.push(FieldProblem::text(field, text));
    }

    pub fn is_clean(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` if nothing failed, else every problem found.
    pub fn done(self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.0))
        }
    }

    /// Fails every key of `object` not in `known`, named `{prefix}{key}`.
    pub fn unknown<'k>(
        &mut self,
        prefix: &str,
        keys: impl IntoIterator<Item = &'k String>,
        known: &[&str],
    ) {
        for key in keys {
            if !known.contains(&key.as_str()) {
                self.fail_text(
                    &format!("{prefix}{key}"),
                    Text::new("check.unknown_field").arg("known", known.join(", ")),
                );
            }
        }
    }

    /// Free text for people to read: trimmed, not empty, at most `max`
    /// characters, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.fail_text(field, Text::new("check.empty"));
        } else if trimmed.chars().count() > max {
            self.fail_text(field, Text::new("check.too_long").arg("max", max));
        } else if trimmed.chars().any(char::is_control) {
            self.fail_text(field, Text::new("check.control"));
        }
        trimmed.to_owned()
    }

    pub fn login(&mut self, value: &str) -> String {
        let ok = (3..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !ok {
            self.fail_text("login", Text::new("check.login"));
        }
        value.to_owned()
    }

    pub fn password(&mut self, value: &str, min_chars: usize) {
        self.password_in("password", value, min_chars);
    }

    /// A password in `field`, at least `min_chars` long.
    pub fn password_in(&mut self, field: &str, value: &str, min_chars: usize) {
        if value.chars().count() < min_chars {
            self.fail_text(field, Text::new("check.too_short").arg("min", min_chars));
        } else if value.chars().count() > MAX_PASSWORD_CHARS {
            self.fail_text(
                field,
                Text::new("check.too_long").arg("max", MAX_PASSWORD_CHARS),
            );
        }
    }

    /// A GB/T 2260 region code, normalised; empty if it is not one.
    pub fn region(&mut self, field: &str, value: &str) -> String {
        match RegionCode::parse(value) {
            Ok(r) => r.to_string(),
            Err(e) => {
                self.fail_text(field, Text::new("check.region").arg("error", e));
                String::new()
            }
        }
    }

    /// A line's latency and bandwidth, where given.
    pub fn line_figures(&mut self, latency_ms: Option<f64>, bandwidth_mbps: Option<i64>) {
        if latency_ms.is_some_and(|ms| !(ms.is_finite() && ms > 0.0 && ms < 10_000.0)) {
            self.fail_text("latency_ms", Text::new("check.check.latency"));
        }
        if bandwidth_mbps.is_some_and(|b| !(1..=10_000_000).contains(&b)) {
            self.fail_text(
                "bandwidth_mbps",
                Text::new("check.check.between")
                    .arg("min", 1)
                    .arg("max", 10_000_000),
            );
        }
    }
}

/// Whole numbers as JSON Schema counts them: `806` and `806.0` alike
/// (serde alone refuses the second for an integer field). For
/// `#[serde(deserialize_with = "whole::exact")]`, or `whole::option` with
/// `#[serde(default)]`.
pub mod whole {
    use serde::{Deserialize, Deserializer, de};

    /// A JSON number with no fraction, as an `i128` (wide enough for any).
    struct Whole(i128);

    impl<'de> Deserialize<'de> for Whole {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl de::Visitor<'_> for Visitor {
                type Value = Whole;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a whole number")
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
                    Ok(Whole(v.into()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
                    Ok(Whole(v.into()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole, E> {
                    // Beyond 2^63 a float is out of every field's range anyway.
                    if v.fract() == 0.0 && v.abs() < 9.2e18 {
                        Ok(Whole(v as i128))
                    } else {
                        Err(E::invalid_value(de::Unexpected::Float(v), &self))
                    }
                }
            }
            d.deserialize_any(Visitor)
        }
    }

    fn narrow<T: TryFrom<i128>, E: de::Error>(Whole(v): Whole) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
    }

    pub fn exact<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        narrow(Whole::deserialize(d)?)
    }

    pub fn option<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Whole>::deserialize(d)?
            .map(narrow::<T, D::Error>)
            .transpose()
    }
}

/// `null` read as the field's default, for optional fields whose type has
/// no `None` (`#[serde(default, deserialize_with = "null_as_default")]`).
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_kept_in_the_order_found() {
        let mut check = Check::default();
        check.text("name", "  ", 10);
        check.login("a");
        check.password("short", 10);
        check.region("region", "999999");
        let Invalid(problems) = check.done().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["name", "login", "password", "region"]);
    }

    #[test]
    fn a_clean_check_is_ok_and_text_comes_back_trimmed() {
        let mut check = Check::default();
        assert_eq!(check.text("name", " 示例 ", 10), "示例");
        assert!(check.is_clean());
        assert_eq!(check.done(), Ok(()));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Ask {
        #[serde(deserialize_with = "whole::exact")]
        count: u32,
        #[serde(default, deserialize_with = "whole::option")]
        limit: Option<i64>,
        #[serde(default, deserialize_with = "null_as_default")]
        tags: Vec<String>,
    }

    #[test]
    fn whole_numbers_are_whole_however_written_and_null_is_absent() {
        let ask: Ask =
            serde_json::from_str(r#"{"count": 806.0, "limit": -3, "tags": null}"#).unwrap();
        assert_eq!((ask.count, ask.limit, ask.tags.len()), (806, Some(-3), 0));
        let ask: Ask = serde_json::from_str(r#"{"count": 1, "limit": null}"#).unwrap();
        assert_eq!(ask.limit, None);
        for bad in [
            r#"{"count": 1.5}"#,
            r#"{"count": -1}"#,
            r#"{"count": 4294967296}"#,
            r#"{"count": "1"}"#,
            r#"{"count": 1e300}"#,
        ] {
            assert!(serde_json::from_str::<Ask>(bad).is_err(), "{bad}");
        }
    }
}
