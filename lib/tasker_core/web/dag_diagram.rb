# frozen_string_literal: true

require "tasker_core/web/html"
require "tasker_core/web/dag_layout"

module TaskerCore
  class Web
    # Draws a task's steps as an SVG graph from a DagLayout: one box per step, coloured by
    # its status (CSS classes `dag-node status-<status>`), linking to the step's row on the
    # page, and one arrow per dependency. Step names are escaped; long ones are shortened,
    # with the full name (and the step's error, if any) in the box's <title>.
    class DagDiagram
      # Longest label drawn in a box before it is shortened.
      LABEL_CHARS = 22
      # Longest error message shown in a box's tooltip.
      TOOLTIP_ERROR_CHARS = 200

      # @param steps [Array<Hash>] the task's "steps"
      # @param anchor [#call] step index -> the fragment its box links to (e.g. "step-3")
      def initialize(steps, anchor:)
        @steps = Array(steps)
        @layout = DagLayout.new(@steps)
        @anchor = anchor
      end

      # @return [SafeHtml] the <svg> element
      def to_html
        width = @layout.width
        height = @layout.height
        parts = [%(<svg class="dag" xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="dag-title" ) +
                 %(width="#{width}" height="#{height}" viewBox="0 0 #{width} #{height}">),
                 %(<title id="dag-title">Steps and their dependencies</title>),
                 marker,
                 %(<g class="dag-edges">), *@layout.edges.map { |edge| edge_path(edge) }, "</g>",
                 %(<g class="dag-nodes">), *@layout.nodes.map { |node| node_group(node) }, "</g>",
                 "</svg>"]
        Html.raw(parts.join("\n"))
      end

      private

      def marker
        '<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" ' \
          'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="dag-arrow"/></marker></defs>'
      end

      # A smooth path from the parent's box through the edge's waypoints to the child's:
      # a curve between columns, a straight run across each skipped column.
      def edge_path(edge)
        x, y = edge.from.out_point
        commands = ["M #{num(x)} #{num(y)}"]
        edge.via.each do |waypoint|
          commands << curve([x, y], waypoint.in_point)
          x, y = waypoint.out_point
          commands << "L #{num(x)} #{num(y)}"
        end
        tx, ty = edge.to.in_point
        commands << curve([x, y], [tx - 2, ty])
        %(<path class="dag-edge" data-from="#{Html.escape(edge.from.name)}" data-to="#{Html.escape(edge.to.name)}" ) +
          %(d="#{commands.join(' ')}" marker-end="url(#dag-arrow)"/>)
      end

      def curve(from, to)
        bend = (to[0] - from[0]) / 2.0
        "C #{num(from[0] + bend)} #{num(from[1])}, #{num(to[0] - bend)} #{num(to[1])}, #{num(to[0])} #{num(to[1])}"
      end

      def node_group(node)
        status = node.status.empty? ? "unknown" : node.status
        css_status = status.gsub(/[^a-z_]/, "")
        label = node.name.length > LABEL_CHARS ? "#{node.name[0, LABEL_CHARS - 1]}…" : node.name
        [%(<a href="##{Html.escape(@anchor.call(node.index))}" class="dag-link">),
         %(<g class="dag-node status-#{css_status}" data-step="#{Html.escape(node.name)}" ) +
           %(data-status="#{Html.escape(status)}">),
         %(<title>#{Html.escape(tooltip(node, status))}</title>),
         %(<rect x="#{num(node.x)}" y="#{num(node.y)}" width="#{DagLayout::NODE_WIDTH}" ) +
           %(height="#{DagLayout::NODE_HEIGHT}" rx="7" ry="7"/>),
         %(<text class="dag-name" x="#{num(node.x + 12)}" y="#{num(node.y + 18)}">#{Html.escape(label)}</text>),
         %(<text class="dag-status" x="#{num(node.x + 12)}" y="#{num(node.y + 34)}">) +
           %(#{Html.escape(status.tr('_', ' '))}</text>),
         "</g></a>"].join
      end

      # The box's tooltip: name, status, and the step's error when it has one.
      def tooltip(node, status)
        error = @steps[node.index]["error"]
        text = "#{node.name}: #{status.tr('_', ' ')}"
        return text unless error.is_a?(Hash)

        message = error["message"].to_s
        message = "#{message[0, TOOLTIP_ERROR_CHARS - 1]}…" if message.length > TOOLTIP_ERROR_CHARS
        "#{text} (#{error['error_type']}: #{message})"
      end

      def num(value)
        rounded = value.round(1)
        rounded == rounded.to_i ? rounded.to_i.to_s : rounded.to_s
      end
    end
  end
end
