//! Range checks over a deserialized [`TaskerConfig`].
//!
//! Types and unknown keys are the loader's business; this module owns the question
//! "is every value within the range the core can run with?". [`validate`] returns every
//! problem at once, each with the dotted key it concerns, so the loader can name the file
//! that set the key.

use std::fmt::Display;

use super::TaskerConfig;

/// One day in milliseconds: the upper bound of every duration setting.
pub const MAX_DURATION_MS: u64 = 86_400_000;
/// Upper bound of every channel capacity.
pub const MAX_BUFFER_SIZE: usize = 1_000_000;
/// Upper bound of a retention: ten years.
pub const MAX_RETENTION_SECONDS: u64 = 10 * 365 * 86_400;
/// Upper bound of the embedded store's memory budget: 1 TiB.
pub const MAX_MEMORY_BUDGET_BYTES: u64 = 1 << 40;

/// A value out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key of the offending value, e.g. `worker.runtime_threads`.
    pub key: String,
    /// What is wrong, including the value found and the allowed range.
    pub message: String,
    /// Another key the problem involves (a cross-field check), whose origin is worth
    /// naming too.
    pub related_key: Option<String>,
}

impl ConfigProblem {
    fn new(key: &str, message: String) -> Self {
        Self { key: key.to_owned(), message, related_key: None }
    }
}

