# frozen_string_literal: true

require "fileutils"
require "tmpdir"
require "yaml"

module Bench
  # The task templates of the benchmark, written as YAML into a temporary directory
  # (the directory a measure passes as template_path). All live in namespace "bench".
  module Templates
    NAMESPACE = "bench"

    # A retry policy that never retries: a failure in a benchmark is a bug, not noise.
    NO_RETRY = { "retryable" => false, "max_attempts" => 1, "backoff_base_ms" => 100, "max_backoff_ms" => 100 }.freeze

    # Three attempts, the next at once: for a step whose first attempt may be lost.
    RETRY_AT_ONCE = { "retryable" => true, "max_attempts" => 3, "backoff_base_ms" => 0, "max_backoff_ms" => 0 }.freeze

    # Inputs of the join step of the FFI diamond (the event carries them).
    JOIN_INPUTS = { "carrier" => "demo-post", "service_level" => "express", "max_weight_kg" => 20 }.freeze

    DEFINITIONS = {
      # One no-op step.
      "noop" => [
        { "name" => "work", "callable" => "Bench::Handlers::Noop" }
      ],
      # One step that sleeps 10 ms.
      "sleep10" => [
        { "name" => "work", "callable" => "Bench::Handlers::Sleep10ms" }
      ],
      # Two steps in a chain.
      "chain2" => [
        { "name" => "a", "callable" => "Bench::Handlers::Noop" },
        { "name" => "b", "callable" => "Bench::Handlers::Noop", "dependencies" => ["a"] }
      ],
      # One step that answers the wall-clock time it started (latency across processes).
      "stamp_wall" => [
        { "name" => "work", "callable" => "Bench::Handlers::StampWall" }
      ],
      # One step that sleeps 50 ms (a worker killed in the middle holds some), retried
      # at once when its worker is lost.
      "sleep50" => [
        { "name" => "work", "callable" => "Bench::Handlers::Sleep50ms", "retry" => RETRY_AT_ONCE }
      ],
      # One step that records when it started (create -> handler start latency).
      "stamp" => [
        { "name" => "work", "callable" => "Bench::Handlers::StampStart" }
      ],
      # A diamond a -> b, c -> d for the FFI round trip: d's event carries two parent
      # results and step inputs. Raw FFI drives it; the callables are never called.
      "ffi_diamond" => [
        { "name" => "validate", "callable" => "Bench::Handlers::Noop" },
        { "name" => "reserve", "callable" => "Bench::Handlers::Noop", "dependencies" => ["validate"] },
        { "name" => "charge", "callable" => "Bench::Handlers::Noop", "dependencies" => ["validate"] },
        { "name" => "ship", "callable" => "Bench::Handlers::Noop", "dependencies" => %w[reserve charge],
          "inputs" => JOIN_INPUTS }
      ],
      # Five steps, diamond shaped: a -> b, c, d -> e.
      "dag5" => [
        { "name" => "a", "callable" => "Bench::Handlers::Noop" },
        { "name" => "b", "callable" => "Bench::Handlers::Noop", "dependencies" => ["a"] },
        { "name" => "c", "callable" => "Bench::Handlers::Noop", "dependencies" => ["a"] },
        { "name" => "d", "callable" => "Bench::Handlers::Noop", "dependencies" => ["a"] },
        { "name" => "e", "callable" => "Bench::Handlers::Noop", "dependencies" => %w[b c d] }
      ],
      # One step with a 50 ms deadline (timeout detection lag); raw FFI drives it.
      "deadline50ms" => [
        { "name" => "work", "callable" => "Bench::Handlers::Noop", "timeout_seconds" => 0.05 }
      ],
      # One step with a long deadline, so polled events stay pending (memory per event).
      "long_deadline" => [
        { "name" => "work", "callable" => "Bench::Handlers::Noop", "timeout_seconds" => 3600 }
      ]
    }.freeze

    module_function

    # Writes every template into a new temporary directory, yields it, removes it.
    # @yieldparam dir [String]
    # @return [Object] the block's value
    def with_directory
      dir = Dir.mktmpdir("tasker-bench-templates-")
      write(dir)
      yield dir
    ensure
      FileUtils.rm_rf(dir) if dir
    end

    # @param dir [String]
    # @return [void]
    def write(dir)
      DEFINITIONS.each do |name, steps|
        File.write(File.join(dir, "#{name}.yaml"), YAML.dump(template(name, steps)))
      end
    end

    # @return [Hash] the template as the YAML holds it
    def template(name, steps)
      {
        "name" => name,
        "namespace_name" => NAMESPACE,
        "version" => "1.0.0",
        "steps" => steps.map { |step| step_hash(step) }
      }
    end

    def step_hash(step)
      hash = {
        "name" => step.fetch("name"),
        "handler" => { "callable" => step.fetch("callable") },
        "dependencies" => step.fetch("dependencies", []),
        "retry" => step.fetch("retry", NO_RETRY).dup,
        "timeout_seconds" => step.fetch("timeout_seconds", 60)
      }
      hash["inputs"] = step["inputs"] if step["inputs"]
      hash
    end
  end
end
