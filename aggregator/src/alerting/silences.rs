//! Silences: Alertmanager's label matchers, compiled once.

use std::collections::BTreeMap;

/// Matchers in one silence, and characters in a matcher's label name and
/// value: sized so that any silence fits the API's body limit.
pub const MAX_MATCHERS: usize = 10;
pub const MAX_MATCHER_NAME_CHARS: usize = 64;
pub const MAX_MATCHER_VALUE_CHARS: usize = 256;

/// One label matcher of a silence, as Alertmanager writes them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    /// `=`, `!=`, `=~` or `!~` (regular expressions match the whole value).
    #[serde(default = "equal")]
    pub op: String,
}

fn equal() -> String {
    "=".into()
}

/// Matchers compiled once.
#[derive(Debug, Clone)]
pub struct Matchers(Vec<(String, MatchOp)>);

#[derive(Debug, Clone)]
enum MatchOp {
    Eq(String),
    NotEq(String),
    Re(regex::Regex),
    NotRe(regex::Regex),
}

impl Matchers {
    /// No matcher: every alert matches (an inhibition rule's side left empty).
    pub fn any() -> Self {
        Self(Vec::new())
    }

    /// Compiles matchers; the error names the bad one.
    pub fn compile(matchers: &[Matcher]) -> Result<Self, String> {
        if matchers.is_empty() {
            return Err("at least one matcher".into());
        }
        let mut out = Vec::new();
        for m in matchers {
            if m.name.is_empty() || m.name.chars().count() > MAX_MATCHER_NAME_CHARS {
                return Err(format!(
                    "a matcher's name is 1 to {MAX_MATCHER_NAME_CHARS} characters"
                ));
            }
            if m.value.chars().count() > MAX_MATCHER_VALUE_CHARS {
                return Err(format!(
                    "a matcher's value is at most {MAX_MATCHER_VALUE_CHARS} characters"
                ));
            }
            let re = || {
                regex::RegexBuilder::new(&format!("^(?:{})$", m.value))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("matcher {}: {e}", m.name))
            };
            let op = match m.op.as_str() {
                "=" => MatchOp::Eq(m.value.clone()),
                "!=" => MatchOp::NotEq(m.value.clone()),
                "=~" => MatchOp::Re(re()?),
                "!~" => MatchOp::NotRe(re()?),
                other => return Err(format!("matcher operator {other:?}: use =, !=, =~ or !~")),
            };
            out.push((m.name.clone(), op));
        }
        Ok(Self(out))
    }

    /// Do all matchers hold for these labels (a missing label is empty)?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(name, op)| {
            let v = labels.get(name).map_or("", String::as_str);
            match op {
                MatchOp::Eq(x) => v == x,
                MatchOp::NotEq(x) => v != x,
                MatchOp::Re(r) => r.is_match(v),
                MatchOp::NotRe(r) => !r.is_match(v),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_follow_alertmanager() {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), "gpu_xid".to_owned()),
            ("hostname".to_owned(), "gpu-07".to_owned()),
        ]);
        let m = |name: &str, op: &str, value: &str| Matcher {
            name: name.into(),
            op: op.into(),
            value: value.into(),
        };
        let compiled = |ms: Vec<Matcher>| Matchers::compile(&ms).expect("valid");
        assert!(compiled(vec![m("alertname", "=", "gpu_xid")]).matches(&labels));
        assert!(compiled(vec![m("hostname", "=~", "gpu-0.")]).matches(&labels));
        assert!(!compiled(vec![m("hostname", "=~", "gpu")]).matches(&labels));
        assert!(compiled(vec![m("rack", "!=", "a")]).matches(&labels));
        assert!(
            !compiled(vec![
                m("hostname", "!~", "gpu-.*"),
                m("alertname", "=", "gpu_xid")
            ])
            .matches(&labels)
        );
        assert!(Matchers::compile(&[]).is_err());
        assert!(Matchers::compile(&[m("a", "=~", "(")]).is_err());
        assert!(Matchers::compile(&[m("a", "<", "1")]).is_err());
    }
}
