//! Selection across nodes (互联调度): which child nodes a demand goes to,
//! what a child's answer must satisfy, and how the answers of this node and
//! its children merge into one ranking.
//!
//! Every node scores with the same [`ScoreParts`]. A merged answer
//! recomputes only the two parts that depend on what a host is ranked
//! against: the path from the user (over the lines the merging node knows;
//! an ancestor knows the lines between regions) and the price against the
//! cheapest candidate of the merged answer. Availability and load are the
//! holder's reading of its live state and are kept as it sent them; no
//! score is re-scaled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use suanli_protocol::{
    identifier::{Identifier, NodePrefix, ResourceType},
    node::CapacityGroup,
};

use super::{
    Answer, Candidate, Constraint, Demand, Elimination, HostPick, Misses, Network, Scope,
    latency_part, price_part,
};
use crate::{
    accel::{kind_matches, model_matches, vendor_matches},
    check::Invalid,
    i18n::Text,
};

/// What became of one node below the answering one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Asked, and answered in time.
    Answered,
    /// Not asked: its resource reports say it cannot meet the demand.
    Skipped,
    /// Not asked: outside the demand's scope, or excluded by it.
    Excluded,
    /// Asked, and no answer within the deadline.
    Late,
    /// Not linked now.
    Unreachable,
    /// Its answer broke the rules (malformed, or resources outside its
    /// prefix) and was dropped whole.
    Refused,
    /// It answered that it could not answer.
    Failed,
}

