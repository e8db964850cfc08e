//! `FfiDispatchChannel`: the consumer of the dispatch channel for a foreign-language
//! handler loop (Ruby). A foreign thread polls for events, runs its handler, and
//! completes by `event_id`; the channel tracks every polled event as pending with a
//! deadline and, on a tokio timer, fails each one that overruns exactly once.
//!
//! Threads: `poll`, `poll_wait`, `complete` and `metrics` are called from foreign
//! (non-tokio) threads; the pump and the reaper run on the tokio runtime. No lock is
//! held across an `.await` or while a caller waits. Locks nest only in the order
//! inbox → pending → late.
//!
//! Capacity: the `DispatchSlot` of each event moves from the dispatch message into the
//! pending entry and is released when the entry leaves (completed, timed out, released
//! or shut down), so polled-but-unfinished events count against `max_concurrent_handlers`.
//!
//! Metrics: with `with_metrics`, each poll observes the step's queue wait (from its
//! `ready_at` to the poll) after the inbox lock is let go. An event given back by
//! `release` and polled again is observed again, from the same `ready_at`.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex, MutexGuard};
use serde::Serialize;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::FfiDispatchConfig;
use crate::messages::{
    error_types, DispatchHandlerMessage, FfiStepEvent, StepExecutionError, StepExecutionResult, StepIdentity,
};
use crate::metrics::StepMetrics;
use crate::store::ChangeFeed;
use crate::template::StepDefinition;
use crate::time_format::rfc3339_millis;
use crate::uuid_map::UuidMap;
use crate::worker::latency_window::LatencyWindow;
use crate::worker::slots::DispatchSlot;

/// Recent timeout lags kept for the p50/p99 metrics.
const TIMEOUT_LAG_WINDOW: usize = 1024;

/// Settings of one `FfiDispatchChannel`.
#[derive(Debug, Clone)]
pub struct FfiDispatchChannelConfig {
    /// An event waiting unpolled longer than this sets the starvation flag.
    pub starvation_threshold: Duration,
    /// How many timed-out event ids are remembered to count late completions.
    pub late_completion_memory: usize,
}

impl From<&FfiDispatchConfig> for FfiDispatchChannelConfig {
    fn from(c: &FfiDispatchConfig) -> Self {
        Self {
            starvation_threshold: Duration::from_millis(c.starvation_threshold_ms),
            late_completion_memory: c.late_completion_memory,
        }
    }
}

impl Default for FfiDispatchChannelConfig {
    fn default() -> Self {
        Self::from(&FfiDispatchConfig::default())
    }
}

/// A snapshot of the channel's health.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FfiDispatchMetrics {
    /// Polled, not yet completed or timed out.
    pub pending_count: usize,
    pub oldest_pending_age_ms: u64,
    /// Dispatched by the executor, not yet polled.
    pub waiting_in_dispatch: usize,
    pub oldest_waiting_ms: u64,
    /// Something has waited unpolled longer than the starvation threshold.
    pub starvation_detected: bool,
    pub starvation_threshold_ms: u64,
    /// Events handed out by `poll` (a released and re-polled event counts twice).
    pub total_dispatched: u64,
    pub total_completed: u64,
    pub total_timed_out: u64,
    /// Completions answered `false`: unknown, already completed or timed out.
    pub total_rejected_completions: u64,
    /// The part of the rejected completions that came for a timed-out event.
    pub late_completions: u64,
    /// Events given back after an interrupted poll.
    pub total_released: u64,
    /// How late after its deadline the core failed an overdue event, over the last
    /// 1024 timeouts (milliseconds, 0 when there were none).
    pub timeout_lag_ms_p50: f64,
    pub timeout_lag_ms_p99: f64,
    /// Timeouts whose lag was measured, in all.
    pub timeout_lag_samples: u64,
}

/// What a non-blocking completion did.
// Returned once per call and never stored in bulk: boxing the result would only add an
// allocation to the common path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TryComplete {
    Accepted,
    /// Unknown, already completed or timed out: answered `false`.
    Rejected,
    /// The completion channel is full; the event is still pending. The result is handed
    /// back so the caller can wait for room and try again.
    Full(StepExecutionResult),
}

/// What a waiting completion did.
#[allow(clippy::large_enum_variant)] // as for `TryComplete`
#[derive(Debug)]
pub enum CompleteOutcome {
    Accepted,
    Rejected,
    /// The wait for room was cancelled; the event is still pending.
    Cancelled(StepExecutionResult),
}

