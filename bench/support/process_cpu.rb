# frozen_string_literal: true

module Bench
  # CPU time of other processes (a PostgreSQL backend, a worker), read from /proc: what
  # the PostgreSQL measures charge per step to the server and to the workers. Loads
  # nothing else, so scripts outside bin/bench can use it too.
  module ProcessCpu
    # Linux reports utime and stime in USER_HZ ticks, 100 per second.
    CLOCK_TICKS = 100.0

    module_function

    # @param pid [Integer]
    # @return [Float] user plus system CPU seconds of `pid` so far; 0 once it has exited
    def seconds(pid)
      fields = File.read("/proc/#{pid}/stat").split(") ").last.split
      (Integer(fields[11]) + Integer(fields[12])) / CLOCK_TICKS
    rescue Errno::ENOENT
      0.0
    end
  end
end
