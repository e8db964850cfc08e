//! The change listener: one dedicated connection that `LISTEN`s on the store's channels
//! and turns each notification into a [`Notice`] for the process's wake-ups.
//!
//! Channels (sent by the SQL functions and the completion transaction, delivered at
//! commit, identical ones of one transaction coalesced by PostgreSQL):
//! - `tasker_steps_ready`: steps of a template became claimable (payload: template id);
//! - `tasker_steps_scheduled`: a step becomes claimable at a time (payload: epoch ms);
//! - `tasker_task_finished`: tasks finished (payload: comma-separated uuids);
//! - `tasker_task_cancelled`: a task is being cancelled (payload: its uuid);
//! - `tasker_templates_changed`: a template got a new current revision (payload: its id).
//!
//! Notifications are a latency optimisation, never the only path: callers poll as a
//! fallback. When the connection breaks the listener reconnects with backoff and then
//! sends [`Notice::Resync`], since anything may have happened meanwhile. A ping every
//! `ping_interval` finds a half-open TCP connection that would otherwise stay silent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backoff::{OutageStep, ReconnectBackoff};
use super::error::describe;
use super::url::DatabaseUrl;

pub const STEPS_READY: &str = "tasker_steps_ready";
pub const STEPS_SCHEDULED: &str = "tasker_steps_scheduled";
pub const TASK_FINISHED: &str = "tasker_task_finished";
pub const TASK_CANCELLED: &str = "tasker_task_cancelled";
pub const TEMPLATES_CHANGED: &str = "tasker_templates_changed";

const LISTEN_ALL: &str = "LISTEN tasker_steps_ready; LISTEN tasker_steps_scheduled; LISTEN tasker_task_finished; \
                          LISTEN tasker_task_cancelled; LISTEN tasker_templates_changed";

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Steps became claimable; `template_id` None when the payload was not a number.
    StepsReady {
        template_id: Option<i64>,
    },
    /// A step becomes claimable at `due`.
    StepsScheduled {
        due: SystemTime,
    },
    TasksFinished(Vec<Uuid>),
    TaskCancelled(Uuid),
    /// A template's current revision changed: what was resolved for new tasks is stale.
    TemplatesChanged,
    /// The listener (re)connected: notifications may have been missed, recheck everything.
    Resync,
}

impl Notice {
    /// Reads one notification; None for a channel this store does not use.
    pub fn parse(channel: &str, payload: &str) -> Option<Notice> {
        match channel {
            STEPS_READY => Some(Notice::StepsReady { template_id: payload.trim().parse().ok() }),
            STEPS_SCHEDULED => {
                let due = payload.trim().parse::<u64>().ok().map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
                // An unreadable time: treat it as due now (a wake-up that may find nothing).
                Some(Notice::StepsScheduled { due: due.unwrap_or_else(SystemTime::now) })
            }
            TASK_FINISHED => {
                Some(Notice::TasksFinished(payload.split(',').filter_map(|s| Uuid::parse_str(s.trim()).ok()).collect()))
            }
            TASK_CANCELLED => Uuid::parse_str(payload.trim()).ok().map(Notice::TaskCancelled),
            TEMPLATES_CHANGED => Some(Notice::TemplatesChanged),
            _ => None,
        }
    }
}

/// Timing of the listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSettings {
    /// A `SELECT 1` this often finds a connection that died without closing.
    pub ping_interval: Duration,
    /// How long that ping may take.
    pub ping_timeout: Duration,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(5),
            reconnect_initial: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

/// Receives every notice (called on a tokio thread; must not block).
pub type NoticeSink = Arc<dyn Fn(Notice) + Send + Sync>;

/// The running listener; stops when [`ChangeListener::stop`] is called or it is dropped.
#[derive(Debug)]
pub struct ChangeListener {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ChangeListener {
    /// Starts listening on a tokio runtime (call from within one).
    pub fn spawn(url: DatabaseUrl, settings: ListenerSettings, sink: NoticeSink) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(url, settings, sink, stop.clone()));
        Self { stop, task: Some(task) }
    }

    /// Stops listening and waits for the connection to close.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn run(url: DatabaseUrl, settings: ListenerSettings, sink: NoticeSink, stop: CancellationToken) {
    let mut backoff = ReconnectBackoff::new(settings.reconnect_initial, settings.reconnect_max);
    while !stop.is_cancelled() {
        let reason = match listen_once(&url, &settings, &sink, &stop, &mut backoff).await {
            Ok(()) => return, // stopped
            Err(reason) => reason,
        };
        let (delay, step) = backoff.failed();
        match step {
            OutageStep::Began => tracing::warn!(database = %url, error = %reason,
                retry_in_ms = delay.as_millis() as u64, "change listener lost PostgreSQL; reconnecting"),
            OutageStep::Continues { failures, down_for } if failures.is_power_of_two() => {
                tracing::warn!(database = %url, error = %reason, failures,
                    down_for_ms = down_for.as_millis() as u64, "change listener still cannot reach PostgreSQL")
            }
            OutageStep::Continues { .. } => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection's life: Ok when stopped, Err(why) when the connection failed.
async fn listen_once(
    url: &DatabaseUrl,
    settings: &ListenerSettings,
    sink: &NoticeSink,
    stop: &CancellationToken,
    backoff: &mut ReconnectBackoff,
) -> Result<(), String> {
    let (client, mut connection) = url.config().connect(NoTls).await.map_err(|e| url.scrub(&describe(&e)))?;
    // The connection must be polled for the client's statements to make progress; this
    // task also receives the notifications.
    let forward_sink = Arc::clone(sink);
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let mut forward = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Some(notice) = Notice::parse(n.channel(), n.payload()) {
                        forward_sink(notice);
                    }
                }
                Ok(_) => {}
                Err(err) => return describe(&err),
            }
        }
        "the server closed the connection".to_owned()
    });

    let outcome = async {
        client.batch_execute(LISTEN_ALL).await.map_err(|e| url.scrub(&describe(&e)))?;
        if let Some(down_for) = backoff.succeeded() {
            tracing::info!(database = %url, down_for_ms = down_for.as_millis() as u64, "change listener reconnected");
        }
        sink(Notice::Resync);
        let mut ping = tokio::time::interval(settings.ping_interval);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                ended = &mut forward => return Err(ended.unwrap_or_else(|e| format!("listener task failed: {e}"))),
                _ = ping.tick() => {
                    match tokio::time::timeout(settings.ping_timeout, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(url.scrub(&describe(&e))),
                        Err(_) => return Err(format!("no answer to a ping within {:?}", settings.ping_timeout)),
                    }
                }
            }
        }
    }
    .await;
    forward.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_channel() {
        assert_eq!(Notice::parse(STEPS_READY, "42"), Some(Notice::StepsReady { template_id: Some(42) }));
        assert_eq!(Notice::parse(STEPS_READY, "x"), Some(Notice::StepsReady { template_id: None }));
        assert_eq!(
            Notice::parse(STEPS_SCHEDULED, "1700000000123"),
            Some(Notice::StepsScheduled { due: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123) })
        );
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(Notice::parse(TASK_FINISHED, &format!("{a},{b}")), Some(Notice::TasksFinished(vec![a, b])));
        assert_eq!(Notice::parse(TASK_CANCELLED, &a.to_string()), Some(Notice::TaskCancelled(a)));
        assert_eq!(Notice::parse(TASK_CANCELLED, "nope"), None);
        assert_eq!(Notice::parse(TEMPLATES_CHANGED, "7"), Some(Notice::TemplatesChanged));
        assert_eq!(Notice::parse("other", "1"), None);
    }
}
