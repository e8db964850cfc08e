//! `ChangeFeed`: the wake-ups a store produces and its readers wait for — steps may be
//! ready (the executor claims), tasks finished (`wait_for_task` returns), tasks
//! cancelled (running handlers see `cancelled?`).
//!
//! The in-memory store feeds it directly; the PostgreSQL store feeds it from
//! LISTEN/NOTIFY, so a change made by any process wakes waiters in every process. A
//! lost notification only costs latency: waiters also wake every `poll_interval` (when
//! the store sets one) and look again.
//!
//! Finished tasks are kept as a short log of `(sequence, uuid)`: a waiter remembers the
//! sequence it has seen and rereads its task only when its uuid appears after it (or the
//! log overflowed), so a thousand waiters do not each reread on every finish.
//!
//! It also counts who waits for which task (`watch`), so retention never evicts a task
//! someone is about to read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;
use uuid::Uuid;

/// Finished uuids remembered for waiters.
const FINISH_LOG: usize = 8192;
/// Cancelled task uuids remembered for `is_cancelled`.
const CANCEL_MEMORY: usize = 8192;

#[derive(Debug, Default)]
struct FinishLog {
    seq: u64,
    recent: VecDeque<(u64, Uuid)>,
}

impl FinishLog {
    /// Whether `uuid` finished after `cursor`, or the log no longer reaches back that far.
    fn finished_since(&self, cursor: u64, uuid: &Uuid) -> bool {
        if cursor >= self.seq {
            return false;
        }
        match self.recent.front() {
            Some((oldest, _)) if *oldest > cursor + 1 => true,
            _ => self.recent.iter().rev().take_while(|(seq, _)| *seq > cursor).any(|(_, u)| u == uuid),
        }
    }
}

#[derive(Debug, Default)]
struct RecentSet {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

/// How a wait on the feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishWait {
    /// The task may have finished: read it again.
    Changed,
    /// The deadline passed.
    TimedOut,
    /// `interrupted()` turned true.
    Interrupted,
}

/// See the module documentation.
#[derive(Debug)]
pub struct ChangeFeed {
    ready: Notify,
    finished: Mutex<FinishLog>,
    finished_cond: Condvar,
    finished_notify: Notify,
    watched: Mutex<HashMap<Uuid, usize>>,
    cancelled: Mutex<RecentSet>,
    /// How often waiters look again without a notification (`None`: never; every change
    /// is notified in-process).
    poll_interval: Option<Duration>,
}

/// Marks a task as waited for while it lives.
#[derive(Debug)]
pub struct TaskWatch<'f> {
    feed: &'f ChangeFeed,
    uuid: Uuid,
}

impl Drop for TaskWatch<'_> {
    fn drop(&mut self) {
        let mut watched = self.feed.watched.lock();
        if let Some(count) = watched.get_mut(&self.uuid) {
            *count -= 1;
            if *count == 0 {
                watched.remove(&self.uuid);
            }
        }
    }
}

