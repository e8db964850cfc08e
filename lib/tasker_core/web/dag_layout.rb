# frozen_string_literal: true

module TaskerCore
  class Web
    # Places the steps of a task on a grid for drawing, left to right: a step's column is
    # its depth (the longest chain of dependencies above it, roots at 0). An edge that
    # skips columns gets a waypoint in each column it crosses, which takes a row there like
    # a step does, so the edge runs through free space instead of behind other boxes.
    # Within a column, steps and waypoints are ordered by the mean row of what feeds them
    # (a barycentre pass), which keeps most edges short and uncrossed. Coordinates are SVG
    # user units.
    class DagLayout
      NODE_WIDTH = 168
      NODE_HEIGHT = 44
      COLUMN_GAP = 56
      ROW_GAP = 18
      MARGIN = 12
      # Most waypoints a drawing gets; past it, edges skipping columns are drawn straight.
      MAX_WAYPOINTS = 2000

      # One step's box.
      Node = Struct.new(:index, :name, :status, :depth, :row, :x, :y, keyword_init: true) do
        # @return [Array(Float, Float)] where edges leave (right edge, middle)
        def out_point = [x + NODE_WIDTH, y + (NODE_HEIGHT / 2.0)]

        # @return [Array(Float, Float)] where edges arrive (left edge, middle)
        def in_point = [x, y + (NODE_HEIGHT / 2.0)]
      end

      # Where an edge crosses a column it skips: it enters at the left, leaves at the right.
      Waypoint = Struct.new(:depth, :row, :x, :y, keyword_init: true) do
        # @return [Array(Float, Float)]
        def in_point = [x, y + (NODE_HEIGHT / 2.0)]

        # @return [Array(Float, Float)]
        def out_point = [x + NODE_WIDTH, y + (NODE_HEIGHT / 2.0)]
      end

      # A dependency: `from` must finish before `to`; `via` are its waypoints, in order.
      Edge = Struct.new(:from, :to, :via, keyword_init: true)

      attr_reader :nodes, :edges, :width, :height

      # @param steps [Array<Hash>] "name", "status", "dependencies" (names of other steps;
      #   unknown names are ignored)
      def initialize(steps)
        @steps = Array(steps)
        @by_name = {}
        @steps.each_with_index { |step, index| @by_name[step["name"].to_s] ||= index }
        build
      end

      private

      # Items of the grid are step indices (Integer) and waypoints ([edge number, k]).
      def build
        memo = {}
        depths = @steps.each_index.map { |index| depth_of(index, memo, []) }
        links = @steps.each_index.flat_map { |index| parents(index).map { |parent| [parent, index] } }
        feeders = Hash.new { |hash, key| hash[key] = [] }
        columns = Hash.new { |hash, key| hash[key] = [] }
        item_depth = {}
        @steps.each_index do |index|
          columns[depths[index]] << index
          item_depth[index] = depths[index]
        end
        route = links.sum { |parent, child| depths[child] - depths[parent] - 1 } <= MAX_WAYPOINTS
        chains = links.each_with_index.map do |(parent, child), number|
          previous = parent
          skipped = route ? ((depths[parent] + 1)...depths[child]) : []
          chain = skipped.each_with_index.map do |depth, k|
            waypoint = [number, k]
            columns[depth] << waypoint
            item_depth[waypoint] = depth
            feeders[waypoint] << previous
            previous = waypoint
          end
          feeders[child] << previous
          chain
        end
        rows = order_rows(columns, feeders)
        count = (depths.max || -1) + 1
        tallest = columns.values.map(&:size).max || 0
        @width = (MARGIN * 2) + (count * NODE_WIDTH) + ([count - 1, 0].max * COLUMN_GAP)
        @height = (MARGIN * 2) + (tallest * NODE_HEIGHT) + ([tallest - 1, 0].max * ROW_GAP)
        place = lambda do |item|
          depth = item_depth[item]
          offset = (tallest - columns[depth].size) * (NODE_HEIGHT + ROW_GAP) / 2.0
          [depth, rows[item], MARGIN + (depth * (NODE_WIDTH + COLUMN_GAP)), MARGIN + offset + (rows[item] * (NODE_HEIGHT + ROW_GAP))]
        end
        @nodes = @steps.each_index.map do |index|
          depth, row, x, y = place.call(index)
          Node.new(index: index, name: @steps[index]["name"].to_s, status: @steps[index]["status"].to_s,
                   depth: depth, row: row, x: x, y: y)
        end
        @edges = links.each_with_index.map do |(parent, child), number|
          via = chains[number].map do |waypoint|
            depth, row, x, y = place.call(waypoint)
            Waypoint.new(depth: depth, row: row, x: x, y: y)
          end
          Edge.new(from: @nodes[parent], to: @nodes[child], via: via)
        end
      end

      # Indices of the steps `index` depends on (known, distinct, not itself).
      def parents(index)
        Array(@steps[index]["dependencies"]).filter_map { |name| @by_name[name.to_s] }.uniq - [index]
      end

      # Longest path from a root. A cycle (which the core refuses) is cut where it closes.
      def depth_of(index, memo, visiting)
        return memo[index] if memo.key?(index)
        return 0 if visiting.include?(index)

        visiting.push(index)
        above = parents(index).map { |parent| depth_of(parent, memo, visiting) + 1 }.max || 0
        visiting.pop
        memo[index] = above
      end

      # Row of each item within its column: roots keep the template's order; the rest
      # follow the mean row of their feeders (steps before waypoints, then template order,
      # break ties).
      def order_rows(columns, feeders)
        rows = {}
        columns.keys.sort.each do |depth|
          ordered = columns[depth].each_with_index.sort_by do |item, position|
            placed = feeders[item].filter_map { |feeder| rows[feeder] }
            [placed.empty? ? position : placed.sum.to_f / placed.size, item.is_a?(Integer) ? 0 : 1, position]
          end
          ordered.each_with_index { |(item, _), row| rows[item] = row }
        end
        rows
      end
    end
  end
end
