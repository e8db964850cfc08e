//! `FfiDispatchChannel` on its own: built from bare channels, fed `DispatchHandlerMessage`s
//! holding real `DispatchSlot`s, polled and completed from plain threads the way a Ruby
//! polling loop does.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use common::{assert_quiet, error_of, eventually, recv_result, PATIENCE};
use tasker_worker::{error_types, DispatchHandlerMessage, FfiStepEvent, StepExecutionEvent, StepExecutionResult};
use tasker_worker::{ChangeFeed, DispatchSlots};
use tasker_worker::{CompleteOutcome, FfiChannelTasks, TryComplete};
use tasker_worker::{FfiDispatchChannel, FfiDispatchChannelConfig};

const LONG: Duration = Duration::from_secs(60);

struct Harness {
    channel: Arc<FfiDispatchChannel>,
    tasks: Option<FfiChannelTasks>,
    dispatch_tx: mpsc::Sender<DispatchHandlerMessage>,
    completions: mpsc::Receiver<StepExecutionResult>,
    slots: DispatchSlots,
}

fn harness(completion_capacity: usize, config: FfiDispatchChannelConfig) -> Harness {
    let (dispatch_tx, dispatch_rx) = mpsc::channel(256);
    let (completion_tx, completions) = mpsc::channel(completion_capacity);
    let channel =
        Arc::new(FfiDispatchChannel::new(dispatch_rx, completion_tx, config, Arc::new(ChangeFeed::new(None))));
    let tasks = channel.start(&tokio::runtime::Handle::current());
    assert!(tasks.is_some(), "a fresh channel starts");
    Harness { channel, tasks, dispatch_tx, completions, slots: DispatchSlots::new(256) }
}

fn default_harness() -> Harness {
    harness(64, FfiDispatchChannelConfig::default())
}

impl Harness {
    /// Sends one event holding a slot, as the executor does.
    async fn dispatch(&self, timeout: Duration) -> StepExecutionEvent {
        let event = common::event_with_callable("Tests::FfiHandler", timeout);
        let slot = self.slots.try_acquire().expect("a free slot");
        self.dispatch_tx
            .send(DispatchHandlerMessage::new(event.clone(), Some(slot)))
            .await
            .expect("dispatch channel open");
        event
    }

