# frozen_string_literal: true

# The benchmark suite of tasker_core: runs every measure (each in its own child
# process), prints one table, and with --write writes it to docs/benchmarks.md.
#
#   ruby -Ilib bench/run.rb [--size tiny|small|full] [--repeat N] [--write] [--only NAME,...] [--json PATH]
#
# bin/bench runs `bin/setup --bench` (redis-server, ruby-sidekiq, the extension) first.
# Run it with plain `ruby`, not under `bundle exec` (Sidekiq comes from Debian's gems).

require_relative "support/suite"

begin
  exit Bench::Suite.new(ARGV).run
rescue OptionParser::ParseError, ArgumentError => e
  warn "bench: #{e.message}"
  warn Bench::Suite::USAGE
  exit 2
end
