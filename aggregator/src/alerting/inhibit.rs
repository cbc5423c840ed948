//! Inhibition, as Alertmanager's `inhibit_rules`: while an alert matching
//! a rule's source matchers fires, alerts matching its target matchers
//! with the same values of its `equal` labels are inhibited: shown as
//! such, and not notified.

use std::collections::BTreeMap;

use super::silences::{Matcher, Matchers};

/// An inhibition rule as written in `[[alerts.inhibit_rules]]`, in
/// Alertmanager's words: matchers such as `alertname=host_silent`,
/// `severity=~warning|info`, `alertname!=host_silent`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitSpec {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    /// Labels whose values source and target share (a label both lack is
    /// shared: empty on both sides).
    #[serde(default)]
    pub equal: Vec<String>,
}

/// The node's own rule, in the same form: while a host is silent its other
/// alerts say nothing current (they neither fire nor resolve).
pub fn built_in() -> InhibitSpec {
    InhibitSpec {
        source_matchers: vec!["alertname=host_silent".into()],
        target_matchers: vec!["alertname!=host_silent".into()],
        equal: vec!["provider".into(), "hostname".into()],
    }
}

/// A rule compiled once.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub spec: InhibitSpec,
    pub built_in: bool,
    source: Matchers,
    target: Matchers,
}

impl InhibitRule {
    /// Compiles `spec`; the error names the bad matcher.
    pub fn compile(spec: InhibitSpec, built_in: bool) -> Result<Self, String> {
        let side = |which: &str, texts: &[String]| {
            // Alertmanager reads an empty side as every alert.
            if texts.is_empty() {
                return Ok(Matchers::any());
            }
            let matchers = texts
                .iter()
                .map(|t| parse_matcher(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{which}: {e}"))?;
            Matchers::compile(&matchers).map_err(|e| format!("{which}: {e}"))
        };
        Ok(Self {
            source: side("source_matchers", &spec.source_matchers)?,
            target: side("target_matchers", &spec.target_matchers)?,
            spec,
            built_in,
        })
    }

    fn equal(&self, a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
        self.spec.equal.iter().all(|l| a.get(l) == b.get(l))
    }
}

/// The built-in rules, then the node's own.
pub fn compile_all(specs: &[InhibitSpec]) -> Result<Vec<InhibitRule>, String> {
    let mut rules = vec![InhibitRule::compile(built_in(), true)?];
    for (i, spec) in specs.iter().enumerate() {
        rules.push(InhibitRule::compile(spec.clone(), false).map_err(|e| format!("{i}: {e}"))?);
    }
    Ok(rules)
}

/// `name=value`, `name!=value`, `name=~regex` or `name!~regex`; the value
/// may be quoted, as Alertmanager allows.
fn parse_matcher(text: &str) -> Result<Matcher, String> {
    let at = text
        .find(['=', '!'])
        .ok_or_else(|| format!("{text:?} is not a matcher such as alertname=host_silent"))?;
    let (name, rest) = text.split_at(at);
    let op = ["=~", "!~", "!=", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| format!("{text:?}: use =, !=, =~ or !~"))?;
    let value = rest[op.len()..].trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Ok(Matcher {
        name: name.trim().to_owned(),
        op: op.to_owned(),
        value: value.to_owned(),
    })
}

/// The first of the `firing` alerts (id, labels) that inhibits the alert
/// `target` (id, labels). As in Alertmanager, an alert matching both sides
/// of a rule is not inhibited by another that does too, so a rule whose
/// sides overlap never mutes every alert it names.
pub fn inhibiting<'a>(
    rules: &[InhibitRule],
    firing: impl IntoIterator<Item = (i64, &'a BTreeMap<String, String>)> + Clone,
    target: (i64, &BTreeMap<String, String>),
) -> Option<i64> {
    let (target_id, labels) = target;
    rules
        .iter()
        .filter(|rule| rule.target.matches(labels))
        .find_map(|rule| {
            let both = rule.source.matches(labels);
            firing.clone().into_iter().find_map(|(id, source)| {
                (id != target_id
                    && rule.source.matches(source)
                    && rule.equal(source, labels)
                    && !(both && rule.target.matches(source)))
                .then_some(id)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_silent_host_inhibits_its_own_alerts_only() {
        let rules = compile_all(&[]).expect("the built-in rule compiles");
        let silent = labels(&[
            ("alertname", "host_silent"),
            ("provider", "P00001"),
            ("hostname", "gpu-07"),
        ]);
        let xid = labels(&[
            ("alertname", "gpu_xid"),
            ("provider", "P00001"),
            ("hostname", "gpu-07"),
        ]);
        let elsewhere = labels(&[
            ("alertname", "gpu_xid"),
            ("provider", "P00002"),
            ("hostname", "gpu-07"),
        ]);
        let firing = [(1, &silent), (2, &xid), (3, &elsewhere)];
        assert_eq!(inhibiting(&rules, firing, (2, &xid)), Some(1));
        // Another provider's host of the same name is not that host.
        assert_eq!(inhibiting(&rules, firing, (3, &elsewhere)), None);
        assert_eq!(inhibiting(&rules, firing, (1, &silent)), None);
        // Once the host reports again, nothing holds its alerts.
        assert_eq!(inhibiting(&rules, [(2, &xid)], (2, &xid)), None);
    }

    #[test]
    fn rules_follow_alertmanager() {
        let spec = InhibitSpec {
            source_matchers: vec!["severity=critical".into()],
            target_matchers: vec![r#"severity=~"warning|info""#.into()],
            equal: vec!["hostname".into(), "rack".into()],
        };
        let rules = compile_all(&[spec]).expect("valid");
        let critical = labels(&[("severity", "critical"), ("hostname", "a")]);
        let warning = labels(&[("severity", "warning"), ("hostname", "a")]);
        let racked = labels(&[("severity", "warning"), ("hostname", "a"), ("rack", "r1")]);
        let firing = [(1, &critical), (2, &warning), (3, &racked)];
        // `rack` absent on both sides counts as equal; present on one, not.
        assert_eq!(inhibiting(&rules, firing, (2, &warning)), Some(1));
        assert_eq!(inhibiting(&rules, firing, (3, &racked)), None);
        assert_eq!(inhibiting(&rules, firing, (1, &critical)), None);

        // Overlapping sides: an alert matching both is not muted by its twin.
        let overlap = InhibitSpec {
            source_matchers: vec!["alertname=~gpu_.*".into()],
            target_matchers: vec!["alertname=~gpu_.*".into()],
            equal: vec!["hostname".into()],
        };
        let rules = compile_all(&[overlap]).expect("valid");
        let a = labels(&[("alertname", "gpu_xid"), ("hostname", "h")]);
        let b = labels(&[("alertname", "gpu_power"), ("hostname", "h")]);
        assert_eq!(inhibiting(&rules, [(1, &a), (2, &b)], (1, &a)), None);
    }

    #[test]
    fn bad_rules_name_the_bad_matcher() {
        let bad = |source: &str| {
            compile_all(&[InhibitSpec {
                source_matchers: vec![source.into()],
                target_matchers: vec!["severity=warning".into()],
                equal: vec![],
            }])
            .expect_err(source)
        };
        assert!(
            bad("severity").contains("not a matcher"),
            "{}",
            bad("severity")
        );
        assert!(
            bad("severity=~(").starts_with("0: source_matchers"),
            "{}",
            bad("severity=~(")
        );
        assert!(bad("=critical").contains("name"), "{}", bad("=critical"));
    }
}
