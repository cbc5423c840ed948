//! The subtree's trend points already summed, by period: a stored period's
//! reports never change (the first report of a period is kept), they are
//! only joined by late ones, so a point is summed again only when the
//! number of reports of its period differs from when it was summed. A
//! 30-day trend then decodes only the periods that are new.

use std::{collections::BTreeMap, sync::Mutex};

use crate::market::TrendPoint;

/// Points by (period length, period start), with the report count each was
/// summed from.
#[derive(Debug, Default)]
pub struct TrendCache(Mutex<BTreeMap<(u64, u64), (u64, TrendPoint)>>);

impl TrendCache {
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u64, u64), (u64, TrendPoint)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Of `counts` (period start, reports stored), the periods to sum again.
    pub fn stale(&self, period_ms: u64, counts: &[(u64, u64)]) -> Vec<u64> {
        let held = self.held();
        counts
            .iter()
            .filter(|(start, n)| held.get(&(period_ms, *start)).map(|(c, _)| c) != Some(n))
            .map(|(start, _)| *start)
            .collect()
    }

    /// Keeps `point`, summed from `count` reports.
    pub fn put(&self, period_ms: u64, count: u64, point: TrendPoint) {
        self.held()
            .insert((period_ms, point.period_start_ms), (count, point));
    }

    /// Forgets the points of this length before `oldest` (their reports are
    /// pruned).
    pub fn forget_before(&self, period_ms: u64, oldest: u64) {
        self.held()
            .retain(|(p, start), _| *p != period_ms || *start >= oldest);
    }

    /// The points of `counts`, in order, as held.
    pub fn points(&self, period_ms: u64, counts: &[(u64, u64)]) -> Vec<TrendPoint> {
        let held = self.held();
        counts
            .iter()
            .filter_map(|(start, _)| held.get(&(period_ms, *start)))
            .map(|(_, point)| point.clone())
            .collect()
    }
}
