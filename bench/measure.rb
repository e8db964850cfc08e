# frozen_string_literal: true

# Runs ONE measure of the benchmark suite in this process and prints its result as a
# JSON line starting with "BENCH-RESULT " on stdout. bench/run.rb starts one such
# process per measure, so each measure gets a fresh Ruby heap, a fresh core and its
# own RSS.
#
# Usage: ruby -Ilib bench/measure.rb NAME SIZE
#   NAME  one of Bench::Registry::MEASURES (e.g. ffi_round_trip, concurrency_16)
#   SIZE  tiny, small or full

require "json"
require_relative "support/registry"

name, size = ARGV
unless name && size && ARGV.size == 2
  warn "usage: ruby -Ilib bench/measure.rb NAME SIZE (NAME: #{Bench::Registry.names.join(', ')})"
  exit 2
end

begin
  result = Bench::Registry.run(name, size: size)
  status = 0
rescue StandardError, ScriptError => e
  warn "bench: #{name} failed: #{e.class}: #{e.message}\n  #{(e.backtrace || []).first(15).join("\n  ")}"
  result = { "error" => "#{e.class}: #{e.message}" }
  status = 1
end
$stdout.puts "BENCH-RESULT #{JSON.generate(result)}"
$stdout.flush
exit status
