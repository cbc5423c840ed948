//! Market monitoring (市场监测): this node's own report each period, and
//! the subtree's figures of a period, summed from every report of it (this
//! node's and each descendant's), with what is missing named.

use std::collections::{BTreeMap, BTreeSet};

use suanli_protocol::{
    identifier::NodePrefix,
    node::{CapacityGroup, Figure, MarketReport},
};

use super::ServiceError;
use crate::{
    market::{
        self, APPLICATION_STREAM, HOURLY_MS, Headline, PLATFORM_STREAM, RESOURCE_PERIOD_MS,
        SCHEDULING_STREAM, Scale,
    },
    node::{Node, NodeEvent},
    store::{Kept, ReportRefusal},
};

/// How far back an origin's reports make it part of the subtree: one that
/// reported in the hour before a period and not in it is missing from it.
const EXPECTED_WITHIN_MS: u64 = 3_600_000;
/// Refusals shown beside a period: those of the last day.
const REFUSALS_SHOWN_MS: u64 = 86_400_000;

/// Computes and stores this node's own resource report for the period `now_ms`
/// falls in, unless `last` (the period last reported) is that one. Returns
/// the period reported.
pub async fn report_own(node: &Node, last: Option<u64>, now_ms: u64) -> Result<u64, ServiceError> {
    let start = market::period_start(now_ms, RESOURCE_PERIOD_MS);
    if last == Some(start) {
        return Ok(start);
    }
    let report = {
        let fleet = node.catalog.read();
        market::resource_report(&fleet, &node.prefix(), start, now_ms)
    };
    if node.store.store_own_report(&report).await? == Kept::Stored {
        node.publish(NodeEvent::ReportsStored);
    }
    Ok(start)
}

/// Computes and stores this node's own report of each hourly stream
/// (platform, scheduling, application) for the last whole hour before
/// `now_ms`, once per prefix: `last` holds the hour each stream last
/// reported and under which prefix (a node that just joined its parent
/// reports that hour again, under the prefix the parent knows).
pub async fn report_hourly(
    node: &Node,
    last: &mut BTreeMap<&'static str, (String, u64)>,
    now_ms: u64,
) -> Result<(), ServiceError> {
    let start = market::period_start(now_ms, HOURLY_MS).saturating_sub(HOURLY_MS);
    let end = start + HOURLY_MS;
    let origin = node.prefix().to_string();
    for stream in [PLATFORM_STREAM, SCHEDULING_STREAM, APPLICATION_STREAM] {
        if last
            .get(stream)
            .is_some_and(|(o, s)| *o == origin && *s == start)
        {
            continue;
        }
        let figures = match stream {
            PLATFORM_STREAM => {
                market::platform_figures(&node.store.platform_hour(&origin, start, end).await?)
            }
            SCHEDULING_STREAM => {
                let facts: Vec<_> = node
                    .store
                    .selections_between(start, end)
                    .await?
                    .iter()
                    .map(|s| {
                        market::SelectionFact::of(&s.demand, &s.chosen, s.candidates, s.elapsed_us)
                    })
                    .collect();
                market::scheduling_figures(&facts)
            }
            _ => market::application_figures(node.store.active_api_keys(end).await?),
        };
        let report = MarketReport {
            origin: origin.clone(),
            stream: stream.to_owned(),
            period_start_ms: start,
            period_ms: HOURLY_MS,
            figures,
            ..MarketReport::default()
        };
        if node.store.store_own_report(&report).await? == Kept::Stored {
            node.publish(NodeEvent::ReportsStored);
        }
        last.insert(stream, (origin.clone(), start));
    }
    Ok(())
}

/// How long after a period ends its rollup waits: the last report of the
/// period before (made every 5 s, hourly ones on the hour) is stored by then.
pub const ROLLUP_SETTLE_MS: u64 = 60_000;

