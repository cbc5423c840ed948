//! The node links as the rest of the node sees them: connected child nodes,
//! which an operation asks something over their link (the live state of an
//! identifier one holds, or a demand answered over its subtree) within a
//! deadline, each link's task attaching on `Welcome` and detaching when it
//! ends; what each child last reported it has free (its subtree's resource
//! reports, so a demand it cannot meet is not sent to it); and how this
//! node's own link to its parent is doing, for staff.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use suanli_protocol::node::{CapacityGroup, LiveState, MarketReport};
use tokio::sync::{mpsc, oneshot};

use crate::market::RESOURCE_STREAM;

/// Questions queued for one link, at most; a busy link answers `Stale`.
const QUEUE: usize = 64;

/// What a child is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// The live state of an identifier it holds.
    Live { identifier: String },
    /// A demand (JSON) to answer over its subtree.
    Select { demand_json: String },
    /// A hold or release (JSON) for the node holding the resources.
    Reserve { request_json: String },
}

/// What a child answered, by the kind of question.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Live(LiveState),
    /// The child's answer as JSON, read by the asker.
    Select(String),
    /// The holding node's answer as JSON.
    Reserve(String),
}

/// A question for a child, with where its answer goes.
#[derive(Debug)]
pub struct Ask {
    pub question: Question,
    pub deadline: Duration,
    pub reply: oneshot::Sender<Result<Reply, String>>,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No link to the child now.
    #[error("the node is not linked now")]
    Unreachable,
    /// Linked, but no answer in time, or the child could not say.
    #[error("{0}")]
    Stale(String),
}

/// One child's latest resource report of each origin in its subtree.
type Reported = HashMap<String, (u64, Vec<CapacityGroup>)>;

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
    links: Mutex<HashMap<i64, (u64, mpsc::Sender<Ask>)>>,
    reported: Mutex<HashMap<i64, Reported>>,
    generations: std::sync::atomic::AtomicU64,
}

impl ChildLinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (u64, mpsc::Sender<Ask>)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reported_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Reported>> {
        self.reported.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the newest resource report of each origin that came through
    /// `child_id` (the stored ones: refused reports never get here).
    pub fn reported(&self, child_id: i64, reports: &[MarketReport]) {
        let mut reported = self.reported_lock();
        let origins = reported.entry(child_id).or_default();
        for report in reports.iter().filter(|r| r.stream == RESOURCE_STREAM) {
            let newer = origins
                .get(&report.origin)
                .is_none_or(|(start, _)| *start < report.period_start_ms);
            if newer {
                origins.insert(
                    report.origin.clone(),
                    (report.period_start_ms, report.groups.clone()),
                );
            }
        }
    }

    /// The groups of every origin under `child_id` whose newest report
    /// started at or after `since_ms`, and how many origins are older (or
    /// `None` if the child has reported nothing since this node started).
    pub fn reported_since(
        &self,
        child_id: i64,
        since_ms: u64,
    ) -> Option<(Vec<CapacityGroup>, usize)> {
        let reported = self.reported_lock();
        let origins = reported.get(&child_id)?;
        let mut groups = Vec::new();
        let mut older = 0;
        for (start, of_origin) in origins.values() {
            if *start >= since_ms {
                groups.extend(of_origin.iter().cloned());
            } else {
                older += 1;
            }
        }
        Some((groups, older))
    }

