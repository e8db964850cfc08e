//! Conversions between Ruby values and the core's types.
//!
//! Rust → Ruby: events, task status, metrics, JSON values (Hashes with String keys).
//! Ruby → Rust: JSON-like values (nil, true, false, Integer of any size, Float, String,
//! Symbol, Array, Hash with String or Symbol keys), step results, UUIDs and durations.
//! Every rejection names the offending key path, e.g. `result["metadata"]["custom"][2]`.
//!
//! Integers keep their exact value both ways: a JSON number is kept as its decimal text
//! (serde_json's `arbitrary_precision`), so a Ruby Bignum travels as its digits.
//!
//! All of this runs on a Ruby thread holding the GVL. Ruby values only live on the
//! stack for the length of one call; nothing here stores one.

use std::fmt::Write as _;
use std::time::Duration;

use magnus::rb_sys::AsRawValue;
use magnus::value::ReprValue;
use magnus::{Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value};
use serde_json::{Map, Number, Value as Json};
use uuid::Uuid;

use tasker_worker::{
    rfc3339_millis, ResultMetadata, StepExecutionError, StepExecutionResult, StoreStats, TaskStatusView, TaskSummary,
    WorkerView,
};

use crate::errors::{argument, class_name, short_inspect, type_error};

/// Deepest nesting accepted in a JSON-like value from Ruby.
pub const MAX_DEPTH: usize = 64;
/// Most bytes of string data accepted in one JSON-like value from Ruby.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

pub fn uuid_str(ruby: &Ruby, uuid: &Uuid) -> RString {
    let mut buf = Uuid::encode_buffer();
    ruby.str_new(uuid.hyphenated().encode_lower(&mut buf))
}

/// A JSON value as plain Ruby objects (Hashes with String keys).
pub fn json_to_ruby(value: &Json) -> Result<Value, Error> {
    // SAFETY: `build` runs the conversion on this Ruby thread under rb_protect.
    crate::raw::build(|| unsafe { crate::raw::json(value) })
}

/// A String or a Symbol's name; anything else is a `TypeError` saying "`expected`, got <class>".
pub fn string_or_symbol(ruby: &Ruby, value: Value, expected: &str) -> Result<String, Error> {
    if let Some(s) = RString::from_value(value) {
        return s.to_string();
    }
    if let Some(sym) = Symbol::from_value(value) {
        return sym.name().map(|n| n.into_owned());
    }
    Err(type_error(ruby, format!("{expected}, got {}", class_name(value))))
}

/// A time as the RFC 3339 String every Hash uses.
fn time_str(at: std::time::SystemTime) -> String {
    rfc3339_millis(at)
}

fn opt_json(ruby: &Ruby, value: Option<&Json>) -> Result<Value, Error> {
    match value {
        Some(v) => json_to_ruby(v),
        None => Ok(ruby.qnil().as_value()),
    }
}

/// The entries of an options Hash (`what` names it in errors) whose value is not nil,
/// with their keys read as Strings or Symbols; anything but a Hash is a `TypeError`.
pub fn option_entries(ruby: &Ruby, value: Value, what: &str) -> Result<Vec<(String, Value)>, Error> {
    let hash = RHash::from_value(value)
        .ok_or_else(|| type_error(ruby, format!("{what} must be a Hash, got {}", class_name(value))))?;
    let mut entries = Vec::with_capacity(hash.len());
    for (key, value) in hash_entries(hash)? {
        let key = string_or_symbol(ruby, key, &format!("{what} keys must be Symbols or Strings"))?;
        if !value.is_nil() {
            entries.push((key, value));
        }
    }
    Ok(entries)
}

