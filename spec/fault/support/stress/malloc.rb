# frozen_string_literal: true

require "fiddle"

module FaultStress
  # The glibc malloc knobs the RSS measurement uses (through Fiddle; no-ops elsewhere).
  module Malloc
    # mallopt's M_ARENA_MAX.
    M_ARENA_MAX = -8

    def self.function(name, args, ret)
      Fiddle::Function.new(Fiddle::Handle::DEFAULT[name], args, ret)
    rescue Fiddle::DLError
      nil
    end
    TRIM = function("malloc_trim", [Fiddle::TYPE_SIZE_T], Fiddle::TYPE_INT)
    MALLOPT = function("mallopt", [Fiddle::TYPE_INT, Fiddle::TYPE_INT], Fiddle::TYPE_INT)

    # Gives the free memory of every malloc arena back to the OS (malloc_trim(0)).
    # @return [Boolean] whether it could
    def self.trim
      return false unless TRIM

      TRIM.call(0)
      true
    end

    # Caps glibc's malloc arenas (as MALLOC_ARENA_MAX does) unless the environment sets
    # MALLOC_ARENA_MAX. With the default (8 per core) every handler thread may get its own
    # arena, and their fragmentation makes RSS creep for a long while even though the
    # memory in use does not grow; two arenas is the usual setting for threaded Ruby.
    # @return [String] the arena cap in effect ("default" when none)
    def self.cap_arenas(count)
      return ENV["MALLOC_ARENA_MAX"] if ENV["MALLOC_ARENA_MAX"]
      return "default" unless MALLOPT && MALLOPT.call(M_ARENA_MAX, count) == 1

      count.to_s
    end
  end
end
