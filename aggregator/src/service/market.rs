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
    i18n::Text,
    market::{
        self, APPLICATION_STREAM, DAILY_MS, HOURLY_MS, Headline, PLATFORM_STREAM,
        RESOURCE_PERIOD_MS, RESOURCE_STREAM, SCHEDULING_STREAM, Scale,
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
/// `now_ms`, and for the hours of the day before it that the node was up in
/// and did not report (down at their turn), once per prefix: `last` holds
/// the hour each stream last reported and under which prefix (a node that
/// just joined its parent reports that hour again, under the prefix the
/// parent knows).
pub async fn report_hourly(
    node: &Node,
    last: &mut BTreeMap<&'static str, (String, u64)>,
    now_ms: u64,
) -> Result<(), ServiceError> {
    // A few seconds after the hour: every replica has added its API calls.
    let newest = market::period_start(now_ms.saturating_sub(HOURLY_SETTLE_MS), HOURLY_MS)
        .saturating_sub(HOURLY_MS);
    let origin = node.prefix().to_string();
    let since = newest.saturating_sub(HOURLY_CATCH_UP_MS);
    for stream in [PLATFORM_STREAM, SCHEDULING_STREAM, APPLICATION_STREAM] {
        if last
            .get(stream)
            .is_some_and(|(o, s)| *o == origin && *s == newest)
        {
            continue;
        }
        // The last whole hour, and the hours before it the node was up in
        // (it made resource reports) but did not report: it was down at
        // their turn.
        let store = &node.store;
        let mut hours = store
            .own_report_periods(
                &origin,
                RESOURCE_STREAM,
                RESOURCE_PERIOD_MS,
                HOURLY_MS,
                since,
                newest,
            )
            .await?;
        hours.insert(newest);
        let reported = store
            .own_report_periods(&origin, stream, HOURLY_MS, HOURLY_MS, since, newest + 1)
            .await?;
        for &start in hours.difference(&reported) {
            let report = MarketReport {
                origin: origin.clone(),
                stream: stream.to_owned(),
                period_start_ms: start,
                period_ms: HOURLY_MS,
                figures: hour_figures(node, &origin, stream, start).await?,
                ..MarketReport::default()
            };
            if store.store_own_report(&report).await? == Kept::Stored {
                node.publish(NodeEvent::ReportsStored);
            }
        }
        last.insert(stream, (origin.clone(), newest));
    }
    Ok(())
}

/// How long after the hour its hourly reports wait: replicas add their API
/// calls to the store every 5 s.
const HOURLY_SETTLE_MS: u64 = 15_000;

/// How far back a node reports the hours it was down at the turn of: its
/// events are kept longer, but a day covers a restart after any outage
/// staff would leave unattended.
const HOURLY_CATCH_UP_MS: u64 = DAILY_MS;

/// The figures of one hourly stream for the hour starting at `start`, from
/// what the node recorded (accounts as they are now).
async fn hour_figures(
    node: &Node,
    origin: &str,
    stream: &str,
    start: u64,
) -> Result<Vec<Figure>, ServiceError> {
    let end = start + HOURLY_MS;
    let store = &node.store;
    Ok(match stream {
        PLATFORM_STREAM => {
            market::platform_figures(&store.platform_hour(origin, start, end).await?)
        }
        SCHEDULING_STREAM => {
            let facts: Vec<_> = store
                .selections_between(start, end)
                .await?
                .iter()
                .map(|s| {
                    market::SelectionFact::of(
                        &s.demand,
                        &s.chosen,
                        s.candidates,
                        s.elapsed_us,
                        s.no_match.as_deref(),
                        s.lines_used,
                    )
                })
                .collect();
            market::scheduling_figures(&facts)
        }
        _ => market::application_figures(
            store.active_api_keys(end).await?,
            &store.api_calls(start).await?,
        ),
    })
}

/// Adds the API calls counted since the last time to the store; kept for
/// the next time if the store is away.
pub async fn store_api_calls(node: &Node) -> Result<(), ServiceError> {
    let calls = node.api_calls.take();
    if let Err(e) = node.store.add_api_calls(&calls).await {
        node.api_calls.put_back(calls);
        return Err(e.into());
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
            // A period partly pruned already is not rolled up from what is left.
            let since =
                market::period_start(now_ms.saturating_sub(market::retention_ms(from)), period)
                    + period;
            let sources = store
                .own_report_periods(&origin, stream, from, period, since, now_ms)
                .await?;
            let made = store
                .own_report_periods(&origin, stream, period, period, since, now_ms)
                .await?;
            for &start in sources.difference(&made) {
                if start < since || start + period + ROLLUP_SETTLE_MS > now_ms {
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

/// The longest trend from the 10 s reports: as long as they are kept.
pub const MAX_TREND_HOURS: u64 = 72;
/// The longest trend from rollups: as long as the daily ones are kept.
pub const MAX_TREND_DAYS: u64 = 400;
/// Up to this many days a trend has a point an hour; beyond, a day.
const HOURLY_POINTS_DAYS: u64 = 35;

/// How far back a trend reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// From the 10 s reports, a point every five minutes.
    Hours(u64),
    /// From the rollups: a point an hour up to 35 days, a day beyond.
    Days(u64),
}

impl Span {
    /// The period of the reports read and the step between points.
    fn reports(self) -> (u64, u64, u64) {
        match self {
            Span::Hours(h) => (
                RESOURCE_PERIOD_MS,
                300_000,
                h.clamp(1, MAX_TREND_HOURS) * HOURLY_MS,
            ),
            Span::Days(d) if d <= HOURLY_POINTS_DAYS => (HOURLY_MS, HOURLY_MS, d.max(1) * DAILY_MS),
            Span::Days(d) => (DAILY_MS, DAILY_MS, d.min(MAX_TREND_DAYS) * DAILY_MS),
        }
    }

    /// The step between points, milliseconds.
    pub fn step_ms(self) -> u64 {
        self.reports().1
    }
}

/// The subtree's capacity over `span`: from the 10 s reports a point every
/// five minutes (every thirtieth period), from the rollups their mean over
/// each hour or day.
pub async fn trend(
    node: &Node,
    span: Span,
    now_ms: u64,
) -> Result<Vec<market::TrendPoint>, ServiceError> {
    let (period, step, length) = span.reports();
    let to = market::period_start(now_ms, step);
    let from = to.saturating_sub(length);
    let store = &node.store;
    let counts = store
        .report_counts(RESOURCE_STREAM, period, step, from, to + 1)
        .await?;
    let stale = node.trends.stale(period, &counts);
    // Cold: the whole range at once; warm: the few new periods one by one.
    let reports: Vec<MarketReport> = if stale.len() > 16 {
        store
            .reports_every(RESOURCE_STREAM, period, step, from, to + 1)
            .await?
    } else {
        let mut reports = Vec::new();
        for start in &stale {
            let period_reports = store
                .period_reports(RESOURCE_STREAM, period, *start)
                .await?;
            reports.extend(period_reports.into_iter().map(|s| s.report));
        }
        reports
    };
    let stale: BTreeSet<u64> = stale.into_iter().collect();
    for point in market::trend(&reports) {
        if stale.contains(&point.period_start_ms) {
            node.trends.put(period, point.origins, point);
        }
    }
    node.trends
        .forget_before(period, now_ms.saturating_sub(market::retention_ms(period)));
    Ok(node.trends.points(period, &counts))
}

/// One period of an hourly stream over the subtree: its figures summed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FiguresPoint {
    pub period_start_ms: u64,
    /// Nodes that reported the period.
    pub origins: u64,
    pub figures: Vec<Figure>,
}

/// The figures of an hourly stream (platform, scheduling, application)
/// over the last `days`: an hour a point up to 35 days, a day beyond (the
/// daily rollups: counts summed, levels at the day's end).
pub async fn figures(
    node: &Node,
    stream: &str,
    days: u64,
    now_ms: u64,
) -> Result<(u64, Vec<FiguresPoint>), ServiceError> {
    if stream == RESOURCE_STREAM {
        return Err(invalid("stream", Text::new("check.market.hourly_stream")));
    }
    period(stream, None)?;
    let (period, _, length) = Span::Days(days).reports();
    let to = market::period_start(now_ms, period);
    let reports = node
        .store
        .reports_every(stream, period, period, to.saturating_sub(length), to + 1)
        .await?;
    let mut by_period: BTreeMap<u64, Vec<&MarketReport>> = BTreeMap::new();
    for r in &reports {
        by_period.entry(r.period_start_ms).or_default().push(r);
    }
    let points = by_period
        .into_iter()
        .map(|(start, reports)| FiguresPoint {
            period_start_ms: start,
            origins: reports.len() as u64,
            figures: market::sum_figures(reports.iter().copied()),
        })
        .collect();
    Ok((period, points))
}

/// One origin's part of a period.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OriginPart {
    pub origin: String,
    /// The child it came through; absent for this node's own.
    pub via: Option<String>,
    pub received_at_ms: u64,
    /// A rollup's periods summed (0 for a base period).
    pub periods: u64,
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

fn invalid(field: &str, text: Text) -> ServiceError {
    ServiceError::Invalid(crate::check::Invalid(vec![
        crate::check::FieldProblem::text(field, text),
    ]))
}

/// The period of `stream` asked for (its base period when none is), or why
/// it cannot be.
pub fn period(stream: &str, asked: Option<u64>) -> Result<u64, ServiceError> {
    let periods = market::periods_of(stream);
    let Some(base) = periods.first() else {
        return Err(invalid("stream", Text::new("check.market.stream")));
    };
    match asked {
        None => Ok(*base),
        Some(p) if periods.contains(&p) => Ok(p),
        Some(_) if stream == RESOURCE_STREAM => {
            Err(invalid("period", Text::new("check.market.period")))
        }
        Some(_) => Err(invalid("period", Text::new("check.market.hourly_period"))),
    }
}

/// The subtree's figures of `stream` for the period of `period_ms` that
/// `at_ms` falls in. A rollup's groups are its exact sums; its scale,
/// headline and each origin's part are means over its periods.
pub async fn subtree(
    node: &Node,
    stream: &str,
    period_ms: u64,
    at_ms: u64,
    now_ms: u64,
) -> Result<SubtreeReport, ServiceError> {
    let period_ms = period(stream, Some(period_ms))?;
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
    let means = market::sum_of_means(reports.iter().copied());
    let scale = Scale::of(&means);
    let by_province = market::by_province(&means)
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
            let own = Scale::of(&market::mean(&s.report));
            OriginPart {
                origin: s.report.origin.clone(),
                via: s.child_id.and_then(|id| children.get(&id).cloned()),
                received_at_ms: s.received_at_ms,
                periods: s.report.periods,
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
        let groups = market::sum_of_means(before.iter().map(|s| &s.report));
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

/// The latest period of `stream` and `period_ms` the whole subtree
/// reported, looking back from `now_ms` over six periods (a rollup's from
/// the last one over); else the latest period anyone reported.
pub async fn latest_complete(
    node: &Node,
    stream: &str,
    period_ms: u64,
    now_ms: u64,
) -> Result<u64, ServiceError> {
    let period_ms = period(stream, Some(period_ms))?;
    let mut newest = market::period_start(now_ms, period_ms);
    if market::rolled_up_from(stream, period_ms).is_some() {
        newest = newest.saturating_sub(period_ms);
    }
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

/// The origins in this node's subtree that reported in the hour before
/// `start` (the day before, for hours; the week, for days); this node's
/// own from before its prefix was assigned are not.
async fn expected_origins(
    node: &Node,
    stream: &str,
    period_ms: u64,
    start: u64,
) -> Result<Vec<String>, ServiceError> {
    let prefix = node.prefix();
    let within = match period_ms {
        RESOURCE_PERIOD_MS => EXPECTED_WITHIN_MS,
        HOURLY_MS => DAILY_MS,
        _ => 7 * DAILY_MS,
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