/// Makes this node's own rollups (the hour of the resource stream, the day
/// of every stream) of each period that is over, has reports to sum, and
/// has no rollup yet, looking back as far as the reports summed are kept:
/// a node that was down when a period ended catches up. Returns how many
/// were stored.
pub async fn roll_up(node: &Node, now_ms: u64) -> Result<u64, ServiceError> {
    let origin = node.prefix().to_string();
    let store = &node.store;
    let mut stored = 0;
    for (stream, _) in market::STREAMS {
        // Shorter periods first: a day sums the hours just rolled up.
        for &period in market::periods_of(stream) {
            let Some(from) = market::rolled_up_from(stream, period) else {
                continue;
            };
            let since = now_ms.saturating_sub(market::retention_ms(from));
            let sources = store
                .own_report_periods(&origin, stream, from, period, since, now_ms)
                .await?;
            let made = store
                .own_report_periods(&origin, stream, period, period, since, now_ms)
                .await?;
            for &start in sources.difference(&made) {
                if start + period + ROLLUP_SETTLE_MS > now_ms {
                    continue;
                }
                let parts = store
                    .own_reports(&origin, stream, from, start, start + period)
                    .await?;
                let report = market::rollup(&origin, stream, period, start, &parts);
                if store.store_own_report(&report).await? == Kept::Stored {
                    stored += 1;
                }
            }
        }
    }
    if stored > 0 {
        node.publish(NodeEvent::ReportsStored);
    }
    Ok(stored)
}

/// The longest trend asked for: as long as reports are kept.
pub const MAX_TREND_HOURS: u64 = 72;

/// The subtree's capacity over the last `hours`, a point every five
/// minutes (every thirtieth resource period).
pub async fn trend(
    node: &Node,
    hours: u64,
    now_ms: u64,
) -> Result<Vec<market::TrendPoint>, ServiceError> {
    const STEP_MS: u64 = 300_000;
    let hours = hours.clamp(1, MAX_TREND_HOURS);
    let to = market::period_start(now_ms, STEP_MS);
    let reports = node
        .store
        .resource_reports_every(STEP_MS, to.saturating_sub(hours * HOURLY_MS), to + 1)
        .await?;
    Ok(market::trend(&reports))
}

/// One origin's part of a period.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OriginPart {
    pub origin: String,
    /// The child it came through; absent for this node's own.
    pub via: Option<String>,
    pub received_at_ms: u64,
    pub headline: Headline,
    pub resources: BTreeMap<String, u64>,
}