/// A `task_status` Hash.
pub fn status_to_hash(ruby: &Ruby, view: &TaskStatusView) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    hash.aset("task_uuid", uuid_str(ruby, &view.task_uuid))?;
    hash.aset("namespace", ruby.str_new(&view.namespace))?;
    hash.aset("name", ruby.str_new(&view.name))?;
    hash.aset("version", ruby.str_new(&view.version))?;
    hash.aset("status", view.status.as_str())?;
    hash.aset("priority", view.priority)?;
    hash.aset("correlation_id", uuid_str(ruby, &view.correlation_id))?;
    hash.aset("context", json_to_ruby(&view.context)?)?;
    hash.aset("created_at", time_str(view.created_at))?;
    hash.aset("completed_at", view.finished_at.map(time_str))?;
    hash.aset("run_at", view.run_at.map(time_str))?;
    hash.aset("idempotency_key", view.idempotency_key.as_deref())?;
    hash.aset("cancel_requested_at", view.cancel_requested_at.map(time_str))?;
    hash.aset("cancel_reason", view.cancel_reason.as_deref())?;
    let steps = ruby.ary_new_capa(view.steps.len());
    for step in &view.steps {
        let s = ruby.hash_new();
        s.aset("name", ruby.str_new(&step.name))?;
        s.aset("step_uuid", uuid_str(ruby, &step.step_uuid))?;
        s.aset("status", step.status.as_str())?;
        s.aset("attempts", step.attempts)?;
        s.aset("max_attempts", step.max_attempts)?;
        let dependencies = ruby.ary_new_capa(step.dependencies.len());
        for name in &step.dependencies {
            dependencies.push(ruby.str_new(name))?;
        }
        s.aset("dependencies", dependencies)?;
        s.aset("result", opt_json(ruby, step.result.as_deref())?)?;
        s.aset(
            "error",
            match &step.error {
                Some(e) => error_to_hash(ruby, e)?.as_value(),
                None => ruby.qnil().as_value(),
            },
        )?;
        let history = ruby.ary_new_capa(step.history.len());
        for attempt in &step.history {
            let a = ruby.hash_new();
            a.aset("attempt", attempt.attempt)?;
            a.aset("outcome", attempt.outcome.as_ref())?;
            a.aset("started_at", attempt.started_at.as_deref())?;
            a.aset("completed_at", attempt.completed_at.as_deref())?;
            a.aset("duration_ms", attempt.duration_ms)?;
            a.aset("error_type", attempt.error_type.as_deref())?;
            a.aset("message", attempt.message.as_deref())?;
            history.push(a)?;
        }
        s.aset("history", history)?;
        steps.push(s)?;
    }
    hash.aset("steps", steps)?;
    Ok(hash)
}

fn error_to_hash(ruby: &Ruby, error: &StepExecutionError) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    hash.aset("message", ruby.str_new(&error.message))?;
    hash.aset("error_type", ruby.str_new(&error.error_type))?;
    hash.aset("retryable", error.retryable)?;
    let backtrace = ruby.ary_new_capa(error.backtrace.len());
    for line in &error.backtrace {
        backtrace.push(ruby.str_new(line))?;
    }
    hash.aset("backtrace", backtrace)?;
    hash.aset("error_code", error.error_code.as_deref())?;
    hash.aset("context", opt_json(ruby, error.context.as_ref())?)?;
    Ok(hash)
}

/// One task of a listing, as `TaskerCore.tasks` returns it.
pub fn summary_to_hash(ruby: &Ruby, task: &TaskSummary) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    hash.aset("task_uuid", uuid_str(ruby, &task.task_uuid))?;
    hash.aset("status", task.status.as_str())?;
    hash.aset("namespace", ruby.str_new(&task.namespace))?;
    hash.aset("name", ruby.str_new(&task.name))?;
    hash.aset("version", ruby.str_new(&task.version))?;
    hash.aset("priority", task.priority)?;
    hash.aset("created_at", time_str(task.created_at))?;
    hash.aset("completed_at", task.finished_at.map(time_str))?;
    Ok(hash)
}

/// The store's counts (`TaskerCore.stats` adds the channel's on top).
pub fn stats_to_hash(ruby: &Ruby, stats: &StoreStats) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    let tasks = ruby.hash_new();
    for (status, count) in &stats.tasks {
        tasks.aset(status.as_str(), *count)?;
    }
    hash.aset("tasks", tasks)?;
    hash.aset("steps_in_flight", stats.steps_in_flight)?;
    hash.aset("steps_ready", stats.steps_ready)?;
    hash.aset("steps_waiting_for_retry", stats.steps_waiting_for_retry)?;
    hash.aset("workers_alive", stats.workers_alive)?;
    let throughput = ruby.ary_new_capa(stats.throughput.len());
    for minute in &stats.throughput {
        let m = ruby.hash_new();
        m.aset("minute", time_str(minute.minute))?;
        m.aset("succeeded", minute.succeeded)?;
        m.aset("failed", minute.failed)?;
        throughput.push(m)?;
    }
    hash.aset("throughput", throughput)?;
    Ok(hash)
}

