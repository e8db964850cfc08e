//! The bodies of the `TaskerCore::FFI` module functions: argument checks, calls into the
//! core, and conversion of what comes back. Each body runs under `errors::guard`, so a
//! panic becomes `TaskerCore::Errors::InternalError`. Blocking waits go through
//! `gvl::without_gvl` and stay interruptible; store calls that wait on I/O (PostgreSQL)
//! release the GVL too (`store_call`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magnus::{prelude::*, Error, RArray, RHash, RString, Ruby, Value};
use tokio_util::sync::CancellationToken;

use tasker_worker::{
    BootstrapRequest, CancelOutcome, CompleteOutcome, FfiDispatchChannel, FfiStepEvent, NewTask, RetryOutcome,
    StartOutcome, System, TaskCursor, TaskFilter, TaskStatus, TryComplete, WaitOutcome,
};

use crate::convert;
use crate::errors::{self, guard};
use crate::gvl::{without_gvl, without_gvl_interruptible, SlicedWait, Unlocked};
use crate::options::{self, OptionsFor};
use crate::step_event::StepEvent;
use crate::system;

fn current(ruby: &Ruby) -> Result<Arc<System>, Error> {
    system::current().map_err(|why| errors::not_running(ruby, why.message()))
}

fn running_channel(ruby: &Ruby) -> Result<Arc<FfiDispatchChannel>, Error> {
    current(ruby)?
        .ffi_channel()
        .ok_or_else(|| errors::not_running(ruby, "no worker is running: call TaskerCore::FFI.bootstrap_worker first"))
}

/// Turns the outcome of a GVL-free call into a value or the pending Ruby interrupt.
fn settle<R>(ruby: &Ruby, what: &str, unlocked: Unlocked<R>) -> Result<Option<R>, Error> {
    match unlocked.value {
        Some(Err(panic)) => {
            Err(errors::internal(ruby, format!("tasker_core bug in {what}: {}", errors::panic_text(panic.as_ref()))))
        }
        Some(Ok(value)) => match unlocked.interrupt {
            Some(interrupt) => Err(interrupt),
            None => Ok(Some(value)),
        },
        None => match unlocked.interrupt {
            Some(interrupt) => Err(interrupt),
            None => Ok(None),
        },
    }
}

/// Runs a store call to its end. A store that waits on I/O runs without the GVL and can
/// be interrupted (Ctrl-C, `Thread#kill`, `Timeout`); the in-memory store answers in
/// microseconds and keeps it.
pub(crate) fn store_call<R>(
    ruby: &Ruby,
    system: &System,
    what: &str,
    call: impl std::future::Future<Output = R>,
) -> Result<R, Error> {
    if !system.store().blocks_on_io() {
        return system.run_blocking(call, None).ok_or_else(|| {
            errors::internal(ruby, format!("tasker_core bug in {what}: an uncancellable call stopped"))
        });
    }
    let cancel = CancellationToken::new();
    let unlocked = without_gvl(|| system.run_blocking(call, Some(&cancel)), || cancel.cancel());
    match settle(ruby, what, unlocked)?.flatten() {
        Some(value) => Ok(value),
        None => Err(errors::internal(ruby, format!("{what} was interrupted"))),
    }
}

/// The system a request asks for: this process's, or a new one built without the GVL
/// (building the PostgreSQL store connects and migrates).
fn system_for(ruby: &Ruby, request: &BootstrapRequest) -> Result<(Arc<System>, bool), Error> {
    let existing = system::current().ok();
    let (system, created) = match existing {
        Some(system) => (system, false),
        None => {
            #[allow(clippy::result_large_err)] // a one-off call: the error's size does not matter
            let unlocked = without_gvl(|| System::build(request), || {});
            match settle(ruby, "bootstrap", unlocked)? {
                Some(Ok(built)) => system::install(built),
                Some(Err(e)) => return Err(errors::system(ruby, &e)),
                None => return Err(errors::internal(ruby, "bootstrap was interrupted before it began")),
            }
        }
    };
    if !created {
        system.check_compatible(request).map_err(|e| errors::system(ruby, &e))?;
    }
    Ok((system, created))
}