/// A period's figures over this node's subtree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubtreeReport {
    pub node: String,
    pub stream: String,
    pub period_ms: u64,
    pub period_start_ms: u64,
    /// Every origin that reported in the hour before reported this period.
    pub complete: bool,
    /// Origins that reported in the hour before and not this period.
    pub missing: Vec<String>,
    pub origins: Vec<OriginPart>,
    /// The capacity table versions the reports were rated with.
    pub rating_tables: Vec<String>,
    pub scale: Scale,
    pub headline: Headline,
    /// By province (the first two digits of GB/T 2260), for the map.
    pub by_province: BTreeMap<String, ProvinceFigures>,
    /// The same figures for the period before.
    pub previous: Option<Previous>,
    pub groups: Vec<CapacityGroup>,
    /// The hourly streams' counts, summed by (name, label).
    pub figures: Vec<Figure>,
    /// Children's reports refused in the last day, newest first.
    pub refusals: Vec<ReportRefusal>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProvinceFigures {
    pub headline: Headline,
    pub resources: BTreeMap<String, u64>,
    pub available: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Previous {
    pub period_start_ms: u64,
    pub complete: bool,
    pub headline: Headline,
    pub resources: BTreeMap<String, u64>,
    pub figures: Vec<Figure>,
}

/// The period of `stream`, or why not.
fn period(stream: &str) -> Result<u64, ServiceError> {
    market::period_of(stream).ok_or_else(|| {
        ServiceError::Invalid(crate::check::Invalid(vec![crate::check::FieldProblem {
            field: "stream".into(),
            message: "resource, platform, scheduling or application".into(),
        }]))
    })
}

/// The subtree's figures of `stream` for the period `at_ms` falls in.
pub async fn subtree(
    node: &Node,
    stream: &str,
    at_ms: u64,
    now_ms: u64,
) -> Result<SubtreeReport, ServiceError> {
    let period_ms = period(stream)?;
    let start = market::period_start(at_ms, period_ms);
    let stored = node.store.period_reports(stream, period_ms, start).await?;
    let expected = expected_origins(node, stream, period_ms, start).await?;
    let children: BTreeMap<i64, String> = node
        .store
        .children(None)
        .await?
        .into_iter()
        .filter_map(|c| Some((c.id, c.prefix?)))
        .collect();
    let reports: Vec<&MarketReport> = stored.iter().map(|s| &s.report).collect();
    let present: BTreeSet<&str> = reports.iter().map(|r| r.origin.as_str()).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|o| !present.contains(o.as_str()))
        .cloned()
        .collect();
    let groups = market::sum(reports.iter().copied());
    let scale = Scale::of(&groups);
    let by_province = market::by_province(&groups)
        .into_iter()
        .map(|(province, scale)| {
            let figures = ProvinceFigures {
                headline: scale.headline(),
                resources: scale.resources,
                available: scale.available,
            };
            (province, figures)
        })
        .collect();
    let origins = stored
        .iter()
        .map(|s| {
            let own = Scale::of(&s.report.groups);
            OriginPart {
                origin: s.report.origin.clone(),
                via: s.child_id.and_then(|id| children.get(&id).cloned()),
                received_at_ms: s.received_at_ms,
                headline: own.headline(),
                resources: own.resources,
            }
        })
        .collect();
    let previous_start = start.saturating_sub(period_ms);
    let before = node
        .store
        .period_reports(stream, period_ms, previous_start)
        .await?;
    let previous = (!before.is_empty()).then(|| {
        let groups = market::sum(before.iter().map(|s| &s.report));
        let scale = Scale::of(&groups);
        let present: BTreeSet<&str> = before.iter().map(|s| s.report.origin.as_str()).collect();
        Previous {
            period_start_ms: previous_start,
            complete: expected.iter().all(|o| present.contains(o.as_str())),
            headline: scale.headline(),
            resources: scale.resources,
            figures: market::sum_figures(before.iter().map(|s| &s.report)),
        }
    });
    let rating_tables: BTreeSet<String> = reports.iter().map(|r| r.rating_table.clone()).collect();
    Ok(SubtreeReport {
        node: node.prefix().to_string(),
        stream: stream.to_owned(),
        period_ms,
        period_start_ms: start,
        complete: missing.is_empty() && !stored.is_empty(),
        missing,
        origins,
        rating_tables: rating_tables.into_iter().collect(),
        headline: scale.headline(),
        scale,
        by_province,
        previous,
        groups,
        figures: market::sum_figures(reports.iter().copied()),
        refusals: node
            .store
            .report_refusals(now_ms.saturating_sub(REFUSALS_SHOWN_MS))
            .await?,
    })
}

/// The latest period of `stream` the whole subtree reported, looking back
/// from `now_ms` over six periods; else the latest period anyone reported.
pub async fn latest_complete(node: &Node, stream: &str, now_ms: u64) -> Result<u64, ServiceError> {
    let period_ms = period(stream)?;
    let newest = market::period_start(now_ms, period_ms);
    let expected = expected_origins(node, stream, period_ms, newest).await?;
    let mut fallback = None;
    for back in 0..6 {
        let start = newest.saturating_sub(back * period_ms);
        let stored = node.store.period_reports(stream, period_ms, start).await?;
        if stored.is_empty() {
            continue;
        }
        fallback.get_or_insert(start);
        let present: BTreeSet<&str> = stored.iter().map(|s| s.report.origin.as_str()).collect();
        if expected.iter().all(|o| present.contains(o.as_str())) {
            return Ok(start);
        }
    }
    Ok(fallback.unwrap_or(newest))
}

/// The origins in this node's subtree that reported in the hour (a day,
/// for the hourly streams) before `start` (this node's own from before its
/// prefix was assigned are not).
async fn expected_origins(
    node: &Node,
    stream: &str,
    period_ms: u64,
    start: u64,
) -> Result<Vec<String>, ServiceError> {
    let prefix = node.prefix();
    let within = if period_ms == RESOURCE_PERIOD_MS {
        EXPECTED_WITHIN_MS
    } else {
        24 * HOURLY_MS
    };
    Ok(node
        .store
        .report_origins(stream, period_ms, start.saturating_sub(within), start)
        .await?
        .into_iter()
        .map(|(origin, _)| origin)
        .filter(|o| NodePrefix::parse(o).is_ok_and(|o| prefix.contains(&o)))
        .collect())
}
