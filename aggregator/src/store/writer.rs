//! The single writer of samples: batches from every connection commit in
//! one transaction, so commits (and fsyncs) are shared; each sample's
//! submitter hears whether its batch committed.

use std::{future::Future, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::{SampleRow, Store};
use crate::telemetry::IngestCounters;

/// The single writer: batches samples from every connection into one
/// transaction, so commits (and fsyncs) are shared.
#[derive(Debug, Clone)]
pub struct SampleWriter {
    tx: mpsc::Sender<(SampleRow, oneshot::Sender<bool>)>,
}

/// Most samples committed in one transaction.
const MAX_BATCH: usize = 2048;
/// How long the writer gathers samples before committing them together.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(10);

impl SampleWriter {
    /// The writer and its task, for the node's task owner to run; the task
    /// ends when every `SampleWriter` is dropped and the queue has drained.
    pub fn new(
        store: Store,
        counters: IngestCounters,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, mut rx) = mpsc::channel::<(SampleRow, oneshot::Sender<bool>)>(MAX_BATCH * 2);
        let task = async move {
            let mut rows = Vec::with_capacity(MAX_BATCH);
            let mut waiters = Vec::with_capacity(MAX_BATCH);
            while let Some((row, done)) = rx.recv().await {
                rows.push(row);
                waiters.push(done);
                // Group commit: gather what arrives within a short window, so
                // a thousand agents share one fsync instead of paying one each.
                let window = tokio::time::sleep(GROUP_COMMIT_WINDOW);
                tokio::pin!(window);
                while rows.len() < MAX_BATCH {
                    tokio::select! {
                        next = rx.recv() => match next {
                            Some((row, done)) => {
                                rows.push(row);
                                waiters.push(done);
                            }
                            None => break,
                        },
                        _ = &mut window => break,
                    }
                }
                let ok = match store.store_samples(&rows).await {
                    Ok(()) => {
                        counters.batches_committed.inc();
                        counters.samples_stored.inc_by(rows.len() as u64);
                        true
                    }
                    Err(e) => {
                        counters.batches_failed.inc();
                        warn!(error = %e, samples = rows.len(), "storing a batch failed; its agents will resend");
                        false
                    }
                };
                for done in waiters.drain(..) {
                    let _ = done.send(ok);
                }
                rows.clear();
            }
        };
        (Self { tx }, task)
    }

    /// How full the queue is, from 0 to 1: near 1, ingest is falling behind.
    pub fn queue_fraction(&self) -> f64 {
        let max = self.tx.max_capacity();
        (max - self.tx.capacity()) as f64 / max as f64
    }

    /// Queues a row; the receiver says whether its batch committed.
    pub async fn submit(&self, row: SampleRow) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        // If the writer is gone the receiver reports failure.
        let _ = self.tx.send((row, done)).await;
        rx
    }
}
