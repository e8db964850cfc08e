# frozen_string_literal: true

module FaultStress
  # The thread-safe execution log, keyed by (step_uuid, attempt).
  class Log
    # One handler execution; `accepted` is what complete_step_event answered.
    Execution = Struct.new(:kind, :event_id, :accepted, :done)
    DETAIL_LIMIT = 20

    def initialize(task_count)
      @lock = Mutex.new
      @executions = {}
      @open = {}
      @verified = ("\0" * task_count).b
      @kinds = Hash.new(0)
      @duplicates = []
      @duplicate_count = 0
      @after_check = 0
      @unknown_completions = 0
      @rejected = Hash.new(0)
      @accepted = 0
      @total = 0
    end

    # Called first thing in the handler.
    def executed(task_index, step_uuid, attempt, event_id, kind)
      @lock.synchronize do
        @total += 1
        @kinds[kind] += 1
        @after_check += 1 if @verified.getbyte(task_index) == 1
        key = [step_uuid, attempt]
        if @executions.key?(key)
          @duplicate_count += 1
          @duplicates << "#{step_uuid} attempt #{attempt} (#{kind})" if @duplicates.size < DETAIL_LIMIT
        else
          execution = Execution.new(kind, event_id, nil, false)
          @executions[key] = execution
          @open[event_id] = execution
        end
      end
    end

    # Called with complete_step_event's answer.
    def completed(event_id, accepted)
      @lock.synchronize do
        execution = @open.delete(event_id)
        if execution
          execution.done = true
          execution.accepted = accepted
          accepted ? @accepted += 1 : @rejected[execution.kind] += 1
        else
          @unknown_completions += 1
        end
      end
    end

    # Compares the attempts a finished task records with the executions logged for it.
    # @return [Array(Symbol, Object)] [:ok, executions], [:defer, reason] (an execution
    #   has not started or not completed yet) or [:mismatch, description]
    def check(task_index, steps)
      @lock.synchronize do
        found = {}
        steps.each do |step|
          keys = (1..MAX_ATTEMPTS).map { |attempt| [step.fetch("step_uuid"), attempt] }
          present = keys.select { |key| @executions.key?(key) }.map(&:last)
          expected = (1..step.fetch("attempts")).to_a
          unless (present - expected).empty?
            return [:mismatch, "step #{step['name']} records #{step['attempts']} attempt(s) but ran #{present.inspect}"]
          end
          return [:defer, "step #{step['name']} ran #{present.inspect} of #{expected.inspect}"] if present != expected

          executions = keys.first(expected.size).map { |key| @executions.fetch(key) }
          return [:defer, "step #{step['name']} has a completion in progress"] unless executions.all?(&:done)

          found[step.fetch("name")] = executions
        end
        steps.each { |step| (1..MAX_ATTEMPTS).each { |attempt| @executions.delete([step["step_uuid"], attempt]) } }
        @verified.setbyte(task_index, 1)
        [:ok, found]
      end
    end

    # @return [Hash] counters
    def summary
      @lock.synchronize do
        {
          "executions" => @total, "by_kind" => @kinds.dup, "duplicates" => @duplicate_count,
          "duplicate_examples" => @duplicates.dup, "executions_after_check" => @after_check,
          "unknown_completions" => @unknown_completions, "rejected_by_kind" => @rejected.dup,
          "accepted_completions" => @accepted,
          "open_executions" => @open.size, "unchecked_executions" => @executions.size
        }
      end
    end

    # @return [Integer] executions whose completion has not returned yet
    def open_count
      @lock.synchronize { @open.size }
    end
  end

  class << self
    # @return [Log, nil] the log of the run in progress (handlers write to it)
    attr_accessor :log
  end
end