/// Why the channel cannot take a completion any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the worker's completion channel is closed (the worker was stopped)")]
pub struct CompletionChannelClosed;

#[derive(Debug)]
struct PendingEvent {
    identity: StepIdentity,
    polled_at: Instant,
    /// Wall-clock time of the poll, for the result's `started_at`.
    polled_wall: SystemTime,
    deadline: Instant,
    timeout: Duration,
    definition: Arc<StepDefinition>,
    /// Released (capacity given back) when the entry is removed.
    slot: Option<DispatchSlot>,
}

/// Dispatched messages not yet polled (generic only so its bookkeeping is testable on
/// its own).
#[derive(Debug)]
struct Inbox<M = DispatchHandlerMessage> {
    queue: VecDeque<M>,
}

impl<M> Default for Inbox<M> {
    fn default() -> Self {
        Self { queue: VecDeque::new() }
    }
}

/// Messages' room an emptied inbox keeps. A burst (a backlog released at once, a
/// worker with thousands of handler slots) grows the queue to hundreds of bytes per
/// message; without this the process would hold that buffer for good.
const INBOX_KEPT_CAPACITY: usize = 256;

impl<M> Inbox<M> {
    /// The next message; gives a burst's room back once the queue runs empty.
    fn take(&mut self) -> Option<M> {
        let message = self.queue.pop_front()?;
        if self.queue.is_empty() && self.queue.capacity() > INBOX_KEPT_CAPACITY {
            self.queue.shrink_to(INBOX_KEPT_CAPACITY);
        }
        Some(message)
    }
}

/// Event ids that timed out recently, to tell a late completion from an unknown one.
#[derive(Debug, Default)]
struct LateMemory {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

#[derive(Debug, Default)]
struct Counters {
    dispatched: AtomicU64,
    completed: AtomicU64,
    timed_out: AtomicU64,
    rejected: AtomicU64,
    late: AtomicU64,
    released: AtomicU64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct FfiDispatchChannel {
    dispatch_receiver: Mutex<Option<mpsc::Receiver<DispatchHandlerMessage>>>,
    completion_sender: mpsc::Sender<StepExecutionResult>,
    inbox: Mutex<Inbox>,
    inbox_ready: Condvar,
    pending: Mutex<UuidMap<PendingEvent>>,
    late: Mutex<LateMemory>,
    config: FfiDispatchChannelConfig,
    counters: Counters,
    epoch: Instant,
    /// Earliest pending deadline the reaper sleeps towards, in ns since `epoch`.
    reaper_next_wake: AtomicU64,
    reaper_wake: Notify,
    /// How late past each deadline the reaper failed the event (recent window).
    timeout_lags: Mutex<LatencyWindow>,
    shutdown: CancellationToken,
    /// The store's feed: tells which tasks were cancelled, so a running handler can see it.
    feed: Arc<ChangeFeed>,
    /// Where each poll's queue wait is observed (none: not measured).
    metrics: Option<Arc<StepMetrics>>,
}

/// The background tasks of a started channel.
#[derive(Debug)]
pub struct FfiChannelTasks {
    pump: JoinHandle<()>,
    reaper: JoinHandle<()>,
}

impl FfiDispatchChannel {
    pub fn new(
        dispatch_receiver: mpsc::Receiver<DispatchHandlerMessage>,
        completion_sender: mpsc::Sender<StepExecutionResult>,
        config: FfiDispatchChannelConfig,
        feed: Arc<ChangeFeed>,
    ) -> Self {
        Self {
            dispatch_receiver: Mutex::new(Some(dispatch_receiver)),
            completion_sender,
            inbox: Mutex::new(Inbox::default()),
            inbox_ready: Condvar::new(),
            pending: Mutex::new(UuidMap::default()),
            late: Mutex::new(LateMemory::default()),
            config,
            counters: Counters::default(),
            epoch: Instant::now(),
            reaper_next_wake: AtomicU64::new(u64::MAX),
            reaper_wake: Notify::new(),
            timeout_lags: Mutex::new(LatencyWindow::new(TIMEOUT_LAG_WINDOW)),
            shutdown: CancellationToken::new(),
            feed,
            metrics: None,
        }
    }

    /// Observes each polled step's queue wait in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<StepMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Starts the pump (dispatch channel → inbox) and the timeout reaper on `runtime`.
    /// Returns `None` if it was already started.
    pub fn start(self: &Arc<Self>, runtime: &tokio::runtime::Handle) -> Option<FfiChannelTasks> {
        let receiver = self.dispatch_receiver.lock().take()?;
        let pump = runtime.spawn(Arc::clone(self).pump(receiver));
        let reaper = runtime.spawn(Arc::clone(self).reap());
        Some(FfiChannelTasks { pump, reaper })
    }