/// Checks every range of `config`; an empty vector means the configuration is usable.
pub fn validate(config: &TaskerConfig) -> Vec<ConfigProblem> {
    let mut checks = Checks::default();

    let dispatch = &config.mpsc_channels.worker.handler_dispatch;
    const HD: &str = "mpsc_channels.worker.handler_dispatch";
    checks.range(&format!("{HD}.dispatch_buffer_size"), dispatch.dispatch_buffer_size, 1, MAX_BUFFER_SIZE);
    checks.range(&format!("{HD}.completion_buffer_size"), dispatch.completion_buffer_size, 1, MAX_BUFFER_SIZE);
    checks.range(&format!("{HD}.max_concurrent_handlers"), dispatch.max_concurrent_handlers, 1, 10_000);
    checks.range(&format!("{HD}.handler_timeout_ms"), dispatch.handler_timeout_ms, 1, MAX_DURATION_MS);

    let ffi = &config.mpsc_channels.worker.ffi_dispatch;
    const FD: &str = "mpsc_channels.worker.ffi_dispatch";
    checks.range(&format!("{FD}.starvation_threshold_ms"), ffi.starvation_threshold_ms, 1, MAX_DURATION_MS);
    checks.range(&format!("{FD}.late_completion_memory"), ffi.late_completion_memory, 0, 10_000_000);

    let completion = &config.mpsc_channels.worker.completion;
    const CO: &str = "mpsc_channels.worker.completion";
    checks.range(&format!("{CO}.actor_buffer_size"), completion.actor_buffer_size, 1, MAX_BUFFER_SIZE);
    checks.range(&format!("{CO}.batch_size"), completion.batch_size, 1, 10_000);

    let orchestration = &config.orchestration;
    let embedded = &config.storage.embedded;
    const SE: &str = "storage.embedded";
    checks.range(
        &format!("{SE}.finished_task_retention_seconds"),
        embedded.finished_task_retention_seconds,
        0,
        MAX_RETENTION_SECONDS,
    );
    checks.range(
        &format!("{SE}.finished_task_memory_budget_bytes"),
        embedded.finished_task_memory_budget_bytes,
        0,
        MAX_MEMORY_BUDGET_BYTES,
    );
    checks.range(&format!("{SE}.max_unfinished_tasks"), embedded.max_unfinished_tasks, 1, 100_000_000);

    let postgres = &config.storage.postgres;
    const SP: &str = "storage.postgres";
    checks.range(&format!("{SP}.pool_size"), postgres.pool_size, 1, 1000);
    checks.range(&format!("{SP}.pool_wait_timeout_ms"), postgres.pool_wait_timeout_ms, 1, MAX_DURATION_MS);
    checks.range(&format!("{SP}.claim_batch_size"), postgres.claim_batch_size, 1, 1000);
    checks.range(&format!("{SP}.prefetch"), postgres.prefetch, 1, 10_000);
    checks.range(&format!("{SP}.heartbeat_interval_ms"), postgres.heartbeat_interval_ms, 10, 600_000);
    checks.range(&format!("{SP}.worker_lost_after_ms"), postgres.worker_lost_after_ms, 20, MAX_DURATION_MS);
    if postgres.worker_lost_after_ms < 2 * postgres.heartbeat_interval_ms {
        checks.problems.push(ConfigProblem {
            key: format!("{SP}.worker_lost_after_ms"),
            message: format!(
                "must be at least twice {SP}.heartbeat_interval_ms ({}), got {}",
                postgres.heartbeat_interval_ms, postgres.worker_lost_after_ms
            ),
            related_key: Some(format!("{SP}.heartbeat_interval_ms")),
        });
    }
    checks.range(&format!("{SP}.poll_interval_ms"), postgres.poll_interval_ms, 1, 3_600_000);
    checks.range(
        &format!("{SP}.finished_task_retention_seconds"),
        postgres.finished_task_retention_seconds,
        0,
        MAX_RETENTION_SECONDS,
    );
    checks.range(&format!("{SP}.purge_batch_size"), postgres.purge_batch_size, 1, 100_000);
    checks.range(&format!("{SP}.purge_interval_ms"), postgres.purge_interval_ms, 10, MAX_DURATION_MS);
    checks.range(&format!("{SP}.vacuum_dead_steps"), postgres.vacuum_dead_steps, 0, 1_000_000_000);
    checks.range(&format!("{SP}.reconnect_initial_ms"), postgres.reconnect_initial_ms, 1, 60_000);
    checks.range(&format!("{SP}.reconnect_max_ms"), postgres.reconnect_max_ms, 1, 600_000);
    if postgres.reconnect_max_ms < postgres.reconnect_initial_ms {
        checks.problems.push(ConfigProblem {
            key: format!("{SP}.reconnect_max_ms"),
            message: format!(
                "must not be less than {SP}.reconnect_initial_ms ({}), got {}",
                postgres.reconnect_initial_ms, postgres.reconnect_max_ms
            ),
            related_key: Some(format!("{SP}.reconnect_initial_ms")),
        });
    }
    checks.range(&format!("{SP}.listener_ping_interval_ms"), postgres.listener_ping_interval_ms, 100, 3_600_000);

    let retry = &orchestration.default_retry;
    const DR: &str = "orchestration.default_retry";
    checks.range(&format!("{DR}.max_attempts"), retry.max_attempts, 1, 1000);
    checks.range(&format!("{DR}.max_backoff_ms"), retry.max_backoff_ms, 0, MAX_DURATION_MS);
    if retry.backoff_base_ms > retry.max_backoff_ms {
        checks.problems.push(ConfigProblem {
            key: format!("{DR}.backoff_base_ms"),
            message: format!(
                "must not exceed {DR}.max_backoff_ms ({}), got {}",
                retry.max_backoff_ms, retry.backoff_base_ms
            ),
            related_key: Some(format!("{DR}.max_backoff_ms")),
        });
    }
    if !retry.jitter.is_finite() || !(0.0..=1.0).contains(&retry.jitter) {
        checks.problems.push(ConfigProblem::new(
            &format!("{DR}.jitter"),
            format!("must be a number between 0.0 and 1.0, got {}", retry.jitter),
        ));
    }

    let worker = &config.worker;
    checks.range("worker.runtime_threads", worker.runtime_threads, 1, 256);
    checks.range("worker.concurrency", worker.concurrency, 1, 10_000);
    checks.range("worker.poll_timeout_ms", worker.poll_timeout_ms, 1, 60_000);
    checks.range("worker.shutdown_timeout_ms", worker.shutdown_timeout_ms, 0, MAX_DURATION_MS);
    checks.range("worker.hung_handler_grace_ms", worker.hung_handler_grace_ms, 0, MAX_DURATION_MS);

    checks.problems
}

#[derive(Default)]
struct Checks {
    problems: Vec<ConfigProblem>,
}