impl Outcome {
    /// Whether what the node holds may be missing from the answer.
    pub fn leaves_gap(self) -> bool {
        matches!(
            self,
            Outcome::Late | Outcome::Unreachable | Outcome::Refused | Outcome::Failed
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeOutcome {
    pub node: String,
    pub outcome: Outcome,
    /// Why, for every outcome but answered (in English: a parent node
    /// reads it as it is).
    pub reason: Option<String>,
    /// The reason as words of the catalog, where this node gave it.
    #[serde(skip)]
    pub text: Option<Text>,
    /// How long its answer took, as the node that asked it measured.
    pub elapsed_ms: Option<u64>,
    /// The candidates its subtree offered.
    pub candidates: Option<u64>,
}

impl NodeOutcome {
    pub fn new(node: &NodePrefix, outcome: Outcome, reason: Text) -> Self {
        NodeOutcome {
            node: node.to_string(),
            outcome,
            reason: Some(reason.to_string()),
            text: Some(reason),
            elapsed_ms: None,
            candidates: None,
        }
    }

    /// Says why, in the catalog's words.
    pub fn because(&mut self, reason: Text) {
        self.reason = Some(reason.to_string());
        self.text = Some(reason);
    }
}

/// Whether a demand's scope and exclusions stay inside the subtree of
/// `own`, the answering node.
pub fn check_scope(demand: &Demand, own: &NodePrefix) -> Result<(), Invalid> {
    if let Scope::Node(node) = &demand.scope
        && !own.contains(node)
    {
        return Err(Invalid::one_text(
            "scope",
            Text::new("check.reservations.outside_subtree")
                .arg("target", node)
                .arg("own", own),
        ));
    }
    if let Some(node) = demand
        .exclude_nodes
        .iter()
        .find(|n| !own.contains(n) || *n == own)
    {
        return Err(Invalid::one_text(
            "exclude_nodes",
            Text::new("check.demand.not_below")
                .arg("node", node)
                .arg("own", own),
        ));
    }
    Ok(())
}

/// Whether the answering node's own hosts answer the demand.
pub fn answers_locally(demand: &Demand, own: &NodePrefix) -> bool {
    match &demand.scope {
        Scope::Subtree | Scope::Local => true,
        Scope::Node(node) => node == own,
    }
}

/// The scope a demand has at `child`, or why the child is not asked.
pub fn scope_at(demand: &Demand, child: &NodePrefix) -> Result<Scope, Text> {
    if let Some(excluded) = demand.exclude_nodes.iter().find(|e| e.contains(child)) {
        return Err(Text::new("outcome.reason.excluded").arg("node", excluded));
    }
    match &demand.scope {
        Scope::Local => Err(Text::new("outcome.reason.local")),
        Scope::Subtree => Ok(Scope::Subtree),
        Scope::Node(node) if node == child => Ok(Scope::Subtree),
        Scope::Node(node) if child.contains(node) => Ok(Scope::Node(node.clone())),
        Scope::Node(node) => Err(Text::new("outcome.reason.outside").arg("node", node)),
    }
}

/// Why a child's resource reports (K2) say it cannot meet `demand`; `None`
/// where they say it may. A necessary condition only: enough matching
/// resources free in all (registered, for a demand for installed
/// capacity), wherever they are in its subtree.
pub fn reported_shortfall(groups: &[CapacityGroup], demand: &Demand) -> Option<Text> {
    let resource_type = if demand.accelerator.is_some() {
        ResourceType::AiAccelerator
    } else {
        demand.resource_type.unwrap_or(ResourceType::GeneralCompute)
    };
    // Reports count hosts (C) and accelerators (A); a supercomputing host
    // is a general-compute one running Slurm, which they do not tell apart.
    if !matches!(
        resource_type,
        ResourceType::AiAccelerator | ResourceType::GeneralCompute
    ) {
        return None;
    }
    let code = resource_type.code().to_string();
    let accelerator = demand.accelerator.as_ref();
    let matching: Vec<&CapacityGroup> = groups
        .iter()
        .filter(|g| g.resource_type == code)
        .filter(|g| {
            demand
                .region
                .as_deref()
                .is_none_or(|r| g.region.starts_with(r))
        })
        .filter(|g| {
            // Reports carry the model key, lower-case; another node's
            // casing does not decide a match.
            let key = g.model.to_lowercase();
            accelerator.is_none_or(|a| {
                a.vendor.as_deref().is_none_or(|v| vendor_matches(&key, v))
                    && a.kind.is_none_or(|k| kind_matches(&key, k))
                    && a.model.as_deref().is_none_or(|m| model_matches(&key, m))
            })
        })
        .collect();
    let how = Text::new(if demand.installed {
        "outcome.reason.registered"
    } else {
        "outcome.reason.free"
    });
    if let Some(want) = demand.capacity {
        let precision = want.precision.as_str();
        let reaches: u64 = matching
            .iter()
            .flat_map(|g| g.capacity.iter().filter(|c| c.precision == precision))
            .map(|c| {
                if demand.installed {
                    c.registered_gflops
                } else {
                    c.available_gflops
                }
            })
            .sum();
        return (reaches < want.gflops).then(|| {
            Text::new("outcome.reason.short_tflops")
                .arg("tflops", reaches as f64 / 1000.0)
                .arg("precision", precision)
                .arg_text("how", how)
                .arg("wanted", want.gflops as f64 / 1000.0)
        });
    }
    let count: u64 = matching
        .iter()
        .map(|g| {
            if demand.installed {
                g.registered
            } else {
                g.available
            }
        })
        .sum();
    let wanted = u64::from(demand.hosts) * u64::from(accelerator.map_or(1, |a| a.count));
    (count < wanted).then(|| {
        Text::new(match resource_type {
            ResourceType::AiAccelerator => "outcome.reason.short_accelerators",
            _ => "outcome.reason.short_hosts",
        })
        .arg("count", count)
        .arg_text("how", how)
        .arg("wanted", wanted)
    })
}

/// Why an answer from `child` cannot be taken: a resource, host or node
/// outside its prefix, or figures no scoring makes.
pub fn check_answer(answer: &Answer, child: &NodePrefix, demand: &Demand) -> Result<(), String> {
    if answer.candidates.len() > demand.limit {
        return Err(format!(
            "{} candidates for a limit of {}",
            answer.candidates.len(),
            demand.limit
        ));
    }
    // Written as a node writes them (upper case), so that no spelling of
    // the child's own prefix passes for another node.
    let under = |node: &str| -> Result<NodePrefix, String> {
        match NodePrefix::parse(node) {
            Ok(prefix) if prefix.to_string() != node => {
                Err(format!("node {node:?} is not written as {prefix}"))
            }
            Ok(prefix) if child.contains(&prefix) => Ok(prefix),
            Ok(_) => Err(format!("{node} is outside its prefix {child}")),
            Err(e) => Err(format!("node {node:?}: {e}")),
        }
    };
    let identified = |id: &str| -> Result<(), String> {
        match Identifier::parse(id) {
            Ok(parsed) if child.contains(parsed.node_prefix()) => Ok(()),
            Ok(_) => Err(format!("{id} is outside its prefix {child}")),
            Err(e) => Err(format!("{id:?}: {e}")),
        }
    };
    let unit = |what: &str, v: f64| -> Result<(), String> {
        if (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(format!("{what} {v} is not between 0 and 1"))
        }
    };
    for candidate in &answer.candidates {
        if candidate.hosts.is_empty() || candidate.hosts.len() != demand.hosts as usize {
            return Err(format!(
                "a candidate of {} hosts for a demand of {}",
                candidate.hosts.len(),
                demand.hosts
            ));
        }
        for host in &candidate.hosts {
            under(&host.node)?;
            for id in host.identifier.iter().chain(&host.resources) {
                identified(id)?;
            }
            unit("availability", host.parts.availability)?;
            unit("load", host.parts.load)?;
            // A path the merging node cannot find again is kept as sent.
            if let Some(path) = &host.path
                && !(path.latency_ms.is_finite() && path.latency_ms >= 0.0)
            {
                return Err(format!("a path of {} ms", path.latency_ms));
            }
        }
    }
    for outcome in &answer.nodes {
        if under(&outcome.node)? == *child {
            return Err(format!("an outcome for {child} itself"));
        }
    }
    for miss in &answer.nearest_misses {
        under(&miss.node)?;
        if let Some(id) = &miss.identifier {
            identified(id)?;
        }
    }
    Ok(())
}

/// Sets the node holding every host of an answer made at `node`.
pub fn held_at(answer: &mut Answer, node: &NodePrefix) {
    let node = node.to_string();
    for host in answer
        .candidates
        .iter_mut()
        .flat_map(|c| c.hosts.iter_mut())
    {
        host.node.clone_from(&node);
    }
    for miss in &mut answer.nearest_misses {
        miss.node.clone_from(&node);
    }
}

/// The price of a host's chosen resources as listed, in 0.0001 CNY.
fn price_cny_e4(host: &HostPick) -> Option<i64> {
    let text = host.price_per_hour_cny.as_deref()?;
    crate::price::parse_cny(&serde_json::Value::String(text.to_owned())).ok()
}

/// One ranking of this node's answer (if it answers locally) and each
/// accepted child's: every host's path and price part recomputed here,
/// scored by the one formula, ordered by score and then by node and host,
/// so the same inputs always rank the same. `outcomes` are this node's
/// children's; each child's own (deeper) outcomes follow them.
pub fn merge(
    parts: Vec<Answer>,
    outcomes: Vec<NodeOutcome>,
    network: &Network,
    demand: &Demand,
) -> Answer {
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut eliminated: BTreeMap<Constraint, u64> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut nodes = outcomes;
    let mut merged = Answer {
        candidates: Vec::new(),
        matched_hosts: 0,
        unexamined_hosts: 0,
        considered_hosts: 0,
        eliminated: Vec::new(),
        nearest_misses: Vec::new(),
        groups_short: None,
        groups_short_text: None,
        nodes: Vec::new(),
        partial: false,
    };
    // Counts a child sent are added without trusting them to be small.
    for part in parts {
        merged.matched_hosts = merged.matched_hosts.saturating_add(part.matched_hosts);
        merged.unexamined_hosts = merged
            .unexamined_hosts
            .saturating_add(part.unexamined_hosts);
        merged.considered_hosts = merged
            .considered_hosts
            .saturating_add(part.considered_hosts);
        merged.partial |= part.partial;
        // The words and their catalog form from the same answer.
        if merged.groups_short.is_none() {
            merged.groups_short = part.groups_short;
            merged.groups_short_text = part.groups_short_text;
        }
        for e in part.eliminated {
            let count = eliminated.entry(e.constraint).or_default();
            *count = count.saturating_add(e.hosts);
        }
        candidates.extend(part.candidates);
        misses.extend(part.nearest_misses);
        nodes.extend(part.nodes);
    }
    let cheapest = candidates
        .iter()
        .flat_map(|c| &c.hosts)
        .filter_map(price_cny_e4)
        .min();
    for candidate in &mut candidates {
        for host in &mut candidate.hosts {
            if let Some(user) = demand.user_region.as_deref()
                && let Some(path) = network.path(user, &host.region, demand.min_bandwidth_mbps)
            {
                host.path = Some(path);
            }
            host.parts.latency = host.path.as_ref().map(|p| latency_part(p.latency_ms));
            host.parts.price = cheapest.map(|c| price_part(c, price_cny_e4(host)));
            host.score = host.parts.score();
        }
        candidate.score =
            candidate.hosts.iter().map(|h| h.score).sum::<f64>() / candidate.hosts.len() as f64;
    }
    candidates.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| {
            let (a, b) = (&a.hosts[0], &b.hosts[0]);
            (&a.node, a.host_id).cmp(&(&b.node, b.host_id))
        })
    });
    candidates.truncate(demand.limit);
    if !candidates.is_empty() {
        merged.groups_short = None;
        merged.groups_short_text = None;
    }
    misses.sort_by(|a, b| {
        (a.failed.len(), &a.node, a.host_id).cmp(&(b.failed.len(), &b.node, b.host_id))
    });
    misses.truncate(Misses::KEEP);
    merged.partial |= nodes.iter().any(|n| n.outcome.leaves_gap());
    merged.candidates = candidates;
    merged.eliminated = eliminated
        .into_iter()
        .map(|(constraint, hosts)| Elimination { constraint, hosts })
        .collect();
    merged.nearest_misses = misses;
    merged.nodes = nodes;
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fleet::HostState,
        selection::{Path, ScoreParts, demand},
    };

    fn prefix(p: &str) -> NodePrefix {
        NodePrefix::parse(p).unwrap()
    }

    fn demand(body: serde_json::Value) -> Demand {
        demand::parse(&body).unwrap()
    }

    fn pick(
        node: &str,
        host_id: i64,
        region: &str,
        availability: f64,
        price: Option<&str>,
    ) -> HostPick {
        HostPick {
            node: node.into(),
            host_id,
            identifier: None,
            hostname: format!("h{host_id}"),
            provider: "PRV001".into(),
            region: region.into(),
            industry: "I65".into(),
            state: HostState::Online,
            stale: false,
            freshness_ms: Some(100),
            resources: Vec::new(),
            matching_accelerators: 1,
            path: None,
            rtt_ms: None,
            fabric: None,
            price_per_hour_cny: price.map(Into::into),
            score: 0.0,
            parts: ScoreParts {
                availability,
                latency: None,
                load: 0.5,
                price: None,
            },
        }
    }

    fn answer(picks: Vec<HostPick>) -> Answer {
        Answer {
            matched_hosts: picks.len() as u64,
            unexamined_hosts: 0,
            considered_hosts: picks.len() as u64 + 1,
            candidates: picks
                .into_iter()
                .map(|p| Candidate {
                    score: 0.99,
                    hosts: vec![p],
                    total_gflops: None,
                })
                .collect(),
            eliminated: vec![Elimination {
                constraint: Constraint::Accelerators,
                hosts: 1,
            }],
            nearest_misses: Vec::new(),
            groups_short: None,
            groups_short_text: None,
            nodes: Vec::new(),
            partial: false,
        }
    }

    #[test]
    fn a_scope_outside_the_subtree_is_refused_and_one_inside_narrows_each_child() {
        let own = prefix("CN.32");
        let outside = demand(serde_json::json!({"scope": "CN.44"}));
        assert!(check_scope(&outside, &own).is_err());
        let excluded_self = demand(serde_json::json!({"exclude_nodes": ["CN.32"]}));
        assert!(check_scope(&excluded_self, &own).is_err());
        let deep = demand(serde_json::json!({"scope": "cn.32.i65.x1"}));
        assert!(check_scope(&deep, &own).is_ok());
        assert!(!answers_locally(&deep, &own));
        assert_eq!(
            scope_at(&deep, &prefix("CN.32.I65")),
            Ok(Scope::Node(prefix("CN.32.I65.X1")))
        );
        assert!(scope_at(&deep, &prefix("CN.32.M73")).is_err());
        let one = demand(serde_json::json!({"scope": "CN.32.I65"}));
        assert_eq!(scope_at(&one, &prefix("CN.32.I65")), Ok(Scope::Subtree));
        let local = demand(serde_json::json!({"scope": "local"}));
        assert!(answers_locally(&local, &own));
        assert!(scope_at(&local, &prefix("CN.32.I65")).is_err());
        let without = demand(serde_json::json!({"exclude_nodes": ["CN.32.I65"]}));
        assert!(scope_at(&without, &prefix("CN.32.I65")).is_err());
        assert_eq!(scope_at(&without, &prefix("CN.32.M73")), Ok(Scope::Subtree));
        assert!(demand::parse(&serde_json::json!({"deadline_ms": 60_000})).is_err());
        assert!(demand::parse(&serde_json::json!({"scope": "everywhere"})).is_err());
    }

    #[test]
    fn a_child_is_skipped_only_when_its_reports_show_too_little_of_what_is_asked() {
        let group = |model: &str, region: &str, registered: u64, available: u64| CapacityGroup {
            region: region.into(),
            resource_type: "A".into(),
            model: model.into(),
            registered,
            available,
            ..CapacityGroup::default()
        };
        let groups = vec![
            group("NVIDIA GPU NVIDIA H100 80GB HBM3", "320102", 8, 1),
            group("HUAWEI NPU ASCEND 910B3", "320102", 16, 16),
        ];
        let h100 = |count: u32, extra: serde_json::Value| {
            let mut body = serde_json::json!({"accelerator": {"model": "h100", "count": count}});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            demand(body)
        };
        assert_eq!(
            reported_shortfall(&groups, &h100(1, serde_json::json!({}))),
            None
        );
        let short = reported_shortfall(&groups, &h100(2, serde_json::json!({})))
            .unwrap()
            .to_string();
        assert!(
            short.contains("1 matching accelerators free, 2 wanted"),
            "{short}"
        );
        assert_eq!(
            reported_shortfall(
                &groups,
                &h100(8, serde_json::json!({"availability": "installed"}))
            ),
            None
        );
        assert!(
            reported_shortfall(&groups, &h100(1, serde_json::json!({"region": "44"}))).is_some()
        );
        assert!(reported_shortfall(&groups, &h100(1, serde_json::json!({"hosts": 2}))).is_some());
        let ascend = demand(
            serde_json::json!({"accelerator": {"vendor": "huawei", "model": "910b", "count": 8}}),
        );
        assert_eq!(reported_shortfall(&groups, &ascend), None);
        // No general-compute hosts reported: a CPU demand cannot be met.
        assert!(reported_shortfall(&groups, &demand(serde_json::json!({}))).is_some());
        // Reports do not tell Slurm hosts apart: such a demand is asked.
        assert_eq!(
            reported_shortfall(&groups, &demand(serde_json::json!({"resource_type": "H"}))),
            None
        );
    }

    #[test]
    fn an_answer_naming_anything_outside_the_childs_prefix_is_refused() {
        let child = prefix("CN.32");
        let d = demand(serde_json::json!({}));
        assert_eq!(
            check_answer(
                &answer(vec![pick("CN.32.I65", 1, "320102", 1.0, None)]),
                &child,
                &d
            ),
            Ok(())
        );
        let err = check_answer(
            &answer(vec![pick("CN.44", 1, "440300", 1.0, None)]),
            &child,
            &d,
        )
        .unwrap_err();
        assert!(err.contains("outside its prefix"), "{err}");
        assert!(
            check_answer(
                &answer(vec![pick("CN.32", 1, "320102", 7.0, None)]),
                &child,
                &d
            )
            .is_err()
        );
        assert!(
            check_answer(
                &answer(vec![pick("not a prefix", 1, "320102", 1.0, None)]),
                &child,
                &d
            )
            .is_err()
        );
        let mut foreign = answer(vec![pick("CN.32", 1, "320102", 1.0, None)]);
        foreign.candidates[0].hosts[0].resources =
            vec!["CN.44_PRV001_I65_440300_A_H100-80G_000001_7".into()];
        assert!(check_answer(&foreign, &child, &d).is_err());
        let mut itself = answer(Vec::new());
        itself
            .nodes
            .push(NodeOutcome::new(&child, Outcome::Late, Text::plain("x")));
        assert!(check_answer(&itself, &child, &d).is_err());
        let mut itself_lower = answer(Vec::new());
        itself_lower.nodes.push(NodeOutcome::new(
            &prefix("CN.32.I65"),
            Outcome::Late,
            Text::plain("x"),
        ));
        itself_lower.nodes[0].node = "cn.32".into();
        assert!(
            check_answer(&itself_lower, &child, &d).is_err(),
            "cn.32 is CN.32"
        );
        let mut negative = answer(vec![pick("CN.32", 1, "320102", 1.0, None)]);
        negative.candidates[0].hosts[0].path = Some(Path {
            latency_ms: -1e9,
            bottleneck_mbps: 1,
            segments: Vec::new(),
        });
        assert!(
            check_answer(&negative, &child, &d).is_err(),
            "a negative path would rank first"
        );
        let mut missed = answer(Vec::new());
        missed.nearest_misses.push(super::super::Miss {
            node: "CN.32".into(),
            host_id: 1,
            hostname: "h".into(),
            identifier: Some("CN.44_PRV001_I65_440300_A_H100-80G_000001_7".into()),
            failed: Vec::new(),
        });
        assert!(check_answer(&missed, &child, &d).is_err());
        let many = answer(
            (0..30)
                .map(|i| pick("CN.32", i, "320102", 1.0, None))
                .collect(),
        );
        assert!(
            check_answer(&many, &child, &d).is_err(),
            "30 candidates for a limit of 20"
        );
    }

    #[test]
    fn merged_answers_rank_by_one_score_whatever_the_children_said_and_name_what_is_missing() {
        let network = Network::default();
        let d = demand(serde_json::json!({"user_region": "110000", "limit": 3}));
        let local = answer(vec![pick("CN", 1, "110000", 0.5, Some("10"))]);
        let child = answer(vec![
            pick("CN.32", 1, "320102", 1.0, Some("5")),
            pick("CN.32", 2, "320102", 1.0, None),
        ]);
        let mut deeper = answer(vec![pick("CN.44.I65", 9, "440300", 1.0, Some("5"))]);
        deeper.nodes.push(NodeOutcome::new(
            &prefix("CN.44.I65.X1"),
            Outcome::Late,
            Text::plain("no answer within 900 ms"),
        ));
        let outcomes = vec![
            NodeOutcome {
                node: "CN.32".into(),
                outcome: Outcome::Answered,
                reason: None,
                text: None,
                elapsed_ms: Some(3),
                candidates: Some(2),
            },
            NodeOutcome {
                node: "CN.44".into(),
                outcome: Outcome::Answered,
                reason: None,
                text: None,
                elapsed_ms: Some(4),
                candidates: Some(1),
            },
        ];
        let merge_all = || {
            merge(
                vec![local.clone(), child.clone(), deeper.clone()],
                outcomes.clone(),
                &network,
                &d,
            )
        };
        let merged = merge_all();
        let order: Vec<(String, i64)> = merged
            .candidates
            .iter()
            .map(|c| (c.hosts[0].node.clone(), c.hosts[0].host_id))
            .collect();
        // The same score everywhere: the children's 0.99 is not taken, the
        // path is from the user, the price is against the cheapest (5).
        for c in &merged.candidates {
            let h = &c.hosts[0];
            assert_eq!(c.score, h.parts.score());
            assert!(h.path.is_some(), "{h:?}");
        }
        assert_eq!(merged.candidates.len(), 3, "the limit holds across nodes");
        assert_eq!(order[0].1, 1, "{order:?}");
        let cheap = merged
            .candidates
            .iter()
            .find(|c| c.hosts[0].node == "CN.32" && c.hosts[0].host_id == 1)
            .unwrap();
        assert_eq!(cheap.hosts[0].parts.price, Some(1.0));
        assert_eq!(merged.matched_hosts, 4);
        assert_eq!(merged.eliminated[0].hosts, 3);
        assert!(
            merged.partial,
            "a node late two levels down makes the answer partial"
        );
        assert_eq!(merged.nodes.len(), 3);
        // Deterministic: the same inputs in another order rank the same.
        let again = merge(
            vec![deeper.clone(), child.clone(), local.clone()],
            outcomes.clone(),
            &network,
            &d,
        );
        let order_again: Vec<(String, i64)> = again
            .candidates
            .iter()
            .map(|c| (c.hosts[0].node.clone(), c.hosts[0].host_id))
            .collect();
        assert_eq!(order, order_again);
        assert_eq!(merge_all().candidates.len(), 3);
    }
}