/// One live worker, as `TaskerCore.workers` returns it.
pub fn worker_to_hash(ruby: &Ruby, worker: &WorkerView) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    hash.aset("worker_id", ruby.str_new(&worker.worker_id))?;
    hash.aset("host", ruby.str_new(&worker.host))?;
    hash.aset("pid", worker.pid)?;
    hash.aset("started_at", time_str(worker.started_at))?;
    hash.aset("heartbeat_age_ms", worker.heartbeat_age.as_millis().min(u64::MAX as u128) as u64)?;
    hash.aset("in_flight", worker.in_flight)?;
    hash.aset("concurrency", worker.concurrency)?;
    Ok(hash)
}

/// Any serializable value as Ruby objects, through JSON (cold paths: metrics, status).
pub fn serialize_to_ruby<T: serde::Serialize>(ruby: &Ruby, value: &T) -> Result<Value, Error> {
    let json = serde_json::to_value(value)
        .map_err(|e| crate::errors::internal(ruby, format!("could not serialize a report: {e}")))?;
    json_to_ruby(&json)
}

// ---------------------------------------------------------------- Ruby → Rust

/// One step of a key path, for error messages.
enum Segment {
    Key(String),
    Index(usize),
}

/// Reads JSON-like Ruby values, tracking where it is for error messages.
struct JsonReader<'r> {
    ruby: &'r Ruby,
    root: String,
    path: Vec<Segment>,
    bytes: usize,
}

impl<'r> JsonReader<'r> {
    fn new(ruby: &'r Ruby, root: impl Into<String>) -> Self {
        Self { ruby, root: root.into(), path: Vec::new(), bytes: 0 }
    }

    /// Where the reader is, e.g. `result["metadata"]["custom"][2]`. A deep path shows its
    /// first and last steps around a count of the rest, so a message stays short.
    fn location(&self) -> String {
        const ENDS: usize = 4;
        let write_segment = |text: &mut String, segment: &Segment| match segment {
            Segment::Key(k) => {
                let _ = write!(text, "[{k:?}]");
            }
            Segment::Index(i) => {
                let _ = write!(text, "[{i}]");
            }
        };
        let mut text = self.root.clone();
        if self.path.len() <= 2 * ENDS + 1 {
            self.path.iter().for_each(|segment| write_segment(&mut text, segment));
            return text;
        }
        self.path[..ENDS].iter().for_each(|segment| write_segment(&mut text, segment));
        let _ = write!(text, "...({} levels)...", self.path.len() - 2 * ENDS);
        self.path[self.path.len() - ENDS..].iter().for_each(|segment| write_segment(&mut text, segment));
        text
    }

    fn type_error(&self, message: impl std::fmt::Display) -> Error {
        type_error(self.ruby, format!("{}: {message}", self.location()))
    }

    fn arg_error(&self, message: impl std::fmt::Display) -> Error {
        argument(self.ruby, format!("{}: {message}", self.location()))
    }