impl Checks {
    /// Records a problem unless `min <= value <= max`.
    fn range<T: PartialOrd + Display>(&mut self, key: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.problems.push(ConfigProblem::new(key, format!("must be between {min} and {max}, got {value}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(problems: &[ConfigProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&TaskerConfig::default()), Vec::new());
    }

    #[test]
    fn zero_buffer_is_reported_with_key_range_and_value() {
        let mut config = TaskerConfig::default();
        config.mpsc_channels.worker.handler_dispatch.dispatch_buffer_size = 0;
        let problems = validate(&config);
        assert_eq!(keys(&problems), ["mpsc_channels.worker.handler_dispatch.dispatch_buffer_size"]);
        assert_eq!(problems[0].message, "must be between 1 and 1000000, got 0");
    }

    #[test]
    fn bounds_are_inclusive() {
        let mut config = TaskerConfig::default();
        config.mpsc_channels.worker.handler_dispatch.max_concurrent_handlers = 10_000;
        config.mpsc_channels.worker.completion.batch_size = 1;
        config.worker.runtime_threads = 256;
        config.worker.poll_timeout_ms = 60_000;
        config.orchestration.default_retry.max_attempts = 1000;
        config.orchestration.default_retry.jitter = 1.0;
        config.mpsc_channels.worker.ffi_dispatch.late_completion_memory = 0;
        assert_eq!(validate(&config), Vec::new());

        config.mpsc_channels.worker.handler_dispatch.max_concurrent_handlers = 10_001;
        config.mpsc_channels.worker.completion.batch_size = 0;
        config.worker.runtime_threads = 257;
        config.worker.poll_timeout_ms = 60_001;
        config.orchestration.default_retry.max_attempts = 1001;
        config.mpsc_channels.worker.ffi_dispatch.late_completion_memory = 10_000_001;
        assert_eq!(
            keys(&validate(&config)),
            [
                "mpsc_channels.worker.handler_dispatch.max_concurrent_handlers",
                "mpsc_channels.worker.ffi_dispatch.late_completion_memory",
                "mpsc_channels.worker.completion.batch_size",
                "orchestration.default_retry.max_attempts",
                "worker.runtime_threads",
                "worker.poll_timeout_ms",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let mut config = TaskerConfig::default();
        config.mpsc_channels.worker.handler_dispatch.handler_timeout_ms = 0;
        config.mpsc_channels.worker.ffi_dispatch.starvation_threshold_ms = 0;
        config.mpsc_channels.worker.completion.actor_buffer_size = 2_000_000;
        config.storage.embedded.max_unfinished_tasks = 0;
        config.worker.concurrency = 0;
        config.worker.shutdown_timeout_ms = MAX_DURATION_MS + 1;
        config.worker.hung_handler_grace_ms = MAX_DURATION_MS + 1;
        assert_eq!(
            keys(&validate(&config)),
            [
                "mpsc_channels.worker.handler_dispatch.handler_timeout_ms",
                "mpsc_channels.worker.ffi_dispatch.starvation_threshold_ms",
                "mpsc_channels.worker.completion.actor_buffer_size",
                "storage.embedded.max_unfinished_tasks",
                "worker.concurrency",
                "worker.shutdown_timeout_ms",
                "worker.hung_handler_grace_ms",
            ]
        );
    }

    #[test]
    fn backoff_base_above_max_names_both_keys() {
        let mut config = TaskerConfig::default();
        config.orchestration.default_retry.backoff_base_ms = 6000;
        config.orchestration.default_retry.max_backoff_ms = 5000;
        let problems = validate(&config);
        assert_eq!(keys(&problems), ["orchestration.default_retry.backoff_base_ms"]);
        assert_eq!(problems[0].related_key.as_deref(), Some("orchestration.default_retry.max_backoff_ms"));
        assert!(problems[0].message.contains("(5000), got 6000"), "{}", problems[0].message);

        config.orchestration.default_retry.backoff_base_ms = 5000;
        assert_eq!(validate(&config), Vec::new());
    }

    #[test]
    fn a_worker_lost_limit_under_two_heartbeats_names_both_keys() {
        let mut config = TaskerConfig::default();
        config.storage.postgres.heartbeat_interval_ms = 4000;
        let problems = validate(&config);
        assert_eq!(keys(&problems), ["storage.postgres.worker_lost_after_ms"]);
        assert_eq!(problems[0].related_key.as_deref(), Some("storage.postgres.heartbeat_interval_ms"));
        config.storage.postgres.worker_lost_after_ms = 8000;
        assert_eq!(validate(&config), Vec::new());
        config.storage.postgres.reconnect_max_ms = 10;
        assert_eq!(keys(&validate(&config)), ["storage.postgres.reconnect_max_ms"]);
    }

    #[test]
    fn max_backoff_above_one_day_is_rejected() {
        let mut config = TaskerConfig::default();
        config.orchestration.default_retry.max_backoff_ms = MAX_DURATION_MS + 1;
        assert_eq!(keys(&validate(&config)), ["orchestration.default_retry.max_backoff_ms"]);
    }

    #[test]
    fn jitter_must_be_finite_and_within_unit_interval() {
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let mut config = TaskerConfig::default();
            config.orchestration.default_retry.jitter = bad;
            assert_eq!(keys(&validate(&config)), ["orchestration.default_retry.jitter"], "jitter {bad}");
        }
        let mut config = TaskerConfig::default();
        config.orchestration.default_retry.jitter = 0.0;
        assert_eq!(validate(&config), Vec::new());
    }
}