    /// A child's new link: questions for it arrive on the receiver. A newer
    /// link of the same child replaces an older one.
    pub fn attach(&self, child_id: i64) -> (u64, mpsc::Receiver<Ask>) {
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
    pub async fn ask_live(
        &self,
        child_id: i64,
        identifier: &str,
        deadline: Duration,
    ) -> Result<LiveState, AskError> {
        let question = Question::Live {
            identifier: identifier.to_owned(),
        };
        match self.ask(child_id, question, deadline).await? {
            Reply::Live(state) => Ok(state),
            _ => Err(AskError::Stale("another answer to a live query".into())),
        }
    }

    /// Asks a child to answer a demand over its subtree; the answer's JSON.
    pub async fn ask_selection(
        &self,
        child_id: i64,
        demand_json: String,
        deadline: Duration,
    ) -> Result<String, AskError> {
        match self
            .ask(child_id, Question::Select { demand_json }, deadline)
            .await?
        {
            Reply::Select(json) => Ok(json),
            _ => Err(AskError::Stale(
                "another answer to a selection query".into(),
            )),
        }
    }

    /// Asks a child to pass a hold or release to the node holding the
    /// resources; that node's answer's JSON.
    pub async fn ask_reservation(
        &self,
        child_id: i64,
        request_json: String,
        deadline: Duration,
    ) -> Result<String, AskError> {
        match self
            .ask(child_id, Question::Reserve { request_json }, deadline)
            .await?
        {
            Reply::Reserve(json) => Ok(json),
            _ => Err(AskError::Stale("another answer to a reservation".into())),
        }
    }

    async fn ask(
        &self,
        child_id: i64,
        question: Question,
        deadline: Duration,
    ) -> Result<Reply, AskError> {
        let link = self
            .lock()
            .get(&child_id)
            .map(|(_, tx)| tx.clone())
            .ok_or(AskError::Unreachable)?;
        let (reply, answer) = oneshot::channel();
        link.try_send(Ask {
            question,
            deadline,
            reply,
        })
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AskError::Stale("the link is busy".into()),
            mpsc::error::TrySendError::Closed(_) => AskError::Unreachable,
        })?;
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(reason))) => Err(AskError::Stale(reason)),
            Ok(Err(_)) => Err(AskError::Unreachable),
            Err(_) => Err(AskError::Stale(format!(
                "no answer within {} ms",
                deadline.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_reports_are_kept_newest_per_origin_and_said_fresh_only_when_all_are() {
        let links = ChildLinks::default();
        assert_eq!(links.reported_since(1, 0), None);
        let report = |origin: &str, start: u64, registered: u64| MarketReport {
            origin: origin.into(),
            stream: RESOURCE_STREAM.into(),
            period_start_ms: start,
            groups: vec![CapacityGroup {
                registered,
                ..CapacityGroup::default()
            }],
            ..MarketReport::default()
        };
        let hourly = MarketReport {
            stream: "platform".into(),
            ..report("CN.32", 50, 9)
        };
        links.reported(
            1,
            &[report("CN.32", 20, 1), report("CN.32.I65", 20, 2), hourly],
        );
        links.reported(1, &[report("CN.32", 10, 5), report("CN.32", 30, 3)]);
        let (groups, older) = links.reported_since(1, 20).unwrap();
        assert_eq!(older, 0);
        let mut counts: Vec<u64> = groups.iter().map(|g| g.registered).collect();
        counts.sort();
        assert_eq!(
            counts,
            [2, 3],
            "the newest of each origin; other streams ignored"
        );
        assert_eq!(
            links.reported_since(1, 25).unwrap().1,
            1,
            "CN.32.I65 is older"
        );
    }

    #[tokio::test]
    async fn a_question_reaches_the_newest_link_and_a_missing_one_is_unreachable() {
        let links = ChildLinks::default();
        assert_eq!(
            links.ask_live(1, "X", Duration::from_millis(10)).await,
            Err(AskError::Unreachable)
        );
        let (old, _old_rx) = links.attach(1);
        let (new, mut rx) = links.attach(1);
        links.detach(1, old);
        assert!(links.is_linked(1), "an older link's end leaves the newer");
        let answering = tokio::spawn(async move {
            let ask = rx.recv().await.unwrap();
            assert_eq!(
                ask.question,
                Question::Live {
                    identifier: "X".into()
                }
            );
            let _ = ask.reply.send(Ok(Reply::Live(LiveState {
                host_state: "online".into(),
                ..Default::default()
            })));
        });
        let state = links
            .ask_live(1, "X", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(state.host_state, "online");
        answering.await.unwrap();
        assert!(matches!(
            links.ask_live(1, "X", Duration::from_millis(20)).await,
            Err(AskError::Stale(_) | AskError::Unreachable)
        ));
        links.detach(1, new);
        assert!(!links.is_linked(1));
    }
}
