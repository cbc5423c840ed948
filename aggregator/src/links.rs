//! The node links as the rest of the node sees them: connected child nodes,
//! which an operation asks something over their link (the live state of an
//! identifier one holds) within a deadline, each link's task attaching on
//! `Welcome` and detaching when it ends; and how this node's own link to
//! its parent is doing, for staff.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use suanli_protocol::node::LiveState;
use tokio::sync::{mpsc, oneshot};

/// Questions queued for one link, at most; a busy link answers `Stale`.
const QUEUE: usize = 64;

/// A question for a child, with where its answer goes.
#[derive(Debug)]
pub struct LiveAsk {
    pub identifier: String,
    pub deadline: Duration,
    pub reply: oneshot::Sender<Result<LiveState, String>>,
}

/// Why no live answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    /// No link to the holding child now.
    #[error("the node holding it is not linked now")]
    Unreachable,
    /// Linked, but no answer in time, or the child could not say.
    #[error("{0}")]
    Stale(String),
}

/// This node's link to its parent, as its task last saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UplinkState {
    /// The parent answered `Hello` and the connection is up.
    pub connected: bool,
    /// Filing records in the spool not yet acknowledged; `None` until
    /// the link's task has opened the spool.
    pub backlog: Option<u64>,
    /// Records the spool bound dropped; `None` likewise.
    pub dropped: Option<u64>,
    pub last_ack_ms: Option<u64>,
}

#[derive(Debug, Default)]
pub struct UplinkStatus(Mutex<UplinkState>);

impl UplinkStatus {
    pub fn get(&self) -> UplinkState {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn update(&self, change: impl FnOnce(&mut UplinkState)) {
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[derive(Debug, Default)]
pub struct ChildLinks {
    links: Mutex<HashMap<i64, (u64, mpsc::Sender<LiveAsk>)>>,
    generations: std::sync::atomic::AtomicU64,
}

impl ChildLinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (u64, mpsc::Sender<LiveAsk>)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A child's new link: questions for it arrive on the receiver. A newer
    /// link of the same child replaces an older one.
    pub fn attach(&self, child_id: i64) -> (u64, mpsc::Receiver<LiveAsk>) {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        self.lock().insert(child_id, (generation, tx));
        (generation, rx)
    }

    /// The link that attached as `generation` ended.
    pub fn detach(&self, child_id: i64, generation: u64) {
        let mut links = self.lock();
        if links.get(&child_id).is_some_and(|(g, _)| *g == generation) {
            links.remove(&child_id);
        }
    }

    pub fn is_linked(&self, child_id: i64) -> bool {
        self.lock().contains_key(&child_id)
    }

    /// Asks the child holding `identifier` for its live state.
    pub async fn ask(
        &self,
        child_id: i64,
        identifier: &str,
        deadline: Duration,
    ) -> Result<LiveState, LiveError> {
        let link = self
            .lock()
            .get(&child_id)
            .map(|(_, tx)| tx.clone())
            .ok_or(LiveError::Unreachable)?;
        let (reply, answer) = oneshot::channel();
        link.try_send(LiveAsk {
            identifier: identifier.to_owned(),
            deadline,
            reply,
        })
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LiveError::Stale("the link is busy".into()),
            mpsc::error::TrySendError::Closed(_) => LiveError::Unreachable,
        })?;
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(Ok(state))) => Ok(state),
            Ok(Ok(Err(reason))) => Err(LiveError::Stale(reason)),
            Ok(Err(_)) => Err(LiveError::Unreachable),
            Err(_) => Err(LiveError::Stale(format!(
                "no answer within {} ms",
                deadline.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_question_reaches_the_newest_link_and_a_missing_one_is_unreachable() {
        let links = ChildLinks::default();
        assert_eq!(
            links.ask(1, "X", Duration::from_millis(10)).await,
            Err(LiveError::Unreachable)
        );
        let (old, _old_rx) = links.attach(1);
        let (new, mut rx) = links.attach(1);
        links.detach(1, old);
        assert!(links.is_linked(1), "an older link's end leaves the newer");
        let answering = tokio::spawn(async move {
            let ask = rx.recv().await.unwrap();
            assert_eq!(ask.identifier, "X");
            let _ = ask.reply.send(Ok(LiveState {
                host_state: "online".into(),
                ..Default::default()
            }));
        });
        let state = links.ask(1, "X", Duration::from_secs(5)).await.unwrap();
        assert_eq!(state.host_state, "online");
        answering.await.unwrap();
        assert!(matches!(
            links.ask(1, "X", Duration::from_millis(20)).await,
            Err(LiveError::Stale(_) | LiveError::Unreachable)
        ));
        links.detach(1, new);
        assert!(!links.is_linked(1));
    }
}