/// Loads the request's template directory, if it names one; returns the path and count.
fn load_templates(
    ruby: &Ruby,
    system: &System,
    request: &BootstrapRequest,
) -> Result<(Option<std::path::PathBuf>, usize), Error> {
    let path = request.template_path(system.config());
    let count = match &path {
        Some(path) => {
            #[allow(clippy::result_large_err)] // a one-off call: the error's size does not matter
            let load = || system.load_templates(path);
            let loaded = if system.store().blocks_on_io() {
                match settle(ruby, "load_templates", without_gvl(load, || {}))? {
                    Some(loaded) => loaded,
                    None => return Err(errors::internal(ruby, "loading templates was interrupted")),
                }
            } else {
                load()
            };
            loaded.map_err(|e| errors::system(ruby, &e))?
        }
        None => 0,
    };
    Ok((path, count))
}

/// `bootstrap_worker(options = {})`.
pub fn bootstrap_worker(ruby: &Ruby, args: &[Value]) -> Result<RHash, Error> {
    guard(ruby, "bootstrap_worker", || {
        if args.len() > 1 {
            return Err(errors::argument(ruby, format!("bootstrap_worker takes 0..1 arguments, got {}", args.len())));
        }
        let request = options::parse(ruby, args.first().copied(), OptionsFor::Bootstrap)?;
        // Checks the options' overrides even when the system already exists.
        let (config, _, _) = request.load_config().map_err(|e| errors::config(ruby, &e))?;
        let (system, _) = system_for(ruby, &request)?;
        let (template_path, templates_loaded) = load_templates(ruby, &system, &request)?;

        let concurrency = request.concurrency(system.config());
        let dispatch = request.dispatch(&config, system.backend());
        #[allow(clippy::result_large_err)] // a one-off call: the error's size does not matter
        let start = || system.start_ffi_worker(dispatch, concurrency);
        let outcome = if system.store().blocks_on_io() {
            match settle(ruby, "bootstrap_worker", without_gvl(start, || {}))? {
                Some(outcome) => outcome,
                None => return Err(errors::internal(ruby, "starting the worker was interrupted")),
            }
        } else {
            start()
        }
        .map_err(|e| errors::system(ruby, &e))?;

        let status = system.worker_status();
        let effective = status.dispatch.unwrap_or_default();
        let worker = &system.config().worker;
        let hash = ruby.hash_new();
        hash.aset(
            "status",
            if matches!(outcome, StartOutcome::Started { .. }) { "started" } else { "already_running" },
        )?;
        hash.aset("worker_id", outcome.worker_id())?;
        hash.aset("environment", system.environment())?;
        hash.aset("backend", system.backend().as_str())?;
        hash.aset("templates_loaded", templates_loaded)?;
        hash.aset("template_path", template_path.map(|p| p.display().to_string()))?;
        let cfg = ruby.hash_new();
        cfg.aset("max_concurrent_handlers", effective.max_concurrent_handlers)?;
        cfg.aset("handler_timeout_ms", effective.handler_timeout_ms)?;
        cfg.aset("dispatch_buffer_size", effective.dispatch_buffer_size)?;
        cfg.aset("completion_buffer_size", effective.completion_buffer_size)?;
        cfg.aset("concurrency", concurrency)?;
        cfg.aset("poll_timeout_ms", worker.poll_timeout_ms)?;
        cfg.aset("shutdown_timeout_ms", worker.shutdown_timeout_ms)?;
        cfg.aset("hung_handler_grace_ms", worker.hung_handler_grace_ms)?;
        hash.aset("config", cfg)?;
        Ok(hash)
    })
}

