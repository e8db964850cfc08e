# frozen_string_literal: true

require "tasker_core"

# A seeded fault-injection load run of the embedded core with Ruby step handlers, used by
# spec/fault/stress_spec.rb (CI size) and bin/stress (large size).
#
# Every task gets a plan from a seeded generator: for each step, the behaviour of each
# attempt (succeed, sleep, raise StandardError / RetryableError / PermanentError /
# NotImplementedError / an anonymous Exception subclass, return a soft failure, or overrun
# the step's short deadline). From the plan the outcome of every task is predicted
# (complete, or error) and, for complete tasks, the attempts of every step.
#
# Every handler execution is logged under (step_uuid, attempt) together with whether its
# completion was accepted by the core. Tasks are checked as they finish (so a small
# finished-task retention keeps memory flat), and the log entries of a checked task are
# dropped. See {Run#call} for the report and {FaultStress.failures} for what counts as a
# failure.
module FaultStress
  # Attempt behaviours after which a step is complete.
  SUCCESS_KINDS = %w[success sleep].freeze
  # Attempt behaviours the core retries (while attempts remain).
  RETRYABLE_KINDS = %w[standard_error retryable_error soft_failure overrun].freeze
  # Attempt behaviours that fail a step for good.
  PERMANENT_KINDS = %w[permanent_error not_implemented custom_exception soft_permanent].freeze
  KINDS = (SUCCESS_KINDS + RETRYABLE_KINDS + PERMANENT_KINDS).freeze
  # Relative weight of each behaviour; "overrun" only on steps with a short deadline.
  WEIGHTS = {
    "success" => 60, "sleep" => 14, "standard_error" => 4, "retryable_error" => 4, "soft_failure" => 4,
    "overrun" => 6, "permanent_error" => 1.5, "not_implemented" => 1, "custom_exception" => 1, "soft_permanent" => 1
  }.freeze
  MAX_ATTEMPTS = 3
  # Deadline of the steps that may overrun (seconds), and of all others.
  SHORT_TIMEOUT = 0.3
  LONG_TIMEOUT = 10
  NAMESPACE = "fault_stress"
  # Step name => [dependencies, short deadline?] per template.
  TEMPLATES = {
    "stress_diamond" => {
      "start" => [[], false], "left" => [["start"], false], "right" => [["start"], true],
      "join" => [%w[left right], false]
    },
    "stress_fan" => {
      "root" => [[], false], "fan_a" => [["root"], false], "fan_b" => [["root"], true],
      "fan_c" => [["root"], true], "merge" => [%w[fan_a fan_b fan_c], false]
    }
  }.freeze
  CONFIG_SOURCE = File.expand_path("../../../config/tasker", __dir__)

  # Raised by "custom_exception" attempts: not a StandardError, and anonymous.
  CUSTOM_EXCEPTION = Class.new(Exception) # rubocop:disable Lint/InheritException
end

require_relative "stress/plan"
require_relative "stress/log"
require_relative "stress/handler"
require_relative "stress/malloc"
require_relative "stress/spinner"
require_relative "stress/checks"
require_relative "stress/setup"
require_relative "stress/run"
