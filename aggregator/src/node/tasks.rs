//! Every background task of the node has an owner: [`Tasks`] starts it by
//! name with the shared [`Shutdown`], and on shutdown signals them all and
//! joins them in the reverse of the order they started, each within a
//! deadline, naming any that overran. Periodic jobs share one shape,
//! [`every`].
//!
//! Architecture invariant: outside this module, only per-connection code
//! (an agent's connection, an HTTP stream) spawns.

use std::{future::Future, time::Duration};

use tokio::{sync::mpsc, sync::watch, task::JoinHandle};
use tracing::{debug, warn};

use crate::store::{SelectionRecord, Store};

/// The shutdown signal, as each task holds it.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}

/// The owner of the node's background tasks.
#[derive(Debug)]
pub struct Tasks {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
    /// Tasks that end when their queue's senders are gone.
    draining: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            running: Vec::new(),
            draining: Vec::new(),
        }
    }
}

impl Tasks {
    pub fn shutdown(&self) -> Shutdown {
        Shutdown(self.stop.subscribe())
    }

    /// Starts `task`, known as `name`; it must end on [`Shutdown`].
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        debug!(task = name, "starting");
        self.running.push((name, tokio::spawn(task)));
    }

    /// Starts `task`, which ends when the queue it reads is closed (the
    /// node it serves is dropped); joined by [`Tasks::drain`], after every
    /// task that ends on shutdown, so what they queued is finished.
    pub fn spawn_draining(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        debug!(task = name, "starting");
        self.draining.push((name, tokio::spawn(task)));
    }

    /// Signals shutdown to every task; [`Tasks::join`] waits for them.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Signals shutdown and joins every task started with [`Tasks::spawn`],
    /// the last started first, each within `deadline`; a task that overruns
    /// is named and left behind.
    pub async fn join(&mut self, deadline: Duration) {
        self.stop();
        while let Some((name, handle)) = self.running.pop() {
            finish(name, handle, deadline).await;
        }
    }

    /// Joins the draining tasks, in the order they started, each within
    /// `deadline`.
    pub async fn drain(mut self, deadline: Duration) {
        self.join(deadline).await;
        for (name, handle) in self.draining.drain(..) {
            finish(name, handle, deadline).await;
        }
    }
}

async fn finish(name: &'static str, handle: JoinHandle<()>, deadline: Duration) {
    match tokio::time::timeout(deadline, handle).await {
        Ok(Ok(())) => debug!(task = name, "stopped"),
        Ok(Err(e)) => warn!(task = name, error = %e, "task failed"),
        Err(_) => warn!(task = name, ?deadline, "task did not stop in time"),
    }
}

/// Runs `tick` every `period` (the first at once) until shutdown; a tick
/// that overruns delays the next rather than bunching them up.
pub async fn every<F, Fut>(period: Duration, mut shutdown: Shutdown, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait() => return,
        }
        tick().await;
    }
}

/// Writes queued selections to the record until the node is dropped.
pub async fn record_selections(store: Store, mut queue: mpsc::Receiver<SelectionRecord>) {
    while let Some(record) = queue.recv().await {
        if let Err(e) = store.record_selection(&record).await {
            warn!(error = %e, "could not record a selection");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_ticks_until_shutdown_and_join_waits_for_it() {
        let mut tasks = Tasks::default();
        let ticks = Arc::new(AtomicU32::new(0));
        let counted = ticks.clone();
        tasks.spawn(
            "counter",
            every(Duration::from_secs(60), tasks.shutdown(), move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }),
        );
        // Virtual time: three periods pass in no time at all.
        tokio::time::sleep(Duration::from_secs(150)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "at 0, 60 and 120 s");
        tasks.drain(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "no tick after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_shutdown_is_left_behind_at_its_deadline() {
        let mut tasks = Tasks::default();
        tasks.spawn("stubborn", std::future::pending());
        let mut polite = tasks.shutdown();
        tasks.spawn("polite", async move { polite.wait().await });
        let started = tokio::time::Instant::now();
        tasks.drain(Duration::from_secs(2)).await;
        // The polite task stopped at once; only the stubborn one cost its deadline.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
