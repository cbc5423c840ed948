//! The 1 + M + N hierarchy's rules: who may join whom, which prefix a
//! child gets, what a child may file, and what this node files of itself.
//!
//! A national node is the root of the prefix tree (`CN`). It assigns each
//! regional node a province segment (`CN.32`) and may take industry nodes
//! directly (`CN.I65`); a regional node assigns its industry nodes an
//! industry segment under its own (`CN.32.I65`). An industry node takes no
//! children. Roles strictly descend, so no node can join itself or one of
//! its descendants: the tree has no cycle by construction.

use suanli_protocol::{
    identifier::{Identifier, Industry, NodePrefix, RegionCode},
    node::{Filing, LiveState, Role},
};

use crate::{alerting, fleet::Fleet, health::Health, i18n::Text};

/// A parent shows a child `unknown` after this long without a heartbeat.
pub const HEARTBEAT_GRACE_MS: u64 = 30_000;
/// How often a linked child says it is alive.
pub const HEARTBEAT_INTERVAL_MS: u64 = 10_000;

/// Resource states a filing may carry.
pub const FILING_STATES: [&str; 3] = ["active", "revoked", "superseded"];

/// Whether a node of role `parent` takes a child of role `child`.
pub fn may_adopt(parent: Role, child: Role) -> Result<(), Text> {
    match (parent, child) {
        (Role::National, Role::Regional | Role::Industry) | (Role::Regional, Role::Industry) => {
            Ok(())
        }
        (Role::Industry, _) => Err(Text::new("check.hierarchy.industry_leaf")),
        (_, Role::National) => Err(Text::new("check.hierarchy.national_root")),
        (p, c) => Err(Text::new("check.hierarchy.ranks")
            .arg_text("parent", role_text(p))
            .arg_text("child", role_text(c))),
    }
}

/// A node's role in the reader's words (the English is the role's name).
fn role_text(role: Role) -> Text {
    Text::new(match role {
        Role::National => "national",
        Role::Regional => "regional",
        Role::Industry => "industry_node",
    })
}

/// Checks what a join token names: a province code for a regional node,
/// an industry for an industry node. Returns the canonical segment.
pub fn segment_for(role: Role, text: &str) -> Result<String, Text> {
    let text = text.trim();
    match role {
        Role::Regional => {
            let ok = text.len() == 2
                && text.bytes().all(|b| b.is_ascii_digit())
                && RegionCode::parse(&format!("{text}0000")).is_ok();
            if ok {
                Ok(text.to_owned())
            } else {
                Err(Text::new("check.hierarchy.province").arg("text", text))
            }
        }
        // The identifier crate words what is wrong with an industry.
        Role::Industry => Industry::parse(text)
            .map(|i| i.to_string())
            .map_err(Text::plain),
        Role::National => Err(Text::new("check.hierarchy.no_national_token")),
    }
}

/// The prefix a parent assigns a child: its own with the child's segment.
pub fn child_prefix(parent: &NodePrefix, segment: &str) -> Result<NodePrefix, String> {
    parent.child(segment).map_err(|e| e.to_string())
}

/// Why one filing was refused; the rest of its batch is still stored.
pub fn check_filing(filing: &Filing, child_prefix: &NodePrefix) -> Result<(), String> {
    let id = Identifier::parse(&filing.identifier)
        .map_err(|e| format!("{:?}: {e}", filing.identifier))?;
    if !child_prefix.contains(id.node_prefix()) {
        return Err(format!(
            "{} is outside the child's prefix {child_prefix}",
            filing.identifier
        ));
    }
    if filing.revision == 0 {
        return Err(format!("{}: revision 0", filing.identifier));
    }
    if !FILING_STATES.contains(&filing.state.as_str()) {
        return Err(format!(
            "{}: unknown state {:?}",
            filing.identifier, filing.state
        ));
    }
    if filing.resource_type != id.resource_type().code().to_string() {
        return Err(format!(
            "{}: resource type {:?} differs from the identifier's",
            filing.identifier, filing.resource_type
        ));
    }
    if !filing.superseded_by.is_empty() {
        let by = Identifier::parse(&filing.superseded_by)
            .map_err(|e| format!("superseded by {:?}: {e}", filing.superseded_by))?;
        if !child_prefix.contains(by.node_prefix()) {
            return Err(format!(
                "{} is outside the child's prefix {child_prefix}",
                filing.superseded_by
            ));
        }
    }
    Ok(())
}

/// The same identifier reissued under `prefix`: a node that joins a parent
/// keeps every field but the prefix (and so the check character).
pub fn reprefix(identifier: &str, prefix: &NodePrefix) -> Option<String> {
    let id = Identifier::parse(identifier).ok()?;
    let reissued = Identifier::new(
        prefix.clone(),
        id.owner().clone(),
        id.industry().clone(),
        id.location().clone(),
        id.resource_type(),
        id.spec().clone(),
        id.serial().clone(),
    );
    Some(reissued.to_string())
}

