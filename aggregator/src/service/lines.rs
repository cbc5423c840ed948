//! Dedicated lines (专线): line providers register them between regions and
//! change their state and figures; selection routes over the open ones from
//! the moment they change.

use serde::Deserialize;
use tracing::warn;

use super::{Actor, ServiceError, audit, own_provider};
use crate::{
    auth::{Principal, Role},
    check::{Check, FieldProblem, Invalid},
    i18n::Text,
    node::{Node, NodeEvent},
    store::{Line, LineChange, NewLine, StoreError},
};

/// What a line may be: open lines carry selection's paths.
pub const LINE_STATES: &[&str] = &["open", "maintenance", "closed"];

/// A line to register.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub name: String,
    pub from_region: String,
    pub to_region: String,
    pub latency_ms: f64,
    #[serde(deserialize_with = "crate::check::whole::exact")]
    pub bandwidth_mbps: i64,
    #[serde(default)]
    pub price_per_mbps_month: Option<String>,
    /// Whose line it is; only an administrator names another provider.
    #[serde(default)]
    pub provider: Option<String>,
}

/// What changes of a line; at least one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineUpdate {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default, deserialize_with = "crate::check::whole::option")]
    pub bandwidth_mbps: Option<i64>,
    #[serde(default)]
    pub price_per_mbps_month: Option<String>,
}

/// Registers a line: an administrator for any line provider, a line
/// provider for itself.
pub async fn create(node: &Node, who: &Principal, r: &LineRequest) -> Result<Line, ServiceError> {
    let mut check = Check::default();
    let name = check.text("name", &r.name, 200);
    let from_region = check.region("from_region", &r.from_region);
    let to_region = check.region("to_region", &r.to_region);
    check.line_figures(Some(r.latency_ms), Some(r.bandwidth_mbps));
    let price = r
        .price_per_mbps_month
        .as_deref()
        .map(|p| check.text("price_per_mbps_month", p, 50));
    let store = &node.store;
    let provider_id = match (who.role, &r.provider) {
        (Role::Admin, Some(code)) => match store.provider(code).await {
            Ok(p) => Some(p.id),
            Err(StoreError::NoProvider(_)) => {
                check.fail_text(
                    "provider",
                    Text::new("check.lines.no_provider").arg("code", code),
                );
                None
            }
            Err(e) => return Err(e.into()),
        },
        (Role::Admin, None) => {
            check.fail_text("provider", Text::new("check.lines.provider_needed"));
            None
        }
        (_, Some(_)) => {
            return Err(ServiceError::Forbidden(Text::new(
                "error.lines.register_own",
            )));
        }
        (_, None) => Some(own_provider(who)?),
    };
    check.done()?;
    let Some(provider_id) = provider_id else {
        return Err(ServiceError::Invalid(Invalid(vec![FieldProblem::text(
            "provider",
            Text::new("check.lines.provider_needed"),
        )])));
    };
    let line = store
        .create_line(&NewLine {
            provider_id,
            name,
            from_region,
            to_region,
            latency_us: (r.latency_ms * 1000.0).round() as i64,
            bandwidth_mbps: r.bandwidth_mbps,
            price_per_mbps_month: price,
        })
        .await?;
    lines_changed(node).await;
    audit::record(
        store,
        &Actor::of(who),
        "line.create",
        &format!("line/{}", line.id),
        &format!("{} → {}", line.from_region, line.to_region),
    )
    .await;
    Ok(line)
}

/// Changes a line: an administrator any, a line provider its own.
pub async fn update(
    node: &Node,
    who: &Principal,
    id: i64,
    r: &LineUpdate,
) -> Result<Line, ServiceError> {
    let store = &node.store;
    let owner = store
        .line_owner(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(Text::new("error.lines.none").arg("id", id)))?;
    if who.role != Role::Admin && who.provider_id != Some(owner) {
        return Err(ServiceError::Forbidden(Text::new("error.lines.change_own")));
    }
    let mut check = Check::default();
    if let Some(s) = &r.state
        && !LINE_STATES.contains(&s.as_str())
    {
        check.fail_text(
            "state",
            Text::new("check.lines.state").arg("states", LINE_STATES.join(", ")),
        );
    }
    check.line_figures(r.latency_ms, r.bandwidth_mbps);
    let price = r
        .price_per_mbps_month
        .as_deref()
        .map(|p| check.text("price_per_mbps_month", p, 50));
    if r.state.is_none()
        && r.latency_ms.is_none()
        && r.bandwidth_mbps.is_none()
        && r.price_per_mbps_month.is_none()
    {
        check.fail_text("body", Text::new("check.lines.nothing_changes"));
    }
    check.done()?;
    let line = store
        .update_line(
            id,
            &LineChange {
                state: r.state.clone(),
                latency_us: r.latency_ms.map(|ms| (ms * 1000.0).round() as i64),
                bandwidth_mbps: r.bandwidth_mbps,
                price_per_mbps_month: price,
            },
        )
        .await?;
    lines_changed(node).await;
    audit::record(
        store,
        &Actor::of(who),
        "line.update",
        &format!("line/{id}"),
        &format!(
            "state {} · {:.1} ms · {} Mb/s",
            line.state,
            line.latency_us as f64 / 1000.0,
            line.bandwidth_mbps
        ),
    )
    .await;
    Ok(line)
}

/// Selection routes over the lines as stored now; subscribers hear of it.
async fn lines_changed(node: &Node) {
    if let Err(e) = node.routing.reload(&node.store).await {
        warn!(error = %e, "could not reload the network after lines changed");
    }
    node.publish(NodeEvent::LinesChanged);
}
