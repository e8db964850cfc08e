# frozen_string_literal: true

require_relative "unit_helper"
require_relative "../../bench/compare"

RSpec.describe Bench::Compare do
  it "needs exactly one REF and names what is wrong with the options" do
    expect { described_class.new([]) }.to raise_error(OptionParser::InvalidArgument, /give one REF/)
    expect { described_class.new(%w[a b]) }.to raise_error(OptionParser::InvalidArgument, /give one REF/)
    expect { described_class.new(%w[--only tasker_noop,pg_recovery HEAD~1]) }
      .to raise_error(OptionParser::InvalidArgument, /no headline figures for pg_recovery/)
    expect { described_class.new(%w[--rounds 0 HEAD~1]) }
      .to raise_error(OptionParser::InvalidArgument, /--rounds must be at least 1/)
  end

  it "reports medians of the interleaved rounds and orients each ratio so that above 1 is better" do
    compare = described_class.new(%w[--only tasker_noop,start_latency --rounds 3 HEAD])
    samples = {
      "baseline" => [100.0, 300.0, 200.0].map do |rate|
        { "tasker_noop" => { "steps_per_s" => rate, "creation_per_s" => 1000.0 },
          "start_latency" => { "p50_ms" => 2.0, "p99_ms" => 4.0 } }
      end,
      "this" => [250.0, 150.0, 500.0].map do |rate|
        { "tasker_noop" => { "steps_per_s" => rate, "creation_per_s" => 900.0 },
          "start_latency" => { "p50_ms" => 1.0, "p99_ms" => 5.0 } }
      end
    }
    out = StringIO.new
    $stdout = out
    begin
      compare.send(:report, "0123456789abcdef", samples)
    ensure
      $stdout = STDOUT
    end
    lines = out.string.lines
    expect(lines.first).to include("3 interleaved round(s)", "against 0123456789ab")
    expect(lines.find { |l| l.start_with?("no-op tasks") }.split.last(3)).to eq(%w[200 250 1.250])
    expect(lines.find { |l| l.start_with?("create_task") }.split.last(3)).to eq(%w[1,000 900 0.900])
    expect(lines.find { |l| l.include?("start p50") }.split.last(3)).to eq(%w[2.000 1.000 2.000])
    expect(lines.find { |l| l.include?("start p99") }.split.last(3)).to eq(%w[4.000 5.000 0.800])
  end
end