/// What this node files of its own resources: each one's description as
/// the catalog has it, without a revision (the library assigns revisions
/// when a description changes).
pub fn describe(fleet: &Fleet) -> Vec<Filing> {
    let mut out = Vec::with_capacity(fleet.resources.len());
    for host in fleet.hosts.values() {
        for r in &host.resources {
            let Ok(id) = Identifier::parse(&r.identifier) else {
                continue;
            };
            out.push(Filing {
                identifier: r.identifier.clone(),
                revision: 0,
                resource_type: id.resource_type().code().to_string(),
                owner_code: host.owner.code.clone(),
                provider_name: host.owner.name.clone(),
                provider_uscc: host.owner.uscc.clone(),
                industry: id.industry().to_string(),
                region: id.location().to_string(),
                spec: id.spec().to_string(),
                model: r.model.clone(),
                memory_bytes: r.memory_bytes,
                logical_cpus: r
                    .gpu_uuid
                    .is_none()
                    .then(|| host.inventory.as_ref().map(|i| i.cpu.logical_cpus))
                    .flatten(),
                state: if host.revoked { "revoked" } else { "active" }.into(),
                superseded_by: String::new(),
                changed_at_unix_ms: 0,
            });
        }
    }
    out
}

/// A resource's live state as this node sees it at `now_ms`, for an
/// ancestor asking over the link; `None` when it is not one of this node's
/// own resources.
pub fn live_state(
    fleet: &Fleet,
    identifier: &str,
    now_ms: u64,
    answered_by: &str,
) -> Option<LiveState> {
    let r = fleet
        .by_identifier
        .get(identifier)
        .and_then(|id| fleet.resources.get(id))?;
    let host = fleet.hosts.get(&r.host_id)?;
    let (health, _) = alerting::resource_health(host, r, now_ms);
    let (utilization_percent, memory_used_bytes, memory_total_bytes) = match &r.gpu_uuid {
        Some(uuid) => host.gpu_vitals(uuid).map_or((None, None, None), |g| {
            (
                g.utilization_percent.map(f64::from),
                g.memory_used_bytes,
                g.memory_total_bytes,
            )
        }),
        None => host.vitals.as_deref().map_or((None, None, None), |v| {
            (
                v.cpu_utilization_percent,
                v.memory_used_bytes,
                v.memory_total_bytes,
            )
        }),
    };
    Some(LiveState {
        host_state: host.state(now_ms).as_str().into(),
        health: match health {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Critical => "critical",
            Health::Unknown => "unknown",
        }
        .into(),
        free_now: fleet.free_now(r, now_ms),
        last_seen_unix_ms: host.last_seen_ms,
        utilization_percent,
        memory_used_bytes,
        memory_total_bytes,
        answered_by: answered_by.into(),
    })
}

/// Whether two descriptions differ in what a filing says (not in its
/// revision or when it changed).
pub fn same_description(a: &Filing, b: &Filing) -> bool {
    let strip = |f: &Filing| Filing {
        revision: 0,
        changed_at_unix_ms: 0,
        ..f.clone()
    };
    strip(a) == strip(b)
}

/// A child's link as its parent's staff see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// A heartbeat within the grace period.
    Connected,
    /// Approved, but silent for longer than the grace (or never heard).
    Unknown,
    Pending,
    Rejected,
    Revoked,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connected => "connected",
            LinkState::Unknown => "unknown",
            LinkState::Pending => "pending",
            LinkState::Rejected => "rejected",
            LinkState::Revoked => "revoked",
        }
    }

    /// From the stored request state and the last heartbeat, at `now_ms`.
    pub fn of(state: &str, last_heartbeat_ms: Option<u64>, now_ms: u64) -> LinkState {
        match state {
            "pending" => LinkState::Pending,
            "rejected" => LinkState::Rejected,
            "revoked" => LinkState::Revoked,
            _ => match last_heartbeat_ms {
                Some(at) if now_ms.saturating_sub(at) <= HEARTBEAT_GRACE_MS => LinkState::Connected,
                _ => LinkState::Unknown,
            },
        }
    }
}

/// Where a question about `identifier` belongs, seen from a node with
/// `own` prefix and these children's prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referral {
    /// In this node's subtree: the library answers (or nobody filed it).
    Here,
    /// Below this node, under a child that holds the prefix.
    Child(String),
    /// Outside this node's subtree: its parent's tree, or nobody known.
    Outside { owner_prefix: String },
}

