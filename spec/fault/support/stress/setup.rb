# frozen_string_literal: true

require "fileutils"
require "yaml"

module FaultStress
  # Writes what a run needs on disk: a config root (the shipped base/ plus a "stress"
  # environment) and the task templates.
  module Setup
    module_function

    # @param root [String] directory to create
    # @param retention [Integer] finished tasks the core must keep readable
    # @return [String] root
    def write_config(root, retention:)
      env = File.join(root, "environments", "stress")
      FileUtils.mkdir_p(env)
      FileUtils.cp_r(File.join(CONFIG_SOURCE, "base"), root)
      # Every task stays readable for the checks: a count-sized budget, no time limit.
      File.write(File.join(env, "storage.toml"), <<~TOML)
        [storage.embedded]
        finished_task_retention_seconds = 86400
        finished_task_memory_budget_bytes = #{retention * 8192}
        max_unfinished_tasks = #{[retention, 100_000].max}
      TOML
      File.write(File.join(env, "worker.toml"), <<~TOML)
        [worker]
        shutdown_timeout_ms = 5000
        hung_handler_grace_ms = 2000
      TOML
      # Late completions come within milliseconds of their timeout: a short memory is
      # enough to count them, and it fills up during the warm-up (flat memory after).
      File.write(File.join(env, "mpsc_channels.toml"), <<~TOML)
        [mpsc_channels.worker.handler_dispatch]
        handler_timeout_ms = 10000

        [mpsc_channels.worker.ffi_dispatch]
        late_completion_memory = 256
      TOML
      root
    end

    # @param dir [String] directory to create
    # @return [String] dir
    def write_templates(dir)
      FileUtils.mkdir_p(dir)
      TEMPLATES.each do |name, steps|
        document = {
          "name" => name, "namespace_name" => NAMESPACE, "version" => "1.0.0",
          "steps" => steps.map { |step, (dependencies, short)| step_document(step, dependencies, short) }
        }
        File.write(File.join(dir, "#{name}.yaml"), YAML.dump(document))
      end
      dir
    end

    def step_document(name, dependencies, short)
      {
        "name" => name, "handler" => { "callable" => "FaultStress::Handler" }, "dependencies" => dependencies,
        "retry" => { "retryable" => true, "max_attempts" => MAX_ATTEMPTS, "backoff_base_ms" => 5, "max_backoff_ms" => 20 },
        "timeout_seconds" => short ? SHORT_TIMEOUT : LONG_TIMEOUT
      }
    end
  end
end