/// `connect(options)`: a process that creates and reads tasks, with no worker.
pub fn connect(ruby: &Ruby, options: Value) -> Result<RHash, Error> {
    guard(ruby, "connect", || {
        let request = options::parse(ruby, Some(options), OptionsFor::Connect)?;
        if request.database_url().is_none() {
            return Err(errors::configuration(
                ruby,
                format!(
                    "connect needs a PostgreSQL database: pass database_url: or set {} (the embedded store \
                     lives inside a worker process; start a TaskerCore::Worker there instead)",
                    tasker_worker::DATABASE_URL_ENV
                ),
            ));
        }
        let (system, created) = system_for(ruby, &request)?;
        let (template_path, templates_loaded) = load_templates(ruby, &system, &request)?;
        let hash = ruby.hash_new();
        hash.aset("status", if created { "connected" } else { "already_connected" })?;
        hash.aset("backend", system.backend().as_str())?;
        hash.aset("environment", system.environment())?;
        hash.aset("templates_loaded", templates_loaded)?;
        hash.aset("template_path", template_path.map(|p| p.display().to_string()))?;
        Ok(hash)
    })
}

/// Takes the next event for `poll_step_events` / `next_step_event`: at once, or waiting
/// up to the optional timeout argument without the GVL.
fn take_event(
    ruby: &Ruby,
    what: &str,
    args: &[Value],
) -> Result<Option<(Arc<FfiDispatchChannel>, FfiStepEvent)>, Error> {
    if args.len() > 1 {
        return Err(errors::argument(ruby, format!("{what} takes 0..1 arguments, got {}", args.len())));
    }
    let timeout = match args.first() {
        Some(v) => convert::seconds_arg(ruby, *v, "timeout_seconds")?,
        None => None,
    };
    let channel = running_channel(ruby)?;
    let event = match channel.poll() {
        Some(event) => Some(event),
        None => match timeout.filter(|t| !t.is_zero()) {
            None => None,
            Some(timeout) => wait_for_event(ruby, &channel, timeout)?,
        },
    };
    Ok(event.map(|e| (channel, e)))
}

/// `poll_step_events(timeout_seconds = nil)`: the event Hash, or nil.
pub fn poll_step_events(ruby: &Ruby, args: &[Value]) -> Result<Option<RHash>, Error> {
    guard(ruby, "poll_step_events", || {
        let Some((channel, event)) = take_event(ruby, "poll_step_events", args)? else { return Ok(None) };
        match crate::event::event_to_hash(ruby, &event) {
            Ok(hash) => Ok(Some(hash)),
            Err(e) => {
                channel.release(event);
                Err(e)
            }
        }
    })
}

/// `next_step_event(timeout_seconds = nil)`: a `TaskerCore::StepEvent`, or nil.
pub fn next_step_event(ruby: &Ruby, args: &[Value]) -> Result<Option<StepEvent>, Error> {
    guard(ruby, "next_step_event", || {
        Ok(take_event(ruby, "next_step_event", args)?.map(|(_, event)| StepEvent::new(event)))
    })
}

/// The event id of a completion: a UUID String, or a `TaskerCore::StepEvent`.
fn completion_event_id(ruby: &Ruby, event_id: Value) -> Result<uuid::Uuid, Error> {
    match <&StepEvent>::try_convert(event_id) {
        Ok(event) => Ok(event.event().event_id),
        Err(_) => convert::uuid_arg(ruby, event_id, "event_id"),
    }
}

fn wait_for_event(
    ruby: &Ruby,
    channel: &Arc<FfiDispatchChannel>,
    timeout: Duration,
) -> Result<Option<FfiStepEvent>, Error> {
    let wait = SlicedWait::new(timeout);
    while let Some(slice) = wait.next_slice() {
        let unlocked =
            without_gvl_interruptible(|interrupted| channel.poll_wait(slice, interrupted), || channel.wake_waiters());
        match unlocked {
            // Interrupted while an event was being handed over: give it back.
            Unlocked { value: Some(Ok(Some(event))), interrupt: Some(interrupt) } => {
                channel.release(event);
                return Err(interrupt);
            }
            other => {
                if let Some(event) = settle(ruby, "poll_step_events", other)?.flatten() {
                    return Ok(Some(event));
                }
            }
        }
        // A stopped worker's channel answers at once: stop waiting on it.
        let still_running =
            system::current().ok().and_then(|s| s.ffi_channel()).is_some_and(|c| Arc::ptr_eq(&c, channel));
        if !still_running {
            return Ok(None);
        }
    }
    Ok(None)
}

