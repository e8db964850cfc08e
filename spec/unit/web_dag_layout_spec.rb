# frozen_string_literal: true

require_relative "unit_helper"
require "tasker_core/web/dag_layout"
require "tasker_core/web/throughput_chart"

RSpec.describe TaskerCore::Web::DagLayout do
  def step(name, *dependencies, status: "pending")
    { "name" => name, "status" => status, "dependencies" => dependencies }
  end

  def by_name(layout)
    layout.nodes.to_h { |node| [node.name, node] }
  end

  it "puts each step in the column of its longest chain of dependencies" do
    layout = described_class.new([step("a"), step("b", "a"), step("c", "a", "b"), step("d"), step("e", "c", "d")])
    nodes = by_name(layout)

    expect(nodes.transform_values(&:depth)).to eq("a" => 0, "b" => 1, "c" => 2, "d" => 0, "e" => 3)
    expect(nodes.values.map(&:x).uniq.size).to eq(4)
    expect(nodes["a"].x).to eq(nodes["d"].x)
    expect(nodes["a"].x).to be < nodes["b"].x
  end

  it "draws one edge per dependency, from the parent's right side to the child's left side" do
    layout = described_class.new([step("fetch"), step("left", "fetch"), step("right", "fetch"), step("join", "left", "right")])

    expect(layout.edges.map { |edge| [edge.from.name, edge.to.name] })
      .to eq([%w[fetch left], %w[fetch right], %w[left join], %w[right join]])
    edge = layout.edges.first
    expect(edge.from.out_point).to eq([edge.from.x + described_class::NODE_WIDTH, edge.from.y + (described_class::NODE_HEIGHT / 2.0)])
    expect(edge.to.in_point.first).to eq(edge.to.x)
  end

  it "routes an edge that skips columns through a free row of each column it crosses" do
    layout = described_class.new([step("init"), step("double", "init"), step("triple", "init"), step("offset", "double"),
                                  step("scale", "triple", "init"), step("combine", "double", "triple", "offset")])
    nodes = by_name(layout)
    skip = layout.edges.find { |edge| [edge.from.name, edge.to.name] == %w[init scale] }
    long = layout.edges.find { |edge| [edge.from.name, edge.to.name] == %w[double combine] }
    taken = ->(depth) { nodes.values.select { |n| n.depth == depth }.map(&:y) }

    expect(skip.via.map(&:depth)).to eq([1])
    expect(taken.call(1)).not_to include(skip.via.first.y)
    expect(long.via.map(&:depth)).to eq([2])
    expect(taken.call(2)).not_to include(long.via.first.y)
    expect(layout.edges.find { |edge| edge.to.name == "double" }.via).to eq([])
    expect(layout.height).to eq((2 * described_class::MARGIN) + (4 * described_class::NODE_HEIGHT) + (3 * described_class::ROW_GAP))
  end

  it "draws skipping edges straight past MAX_WAYPOINTS" do
    chain = Array.new(80) { |i| i.zero? ? step("s0") : step("s#{i}", "s#{i - 1}", "s0") }
    layout = described_class.new(chain)

    expect(layout.edges.sum { |edge| edge.via.size }).to eq(0)
    expect(layout.nodes.last.depth).to eq(79)
  end

  it "orders a column by the mean row of the parents, keeping edges uncrossed" do
    layout = described_class.new([step("r1"), step("r2"), step("under_r2", "r2"), step("under_r1", "r1")])
    nodes = by_name(layout)

    expect(nodes["under_r1"].row).to eq(0)
    expect(nodes["under_r2"].row).to eq(1)
    expect(nodes["under_r1"].y).to eq(nodes["r1"].y)
  end

  it "centres shorter columns and sizes the drawing to the widest and tallest" do
    layout = described_class.new([step("a"), step("b"), step("c"), step("d", "a", "b", "c")])
    nodes = by_name(layout)
    unit = described_class::NODE_HEIGHT + described_class::ROW_GAP

    expect(nodes["d"].y).to eq(nodes["b"].y)
    expect(layout.height).to eq((2 * described_class::MARGIN) + (3 * described_class::NODE_HEIGHT) + (2 * described_class::ROW_GAP))
    expect(layout.width).to eq((2 * described_class::MARGIN) + (2 * described_class::NODE_WIDTH) + described_class::COLUMN_GAP)
    expect(nodes["c"].y - nodes["a"].y).to eq(2 * unit)
  end

  it "ignores unknown, repeated and self dependencies, and cuts a cycle instead of looping" do
    layout = described_class.new([step("a", "missing", "a"), step("b", "a", "a"), step("x", "y"), step("y", "x")])
    nodes = by_name(layout)

    expect(nodes["a"].depth).to eq(0)
    expect(nodes["b"].depth).to eq(1)
    expect(layout.edges.map { |edge| [edge.from.name, edge.to.name] }).to include(%w[a b])
    expect(layout.edges.count { |edge| edge.to.name == "b" }).to eq(1)
    expect(nodes.values_at("x", "y").map(&:depth).sort).to eq([1, 2])
    expect(layout.width).to be >= nodes["x"].x + described_class::NODE_WIDTH
  end

  it "lays out steps without dependencies data in one column, and nothing for no steps" do
    expect(described_class.new([{ "name" => "a" }, { "name" => "b" }]).nodes.map(&:depth)).to eq([0, 0])
    expect(described_class.new([]).nodes).to eq([])
    expect(described_class.new([]).width).to eq(2 * described_class::MARGIN)
  end

  it "lays out a long chain in linear time order (10,000 steps)" do
    steps = Array.new(10_000) { |i| i.zero? ? step("s0") : step("s#{i}", "s#{i - 1}") }
    layout = described_class.new(steps)

    expect(layout.nodes.last.depth).to eq(9_999)
  end