    /// Takes the next event, if one is waiting. Never blocks.
    pub fn poll(&self) -> Option<FfiStepEvent> {
        // The inbox stays locked until the event is pending, so `shutdown` (which drains
        // both under the inbox lock) sees it in one place or the other, never in neither.
        let mut inbox = self.inbox.lock();
        let message = inbox.take()?;
        let (event, polled_wall) = self.track(message);
        drop(inbox);
        self.observe_queue_wait(&event, polled_wall);
        Some(event)
    }

    /// Waits up to `timeout` for an event on the calling (non-async) thread. Returns early
    /// with `None` once `interrupted()` is true; whoever sets it must then call
    /// `wake_waiters` so the wait notices at once.
    pub fn poll_wait(&self, timeout: Duration, interrupted: &dyn Fn() -> bool) -> Option<FfiStepEvent> {
        let deadline = Instant::now().checked_add(timeout);
        let mut inbox = self.inbox.lock();
        loop {
            if let Some(message) = inbox.take() {
                // Tracked before the inbox is unlocked: see `poll`.
                let (event, polled_wall) = self.track(message);
                drop(inbox);
                self.observe_queue_wait(&event, polled_wall);
                return Some(event);
            }
            if interrupted() || self.shutdown.is_cancelled() {
                return None;
            }
            match deadline {
                Some(deadline) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    self.inbox_ready.wait_until(&mut inbox, deadline);
                }
                None => self.inbox_ready.wait(&mut inbox),
            }
        }
    }

    /// Wakes every thread in `poll_wait` so it rechecks its interrupt flag.
    pub fn wake_waiters(&self) {
        let _inbox = self.inbox.lock();
        self.inbox_ready.notify_all();
    }

    fn observe_queue_wait(&self, event: &FfiStepEvent, polled_wall: SystemTime) {
        if let Some(metrics) = &self.metrics {
            metrics.observe_queue_wait(&event.execution_event, polled_wall);
        }
    }

    /// Makes a polled message pending; answers the event and the wall-clock time of the
    /// poll. Callers hold the inbox lock.
    fn track(&self, message: DispatchHandlerMessage) -> (FfiStepEvent, SystemTime) {
        let DispatchHandlerMessage { event, slot, .. } = message;
        let now = Instant::now();
        let polled_wall = SystemTime::now();
        let timeout = event.timeout;
        let deadline = now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        let entry = PendingEvent {
            identity: event.identity(),
            polled_at: now,
            polled_wall,
            deadline,
            timeout,
            definition: Arc::clone(&event.payload.step_definition),
            slot,
        };
        let event_id = event.event_id;
        {
            let mut pending = self.pending.lock();
            pending.insert(event_id, entry);
            let wake_at = self.nanos_since_epoch(deadline);
            if wake_at < self.reaper_next_wake.load(Ordering::Acquire) {
                self.reaper_next_wake.store(wake_at, Ordering::Release);
                self.reaper_wake.notify_one();
            }
        }
        self.counters.dispatched.fetch_add(1, Ordering::Relaxed);
        (FfiStepEvent::from_execution_event(event), polled_wall)
    }