/// `complete_step_event(event_id, result)`.
pub fn complete_step_event(ruby: &Ruby, event_id: Value, result: Value) -> Result<bool, Error> {
    guard(ruby, "complete_step_event", || {
        let event_id = completion_event_id(ruby, event_id)?;
        let result = convert::result_from_ruby(ruby, result)?;
        let Some(channel) = system::current().ok().and_then(|s| s.ffi_channel()) else {
            // No worker: no event is pending, so this one is unknown.
            return Ok(false);
        };
        match channel.try_complete(event_id, result) {
            Ok(TryComplete::Accepted) => Ok(true),
            Ok(TryComplete::Rejected) | Err(_) => Ok(false),
            Ok(TryComplete::Full(result)) => {
                // The completion channel is full: wait for room without the GVL.
                let cancel = CancellationToken::new();
                let unlocked = without_gvl(
                    || futures::executor::block_on(channel.complete_until(event_id, result, &cancel)),
                    || cancel.cancel(),
                );
                match settle(ruby, "complete_step_event", unlocked)? {
                    Some(Ok(CompleteOutcome::Accepted)) => Ok(true),
                    Some(Ok(CompleteOutcome::Rejected)) | Some(Err(_)) => Ok(false),
                    // Cancelled without a pending interrupt cannot happen; the event
                    // is still pending either way, so nothing is lost.
                    Some(Ok(CompleteOutcome::Cancelled(_))) | None => Ok(false),
                }
            }
        }
    })
}

/// `event_pending?(event_id)`.
pub fn event_pending(ruby: &Ruby, event_id: Value) -> Result<bool, Error> {
    guard(ruby, "event_pending?", || {
        let event_id = convert::uuid_arg(ruby, event_id, "event_id")?;
        Ok(system::current().ok().and_then(|s| s.ffi_channel()).is_some_and(|c| c.is_pending(&event_id)))
    })
}

/// `event_cancelled?(event_id)`: the handler should stop (not pending any more, or its
/// task is being cancelled).
pub fn event_cancelled(ruby: &Ruby, event_id: Value) -> Result<bool, Error> {
    guard(ruby, "event_cancelled?", || {
        let event_id = convert::uuid_arg(ruby, event_id, "event_id")?;
        Ok(system::current().ok().and_then(|s| s.ffi_channel()).is_none_or(|c| c.is_cancelled(&event_id)))
    })
}

/// `ffi_dispatch_metrics`.
pub fn ffi_dispatch_metrics(ruby: &Ruby) -> Result<Value, Error> {
    guard(ruby, "ffi_dispatch_metrics", || {
        let channel = system::current().ok().and_then(|s| s.ffi_channel());
        let running = channel.is_some();
        let metrics = channel.map(|c| c.metrics()).unwrap_or_default();
        let value = convert::serialize_to_ruby(ruby, &metrics)?;
        if let Some(hash) = RHash::from_value(value) {
            hash.aset("running", running)?;
        }
        Ok(value)
    })
}

