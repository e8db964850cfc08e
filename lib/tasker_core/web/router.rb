# frozen_string_literal: true

module TaskerCore
  class Web
    # Maps a request method and path to an action of the dashboard. Paths are matched
    # after the mount point (PATH_INFO); named captures become the action's parameters.
    class Router
      UUID = '(?<uuid>\h{8}-\h{4}-\h{4}-\h{4}-\h{12})'

      # A matched route: the action's name and the path's parameters.
      Match = Struct.new(:action, :params, keyword_init: true)

      ROUTES = [
        ["GET", %r{\A/\z}, :overview],
        ["GET", %r{\A/tasks\z}, :tasks],
        ["GET", %r{\A/tasks/#{UUID}\z}io, :task],
        ["GET", %r{\A/workers\z}, :workers],
        ["POST", %r{\A/tasks/#{UUID}/retry\z}io, :retry_task],
        ["POST", %r{\A/tasks/#{UUID}/cancel\z}io, :cancel_task],
        ["GET", %r{\A/api/stats\z}, :api_stats],
        ["GET", %r{\A/api/tasks\z}, :api_tasks],
        ["GET", %r{\A/api/tasks/#{UUID}\z}io, :api_task],
        ["GET", %r{\A/api/workers\z}, :api_workers],
        ["GET", %r{\A/metrics\z}, :metrics],
        ["GET", %r{\A/assets/(?<name>[a-z0-9_.-]+)\z}, :asset]
      ].freeze

      # @param method [String] the request method (HEAD is routed as GET)
      # @param path [String] PATH_INFO
      # @return [Match, Array<String>, nil] the match; the methods the path allows when the
      #   method is not one of them; nil when no route has the path
      def match(method, path)
        method = "GET" if method == "HEAD"
        path = normalize(path)
        allowed = []
        ROUTES.each do |verb, pattern, action|
          found = pattern.match(path)
          next unless found
          return Match.new(action: action, params: found.named_captures.transform_values(&:downcase)) if verb == method

          allowed << verb
        end
        allowed.empty? ? nil : allowed.uniq
      end

      private

      def normalize(path)
        path = path.to_s
        return "/" if path.empty? || path == "/"

        path.end_with?("/") ? path.chomp("/") : path
      end
    end
  end
end
