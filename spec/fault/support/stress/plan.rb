# frozen_string_literal: true

module FaultStress
  # The plan and predicted outcome of one task, derived from (seed, index) alone, so
  # nothing per task has to be kept in memory while the run goes on.
  class Plan
    attr_reader :index, :template, :kinds

    # @param seed [Integer]
    # @param index [Integer] the task's number in the run
    def initialize(seed, index)
      @index = index
      rng = Random.new((seed * 1_000_003) + index)
      names = TEMPLATES.keys
      @template = names[rng.rand(names.size)]
      @kinds = TEMPLATES.fetch(@template).to_h do |step, (_deps, short)|
        [step, attempts_for(rng, short)]
      end
    end

    # @return [Hash] the task's context
    def context
      { "i" => @index, "plan" => @kinds }
    end

    # @return [String] "complete" or "error"
    def expected_status
      @kinds.values.all? { |kinds| SUCCESS_KINDS.include?(kinds.last) } ? "complete" : "error"
    end

    # @return [Hash{String => Integer}] attempts of each step of a complete task
    def expected_attempts
      @kinds.transform_values(&:size)
    end

    private

    def attempts_for(rng, short)
      kinds = []
      MAX_ATTEMPTS.times do
        kind = pick(rng, short)
        kinds << kind
        break unless RETRYABLE_KINDS.include?(kind)
      end
      kinds
    end

    def pick(rng, short)
      weights = short ? WEIGHTS : WEIGHTS.reject { |kind, _| kind == "overrun" }
      target = rng.rand * weights.values.sum
      weights.each do |kind, weight|
        return kind if target < weight

        target -= weight
      end
      "success"
    end
  end
end