/// `worker_status`.
pub fn worker_status(ruby: &Ruby) -> Result<RHash, Error> {
    guard(ruby, "worker_status", || {
        let hash = ruby.hash_new();
        let system = match system::current() {
            Ok(system) => system,
            Err(why) => {
                hash.aset("running", false)?;
                hash.aset("bootstrapped", false)?;
                hash.aset("message", why.message())?;
                return Ok(hash);
            }
        };
        let status = system.worker_status();
        hash.aset("running", status.running)?;
        hash.aset("bootstrapped", true)?;
        hash.aset("backend", status.backend.as_str())?;
        hash.aset("worker_id", status.worker_id)?;
        hash.aset("consumer", status.consumer)?;
        hash.aset("environment", status.environment)?;
        hash.aset("pid", status.pid)?;
        hash.aset("in_flight", status.in_flight)?;
        hash.aset("templates", status.templates_loaded)?;
        hash.aset("started_at", status.started_at.map(tasker_worker::rfc3339_millis))?;
        if let Some(dispatch) = &status.dispatch {
            hash.aset("max_concurrent_handlers", dispatch.max_concurrent_handlers)?;
            hash.aset("handler_timeout_ms", dispatch.handler_timeout_ms)?;
        }
        let counters = convert::serialize_to_ruby(ruby, &status.counters)?;
        if let (Some(counters), Some(stats)) = (RHash::from_value(counters), status.store_stats.as_ref()) {
            let held: u64 = stats.tasks.iter().map(|(_, n)| *n).sum();
            counters.aset("tasks_in_memory", held)?;
            counters.aset("ready_steps", stats.steps_ready)?;
            counters.aset("waiting_retries", stats.steps_waiting_for_retry)?;
        }
        hash.aset("orchestrator", counters)?;
        Ok(hash)
    })
}

/// `stop_worker(grace_seconds = nil)`.
pub fn stop_worker(ruby: &Ruby, args: &[Value]) -> Result<RHash, Error> {
    guard(ruby, "stop_worker", || {
        if args.len() > 1 {
            return Err(errors::argument(ruby, format!("stop_worker takes 0..1 arguments, got {}", args.len())));
        }
        let hash = ruby.hash_new();
        let Ok(system) = system::current() else {
            hash.aset("status", "not_running")?;
            return Ok(hash);
        };
        let grace = match args.first() {
            Some(v) => convert::seconds_arg(ruby, *v, "grace_seconds")?,
            None => None,
        }
        .unwrap_or(Duration::from_millis(system.config().worker.shutdown_timeout_ms));
        // Stopping is bounded (the grace period at most) and must finish once begun,
        // so an interrupt is taken only after it returns.
        let unlocked = without_gvl(|| system.stop_worker(grace), || {});
        match settle(ruby, "stop_worker", unlocked)?.flatten() {
            Some(report) => {
                hash.aset("status", "stopped")?;
                hash.aset("worker_id", report.worker_id)?;
                hash.aset("unfinished_reported", report.unfinished_reported)?;
            }
            None => hash.aset("status", "not_running")?,
        }
        Ok(hash)
    })
}

fn string_arg(ruby: &Ruby, value: Value, what: &str) -> Result<String, Error> {
    convert::string_or_symbol(ruby, value, &format!("{what} must be a String"))
}

/// A point in time given as a `Time` (anything answering `to_f`) or epoch seconds.
fn time_arg(ruby: &Ruby, value: Value, what: &str) -> Result<SystemTime, Error> {
    let seconds: f64 = if let Some(f) = magnus::Float::from_value(value) {
        f.to_f64()
    } else if let Some(i) = magnus::Integer::from_value(value) {
        i.to_i64().map(|n| n as f64).unwrap_or(f64::INFINITY)
    } else if value.respond_to("to_time", false)? && value.respond_to("to_f", false)? {
        value.funcall::<_, _, f64>("to_f", ())?
    } else {
        return Err(errors::type_error(
            ruby,
            format!("{what} must be a Time or a number of seconds since the epoch, got {}", errors::class_name(value)),
        ));
    };
    if !seconds.is_finite() || !(0.0..=32_503_680_000.0).contains(&seconds) {
        return Err(errors::argument(ruby, format!("{what} is out of range: {seconds}")));
    }
    Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds))
}