    /// Gives a polled event back (front of the queue) because the foreign thread could
    /// not take it, e.g. it was interrupted while the event was being handed over.
    /// Returns `false` if the event was no longer pending.
    pub fn release(&self, event: FfiStepEvent) -> bool {
        // Inbox first, then pending (the order `poll` and `shutdown` use): the event moves
        // from one to the other without a moment in which `shutdown` could miss it.
        let mut inbox = self.inbox.lock();
        let Some(entry) = self.pending.lock().remove(&event.event_id) else { return false };
        let message = DispatchHandlerMessage::new(event.execution_event, entry.slot);
        inbox.queue.push_front(message);
        drop(inbox);
        self.inbox_ready.notify_one();
        self.counters.released.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Whether `event_id` is polled and neither completed nor timed out (its deadline has
    /// not passed, even if the reaper has not failed it yet).
    pub fn is_pending(&self, event_id: &Uuid) -> bool {
        self.pending.lock().get(event_id).is_some_and(|entry| entry.deadline > Instant::now())
    }

    /// Whether the handler of `event_id` should stop: the event is no longer pending (it
    /// completed, timed out, or the worker stopped) or a cancel of its task was asked for.
    /// Its result is still accepted while it is pending.
    pub fn is_cancelled(&self, event_id: &Uuid) -> bool {
        let task = {
            let pending = self.pending.lock();
            match pending.get(event_id) {
                Some(entry) if entry.deadline > Instant::now() => entry.identity.task_uuid,
                _ => return true,
            }
        };
        self.feed.is_cancelled(&task)
    }

    /// Completes an event without waiting. See `TryComplete`.
    pub fn try_complete(
        &self,
        event_id: Uuid,
        result: StepExecutionResult,
    ) -> Result<TryComplete, CompletionChannelClosed> {
        let pending = self.pending.lock();
        if !pending.contains_key(&event_id) {
            drop(pending);
            self.reject(&event_id);
            return Ok(TryComplete::Rejected);
        }
        let permit = match self.completion_sender.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => return Ok(TryComplete::Full(result)),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(CompletionChannelClosed),
        };
        Ok(if self.send_reserved(pending, event_id, result, permit) {
            TryComplete::Accepted
        } else {
            TryComplete::Rejected
        })
    }

    /// Sends the result of `event_id` with room already reserved in the completion channel,
    /// under the pending lock the caller holds. Returns `false` (the room given back) if the
    /// event is no longer pending.
    fn send_reserved(
        &self,
        mut pending: MutexGuard<'_, UuidMap<PendingEvent>>,
        event_id: Uuid,
        result: StepExecutionResult,
        permit: mpsc::Permit<'_, StepExecutionResult>,
    ) -> bool {
        if pending.get(&event_id).is_some_and(|entry| entry.deadline <= Instant::now()) {
            // Past its deadline: late, even if the reaper (a timer, a little behind) has not
            // failed it yet. It stays pending until the reaper does, so it still ends in
            // exactly one result: the timeout.
            drop(pending);
            drop(permit);
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            self.counters.late.fetch_add(1, Ordering::Relaxed);
            self.reaper_wake.notify_one();
            return false;
        }
        let Some(entry) = pending.remove(&event_id) else {
            drop(pending);
            drop(permit);
            self.reject(&event_id);
            return false;
        };
        let identity = entry.identity;
        let result = with_timing(result, &entry);
        // The slot is released before the result is sent on, and the result is in the
        // channel before the pending lock is let go: `shutdown` (which drains pending
        // under that lock) either reports the event or finds its result already sent.
        drop(entry);
        permit.send(result.with_identity(identity));
        drop(pending);
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Completes an event, waiting for room in the completion channel until `cancel`
    /// fires. Usable from any thread: it only needs a waker, not a runtime.
    pub async fn complete_until(
        &self,
        event_id: Uuid,
        result: StepExecutionResult,
        cancel: &CancellationToken,
    ) -> Result<CompleteOutcome, CompletionChannelClosed> {
        let result = match self.try_complete(event_id, result)? {
            TryComplete::Accepted => return Ok(CompleteOutcome::Accepted),
            TryComplete::Rejected => return Ok(CompleteOutcome::Rejected),
            TryComplete::Full(back) => back,
        };
        // Wait for room and keep it: the result goes out with this very permit if the
        // event is still pending by then. (Giving the room back to try again would hand it
        // from one waiting completer to the next without any of them sending, until their
        // events' deadlines passed.) The event stays pending while we wait.
        let permit = tokio::select! {
            permit = self.completion_sender.reserve() => permit.map_err(|_| CompletionChannelClosed)?,
            _ = cancel.cancelled() => return Ok(CompleteOutcome::Cancelled(result)),
        };
        let pending = self.pending.lock();
        Ok(if self.send_reserved(pending, event_id, result, permit) {
            CompleteOutcome::Accepted
        } else {
            CompleteOutcome::Rejected
        })
    }

    /// Completes an event, waiting for room in the completion channel if needed.
    /// Returns `true` if accepted, `false` for an unknown, completed or timed-out event.
    /// For foreign or plain threads; inside async code use `complete_until`.
    pub fn complete(&self, event_id: Uuid, result: StepExecutionResult) -> bool {
        let never = CancellationToken::new();
        matches!(
            futures::executor::block_on(self.complete_until(event_id, result, &never)),
            Ok(CompleteOutcome::Accepted)
        )
    }

    fn reject(&self, event_id: &Uuid) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        if self.late.lock().ids.contains(event_id) {
            self.counters.late.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remember_timed_out(&self, event_id: Uuid) {
        let capacity = self.config.late_completion_memory;
        if capacity == 0 {
            return;
        }
        let mut late = self.late.lock();
        if late.ids.insert(event_id) {
            late.order.push_back(event_id);
        }
        while late.order.len() > capacity {
            if let Some(old) = late.order.pop_front() {
                late.ids.remove(&old);
            }
        }
    }

    /// Events polled and not yet completed or timed out (a constant-time read).
    pub fn pending_count(&self) -> usize {
        self.pending.lock().len()
    }

    /// Events dispatched and not yet polled (a constant-time read).
    pub fn waiting_count(&self) -> usize {
        self.inbox.lock().queue.len()
    }

    pub fn metrics(&self) -> FfiDispatchMetrics {
        let now = Instant::now();
        let lags = self.timeout_lags.lock().clone();
        let (pending_count, oldest_pending) = {
            let pending = self.pending.lock();
            (pending.len(), pending.values().map(|p| p.polled_at).min())
        };
        let (waiting, oldest_waiting) = {
            let inbox = self.inbox.lock();
            // Not just the front: a released event goes back to the front with a fresh time.
            (inbox.queue.len(), inbox.queue.iter().map(|m| m.dispatched_at).min())
        };
        let oldest_waiting_age = oldest_waiting.map(|t| now.saturating_duration_since(t)).unwrap_or_default();
        FfiDispatchMetrics {
            pending_count,
            oldest_pending_age_ms: oldest_pending.map(|t| millis(now.saturating_duration_since(t))).unwrap_or(0),
            waiting_in_dispatch: waiting,
            oldest_waiting_ms: millis(oldest_waiting_age),
            starvation_detected: waiting > 0 && oldest_waiting_age > self.config.starvation_threshold,
            starvation_threshold_ms: millis(self.config.starvation_threshold),
            total_dispatched: self.counters.dispatched.load(Ordering::Relaxed),
            total_completed: self.counters.completed.load(Ordering::Relaxed),
            total_timed_out: self.counters.timed_out.load(Ordering::Relaxed),
            total_rejected_completions: self.counters.rejected.load(Ordering::Relaxed),
            late_completions: self.counters.late.load(Ordering::Relaxed),
            total_released: self.counters.released.load(Ordering::Relaxed),
            timeout_lag_ms_p50: lag_ms(lags.quantile(0.5)),
            timeout_lag_ms_p99: lag_ms(lags.quantile(0.99)),
            timeout_lag_samples: lags.total(),
        }
    }

    /// Stops the pump and the reaper, then reports every event not finished — waiting
    /// unpolled or pending — as a retryable `worker_shutdown` failure. Returns how many.
    pub async fn shutdown(&self, tasks: Option<FfiChannelTasks>) -> usize {
        self.shutdown.cancel();
        self.wake_waiters();
        if let Some(tasks) = tasks {
            // The pump moves whatever is left in the channel into the inbox as it stops.
            let _ = tasks.pump.await;
            let _ = tasks.reaper.await;
        }
        // Both drained under the inbox lock: an event being polled or released right now
        // is in exactly one of them.
        let (unpolled, pending) = {
            let mut inbox = self.inbox.lock();
            let unpolled: Vec<DispatchHandlerMessage> = inbox.queue.drain(..).collect();
            let pending: Vec<PendingEvent> = self.pending.lock().drain().map(|(_, p)| p).collect();
            (unpolled, pending)
        };
        let mut failures = Vec::with_capacity(unpolled.len() + pending.len());
        for message in unpolled {
            let identity = message.event.identity();
            let name = message.event.payload.workflow_step.name.clone();
            drop(message);
            failures.push(shutdown_failure(identity, &name, "it waited to be polled"));
        }
        for entry in pending {
            failures.push(shutdown_failure(entry.identity, &entry.definition.name, "its handler had not completed it"));
        }
        let count = failures.len();
        for failure in failures {
            if self.completion_sender.send(failure).await.is_err() {
                tracing::error!("completion channel closed while reporting shutdown failures");
                break;
            }
        }
        count
    }

    async fn pump(self: Arc<Self>, mut receiver: mpsc::Receiver<DispatchHandlerMessage>) {
        let mut batch = Vec::with_capacity(64);
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                received = receiver.recv_many(&mut batch, 64) => {
                    if received == 0 {
                        break;
                    }
                    self.push_to_inbox(&mut batch);
                }
            }
        }
        receiver.close();
        while let Ok(message) = receiver.try_recv() {
            batch.push(message);
        }
        self.push_to_inbox(&mut batch);
    }

    fn push_to_inbox(&self, batch: &mut Vec<DispatchHandlerMessage>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len();
        self.inbox.lock().queue.extend(batch.drain(..));
        if count == 1 {
            self.inbox_ready.notify_one();
        } else {
            self.inbox_ready.notify_all();
        }
    }

    async fn reap(self: Arc<Self>) {
        loop {
            let now = Instant::now();
            let expired: Vec<PendingEvent> = {
                let mut pending = self.pending.lock();
                let ids: Vec<Uuid> = pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
                let mut expired: Vec<PendingEvent> = ids.iter().filter_map(|id| pending.remove(id)).collect();
                // Reported in deadline order, whatever order the map holds them in.
                expired.sort_by_key(|p| p.deadline);
                // Remembered before the pending lock is let go, so a completion racing the
                // timeout is counted as late, not as unknown.
                for entry in &expired {
                    self.remember_timed_out(entry.identity.event_id);
                }
                let next = pending.values().map(|p| p.deadline).min();
                self.reaper_next_wake.store(next.map_or(u64::MAX, |d| self.nanos_since_epoch(d)), Ordering::Release);
                expired
            };
            if !expired.is_empty() {
                let mut lags = self.timeout_lags.lock();
                for entry in &expired {
                    lags.record(now.saturating_duration_since(entry.deadline));
                }
            }
            for entry in expired {
                self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                let failure = timeout_failure(&entry);
                // Capacity comes back before the failure is sent on.
                drop(entry);
                if self.completion_sender.send(failure).await.is_err() {
                    return;
                }
            }
            let next = self.reaper_next_wake.load(Ordering::Acquire);
            let sleep = async {
                if next == u64::MAX {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep_until((self.epoch + Duration::from_nanos(next)).into()).await
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = self.reaper_wake.notified() => {}
                _ = sleep => {}
            }
        }
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos().min(u64::MAX as u128 - 1) as u64
    }
}

/// Fills the timing a foreign handler loop did not report: `started_at` is when the event
/// was polled, `completed_at` and `execution_time_ms` are counted to now.
fn with_timing(mut result: StepExecutionResult, entry: &PendingEvent) -> StepExecutionResult {
    let metadata = &mut result.metadata;
    if metadata.started_at.is_none() {
        metadata.started_at = Some(rfc3339_millis(entry.polled_wall));
    }
    if metadata.completed_at.is_none() {
        metadata.completed_at = Some(rfc3339_millis(SystemTime::now()));
    }
    if metadata.execution_time_ms.is_none() {
        metadata.execution_time_ms = Some(millis(entry.polled_at.elapsed()));
    }
    result
}

fn lag_ms(lag: Option<Duration>) -> f64 {
    lag.map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

fn timeout_failure(entry: &PendingEvent) -> StepExecutionResult {
    StepExecutionResult::failure(StepExecutionError::new(
        format!(
            "step '{}' exceeded its deadline of {} ms (event {}); the core failed this attempt",
            entry.definition.name,
            millis(entry.timeout),
            entry.identity.event_id
        ),
        error_types::HANDLER_TIMEOUT,
        true,
    ))
    .with_identity(entry.identity)
}

fn shutdown_failure(identity: StepIdentity, step_name: &str, why: &str) -> StepExecutionResult {
    StepExecutionResult::failure(StepExecutionError::new(
        format!("worker stopped before step '{step_name}' finished ({why}); it will be retried"),
        error_types::WORKER_SHUTDOWN,
        true,
    ))
    .with_identity(identity)
}

#[cfg(test)]
mod tests {
    use super::{Inbox, INBOX_KEPT_CAPACITY};

    #[test]
    fn an_emptied_inbox_gives_back_the_room_of_a_burst_and_keeps_the_order() {
        let mut inbox: Inbox<u32> = Inbox::default();
        inbox.queue.extend(0..10_000);
        assert!(inbox.queue.capacity() >= 10_000);
        let taken: Vec<u32> = std::iter::from_fn(|| inbox.take()).collect();
        assert_eq!(taken, (0..10_000).collect::<Vec<_>>());
        assert!(inbox.queue.capacity() <= INBOX_KEPT_CAPACITY, "kept {}", inbox.queue.capacity());
        inbox.queue.extend(0..3);
        assert_eq!(inbox.take(), Some(0));
        assert!(inbox.queue.capacity() >= 2, "a queue that still holds messages keeps its room");
    }
}