    fn count_bytes(&mut self, n: usize) -> Result<(), Error> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > MAX_BYTES {
            return Err(self.arg_error(format!("value is too large: more than {MAX_BYTES} bytes of text")));
        }
        Ok(())
    }

    fn string(&mut self, s: RString) -> Result<String, Error> {
        self.count_bytes(s.len())?;
        s.to_string().map_err(|_| self.arg_error("string is not valid UTF-8 text"))
    }

    fn read(&mut self, value: Value) -> Result<Json, Error> {
        if self.path.len() > MAX_DEPTH {
            return Err(self.arg_error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        if value.is_nil() {
            return Ok(Json::Null);
        }
        let raw = value.as_raw();
        if raw == rb_sys::Qtrue as rb_sys::VALUE {
            return Ok(Json::Bool(true));
        }
        if raw == rb_sys::Qfalse as rb_sys::VALUE {
            return Ok(Json::Bool(false));
        }
        if let Some(s) = RString::from_value(value) {
            return Ok(Json::String(self.string(s)?));
        }
        if let Some(i) = Integer::from_value(value) {
            if let Ok(n) = i.to_i64() {
                return Ok(Json::Number(n.into()));
            }
            return self.bignum(value);
        }
        if let Some(f) = Float::from_value(value) {
            let n = f.to_f64();
            return Number::from_f64(n)
                .map(Json::Number)
                .ok_or_else(|| self.arg_error(format!("{n} is not a JSON number (NaN and Infinity are not allowed)")));
        }
        if let Some(sym) = Symbol::from_value(value) {
            let name = sym.name().map_err(|_| self.arg_error("symbol name is not valid UTF-8"))?;
            self.count_bytes(name.len())?;
            return Ok(Json::String(name.into_owned()));
        }
        if let Some(array) = RArray::from_value(value) {
            let mut items = Vec::with_capacity(array.len());
            for index in 0..array.len() {
                let item: Value = array.entry(index as isize)?;
                self.path.push(Segment::Index(index));
                let read = self.read(item);
                self.path.pop();
                items.push(read?);
            }
            return Ok(Json::Array(items));
        }
        if let Some(hash) = RHash::from_value(value) {
            return self.object(hash).map(Json::Object);
        }
        Err(self.type_error(format!(
            "{} is not JSON-like (use nil, true, false, Integer, Float, String, Symbol, Array or Hash): {}",
            class_name(value),
            short_inspect(value)
        )))
    }

    /// An Integer beyond 64 bits, as its decimal digits.
    fn bignum(&mut self, value: Value) -> Result<Json, Error> {
        // SAFETY: a live Integer on this Ruby thread; `rb_big2str` returns a new String.
        let digits = unsafe { rb_sys::rb_big2str(value.as_raw(), 10) };
        // SAFETY: the VALUE just returned is a live String.
        let digits = unsafe { <Value as magnus::rb_sys::FromRawValue>::from_raw(digits) };
        let digits = RString::from_value(digits).ok_or_else(|| self.arg_error("integer has no decimal digits"))?;
        self.count_bytes(digits.len())?;
        let text = digits.to_string().map_err(|_| self.arg_error("integer digits are not ASCII"))?;
        if text.is_empty() || !text.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.arg_error(format!("{text:?} is not an integer's digits")));
        }
        Ok(Json::Number(Number::from_string_unchecked(text)))
    }

    fn hash_key(&mut self, key: Value) -> Result<String, Error> {
        if let Some(s) = RString::from_value(key) {
            return self.string(s);
        }
        if let Some(sym) = Symbol::from_value(key) {
            return sym.name().map(|n| n.into_owned()).map_err(|_| self.arg_error("symbol key is not valid UTF-8"));
        }
        Err(self.type_error(format!(
            "Hash keys must be Strings or Symbols, got {} ({})",
            class_name(key),
            short_inspect(key)
        )))
    }

    fn object(&mut self, hash: RHash) -> Result<Map<String, Json>, Error> {
        let mut map = Map::new();
        for (k, v) in hash_entries(hash)? {
            let name = self.hash_key(k)?;
            if map.contains_key(&name) {
                // `{a: 1, "a" => 2}`: both keys would become "a" and one value would be lost.
                return Err(self.arg_error(format!(
                    "the key {name:?} appears twice, as a String and as a Symbol; keep one of them"
                )));
            }
            self.path.push(Segment::Key(name.clone()));
            let read = self.read(v);
            self.path.pop();
            map.insert(name, read?);
        }
        Ok(map)
    }
}

/// The entries of a Hash, copied out so no Ruby code runs while they are read.
fn hash_entries(hash: RHash) -> Result<Vec<(Value, Value)>, Error> {
    let mut entries = Vec::with_capacity(hash.len());
    hash.foreach(|k: Value, v: Value| {
        entries.push((k, v));
        Ok(magnus::r_hash::ForEach::Continue)
    })?;
    Ok(entries)
}

/// A JSON-like Ruby value; errors name `root` and the path inside it.
pub fn ruby_to_json(ruby: &Ruby, value: Value, root: &str) -> Result<Json, Error> {
    JsonReader::new(ruby, root).read(value)
}

/// A Hash with String or Symbol keys split into its known keys; any other key is an
/// `ArgumentError` naming it and listing the allowed ones. Allocates nothing unless a
/// key is wrong (this runs for every completion).
fn known_keys<const N: usize>(
    ruby: &Ruby,
    hash: RHash,
    what: &str,
    allowed: [&str; N],
) -> Result<[Option<Value>; N], Error> {
    let mut found = [None; N];
    let mut bad_key: Option<Value> = None;
    hash.foreach(|k: Value, v: Value| {
        let position = if let Some(s) = RString::from_value(k) {
            // SAFETY: the bytes are compared at once, before any Ruby code runs.
            let bytes = unsafe { s.as_slice() };
            allowed.iter().position(|a| a.as_bytes() == bytes)
        } else if let Some(sym) = Symbol::from_value(k) {
            sym.name().ok().and_then(|name| allowed.iter().position(|a| *a == name))
        } else {
            None
        };
        match position {
            Some(i) => {
                found[i] = Some(v);
                Ok(magnus::r_hash::ForEach::Continue)
            }
            None => {
                bad_key = Some(k);
                Ok(magnus::r_hash::ForEach::Stop)
            }
        }
    })?;
    if let Some(k) = bad_key {
        if RString::from_value(k).is_none() && Symbol::from_value(k).is_none() {
            return Err(type_error(ruby, format!("{what}: keys must be Strings or Symbols, got {}", class_name(k))));
        }
        return Err(argument(
            ruby,
            format!("{what}: unknown key {} (allowed: {})", short_inspect(k), allowed.join(", ")),
        ));
    }
    Ok(found)
}

