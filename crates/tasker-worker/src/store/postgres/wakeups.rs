//! Turning the change listener's notices into this process's wake-ups: ready steps wake
//! the executor, finished and cancelled tasks reach the `ChangeFeed`'s waiters, a step
//! scheduled for later (a retry, a `run_at`) wakes the executor when it is due, a changed
//! template makes the store resolve again, and a reconnect (notices may have been
//! missed) wakes everyone to look again.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::listener::{Notice, NoticeSink};
use super::templates::TemplateBook;
use crate::store::ChangeFeed;

/// The earliest scheduled wake-up, and a task that sleeps until it (stopped when this is
/// dropped).
#[derive(Debug)]
pub struct DueTimer {
    shared: Arc<Due>,
    stop: CancellationToken,
}

#[derive(Debug)]
struct Due {
    next: Mutex<Option<SystemTime>>,
    rearm: Notify,
}

impl DueTimer {
    /// Starts the timer on the current runtime; it wakes `feed`'s claimers when due.
    pub fn spawn(feed: Arc<ChangeFeed>) -> Self {
        let shared = Arc::new(Due { next: Mutex::new(None), rearm: Notify::new() });
        let stop = CancellationToken::new();
        let (due, stopped) = (Arc::clone(&shared), stop.clone());
        tokio::spawn(async move {
            loop {
                let rearmed = due.rearm.notified();
                tokio::pin!(rearmed);
                rearmed.as_mut().enable();
                let next = *due.next.lock();
                let sleep = async {
                    match next {
                        Some(at) => tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stopped.cancelled() => return,
                    _ = rearmed => {}
                    _ = sleep => {
                        let mut current = due.next.lock();
                        if *current == next {
                            *current = None;
                        }
                        drop(current);
                        feed.notify_ready();
                    }
                }
            }
        });
        Self { shared, stop }
    }

    /// Wake the claimers at `at` (unless an earlier wake-up is already set).
    pub fn schedule(&self, at: SystemTime) {
        let mut next = self.shared.next.lock();
        if next.is_none_or(|current| at < current) {
            *next = Some(at);
            drop(next);
            self.shared.rearm.notify_one();
        }
    }
}

impl Drop for DueTimer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The listener's sink for a store: see the module documentation.
pub fn sink(feed: Arc<ChangeFeed>, timer: Arc<DueTimer>, book: Arc<TemplateBook>) -> NoticeSink {
    Arc::new(move |notice| match notice {
        Notice::StepsReady { .. } => feed.notify_ready(),
        Notice::StepsScheduled { due } => timer.schedule(due),
        Notice::TasksFinished(uuids) => feed.notify_finished(uuids),
        Notice::TaskCancelled(uuid) => feed.notify_cancelled([uuid]),
        Notice::TemplatesChanged => book.forget_resolutions(),
        Notice::Resync => {
            book.forget_resolutions();
            feed.notify_ready();
        }
    })
}
