# frozen_string_literal: true

require_relative "unit_helper"
require "tasker_core/web/format"
require "tasker_core/cli/report"

RSpec.describe TaskerCore::Web::Format do
  it "formats durations from milliseconds" do
    expect([nil, 0, 0.44, 12.0, 999.96, 1234, 59_999, 61_000, 3_599_000, 7_500_000].map { |ms| described_class.duration(ms) })
      .to eq(["—", "0 ms", "0.4 ms", "12 ms", "1000 ms", "1.23 s", "60.00 s", "1 min 1 s", "59 min 59 s", "2 h 5 min"])
  end

  it "groups thousands, keeps fractions and signs" do
    expect([nil, 0, 999, 1000, 1_234_567, -1_234, 12_345.5].map { |n| described_class.number(n) })
      .to eq(["—", "0", "999", "1,000", "1,234,567", "-1,234", "12,345.5"])
  end

  it "formats times in UTC, spans between them and percentages" do
    expect(described_class.time("2026-12-01T21:33:32.061+01:00")).to eq("2026-12-01 20:33:32")
    expect(described_class.time("not a time")).to eq("not a time")
    expect(described_class.span("2026-12-01T21:33:32.000Z", "2026-12-01T21:33:33.250Z")).to eq("1.25 s")
    expect(described_class.span("2026-12-01T21:33:32.000Z", nil)).to eq("—")
    expect(described_class.percent(3.456)).to eq("3.5 %")
  end

  it "totals an hour of throughput, ignoring malformed counts" do
    expect(described_class.hour_totals([{ "succeeded" => 9, "failed" => 1 }, { "succeeded" => "x", "failed" => -2 }]))
      .to eq([9, 1, 10.0])
    expect(described_class.hour_totals(nil)).to eq([0, 0, nil])
  end
end

RSpec.describe TaskerCore::CLI::Report do
  it "escapes control characters so data cannot drive the terminal, keeping newlines" do
    expect(described_class.clean("red \e[31mtext\e[0m\r\nnext\tcol\u009b")).to eq("red \\x1b[31mtext\\x1b[0m\\x0d\nnext\\x09col\\x9b")
  end

  it "aligns table columns two spaces apart" do
    expect(described_class.table([%w[A BB], %w[ccc d]])).to eq("A    BB\nccc  d")
  end

  it "prints a task's steps and errors with escaped text" do
    text = described_class.task(
      "task_uuid" => "u", "namespace" => "ns", "name" => "n", "version" => "1.0.0", "status" => "error",
      "created_at" => "2026-12-01T21:33:32.000Z", "completed_at" => "2026-12-01T21:33:34.000Z",
      "steps" => [
        { "name" => "a", "status" => "complete", "attempts" => 1, "max_attempts" => 3, "dependencies" => [],
          "history" => [{ "duration_ms" => 12.5 }] },
        { "name" => "b", "status" => "error", "attempts" => 3, "max_attempts" => 3, "dependencies" => ["a"],
          "error" => { "message" => "boom\e[2J", "error_type" => "Boom", "retryable" => false, "backtrace" => ["x.rb:1"] } }
      ]
    )

    expect(text).to include("status     error", "took 2.00 s")
    expect(text).to include("a     complete  1/3       12.5 ms\nb     error     3/3       —        a")
    expect(text).to include("b: Boom (not retryable): boom\\x1b[2J\n    x.rb:1")
  end
end