fn bool_at(ruby: &Ruby, value: Value, what: &str) -> Result<bool, Error> {
    let raw = value.as_raw();
    if raw == rb_sys::Qtrue as rb_sys::VALUE {
        Ok(true)
    } else if raw == rb_sys::Qfalse as rb_sys::VALUE {
        Ok(false)
    } else {
        Err(type_error(ruby, format!("{what} must be true or false, got {}", class_name(value))))
    }
}

fn string_at(ruby: &Ruby, value: Value, what: &str) -> Result<String, Error> {
    let s = RString::from_value(value)
        .ok_or_else(|| type_error(ruby, format!("{what} must be a String, got {}", class_name(value))))?;
    s.to_string().map_err(|_| argument(ruby, format!("{what} is not valid UTF-8 text")))
}

fn present(value: Option<Value>) -> Option<Value> {
    value.filter(|v| !v.is_nil())
}

/// A handler's result Hash → `StepExecutionResult` (identity left for the channel to fill).
/// Errors name the offending key; nothing is changed anywhere when this fails.
pub fn result_from_ruby(ruby: &Ruby, value: Value) -> Result<StepExecutionResult, Error> {
    let hash = RHash::from_value(value).ok_or_else(|| {
        type_error(
            ruby,
            format!(
                "result must be a Hash with \"success\" (true/false), got {}: {}",
                class_name(value),
                short_inspect(value)
            ),
        )
    })?;
    let [success, result, metadata, error] = known_keys(ruby, hash, "result", crate::boundary::RESULT_KEYS)?;
    let success = match success {
        Some(v) => bool_at(ruby, v, "result[\"success\"]")?,
        None => return Err(argument(ruby, "result: missing required key \"success\" (true or false)")),
    };
    let result_value = match present(result) {
        Some(v) => ruby_to_json(ruby, v, "result[\"result\"]")?,
        None => Json::Null,
    };
    let metadata = match present(metadata) {
        Some(v) => metadata_from_ruby(ruby, v)?,
        None => ResultMetadata::default(),
    };
    let error = match (success, present(error)) {
        (true, None) => None,
        (true, Some(_)) => {
            return Err(argument(ruby, "result: \"error\" is only allowed when \"success\" is false"));
        }
        (false, Some(v)) => Some(error_from_ruby(ruby, v)?),
        (false, None) => {
            return Err(argument(
                ruby,
                "result: a failed result (\"success\" => false) needs \"error\" => {\"message\" => ...}",
            ))
        }
    };
    Ok(StepExecutionResult { step: Default::default(), success, result: result_value, metadata, error })
}

fn metadata_from_ruby(ruby: &Ruby, value: Value) -> Result<ResultMetadata, Error> {
    let hash = RHash::from_value(value)
        .ok_or_else(|| type_error(ruby, format!("result[\"metadata\"] must be a Hash, got {}", class_name(value))))?;
    let [execution_time_ms, started_at, completed_at, retryable, custom] =
        known_keys(ruby, hash, "result[\"metadata\"]", crate::boundary::METADATA_KEYS)?;
    let execution_time_ms = match present(execution_time_ms) {
        None => None,
        Some(v) => Some(non_negative_ms(ruby, v, "result[\"metadata\"][\"execution_time_ms\"]")?),
    };
    Ok(ResultMetadata {
        execution_time_ms,
        started_at: present(started_at)
            .map(|v| string_at(ruby, v, "result[\"metadata\"][\"started_at\"]"))
            .transpose()?,
        completed_at: present(completed_at)
            .map(|v| string_at(ruby, v, "result[\"metadata\"][\"completed_at\"]"))
            .transpose()?,
        retryable: present(retryable).map(|v| bool_at(ruby, v, "result[\"metadata\"][\"retryable\"]")).transpose()?,
        custom: present(custom).map(|v| ruby_to_json(ruby, v, "result[\"metadata\"][\"custom\"]")).transpose()?,
    })
}