/// `create_task(namespace, name, version_or_nil, context, options = nil)`; options:
/// `idempotency_key`, `run_at` (Time), `delay` (seconds), `priority` (Integer).
pub fn create_task(ruby: &Ruby, args: &[Value]) -> Result<RString, Error> {
    guard(ruby, "create_task", || {
        if !(4..=5).contains(&args.len()) {
            return Err(errors::argument(ruby, format!("create_task takes 4..5 arguments, got {}", args.len())));
        }
        let namespace = string_arg(ruby, args[0], "namespace")?;
        let name = string_arg(ruby, args[1], "name")?;
        let version = if args[2].is_nil() { None } else { Some(string_arg(ruby, args[2], "version")?) };
        let context = args[3];
        if RHash::from_value(context).is_none() {
            return Err(errors::type_error(
                ruby,
                format!(
                    "context must be a Hash, got {}: {}",
                    errors::class_name(context),
                    errors::short_inspect(context)
                ),
            ));
        }
        let context = convert::ruby_to_json(ruby, context, "context")?;
        let mut task = NewTask { version, ..NewTask::new(namespace, name, context) };
        if let Some(options) = args.get(4).copied().filter(|v| !v.is_nil()) {
            create_options(ruby, options, &mut task)?;
        }
        let system = current(ruby)?;
        let created =
            store_call(ruby, &system, "create_task", system.create_task(task))?.map_err(|e| errors::store(ruby, &e))?;
        Ok(convert::uuid_str(ruby, &created.task_uuid))
    })
}

fn create_options(ruby: &Ruby, options: Value, task: &mut NewTask) -> Result<(), Error> {
    for (key, value) in convert::option_entries(ruby, options, "create_task options")? {
        match key.as_str() {
            "idempotency_key" => {
                let k = string_arg(ruby, value, "idempotency_key")?;
                if k.is_empty() || k.len() > 255 {
                    return Err(errors::argument(ruby, "idempotency_key must be 1 to 255 bytes long"));
                }
                task.idempotency_key = Some(k);
            }
            "run_at" => task.run_at = Some(time_arg(ruby, value, "run_at")?),
            "delay" => {
                let delay = convert::seconds_arg(ruby, value, "delay")?.unwrap_or_default();
                task.run_at = Some(SystemTime::now() + delay);
            }
            "priority" => {
                let priority = magnus::Integer::from_value(value)
                    .and_then(|i| i.to_i64().ok())
                    .filter(|p| i32::try_from(*p).is_ok())
                    .ok_or_else(|| {
                        errors::argument(
                            ruby,
                            format!(
                                "priority must be an Integer between {} and {}, got {}",
                                i32::MIN,
                                i32::MAX,
                                errors::short_inspect(value)
                            ),
                        )
                    })?;
                task.priority = priority as i32;
            }
            other => {
                return Err(errors::argument(
                    ruby,
                    format!("unknown create_task option :{other} (known: idempotency_key, run_at, delay, priority)"),
                ))
            }
        }
    }
    Ok(())
}

/// `task_status(task_uuid)`.
pub fn task_status(ruby: &Ruby, task_uuid: Value) -> Result<RHash, Error> {
    guard(ruby, "task_status", || {
        let uuid = convert::uuid_arg(ruby, task_uuid, "task_uuid")?;
        let system = current(ruby)?;
        let view =
            store_call(ruby, &system, "task_status", system.task_status(uuid))?.map_err(|e| errors::store(ruby, &e))?;
        convert::status_to_hash(ruby, &view)
    })
}

/// `wait_for_task(task_uuid, timeout_seconds)`: the status once finished, or nil.
pub fn wait_for_task(ruby: &Ruby, task_uuid: Value, timeout: Value) -> Result<Option<RHash>, Error> {
    guard(ruby, "wait_for_task", || {
        let uuid = convert::uuid_arg(ruby, task_uuid, "task_uuid")?;
        let timeout = convert::seconds_arg(ruby, timeout, "timeout_seconds")?
            .ok_or_else(|| errors::argument(ruby, "wait_for_task needs a timeout in seconds"))?;
        let system = current(ruby)?;
        // Waited in slices with Ruby's interrupts taken in between (see `wait_for_event`).
        let wait = SlicedWait::new(timeout);
        while let Some(slice) = wait.next_slice() {
            let unlocked = without_gvl_interruptible(
                |interrupted| system.wait_for_task_blocking(uuid, slice, interrupted),
                || system.wake_blocking_waiters(),
            );
            match settle(ruby, "wait_for_task", unlocked)? {
                Some(Ok(WaitOutcome::Finished(view))) => return Ok(Some(convert::status_to_hash(ruby, &view)?)),
                Some(Ok(WaitOutcome::TimedOut | WaitOutcome::Interrupted)) | None => {}
                Some(Err(e)) => return Err(errors::store(ruby, &e)),
            }
        }
        Ok(None)
    })
}

