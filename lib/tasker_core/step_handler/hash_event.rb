# frozen_string_literal: true

require "tasker_core/types/indifferent_hash"

module TaskerCore
  module StepHandler
    # Reads an event Hash (as TaskerCore::FFI.poll_step_events returns it) through the
    # same readers as TaskerCore::StepEvent, the object TaskerCore::FFI.next_step_event
    # returns, so Context handles both alike. The Hash carries its parents' results only,
    # so {#ancestor_result} finds parents, and nil for steps further up. The context,
    # inputs and results are made indifferent (a copy) when first read.
    class HashEvent
      # @param hash [Hash] the event Hash
      def initialize(hash)
        @hash = hash
      end

      %w[event_id task_uuid step_uuid correlation_id trace_id span_id timeout_ms].each do |key|
        define_method(key) { @hash[key] }
      end

      { "namespace" => "namespace", "task_name" => "name", "task_version" => "version" }.each do |reader, key|
        define_method(reader) { @hash.dig("task_sequence_step", "task", key) }
      end

      { "step_name" => "name", "attempts" => "attempts", "max_attempts" => "max_attempts",
        "retryable" => "retryable" }.each do |reader, key|
        define_method(reader) { @hash.dig("task_sequence_step", "workflow_step", key) }
      end

      def task_context
        indifferent(@hash.dig("task_sequence_step", "task", "context"))
      end

      def inputs
        indifferent(@hash.dig("task_sequence_step", "workflow_step", "inputs"))
      end

      def dependency_results
        indifferent(@hash.dig("task_sequence_step", "dependency_results"))
      end

      # @param name [String]
      # @return [Object, nil] a parent's result (the Hash has no other ancestors)
      def ancestor_result(name)
        results = @hash.dig("task_sequence_step", "dependency_results")
        indifferent(results[name]) if results.is_a?(Hash)
      end

      def step_definition
        @hash.dig("task_sequence_step", "step_definition")
      end

      def handler_callable
        @hash.dig("task_sequence_step", "step_definition", "handler", "callable")
      end

      def handler_initialization
        @hash.dig("task_sequence_step", "step_definition", "handler", "initialization")
      end

      # @return [Hash] the event Hash itself
      def to_h
        @hash
      end

      private

      def indifferent(value)
        value.nil? ? nil : Types::IndifferentHash.deep(value)
      end
    end
  end
end
