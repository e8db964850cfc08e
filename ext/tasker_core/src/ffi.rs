//! The bodies of the `TaskerCore::FFI` module functions: argument checks, calls into the
//! core, and conversion of what comes back. Each body runs under `errors::guard`, so a
//! panic becomes `TaskerCore::Errors::InternalError`. Blocking waits go through
//! `gvl::without_gvl` and stay interruptible.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use magnus::{prelude::*, Error, RHash, RString, Ruby, Value};
use tokio_util::sync::CancellationToken;

use tasker_worker::config::TaskerConfig;
use tasker_worker::embedded::{EmbeddedSystem, StartOutcome};
use tasker_worker::messages::FfiStepEvent;
use tasker_worker::orchestrator::{TaskRequest, WaitOutcome};
use tasker_worker::worker::handlers::ffi_dispatch_channel::{CompleteOutcome, TryComplete};
use tasker_worker::worker::handlers::FfiDispatchChannel;

use crate::convert;
use crate::errors::{self, guard};
use crate::gvl::{without_gvl, without_gvl_interruptible, SlicedWait, Unlocked};
use crate::options::BootstrapOptions;
use crate::step_event::StepEvent;
use crate::system;

fn current(ruby: &Ruby) -> Result<Arc<EmbeddedSystem>, Error> {
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

/// `bootstrap_worker(options = {})`.
pub fn bootstrap_worker(ruby: &Ruby, args: &[Value]) -> Result<RHash, Error> {
    guard(ruby, "bootstrap_worker", || {
        if args.len() > 1 {
            return Err(errors::argument(ruby, format!("bootstrap_worker takes 0..1 arguments, got {}", args.len())));
        }
        let options = BootstrapOptions::parse(ruby, args.first().copied())?;
        let loader = options.loader();
        // Checks the options' overrides even when the system already exists.
        let config: TaskerConfig = loader.load().map_err(|e| errors::config(ruby, &e))?;
        let environment = loader.environment().to_string();
        let (system, created) = system::get_or_create(|| EmbeddedSystem::new(config.clone(), environment.clone()))
            .map_err(|e| errors::internal(ruby, e.to_string()))?;
        // The core (runtime, orchestrator, their settings) is built once per process; only
        // the handler_dispatch settings apply anew to a restarted worker.
        if !created && options.environment.is_some() && environment != system.environment() {
            return Err(errors::configuration(
                ruby,
                format!(
                    "environment {environment:?} was asked for, but this process's core already runs environment \
                     {:?}; the core is built once per process (start another process to change it)",
                    system.environment()
                ),
            ));
        }

        let template_path = options
            .template_path
            .clone()
            .or_else(|| std::env::var_os("TASKER_TEMPLATE_PATH").filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(|| {
                let configured = &system.config().orchestration.template_path;
                (!configured.is_empty()).then(|| PathBuf::from(configured))
            });
        let templates_loaded = match &template_path {
            Some(path) => system
                .orchestrator()
                .load_templates_for(path, Some(system.environment()))
                .map_err(|e| errors::template(ruby, &e))?,
            None => 0,
        };

        let concurrency = options.concurrency.unwrap_or(system.config().worker.concurrency);
        let mut dispatch = config.mpsc_channels.worker.handler_dispatch.clone();
        // An explicit max_concurrent_handlers is honoured as given. Otherwise there is room
        // for every Ruby thread's step plus one waiting for each, so a thread that finishes
        // a step finds the next one ready instead of waiting for a refill.
        let explicit_max = options.dispatch_overrides.iter().any(|(name, _)| *name == "max_concurrent_handlers");
        if !explicit_max {
            dispatch.max_concurrent_handlers = dispatch.max_concurrent_handlers.max(concurrency.saturating_mul(2));
        }
        let outcome = system.start_ffi_worker(dispatch);

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
        hash.aset("worker_id", status.worker_id)?;
        hash.aset("consumer", status.consumer)?;
        hash.aset("environment", status.environment)?;
        hash.aset("pid", status.pid)?;
        hash.aset("in_flight", status.in_flight)?;
        hash.aset("started_at", status.started_at.map(tasker_worker::time_format::rfc3339_millis))?;
        hash.aset("templates", system.orchestrator().template_count())?;
        if let Some(dispatch) = &status.dispatch {
            hash.aset("max_concurrent_handlers", dispatch.max_concurrent_handlers)?;
            hash.aset("handler_timeout_ms", dispatch.handler_timeout_ms)?;
        }
        hash.aset("orchestrator", convert::serialize_to_ruby(ruby, &status.orchestrator)?)?;
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

/// `create_task(namespace, name, version_or_nil, context)`.
pub fn create_task(
    ruby: &Ruby,
    namespace: Value,
    name: Value,
    version: Value,
    context: Value,
) -> Result<RString, Error> {
    guard(ruby, "create_task", || {
        let namespace = string_arg(ruby, namespace, "namespace")?;
        let name = string_arg(ruby, name, "name")?;
        let version = if version.is_nil() { None } else { Some(string_arg(ruby, version, "version")?) };
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
        let system = current(ruby)?;
        let uuid = system
            .orchestrator()
            .create_task(TaskRequest { namespace, name, version, context })
            .map_err(|e| errors::orchestrator(ruby, &e))?;
        Ok(convert::uuid_str(ruby, &uuid))
    })
}

/// `task_status(task_uuid)`.
pub fn task_status(ruby: &Ruby, task_uuid: Value) -> Result<RHash, Error> {
    guard(ruby, "task_status", || {
        let uuid = convert::uuid_arg(ruby, task_uuid, "task_uuid")?;
        let view = current(ruby)?.orchestrator().task_status(&uuid).map_err(|e| errors::orchestrator(ruby, &e))?;
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
        let orchestrator = system.orchestrator();
        // Waited in slices with Ruby's interrupts taken in between (see `wait_for_event`).
        let wait = SlicedWait::new(timeout);
        while let Some(slice) = wait.next_slice() {
            let unlocked = without_gvl_interruptible(
                |interrupted| orchestrator.wait_for_task_blocking(&uuid, slice, interrupted),
                || orchestrator.wake_blocking_waiters(),
            );
            match settle(ruby, "wait_for_task", unlocked)? {
                Some(Ok(WaitOutcome::Finished(view))) => return Ok(Some(convert::status_to_hash(ruby, &view)?)),
                Some(Ok(WaitOutcome::TimedOut | WaitOutcome::Interrupted)) | None => {}
                Some(Err(e)) => return Err(errors::orchestrator(ruby, &e)),
            }
        }
        Ok(None)
    })
}
