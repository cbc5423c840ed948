//! Field checks: a request hears about every wrong field at once.
//!
//! One [`Check`] collects [`FieldProblem`]s while a request is read; the
//! operation that read it turns a non-empty collection into its "invalid
//! fields" error, which the API answers with a 422 naming each field.
//! Readers for particular shapes (a demand's JSON) add methods to `Check`
//! in their own modules.

use serde::Serialize;
use suanli_protocol::identifier::RegionCode;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every field that was wrong, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldProblem>);

impl Invalid {
    /// One bad field.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldProblem::new(field, message)])
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
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldProblem::new(field, message));
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
                self.fail(
                    &format!("{prefix}{key}"),
                    format!("unknown field; known: {}", known.join(", ")),
                );
            }
        }
    }

    /// Free text for people to read: trimmed, not empty, at most `max`
    /// characters, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.fail(field, "must not be empty");
        } else if trimmed.chars().count() > max {
            self.fail(field, format!("at most {max} characters"));
        } else if trimmed.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters");
        }
        trimmed.to_owned()
    }

    pub fn login(&mut self, value: &str) -> String {
        let ok = (3..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !ok {
            self.fail("login", "3–64 characters: letters, digits and . _ - @");
        }
        value.to_owned()
    }

    pub fn password(&mut self, value: &str, min_chars: usize) {
        if value.chars().count() < min_chars {
            self.fail("password", format!("at least {min_chars} characters"));
        } else if value.len() > 1024 {
            self.fail("password", "at most 1024 bytes");
        }
    }

    /// A GB/T 2260 region code, normalised; empty if it is not one.
    pub fn region(&mut self, field: &str, value: &str) -> String {
        match RegionCode::parse(value) {
            Ok(r) => r.to_string(),
            Err(e) => {
                self.fail(field, format!("not a GB/T 2260 region code: {e}"));
                String::new()
            }
        }
    }

    /// A line's latency and bandwidth, where given.
    pub fn line_figures(&mut self, latency_ms: Option<f64>, bandwidth_mbps: Option<i64>) {
        if latency_ms.is_some_and(|ms| !(ms.is_finite() && ms > 0.0 && ms < 10_000.0)) {
            self.fail(
                "latency_ms",
                "a positive number of milliseconds below 10000",
            );
        }
        if bandwidth_mbps.is_some_and(|b| !(1..=10_000_000).contains(&b)) {
            self.fail("bandwidth_mbps", "between 1 and 10000000");
        }
    }
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
}
