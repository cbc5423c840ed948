//! The node's own counters and health, as Prometheus reads them.
//!
//! Every metric name the node registers for its own work is written here
//! once; the HTTP edge only encodes them (`/metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

pub type Labels = Vec<(&'static str, String)>;
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Counters the ingest path bumps; shared with every scrape.
#[derive(Debug, Clone, Default)]
pub struct IngestCounters {
    pub samples_received: Counter,
    pub samples_stored: Counter,
    pub batches_committed: Counter,
    pub batches_failed: Counter,
    pub connections_accepted: Counter,
    pub connections_refused: Family<Labels, Counter>,
    pub enrollments: Counter,
    pub inventories: Counter,
    /// Identifiers child nodes filed that were stored (a new revision).
    pub filings_stored: Counter,
    /// Filings refused: outside the child's prefix, or malformed.
    pub filings_refused: Counter,
    /// Market reports child nodes sent that were refused: out of bounds, or
    /// other figures for a period already held.
    pub reports_refused: Counter,
    /// Children a federated demand was not sent to, because their resource
    /// reports say they cannot meet it.
    pub selection_children_skipped: Counter,
    /// Children's selection answers that came after the asker's deadline.
    pub selection_answers_late: Counter,
    /// Children's selection answers refused: malformed, or naming resources
    /// outside the child's prefix.
    pub selection_answers_refused: Counter,
}

impl IngestCounters {
    pub fn register(&self, registry: &mut Registry) {
        let s = registry.sub_registry_with_prefix("suanli");
        s.register(
            "samples_received",
            "Samples received from agents",
            self.samples_received.clone(),
        );
        s.register(
            "samples_stored",
            "Samples committed to storage (resends of stored samples included)",
            self.samples_stored.clone(),
        );
        s.register(
            "store_batches",
            "Sample batches committed",
            self.batches_committed.clone(),
        );
        s.register(
            "store_batch_failures",
            "Sample batches that failed to commit (their agents resend)",
            self.batches_failed.clone(),
        );
        s.register(
            "agent_connections",
            "Agent connections that completed the handshake",
            self.connections_accepted.clone(),
        );
        s.register(
            "agent_refusals",
            "Connections closed by the aggregator, by close code",
            self.connections_refused.clone(),
        );
        s.register("enrollments", "Hosts enrolled", self.enrollments.clone());
        s.register(
            "inventories",
            "Inventory updates received",
            self.inventories.clone(),
        );
        s.register(
            "filings_stored",
            "Identifier filings from child nodes stored (new or a higher revision)",
            self.filings_stored.clone(),
        );
        s.register(
            "filings_refused",
            "Identifier filings from child nodes refused (outside the child's prefix, or malformed)",
            self.filings_refused.clone(),
        );
        s.register(
            "reports_refused",
            "Market reports from child nodes refused (out of bounds, or other figures for a period already held)",
            self.reports_refused.clone(),
        );
        s.register(
            "selection_children_skipped",
            "Child nodes a demand was not sent to, their resource reports saying they cannot meet it",
            self.selection_children_skipped.clone(),
        );
        s.register(
            "selection_answers_late",
            "Child nodes' selection answers that came after the deadline (ignored)",
            self.selection_answers_late.clone(),
        );
        s.register(
            "selection_answers_refused",
            "Child nodes' selection answers refused (malformed, or resources outside the child's prefix)",
            self.selection_answers_refused.clone(),
        );
    }
}

/// Resident memory and CPU seconds of this process, from /proc.
pub fn process_figures() -> (Option<u64>, Option<f64>) {
    let page = 4096u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14th and 15th.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            (ticks > 0).then(|| (utime + stime) / ticks as f64)
        });
    (rss, cpu)
}

/// One kind of HTTP API call in one hour (market monitoring's platform and
/// application streams count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiCall {
    pub hour_start_ms: u64,
    /// The first path segment under `/api/v1` (`hosts`, `selection`), or
    /// `metrics`.
    pub route_class: &'static str,
    /// `session`, `api_key`, `admin_token`, or `none`.
    pub credential: &'static str,
    /// `2xx`, `4xx`, `5xx`…
    pub status_class: &'static str,
}

/// The API's calls counted and not yet added to the store: taken and added
/// every few seconds, so a crash loses at most those few seconds of counts.
#[derive(Debug, Default)]
pub struct ApiCalls(std::sync::Mutex<std::collections::BTreeMap<ApiCall, u64>>);

impl ApiCalls {
    pub fn count(&self, call: ApiCall) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(call)
            .or_default() += 1;
    }

    /// Everything counted since the last take.
    pub fn take(&self) -> Vec<(ApiCall, u64)> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .collect()
    }

    /// Counts the store did not take, kept for the next time.
    pub fn put_back(&self, calls: Vec<(ApiCall, u64)>) {
        let mut held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (call, n) in calls {
            *held.entry(call).or_default() += n;
        }
    }
}