impl ChangeFeed {
    pub fn new(poll_interval: Option<Duration>) -> Self {
        Self {
            ready: Notify::new(),
            finished: Mutex::new(FinishLog::default()),
            finished_cond: Condvar::new(),
            finished_notify: Notify::new(),
            watched: Mutex::new(HashMap::new()),
            cancelled: Mutex::new(RecentSet::default()),
            poll_interval,
        }
    }

    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval
    }

    // ------------------------------------------------------------ ready steps

    /// Steps may have become ready (a permit is kept if nobody waits, so none is lost).
    pub fn notify_ready(&self) {
        self.ready.notify_one();
    }

    /// Resolves after a `notify_ready`.
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    // ------------------------------------------------------------ finished tasks

    /// Tasks finished (or changed so that a waiter should look again).
    pub fn notify_finished(&self, uuids: impl IntoIterator<Item = Uuid>) {
        let mut log = self.finished.lock();
        let before = log.seq;
        for uuid in uuids {
            log.seq += 1;
            let seq = log.seq;
            log.recent.push_back((seq, uuid));
            if log.recent.len() > FINISH_LOG {
                log.recent.pop_front();
            }
        }
        if log.seq != before {
            drop(log);
            self.finished_cond.notify_all();
            self.finished_notify.notify_waiters();
        }
    }

    /// The position a waiter has seen; take it before reading the task.
    pub fn finished_cursor(&self) -> u64 {
        self.finished.lock().seq
    }

    /// Blocks the calling (non-async) thread until `uuid` finished after `cursor`, the
    /// poll interval passes, `deadline` passes, or `interrupted()` turns true (whoever makes
    /// it true calls `wake_blocking_waiters`).
    pub fn wait_finished_blocking(
        &self,
        uuid: &Uuid,
        cursor: u64,
        deadline: Instant,
        interrupted: &dyn Fn() -> bool,
    ) -> FinishWait {
        let poll_until = self.poll_interval.and_then(|p| Instant::now().checked_add(p));
        let wake_at = poll_until.map_or(deadline, |p| p.min(deadline));
        let mut log = self.finished.lock();
        loop {
            if log.finished_since(cursor, uuid) {
                return FinishWait::Changed;
            }
            if interrupted() {
                return FinishWait::Interrupted;
            }
            let now = Instant::now();
            if now >= deadline {
                return FinishWait::TimedOut;
            }
            if now >= wake_at {
                return FinishWait::Changed;
            }
            self.finished_cond.wait_until(&mut log, wake_at);
        }
    }

    /// The async form of `wait_finished_blocking`.
    pub async fn wait_finished(&self, uuid: &Uuid, cursor: u64, deadline: tokio::time::Instant) -> FinishWait {
        let poll_until = self.poll_interval.map(|p| tokio::time::Instant::now() + p);
        let wake_at = poll_until.map_or(deadline, |p| p.min(deadline));
        loop {
            let notified = self.finished_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.finished.lock().finished_since(cursor, uuid) {
                return FinishWait::Changed;
            }
            if tokio::time::timeout_at(wake_at, notified).await.is_err() {
                return if tokio::time::Instant::now() >= deadline {
                    FinishWait::TimedOut
                } else {
                    FinishWait::Changed
                };
            }
        }
    }

    /// Wakes every blocking waiter so it rechecks its interrupt flag.
    pub fn wake_blocking_waiters(&self) {
        let _log = self.finished.lock();
        self.finished_cond.notify_all();
    }

    // ------------------------------------------------------------ watched tasks

    /// Marks `uuid` as waited for until the returned guard drops.
    pub fn watch(&self, uuid: Uuid) -> TaskWatch<'_> {
        *self.watched.lock().entry(uuid).or_insert(0) += 1;
        TaskWatch { feed: self, uuid }
    }

    /// Whether someone waits for `uuid` now.
    pub fn is_watched(&self, uuid: &Uuid) -> bool {
        self.watched.lock().contains_key(uuid)
    }

    /// Every task someone waits for now (a store whose retention runs in SQL passes them).
    pub fn watched_tasks(&self) -> Vec<Uuid> {
        self.watched.lock().keys().copied().collect()
    }

    // ------------------------------------------------------------ cancelled tasks

    /// A cancel of these tasks was asked for.
    pub fn notify_cancelled(&self, uuids: impl IntoIterator<Item = Uuid>) {
        let mut cancelled = self.cancelled.lock();
        for uuid in uuids {
            if cancelled.ids.insert(uuid) {
                cancelled.order.push_back(uuid);
            }
        }
        while cancelled.order.len() > CANCEL_MEMORY {
            if let Some(old) = cancelled.order.pop_front() {
                cancelled.ids.remove(&old);
            }
        }
    }

    /// Whether a cancel of `task_uuid` was asked for recently.
    pub fn is_cancelled(&self, task_uuid: &Uuid) -> bool {
        let cancelled = self.cancelled.lock();
        !cancelled.ids.is_empty() && cancelled.ids.contains(task_uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_sees_only_finishes_of_its_task_after_its_cursor() {
        let feed = ChangeFeed::new(None);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        feed.notify_finished([a]);
        let cursor = feed.finished_cursor();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(feed.wait_finished_blocking(&a, cursor, soon, &|| false), FinishWait::TimedOut);
        feed.notify_finished([b]);
        assert_eq!(
            feed.wait_finished_blocking(&a, cursor, Instant::now() + Duration::from_millis(20), &|| false),
            FinishWait::TimedOut
        );
        feed.notify_finished([a]);
        assert_eq!(feed.wait_finished_blocking(&a, cursor, Instant::now(), &|| false), FinishWait::Changed);
    }

    #[test]
    fn an_overflowed_log_tells_every_waiter_to_look_again() {
        let feed = ChangeFeed::new(None);
        let mine = Uuid::new_v4();
        let cursor = feed.finished_cursor();
        feed.notify_finished((0..FINISH_LOG + 10).map(|_| Uuid::new_v4()));
        assert_eq!(feed.wait_finished_blocking(&mine, cursor, Instant::now(), &|| false), FinishWait::Changed);
    }

    #[test]
    fn the_poll_interval_wakes_a_waiter_without_a_notification() {
        let feed = ChangeFeed::new(Some(Duration::from_millis(5)));
        let far = Instant::now() + Duration::from_secs(30);
        assert_eq!(feed.wait_finished_blocking(&Uuid::new_v4(), 0, far, &|| false), FinishWait::Changed);
    }

    #[test]
    fn a_watch_lasts_as_long_as_its_guard() {
        let feed = ChangeFeed::new(None);
        let uuid = Uuid::new_v4();
        let first = feed.watch(uuid);
        let second = feed.watch(uuid);
        drop(first);
        assert!(feed.is_watched(&uuid));
        drop(second);
        assert!(!feed.is_watched(&uuid));
    }

    #[test]
    fn cancelled_tasks_are_remembered() {
        let feed = ChangeFeed::new(None);
        let uuid = Uuid::new_v4();
        assert!(!feed.is_cancelled(&uuid));
        feed.notify_cancelled([uuid]);
        assert!(feed.is_cancelled(&uuid));
    }

    #[tokio::test]
    async fn an_async_waiter_wakes_on_its_task() {
        let feed = std::sync::Arc::new(ChangeFeed::new(None));
        let uuid = Uuid::new_v4();
        let cursor = feed.finished_cursor();
        let waiter = {
            let feed = std::sync::Arc::clone(&feed);
            tokio::spawn(async move {
                feed.wait_finished(&uuid, cursor, tokio::time::Instant::now() + Duration::from_secs(10)).await
            })
        };
        tokio::task::yield_now().await;
        feed.notify_finished([uuid]);
        assert_eq!(waiter.await.unwrap(), FinishWait::Changed);
    }
}