/// `cancel_task(task_uuid, reason_or_nil)`.
pub fn cancel_task(ruby: &Ruby, task_uuid: Value, reason: Value) -> Result<RHash, Error> {
    guard(ruby, "cancel_task", || {
        let uuid = convert::uuid_arg(ruby, task_uuid, "task_uuid")?;
        let reason = if reason.is_nil() { None } else { Some(string_arg(ruby, reason, "reason")?) };
        let system = current(ruby)?;
        let outcome = store_call(ruby, &system, "cancel_task", system.cancel_task(uuid, reason))?
            .map_err(|e| errors::store(ruby, &e))?;
        let hash = ruby.hash_new();
        hash.aset("task_uuid", convert::uuid_str(ruby, &uuid))?;
        match outcome {
            CancelOutcome::Cancelled => {
                hash.aset("outcome", "cancelled")?;
                hash.aset("status", TaskStatus::Cancelled.as_str())?;
                hash.aset("in_flight", 0)?;
            }
            CancelOutcome::Cancelling { in_flight } => {
                hash.aset("outcome", "cancelling")?;
                hash.aset("status", TaskStatus::InProgress.as_str())?;
                hash.aset("in_flight", in_flight)?;
            }
            CancelOutcome::AlreadyFinished(status) => {
                hash.aset("outcome", "already_finished")?;
                hash.aset("status", status.as_str())?;
                hash.aset("in_flight", 0)?;
            }
        }
        Ok(hash)
    })
}

/// `retry_task(task_uuid)`.
pub fn retry_task(ruby: &Ruby, task_uuid: Value) -> Result<RHash, Error> {
    guard(ruby, "retry_task", || {
        let uuid = convert::uuid_arg(ruby, task_uuid, "task_uuid")?;
        let system = current(ruby)?;
        let outcome =
            store_call(ruby, &system, "retry_task", system.retry_task(uuid))?.map_err(|e| errors::store(ruby, &e))?;
        let hash = ruby.hash_new();
        hash.aset("task_uuid", convert::uuid_str(ruby, &uuid))?;
        match outcome {
            RetryOutcome::Retrying { failed_steps, skipped_steps } => {
                hash.aset("outcome", "retrying")?;
                hash.aset("status", TaskStatus::InProgress.as_str())?;
                hash.aset("failed_steps", failed_steps)?;
                hash.aset("skipped_steps", skipped_steps)?;
            }
            RetryOutcome::NotFailed(status) => {
                hash.aset("outcome", "not_failed")?;
                hash.aset("status", status.as_str())?;
                hash.aset("failed_steps", 0)?;
                hash.aset("skipped_steps", 0)?;
            }
        }
        Ok(hash)
    })
}

/// `tasks(filter)`: `status`, `namespace`, `name`, `limit`, `before` (a task uuid or a
/// Time).
pub fn tasks(ruby: &Ruby, filter: Value) -> Result<RArray, Error> {
    guard(ruby, "tasks", || {
        let filter = task_filter(ruby, filter)?;
        let system = current(ruby)?;
        let summaries =
            store_call(ruby, &system, "tasks", system.list_tasks(filter))?.map_err(|e| errors::store(ruby, &e))?;
        let array = ruby.ary_new_capa(summaries.len());
        for summary in &summaries {
            array.push(convert::summary_to_hash(ruby, summary)?)?;
        }
        Ok(array)
    })
}