end

RSpec.describe TaskerCore::Web::ThroughputChart do
  it "tops the count axis at 1, 2 or 5 times a power of ten" do
    expect([0, 1, 2, 3, 7, 10, 11, 49, 51, 100, 101, 999].map { |v| described_class.axis_top(v) })
      .to eq([1, 1, 2, 5, 10, 10, 20, 50, 100, 100, 200, 1000])
  end

  it "sums the hour and gives the failure rate, nil without attempts" do
    chart = described_class.new([{ "minute" => "2026-01-01T10:00:00Z", "succeeded" => 30, "failed" => 10 },
                                 { "minute" => "2026-01-01T10:01:00Z", "succeeded" => 57, "failed" => 3 }])
    expect(chart.summary.to_h).to eq(succeeded: 87, failed: 13)
    expect(chart.summary.failure_rate).to eq(13.0)
    expect(described_class.new([]).summary.failure_rate).to be_nil
  end

  it "draws the failure rate only for minutes with attempts, breaking the line between runs" do
    counts = [[0, 0], [9, 1], [5, 5], [0, 0], [1, 0]]
    svg = described_class.new(counts.map { |ok, failed| { "minute" => "2026-01-01T10:00:00Z", "succeeded" => ok, "failed" => failed } }).to_html
    d = svg[/<path class="rate-line" d="([^"]*)"/, 1]
    plot = described_class::HEIGHT - described_class::PLOT_TOP - described_class::PLOT_BOTTOM
    ys = d.scan(/[ML] [\d.]+ ([\d.]+)/).flatten.map(&:to_f)

    expect(d.scan(/[ML]/)).to eq(%w[M L L M L])
    expect(ys.values_at(0, 2, 3)).to eq([described_class::PLOT_TOP + (plot * 0.9), described_class::PLOT_TOP + (plot * 0.5),
                                         described_class::PLOT_TOP + plot])
  end

  it "draws bars scaled to the axis, stacked, and escapes what it prints" do
    svg = described_class.new([{ "minute" => "<script>", "succeeded" => 50, "failed" => 50 },
                               { "minute" => "2026-01-01T10:01:00Z", "succeeded" => 25, "failed" => "x" }]).to_html
    plot = described_class::HEIGHT - described_class::PLOT_TOP - described_class::PLOT_BOTTOM

    heights = svg.scan(/class="bar-(succeeded|failed)" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/)
    expect(heights.map { |kind, h| [kind, h.to_f] }).to eq([["succeeded", plot / 2.0], ["failed", plot / 2.0],
                                                           ["succeeded", plot / 4.0], ["failed", 0.0]])
    expect(svg).to include("<title>&lt;script&gt;: 50 succeeded, 50 failed</title>")
    expect(svg).not_to include("<script>")
  end
end
