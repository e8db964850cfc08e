# frozen_string_literal: true

module FaultStress
  # A CPU-bound pure-Ruby thread that holds the GVL whenever it runs.
  class Spinner
    # @return [Integer] loop iterations it made (once stopped)
    attr_reader :iterations

    def initialize
      @stop = false
      @iterations = 0
      @thread = nil
    end

    # @return [self]
    def start
      @thread = Thread.new do
        count = 0
        count += 1 until @stop
        @iterations = count
      end
      self
    end

    # Stops and joins the thread (again: a no-op).
    # @return [Integer] loop iterations it made
    def stop
      @stop = true
      @thread&.join
      @iterations
    end
  end
end