fn task_filter(ruby: &Ruby, value: Value) -> Result<TaskFilter, Error> {
    let mut filter = TaskFilter::default();
    if value.is_nil() {
        return Ok(filter);
    }
    for (key, value) in convert::option_entries(ruby, value, "tasks filter")? {
        match key.as_str() {
            "status" => {
                let text = string_arg(ruby, value, "status")?;
                let status = TaskStatus::parse(&text).ok_or_else(|| {
                    let known: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
                    errors::argument(ruby, format!("status {text:?} is not a task status ({})", known.join(", ")))
                })?;
                filter.status = Some(status);
            }
            "namespace" => filter.namespace = Some(string_arg(ruby, value, "namespace")?),
            "name" => filter.name = Some(string_arg(ruby, value, "name")?),
            "limit" => {
                let limit = magnus::Integer::from_value(value).and_then(|i| i.to_i64().ok()).ok_or_else(|| {
                    errors::type_error(ruby, format!("limit must be an Integer, got {}", errors::class_name(value)))
                })?;
                if limit < 1 || limit as usize > tasker_worker::MAX_LIST_LIMIT {
                    return Err(errors::argument(
                        ruby,
                        format!("limit must be between 1 and {}, got {limit}", tasker_worker::MAX_LIST_LIMIT),
                    ));
                }
                filter.limit = limit as usize;
            }
            "before" => {
                filter.before = Some(if RString::from_value(value).is_some() {
                    TaskCursor::Task(convert::uuid_arg(ruby, value, "before")?)
                } else {
                    TaskCursor::Time(time_arg(ruby, value, "before")?)
                })
            }
            other => {
                return Err(errors::argument(
                    ruby,
                    format!("unknown tasks filter :{other} (known: status, namespace, name, limit, before)"),
                ))
            }
        }
    }
    Ok(filter)
}

/// `stats`: the store's counts and this process's dispatch channel.
pub fn stats(ruby: &Ruby) -> Result<RHash, Error> {
    guard(ruby, "stats", || {
        let system = current(ruby)?;
        let stats = store_call(ruby, &system, "stats", system.stats())?.map_err(|e| errors::store(ruby, &e))?;
        let hash = convert::stats_to_hash(ruby, &stats)?;
        hash.aset("backend", system.backend().as_str())?;
        let metrics = system.ffi_channel().map(|c| c.metrics()).unwrap_or_default();
        hash.aset("pending_events", metrics.pending_count)?;
        hash.aset("waiting_in_dispatch", metrics.waiting_in_dispatch)?;
        hash.aset("oldest_waiting_ms", metrics.oldest_waiting_ms)?;
        hash.aset("starvation_detected", metrics.starvation_detected)?;
        hash.aset("timeout_lag_ms_p50", metrics.timeout_lag_ms_p50)?;
        hash.aset("timeout_lag_ms_p99", metrics.timeout_lag_ms_p99)?;
        Ok(hash)
    })
}

/// `metrics_text`: this process's counters, histograms and gauges as Prometheus text
/// exposition (served with `METRICS_CONTENT_TYPE`). Reading the live workers waits on the
/// store (without the GVL on PostgreSQL).
pub fn metrics_text(ruby: &Ruby) -> Result<RString, Error> {
    guard(ruby, "metrics_text", || {
        let system = current(ruby)?;
        let text = store_call(ruby, &system, "metrics_text", system.metrics_text())?
            .map_err(|e| errors::internal(ruby, format!("tasker_core bug in metrics_text: {e}")))?;
        Ok(ruby.str_new(&text))
    })
}

/// `workers`: the live workers the store knows.
pub fn workers(ruby: &Ruby) -> Result<RArray, Error> {
    guard(ruby, "workers", || {
        let system = current(ruby)?;
        let workers = store_call(ruby, &system, "workers", system.workers())?.map_err(|e| errors::store(ruby, &e))?;
        let array = ruby.ary_new_capa(workers.len());
        for worker in &workers {
            array.push(convert::worker_to_hash(ruby, worker)?)?;
        }
        Ok(array)
    })
}