/// Decides [`Referral`] for a parsed identifier.
pub fn refer(own: &NodePrefix, children: &[NodePrefix], id: &Identifier) -> Referral {
    let prefix = id.node_prefix();
    if prefix == own {
        return Referral::Here;
    }
    if own.contains(prefix) {
        return match children.iter().find(|c| c.contains(prefix)) {
            Some(c) => Referral::Child(c.to_string()),
            None => Referral::Here,
        };
    }
    Referral::Outside {
        owner_prefix: prefix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> NodePrefix {
        NodePrefix::parse(text).unwrap()
    }

    #[test]
    fn roles_descend_so_the_tree_has_no_cycle() {
        assert!(may_adopt(Role::National, Role::Regional).is_ok());
        assert!(may_adopt(Role::National, Role::Industry).is_ok());
        assert!(may_adopt(Role::Regional, Role::Industry).is_ok());
        for (p, c) in [
            (Role::Industry, Role::Regional),
            (Role::Industry, Role::Industry),
            (Role::Regional, Role::Regional),
            (Role::Regional, Role::National),
            (Role::National, Role::National),
        ] {
            assert!(may_adopt(p, c).is_err(), "{p:?} took {c:?}");
        }
    }

    #[test]
    fn segments_are_province_codes_or_industries() {
        assert_eq!(segment_for(Role::Regional, " 32 ").unwrap(), "32");
        assert!(segment_for(Role::Regional, "99").is_err());
        assert!(segment_for(Role::Regional, "320000").is_err());
        assert_eq!(segment_for(Role::Industry, "i65").unwrap(), "I65");
        assert!(segment_for(Role::Industry, "I99").is_err());
        assert!(segment_for(Role::National, "32").is_err());
        let regional = child_prefix(&NodePrefix::national(), "32").unwrap();
        assert_eq!(regional.to_string(), "CN.32");
        assert_eq!(
            child_prefix(&regional, "I65").unwrap().to_string(),
            "CN.32.I65"
        );
    }

    fn filing(identifier: &str) -> Filing {
        let id = Identifier::parse(identifier).unwrap();
        Filing {
            identifier: identifier.into(),
            revision: 1,
            resource_type: id.resource_type().code().to_string(),
            state: "active".into(),
            ..Default::default()
        }
    }

    fn mint(prefix_text: &str, serial: &str) -> String {
        let id = Identifier::parse("CN.11_PRV001_I65_110108_A_H100-80G_000123_T").unwrap();
        Identifier::new(
            prefix(prefix_text),
            id.owner().clone(),
            id.industry().clone(),
            id.location().clone(),
            id.resource_type(),
            id.spec().clone(),
            suanli_protocol::identifier::Serial::parse(serial).unwrap(),
        )
        .to_string()
    }

    #[test]
    fn a_child_files_only_under_its_prefix() {
        let child = prefix("CN.32.I65");
        assert!(check_filing(&filing(&mint("CN.32.I65", "1")), &child).is_ok());
        assert!(check_filing(&filing(&mint("CN.32.I65.X1", "1")), &child).is_ok());
        let outside = check_filing(&filing(&mint("CN.32", "1")), &child).unwrap_err();
        assert!(outside.contains("outside"), "{outside}");
        assert!(check_filing(&filing(&mint("CN.33.I65", "1")), &child).is_err());
        let mut zero = filing(&mint("CN.32.I65", "1"));
        zero.revision = 0;
        assert!(check_filing(&zero, &child).is_err());
        let mut state = filing(&mint("CN.32.I65", "1"));
        state.state = "gone".into();
        assert!(check_filing(&state, &child).is_err());
        let mut kind = filing(&mint("CN.32.I65", "1"));
        kind.resource_type = "C".into();
        assert!(check_filing(&kind, &child).is_err());
        let garbage = Filing {
            identifier: "not an identifier".into(),
            ..filing(&mint("CN.32.I65", "1"))
        };
        assert!(check_filing(&garbage, &child).is_err());
    }

    #[test]
    fn reprefixing_keeps_every_field_but_the_prefix() {
        let old = mint("CN.LOCAL", "000123");
        let new = reprefix(&old, &prefix("CN.32.I65")).unwrap();
        assert!(new.starts_with("CN.32.I65_PRV001_I65_110108_A_H100-80G_000123_"));
        assert!(Identifier::parse(&new).is_ok());
        assert_eq!(reprefix("nonsense", &prefix("CN.32")), None);
    }

    #[test]
    fn a_child_is_unknown_after_thirty_silent_seconds() {
        assert_eq!(
            LinkState::of("approved", Some(1_000), 31_000),
            LinkState::Connected
        );
        assert_eq!(
            LinkState::of("approved", Some(1_000), 31_001),
            LinkState::Unknown
        );
        assert_eq!(LinkState::of("approved", None, 0), LinkState::Unknown);
        assert_eq!(LinkState::of("pending", None, 0), LinkState::Pending);
        assert_eq!(LinkState::of("revoked", Some(5), 5), LinkState::Revoked);
    }

    #[test]
    fn referral_names_who_holds_a_prefix() {
        let own = prefix("CN.32");
        let children = [prefix("CN.32.I65")];
        let at = |p: &str| Identifier::parse(&mint(p, "1")).unwrap();
        assert_eq!(refer(&own, &children, &at("CN.32")), Referral::Here);
        assert_eq!(
            refer(&own, &children, &at("CN.32.I65")),
            Referral::Child("CN.32.I65".into())
        );
        assert_eq!(refer(&own, &children, &at("CN.32.M73")), Referral::Here);
        assert_eq!(
            refer(&own, &children, &at("CN.11")),
            Referral::Outside {
                owner_prefix: "CN.11".into()
            }
        );
    }
}