    /// Polls (non-blocking) until the pump has moved an event into the inbox.
    async fn poll_next(&self) -> FfiStepEvent {
        let start = Instant::now();
        loop {
            if let Some(event) = self.channel.poll() {
                return event;
            }
            assert!(start.elapsed() < PATIENCE, "no event became pollable");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until `n` events sit unpolled in the inbox.
    async fn wait_waiting(&self, n: usize) {
        let channel = Arc::clone(&self.channel);
        eventually(&format!("{n} events waiting in dispatch"), || channel.metrics().waiting_in_dispatch == n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_returns_none_when_nothing_was_dispatched() {
    let h = default_harness();
    assert!(h.channel.poll().is_none());
    let m = h.channel.metrics();
    assert_eq!((m.pending_count, m.waiting_in_dispatch, m.total_dispatched), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_twice_returns_none_the_second_time() {
    let h = default_harness();
    assert!(h.channel.start(&tokio::runtime::Handle::current()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_event_is_the_dispatched_one_and_completion_stamps_its_identity() {
    let mut h = default_harness();
    let sent = h.dispatch(Duration::from_secs(7)).await;
    assert_eq!(h.slots.in_flight(), 1);

    let polled = h.poll_next().await;
    assert_eq!(polled.event_id, sent.event_id);
    assert_eq!(polled.task_uuid, sent.task_uuid);
    assert_eq!(polled.step_uuid, sent.step_uuid);
    assert_eq!(polled.correlation_id, sent.correlation_id);
    assert_eq!(polled.trace_id, sent.trace_id);
    assert_eq!(polled.span_id, sent.span_id);
    assert_eq!(polled.timeout_ms, 7000);
    assert_eq!(polled.execution_event.payload.workflow_step.name, "only_step");
    assert!(h.channel.is_pending(&polled.event_id));
    assert_eq!(h.channel.metrics().pending_count, 1);
    // Polled but not completed: the slot is still taken.
    assert_eq!(h.slots.in_flight(), 1);

    // The result carries a bogus identity; the channel must overwrite it.
    let bogus = tasker_worker::StepIdentity {
        event_id: Uuid::new_v4(),
        task_uuid: Uuid::new_v4(),
        step_uuid: Uuid::new_v4(),
        attempt: 99,
    };
    let result = StepExecutionResult::success(json!({"ok": 1})).with_identity(bogus);
    assert!(h.channel.complete(polled.event_id, result));

    let arrived = recv_result(&mut h.completions).await;
    assert_eq!(arrived.step, sent.identity());
    assert!(arrived.success);
    assert_eq!(arrived.result, json!({"ok": 1}));
    assert!(!h.channel.is_pending(&polled.event_id));
    assert_eq!(h.slots.in_flight(), 0, "the slot is released once the event is completed");
    let m = h.channel.metrics();
    assert_eq!((m.pending_count, m.total_dispatched, m.total_completed), (0, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_duplicate_completions_are_rejected_and_counted() {
    let mut h = default_harness();
    assert!(!h.channel.complete(Uuid::new_v4(), StepExecutionResult::success(json!(1))));
    assert_eq!(h.channel.metrics().total_rejected_completions, 1);

    h.dispatch(LONG).await;
    let polled = h.poll_next().await;
    assert!(h.channel.complete(polled.event_id, StepExecutionResult::success(json!("first"))));
    assert!(!h.channel.complete(polled.event_id, StepExecutionResult::success(json!("second"))));

    let arrived = recv_result(&mut h.completions).await;
    assert_eq!(arrived.result, json!("first"));
    assert_quiet(&mut h.completions, Duration::from_millis(100)).await;
    let m = h.channel.metrics();
    assert_eq!(m.total_completed, 1);
    assert_eq!(m.total_rejected_completions, 2);
    assert_eq!(m.late_completions, 0, "nothing timed out, so nothing is late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_blocks_until_an_event_arrives() {
    let h = default_harness();
    let event = common::event_with_callable("Tests::FfiHandler", LONG);
    let expected = event.event_id;
    let slot = h.slots.try_acquire().unwrap();
    let sender = h.dispatch_tx.clone();
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        sender.blocking_send(DispatchHandlerMessage::new(event, Some(slot))).unwrap();
    });
    let channel = Arc::clone(&h.channel);
    let polled = tokio::task::spawn_blocking(move || channel.poll_wait(PATIENCE, &|| false)).await.unwrap();
    producer.join().unwrap();
    let polled = polled.expect("poll_wait returns the event once it arrives");
    assert_eq!(polled.event_id, expected);
    assert!(start.elapsed() >= Duration::from_millis(45), "returned before the event existed: {:?}", start.elapsed());
    assert!(h.channel.is_pending(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_returns_none_after_its_timeout() {
    let h = default_harness();
    let channel = Arc::clone(&h.channel);
    let start = Instant::now();
    let polled =
        tokio::task::spawn_blocking(move || channel.poll_wait(Duration::from_millis(100), &|| false)).await.unwrap();
    let waited = start.elapsed();
    assert!(polled.is_none());
    assert!(waited >= Duration::from_millis(100), "gave up early: {waited:?}");
    assert!(waited < Duration::from_secs(3), "overslept its timeout: {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_wait_returns_promptly_when_interrupted() {
    let h = default_harness();
    let interrupted = Arc::new(AtomicBool::new(false));
    let channel = Arc::clone(&h.channel);
    let flag = Arc::clone(&interrupted);
    let start = Instant::now();
    let waiter = tokio::task::spawn_blocking(move || {
        channel.poll_wait(Duration::from_secs(30), &|| flag.load(Ordering::SeqCst))
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "poll_wait returned before anything happened");
    interrupted.store(true, Ordering::SeqCst);
    h.channel.wake_waiters();
    let polled = tokio::time::timeout(PATIENCE, waiter).await.expect("the interrupted wait returns").unwrap();
    assert!(polled.is_none());
    assert!(start.elapsed() < Duration::from_secs(5), "interrupt was not noticed promptly: {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_event_is_failed_exactly_once_as_a_retryable_timeout() {
    let mut h = default_harness();
    let sent = h.dispatch(Duration::from_millis(100)).await;
    let polled = h.poll_next().await;
    let polled_at = Instant::now();

    let failure = recv_result(&mut h.completions).await;
    let after = polled_at.elapsed();
    assert_eq!(failure.step, sent.identity());
    let error = error_of(&failure);
    assert_eq!(error.error_type, error_types::HANDLER_TIMEOUT);
    assert!(error.retryable);
    assert!(error.message.contains("only_step"), "{}", error.message);
    assert!(after >= Duration::from_millis(90), "failed before its deadline: {after:?}");
    assert!(after < Duration::from_secs(3), "deadline kept far too late: {after:?}");
    assert_eq!(h.slots.in_flight(), 0, "the slot of a timed-out event is released");

    assert_quiet(&mut h.completions, Duration::from_millis(300)).await;
    assert!(!h.channel.is_pending(&polled.event_id));
    assert!(!h.channel.complete(polled.event_id, StepExecutionResult::success(json!("late"))));
    assert_quiet(&mut h.completions, Duration::from_millis(50)).await;
    let m = h.channel.metrics();
    assert_eq!(m.total_timed_out, 1);
    assert_eq!(m.late_completions, 1);
    // The lag of that one timeout was measured, and the tokio timer kept it small.
    assert_eq!(m.timeout_lag_samples, 1);
    assert!(m.timeout_lag_ms_p99 >= m.timeout_lag_ms_p50);
    assert!(m.timeout_lag_ms_p99 < 100.0, "reaped {} ms after the deadline", m.timeout_lag_ms_p99);
    assert_eq!(m.total_rejected_completions, 1);
    assert_eq!(m.total_completed, 0);
    assert_eq!(m.pending_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_different_deadlines_are_each_reaped_once_in_deadline_order() {
    let mut h = default_harness();
    let timeouts_ms = [300u64, 60, 240, 120, 180];
    let mut by_timeout = Vec::new();
    for ms in timeouts_ms {
        let event = h.dispatch(Duration::from_millis(ms)).await;
        by_timeout.push((ms, event.event_id));
    }
    let mut polled = HashSet::new();
    while polled.len() < timeouts_ms.len() {
        polled.insert(h.poll_next().await.event_id);
    }
    // A completed event is never reaped, though its deadline passes during the test.
    let survivor = h.dispatch(Duration::from_millis(250)).await;
    let survivor_polled = h.poll_next().await;
    assert!(h.channel.complete(survivor_polled.event_id, StepExecutionResult::success(json!(null))));

    let mut reaped = Vec::new();
    let mut completed = Vec::new();
    for _ in 0..=timeouts_ms.len() {
        let result = recv_result(&mut h.completions).await;
        if result.success {
            completed.push(result.step.event_id);
        } else {
            assert_eq!(error_of(&result).error_type, error_types::HANDLER_TIMEOUT);
            reaped.push(result.step.event_id);
        }
    }
    assert_eq!(completed, vec![survivor.event_id]);
    assert_quiet(&mut h.completions, Duration::from_millis(300)).await;

    by_timeout.sort();
    let expected: Vec<Uuid> = by_timeout.iter().map(|(_, id)| *id).collect();
    assert_eq!(reaped, expected, "reaped in deadline order, each once");
    let m = h.channel.metrics();
    assert_eq!(m.total_timed_out, timeouts_ms.len() as u64);
    assert_eq!(m.pending_count, 0);
    assert_eq!(h.slots.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_earlier_deadline_wakes_the_reaper() {
    // The reaper sleeps towards a far deadline; a later poll with a near deadline must
    // still be failed on time.
    let mut h = default_harness();
    h.dispatch(LONG).await;
    h.poll_next().await;
    let near = h.dispatch(Duration::from_millis(80)).await;
    h.poll_next().await;
    let start = Instant::now();
    let failure = recv_result(&mut h.completions).await;
    assert_eq!(failure.step.event_id, near.event_id);
    assert!(start.elapsed() < Duration::from_secs(3), "the near deadline waited for the far one");
    assert_eq!(h.channel.metrics().pending_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_pending_waiting_starvation_and_totals() {
    let config =
        FfiDispatchChannelConfig { starvation_threshold: Duration::from_millis(20), late_completion_memory: 16 };
    let mut h = harness(64, config);
    let m = h.channel.metrics();
    assert!(!m.starvation_detected);
    assert_eq!(m.starvation_threshold_ms, 20);

    h.dispatch(LONG).await;
    h.dispatch(LONG).await;
    h.wait_waiting(2).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let m = h.channel.metrics();
    assert_eq!(m.waiting_in_dispatch, 2);
    assert!(m.oldest_waiting_ms >= 40, "{m:?}");
    assert!(m.starvation_detected, "unpolled for longer than the threshold: {m:?}");
    assert_eq!(m.pending_count, 0);

    let first = h.channel.poll().expect("an event is waiting");
    let m = h.channel.metrics();
    assert_eq!((m.pending_count, m.waiting_in_dispatch, m.total_dispatched), (1, 1, 1));
    let age_before = m.oldest_pending_age_ms;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let age_after = h.channel.metrics().oldest_pending_age_ms;
    assert!(age_after >= age_before + 40, "oldest pending age grows: {age_before} → {age_after}");

    let second = h.channel.poll().expect("the second event is waiting");
    let m = h.channel.metrics();
    assert_eq!((m.pending_count, m.waiting_in_dispatch), (2, 0));
    assert!(!m.starvation_detected, "nothing is waiting unpolled any more: {m:?}");
    assert_eq!(m.oldest_waiting_ms, 0);
    assert!(m.oldest_pending_age_ms >= age_after, "the oldest pending is still the first one");

    assert!(h.channel.complete(first.event_id, StepExecutionResult::success(json!(1))));
    assert!(h.channel.complete(second.event_id, StepExecutionResult::success(json!(2))));
    assert!(!h.channel.complete(first.event_id, StepExecutionResult::success(json!(1))));
    recv_result(&mut h.completions).await;
    recv_result(&mut h.completions).await;
    let m = h.channel.metrics();
    assert_eq!(m.pending_count, 0);
    assert_eq!(m.oldest_pending_age_ms, 0);
    assert_eq!(m.total_dispatched, 2);
    assert_eq!(m.total_completed, 2);
    assert_eq!(m.total_rejected_completions, 1);
    assert_eq!(m.total_timed_out, 0);
    assert_eq!(m.total_released, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_completion_channel_keeps_the_event_pending_until_there_is_room() {
    let mut h = harness(1, FfiDispatchChannelConfig::default());
    let a = h.dispatch(LONG).await;
    let b = h.dispatch(LONG).await;
    let first = h.poll_next().await;
    let second = h.poll_next().await;
    let (first_id, second_id) = (first.event_id, second.event_id);
    assert_eq!(HashSet::from([first_id, second_id]), HashSet::from([a.event_id, b.event_id]));

    // The first completion fills the channel (capacity 1).
    assert!(h.channel.complete(first_id, StepExecutionResult::success(json!("first"))));

    match h.channel.try_complete(second_id, StepExecutionResult::success(json!("second"))) {
        Ok(TryComplete::Full(back)) => assert_eq!(back.result, json!("second"), "the result is handed back"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(h.channel.is_pending(&second_id), "a full channel leaves the event pending");

    let cancelled = CancellationToken::new();
    cancelled.cancel();
    match h.channel.complete_until(second_id, StepExecutionResult::success(json!("second")), &cancelled).await {
        Ok(CompleteOutcome::Cancelled(back)) => assert_eq!(back.result, json!("second")),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(h.channel.is_pending(&second_id), "a cancelled completion leaves the event pending");
    assert_eq!(h.slots.in_flight(), 1, "the second event still holds its slot");

    // A plain thread's complete() waits for room, then succeeds.
    let channel = Arc::clone(&h.channel);
    let completer =
        std::thread::spawn(move || channel.complete(second_id, StepExecutionResult::success(json!("second"))));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!completer.is_finished(), "complete() returned while the channel was still full");
    assert!(h.channel.is_pending(&second_id));

    let got_first = recv_result(&mut h.completions).await;
    assert_eq!(got_first.step.event_id, first_id);
    let got_second = recv_result(&mut h.completions).await;
    assert_eq!(got_second.step.event_id, second_id);
    assert_eq!(got_second.result, json!("second"));
    let accepted = tokio::task::spawn_blocking(move || completer.join().unwrap()).await.unwrap();
    assert!(accepted, "complete() succeeds once the receiver drained the channel");
    assert!(!h.channel.is_pending(&second_id));
    assert_eq!(h.slots.in_flight(), 0);
    assert_eq!(h.channel.metrics().total_completed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_event_is_polled_again_with_the_same_event_id() {
    let mut h = default_harness();
    let sent = h.dispatch(LONG).await;
    let polled = h.poll_next().await;
    assert!(h.channel.release(polled.clone()));
    assert!(!h.channel.is_pending(&sent.event_id));
    assert_eq!(h.slots.in_flight(), 1, "a released event keeps its slot while it waits again");
    assert_eq!(h.channel.metrics().waiting_in_dispatch, 1);
    assert!(!h.channel.release(polled), "an event no longer pending cannot be released again");

    let again = h.poll_next().await;
    assert_eq!(again.event_id, sent.event_id);
    assert_eq!(again.step_uuid, sent.step_uuid);
    assert!(h.channel.complete(again.event_id, StepExecutionResult::success(json!("done"))));
    let arrived = recv_result(&mut h.completions).await;
    assert_eq!(arrived.step, sent.identity());
    let m = h.channel.metrics();
    assert_eq!(m.total_released, 1);
    assert_eq!(m.total_dispatched, 2, "a released and re-polled event counts twice");
    assert_eq!(m.total_completed, 1);
    assert_eq!(h.slots.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_event_does_not_hide_an_older_unpolled_one_from_the_starvation_check() {
    let config =
        FfiDispatchChannelConfig { starvation_threshold: Duration::from_millis(20), late_completion_memory: 16 };
    let h = harness(64, config);
    h.dispatch(LONG).await;
    let older = h.dispatch(LONG).await;
    h.wait_waiting(2).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let first = h.channel.poll().expect("an event is waiting");
    assert_ne!(first.event_id, older.event_id, "FIFO: the first dispatched is polled first");
    assert!(h.channel.release(first));
    let m = h.channel.metrics();
    assert_eq!(m.waiting_in_dispatch, 2);
    assert!(m.oldest_waiting_ms >= 50, "the older event's wait counts: {m:?}");
    assert!(m.starvation_detected, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_every_unpolled_and_pending_event_once() {
    let mut h = default_harness();
    let mut sent = HashMap::new();
    for _ in 0..4 {
        let event = h.dispatch(LONG).await;
        sent.insert(event.event_id, event.identity());
    }
    let pending = h.poll_next().await;
    let done = h.poll_next().await;
    assert!(h.channel.complete(done.event_id, StepExecutionResult::success(json!("done"))));
    let completed = recv_result(&mut h.completions).await;
    assert_eq!(completed.step.event_id, done.event_id);

    let reported = h.channel.shutdown(h.tasks.take()).await;
    assert_eq!(reported, 3, "one pending + two unpolled");
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let failure = recv_result(&mut h.completions).await;
        let error = error_of(&failure);
        assert_eq!(error.error_type, error_types::WORKER_SHUTDOWN);
        assert!(error.retryable);
        assert_eq!(Some(&failure.step), sent.get(&failure.step.event_id), "identity of a dispatched event");
        assert!(seen.insert(failure.step.event_id), "reported twice: {:?}", failure.step.event_id);
    }
    assert!(seen.contains(&pending.event_id));
    assert!(!seen.contains(&done.event_id));
    assert!(matches!(h.completions.try_recv(), Err(mpsc::error::TryRecvError::Empty)));
    assert_eq!(h.slots.in_flight(), 0);

    assert!(!h.channel.complete(pending.event_id, StepExecutionResult::success(json!("late"))));
    assert!(h.channel.poll().is_none());
    let channel = Arc::clone(&h.channel);
    let start = Instant::now();
    let after =
        tokio::task::spawn_blocking(move || channel.poll_wait(Duration::from_secs(30), &|| false)).await.unwrap();
    assert!(after.is_none());
    assert!(start.elapsed() < Duration::from_secs(5), "poll_wait after shutdown must not wait out its timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_racing_pollers_still_reports_each_event_exactly_once() {
    // Poller threads take, give back, complete or sit on events while shutdown runs;
    // every event must end in exactly one result either way.
    for round in 0..20u64 {
        let mut h = harness(1024, FfiDispatchChannelConfig::default());
        let mut sent = HashSet::new();
        for _ in 0..40 {
            sent.insert(h.dispatch(LONG).await.event_id);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let pollers: Vec<_> = (0..3u64)
            .map(|i| {
                let channel = Arc::clone(&h.channel);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(round * 10 + i);
                    while !stop.load(Ordering::SeqCst) {
                        let Some(event) = channel.poll_wait(Duration::from_millis(5), &|| stop.load(Ordering::SeqCst))
                        else {
                            continue;
                        };
                        match rng.u8(0..20) {
                            0..=16 => {
                                channel.release(event);
                            }
                            17..=18 => {
                                channel.complete(event.event_id, StepExecutionResult::success(json!("ok")));
                            }
                            _ => {} // sits on it: it stays pending
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1 + round % 3)).await;
        h.channel.shutdown(h.tasks.take()).await;
        stop.store(true, Ordering::SeqCst);
        h.channel.wake_waiters();
        tokio::task::spawn_blocking(move || pollers.into_iter().for_each(|p| p.join().unwrap())).await.unwrap();

        let mut results = HashMap::new();
        while let Ok(result) = h.completions.try_recv() {
            *results.entry(result.step.event_id).or_insert(0) += 1;
        }
        let missing: Vec<_> = sent.iter().filter(|id| !results.contains_key(id)).collect();
        assert!(missing.is_empty(), "round {round}: events without any result: {missing:?}");
        let doubled: Vec<_> = results.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "round {round}: events with more than one result: {doubled:?}");
        assert_eq!(results.len(), sent.len());
        assert_eq!(h.slots.in_flight(), 0, "round {round}: a slot leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_timing_is_stamped_by_the_channel_unless_the_handler_gave_it() {
    let mut h = default_harness();
    h.dispatch(Duration::from_secs(5)).await;
    h.dispatch(Duration::from_secs(5)).await;
    let first = h.poll_next().await;
    let second = h.poll_next().await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // No timing from the handler: poll time, completion time and the time in between.
    assert!(h.channel.complete(first.event_id, StepExecutionResult::success(json!(1))));
    let stamped = recv_result(&mut h.completions).await.metadata;
    let started = stamped.started_at.expect("started_at stamped");
    let completed = stamped.completed_at.expect("completed_at stamped");
    assert_eq!(started.len(), "2026-11-26T07:33:20.123Z".len());
    assert!(started.ends_with('Z') && completed.ends_with('Z'));
    assert!(completed >= started, "{completed} before {started}");
    assert!(stamped.execution_time_ms.expect("execution time stamped") >= 20);

    // Timing the handler reported is kept as it is.
    let mut own = StepExecutionResult::success(json!(2));
    own.metadata.started_at = Some("2000-01-01T00:00:00.000Z".into());
    own.metadata.completed_at = Some("2000-01-01T00:00:01.000Z".into());
    own.metadata.execution_time_ms = Some(1000);
    assert!(h.channel.complete(second.event_id, own));
    let kept = recv_result(&mut h.completions).await.metadata;
    assert_eq!(kept.started_at.as_deref(), Some("2000-01-01T00:00:00.000Z"));
    assert_eq!(kept.completed_at.as_deref(), Some("2000-01-01T00:00:01.000Z"));
    assert_eq!(kept.execution_time_ms, Some(1000));
}
