# frozen_string_literal: true

require "tasker_core/clock"
require "tasker_core/errors"

module TaskerCore
  class Worker
    # The handshake between one processor thread and the watchdog.
    #
    # The watchdog may interrupt a thread (Thread#raise of Errors::TimeoutError) only
    # while that thread runs handler code, never while it runs the worker's own
    # bookkeeping (building the result, completing the event, polling). The gate holds a
    # small state machine under a mutex:
    #
    # - {#guard} runs with Errors::TimeoutError deferred (`:never`), marks the gate as
    #   "inside" for the given context, then enables the interrupt (`:immediate`) only
    #   around the handler block.
    # - {#interrupt} raises into the thread only if, under the same mutex, the gate is
    #   still inside the same context and has not been interrupted yet.
    # - When the block ends (normally or not), the gate leaves under the mutex, so no
    #   interrupt can be sent afterwards. An interrupt sent just before leaving may still
    #   be queued (deferred by the mask); it is drained here, before the gate returns, so
    #   it can never hit the worker's code or the next handler.
    class HandlerGate
      # What the watchdog sees of a busy gate.
      Snapshot = Struct.new(:context, :interrupted_at, keyword_init: true)
      # Thread.handle_interrupt masks, built once (this runs for every step).
      DEFER_TIMEOUT = { Errors::TimeoutError => :never }.freeze
      DELIVER_TIMEOUT = { Errors::TimeoutError => :immediate }.freeze

      def initialize
        @lock = Mutex.new
        @context = nil
        @thread = nil
        @interrupt = nil
        @interrupted_at = nil
      end

      # Runs the block (the handler's code) with watchdog interrupts enabled.
      # @param context [TaskerCore::StepHandler::Context] identifies this run
      # @return [Object] the block's value
      def guard(context, &block)
        Thread.handle_interrupt(DEFER_TIMEOUT) { guard_deferred(context, &block) }
      end

      # {#guard} for a thread that already runs with Errors::TimeoutError deferred
      # (`Thread.handle_interrupt(DEFER_TIMEOUT)`), as worker threads do for their whole
      # loop: saves a mask change per step.
      # @param context [TaskerCore::StepHandler::Context]
      # @return [Object] what the block returns
      def guard_deferred(context)
        enter(context)
        begin
          Thread.handle_interrupt(DELIVER_TIMEOUT) { yield }
        ensure
          drain if leave
        end
      end

      def interrupt(context, message)
        @lock.synchronize do
          return false unless @context.equal?(context) && @interrupt.nil?

          @interrupt = Errors::TimeoutError.new(message)
          @interrupted_at = Clock.monotonic
          @thread.raise(@interrupt)
          true
        end
      end

      # @return [Snapshot, nil] the run in progress, nil when no handler runs
      def snapshot
        @lock.synchronize do
          @context && Snapshot.new(context: @context, interrupted_at: @interrupted_at)
        end
      end

      # @return [Boolean] whether a handler runs inside the gate
      def inside?
        @lock.synchronize { !@context.nil? }
      end

      private

      # No lock: under the GVL each assignment is atomic, and `interrupt` acts only once
      # it sees the context, which is assigned last, after the thread it will raise in.
      def enter(context)
        @interrupt = nil
        @interrupted_at = nil
        @thread = Thread.current
        @context = context
      end

      # @return [Boolean] whether an interrupt was sent during this run
      def leave
        @lock.lock
        begin
          sent = !@interrupt.nil?
          @context = nil
          @thread = nil
          @interrupt = nil
          @interrupted_at = nil
          sent
        ensure
          @lock.unlock
        end
      end

      # Delivers and discards an interrupt that was sent but is still deferred.
      # (Thread.pending_interrupt?(klass) is not used: it crashes Ruby 3.1.2.)
      def drain
        Thread.handle_interrupt(DELIVER_TIMEOUT) { Thread.pass }
      rescue Errors::TimeoutError
        nil
      end
    end

    # A gate that never interrupts (for running a step outside a processor).
    module OpenGate
      # @return [Object] the block's value
      def self.guard(_context)
        yield
      end

      # @return [Object] the block's value
      def self.guard_deferred(_context)
        yield
      end
    end
  end
end
