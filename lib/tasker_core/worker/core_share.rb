# frozen_string_literal: true

module TaskerCore
  class Worker
    # Who shares a process's core. Several TaskerCore::Workers in one process share the
    # one core (its dispatch channel feeds all their threads); stopping one leaves the
    # others working. The core is stopped only when the last worker attached to it stops,
    # and only if a worker started it (a core bootstrapped by the application stays up).
    class CoreShare
      @shares = {}
      @lock = Mutex.new

      class << self
        # @param ffi [Object] the core (TaskerCore::FFI, or a test double)
        # @return [CoreShare] the one share of that core in this process
        def for(ffi)
          @lock.synchronize do
            share = @shares[ffi.object_id]
            # A fork inherits the parent's share; its workers are not the child's.
            share = nil if share && share.pid != Process.pid
            @shares[ffi.object_id] = share || new
          end
        end
      end

      # @return [Integer] the process this share belongs to
      attr_reader :pid

      def initialize
        @pid = Process.pid
        @lock = Mutex.new
        @workers = []
        @started_by_workers = false
      end

      # A worker joins; `started_core` when its bootstrap started the core.
      # @return [void]
      def attach(worker, started_core:)
        @lock.synchronize do
          @workers << worker unless @workers.include?(worker)
          @started_by_workers ||= started_core
        end
      end

      # A worker leaves. Yields (to stop the core) when it was the last one and a worker
      # started the core.
      # @return [Boolean] whether the block ran
      def detach(worker)
        last = @lock.synchronize do
          @workers.delete(worker)
          stop = @workers.empty? && @started_by_workers
          @started_by_workers = false if stop
          stop
        end
        yield if last
        last
      end

      # @return [Integer] workers attached now
      def size
        @lock.synchronize { @workers.size }
      end
    end
  end
end