fn non_negative_ms(ruby: &Ruby, value: Value, what: &str) -> Result<u64, Error> {
    if let Some(i) = Integer::from_value(value) {
        return i.to_u64().map_err(|_| argument(ruby, format!("{what} must be a non-negative number of milliseconds")));
    }
    if let Some(f) = Float::from_value(value) {
        let n = f.to_f64();
        if n.is_finite() && n >= 0.0 {
            return Ok(n.round() as u64);
        }
        return Err(argument(ruby, format!("{what} must be a non-negative number of milliseconds, got {n}")));
    }
    Err(type_error(ruby, format!("{what} must be a Numeric, got {}", class_name(value))))
}

fn error_from_ruby(ruby: &Ruby, value: Value) -> Result<StepExecutionError, Error> {
    let hash = RHash::from_value(value).ok_or_else(|| {
        type_error(ruby, format!("result[\"error\"] must be a Hash with \"message\", got {}", class_name(value)))
    })?;
    let [message, error_type, retryable, backtrace, error_code, context, retry_after] =
        known_keys(ruby, hash, "result[\"error\"]", crate::boundary::ERROR_KEYS)?;
    let message = match present(message) {
        Some(v) => string_at(ruby, v, "result[\"error\"][\"message\"]")?,
        None => return Err(argument(ruby, "result[\"error\"]: missing required key \"message\"")),
    };
    let error_type = match present(error_type) {
        Some(v) => string_at(ruby, v, "result[\"error\"][\"error_type\"]")?,
        None => "StepFailure".to_string(),
    };
    let retryable = match present(retryable) {
        Some(v) => bool_at(ruby, v, "result[\"error\"][\"retryable\"]")?,
        None => true,
    };
    let backtrace = match present(backtrace) {
        None => Vec::new(),
        Some(v) => match RArray::from_value(v) {
            Some(lines) => {
                let mut out = Vec::with_capacity(lines.len());
                for i in 0..lines.len() {
                    let line: Value = lines.entry(i as isize)?;
                    out.push(string_at(ruby, line, &format!("result[\"error\"][\"backtrace\"][{i}]"))?);
                }
                out
            }
            None => vec![string_at(ruby, v, "result[\"error\"][\"backtrace\"]")?],
        },
    };
    let mut error = StepExecutionError::new(message, error_type, retryable);
    error.backtrace = backtrace;
    error.error_code =
        present(error_code).map(|v| string_at(ruby, v, "result[\"error\"][\"error_code\"]")).transpose()?;
    error.context = present(context).map(|v| ruby_to_json(ruby, v, "result[\"error\"][\"context\"]")).transpose()?;
    error.retry_after = match present(retry_after) {
        Some(v) => seconds_arg(ruby, v, "result[\"error\"][\"retry_after\"]")?,
        None => None,
    };
    Ok(error)
}

/// A UUID given as a String; `what` names the argument in errors.
pub fn uuid_arg(ruby: &Ruby, value: Value, what: &str) -> Result<Uuid, Error> {
    let s = RString::from_value(value).ok_or_else(|| {
        type_error(
            ruby,
            format!("{what} must be a String (a UUID), got {}: {}", class_name(value), short_inspect(value)),
        )
    })?;
    // SAFETY: the bytes are read at once, before any Ruby code can run.
    let bytes = unsafe { s.as_slice() };
    Uuid::try_parse_ascii(bytes).map_err(|_| argument(ruby, format!("{what} is not a UUID: {}", short_inspect(value))))
}

/// `nil` → `None`; a non-negative finite Numeric of seconds → `Some(duration)`.
pub fn seconds_arg(ruby: &Ruby, value: Value, what: &str) -> Result<Option<Duration>, Error> {
    if value.is_nil() {
        return Ok(None);
    }
    let seconds = if let Some(i) = Integer::from_value(value) {
        i.to_i64().map(|n| n as f64).unwrap_or(f64::INFINITY)
    } else if let Some(f) = Float::from_value(value) {
        f.to_f64()
    } else {
        return Err(type_error(
            ruby,
            format!("{what} must be a Numeric number of seconds or nil, got {}", class_name(value)),
        ));
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(argument(ruby, format!("{what} must be a finite, non-negative number of seconds, got {seconds}")));
    }
    Ok(Some(Duration::from_secs_f64(seconds.min(365.0 * 86_400.0))))
}
