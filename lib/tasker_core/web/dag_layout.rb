# frozen_string_literal: true

module TaskerCore
  class Web
    # Places the steps of a task on a grid for drawing: a step's column is its depth (the
    # longest chain of dependencies above it, roots at 0), and within a column steps are
    # ordered by the average row of their parents, which keeps most edges short and
    # uncrossed. Coordinates are in SVG user units, left to right.
    class DagLayout
      NODE_WIDTH = 168
      NODE_HEIGHT = 44
      COLUMN_GAP = 56
      ROW_GAP = 18
      MARGIN = 12

      # One step's box.
      Node = Struct.new(:index, :name, :status, :depth, :row, :x, :y, keyword_init: true) do
        # @return [Float] where edges leave (right edge, middle)
        def out_point = [x + NODE_WIDTH, y + (NODE_HEIGHT / 2.0)]

        # @return [Float] where edges arrive (left edge, middle)
        def in_point = [x, y + (NODE_HEIGHT / 2.0)]
      end

      # A dependency: `from` must finish before `to`.
      Edge = Struct.new(:from, :to, keyword_init: true)

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

      def build
        memo = {}
        depths = @steps.each_index.map { |index| depth_of(index, memo, []) }
        columns = Hash.new { |hash, key| hash[key] = [] }
        @steps.each_index { |index| columns[depths[index]] << index }
        rows = order_rows(columns)
        tallest = columns.values.map(&:size).max || 0
        count = (depths.max || -1) + 1
        @width = (MARGIN * 2) + (count * NODE_WIDTH) + ([count - 1, 0].max * COLUMN_GAP)
        @height = (MARGIN * 2) + (tallest * NODE_HEIGHT) + ([tallest - 1, 0].max * ROW_GAP)
        @nodes = @steps.each_index.map { |index| node(index, depths[index], rows[index], columns[depths[index]].size, tallest) }
        @edges = @steps.each_index.flat_map do |index|
          parents(index).map { |parent| Edge.new(from: @nodes[parent], to: @nodes[index]) }
        end
      end

      def node(index, depth, row, column_size, tallest)
        offset = (tallest - column_size) * (NODE_HEIGHT + ROW_GAP) / 2.0
        Node.new(index: index, name: @steps[index]["name"].to_s, status: @steps[index]["status"].to_s,
                 depth: depth, row: row,
                 x: MARGIN + (depth * (NODE_WIDTH + COLUMN_GAP)),
                 y: MARGIN + offset + (row * (NODE_HEIGHT + ROW_GAP)))
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

      # Row of each step within its column: roots keep the template's order; deeper steps
      # follow the mean row of their parents (template order breaks ties).
      def order_rows(columns)
        rows = {}
        columns.keys.sort.each do |depth|
          ordered = columns[depth].sort_by do |index|
            placed = parents(index).filter_map { |parent| rows[parent] }
            [placed.empty? ? index : placed.sum.to_f / placed.size, index]
          end
          ordered.each_with_index { |index, row| rows[index] = row }
        end
        rows
      end
    end
  end
end
