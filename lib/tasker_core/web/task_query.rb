# frozen_string_literal: true

module TaskerCore
  class Web
    # A request the dashboard refuses, with a message saying what was wrong (answered 400).
    class BadRequest < StandardError; end

    # The filters and cursor of a task listing (`/tasks`, `/api/tasks`), read from query
    # parameters and checked before they reach the core.
    class TaskQuery
      # Task statuses a listing can be filtered by.
      STATUSES = %w[pending in_progress complete error cancelled].freeze
      # The longest namespace or name filter accepted.
      MAX_TEXT = 200
      # The largest page a client may ask for.
      MAX_LIMIT = 200
      UUID = /\A\h{8}-\h{4}-\h{4}-\h{4}-\h{12}\z/.freeze

      attr_reader :status, :namespace, :name, :before, :limit

      # @param params [Hash{String => String}] query parameters
      # @param default_limit [Integer] the page size when `limit` is not given
      # @return [TaskQuery]
      # @raise [BadRequest] naming the parameter and the value
      def self.from_params(params, default_limit:)
        new(status: params["status"], namespace: params["namespace"], name: params["name"],
            before: params["before"], limit: params["limit"], default_limit: default_limit)
      end

      # @param status [String, nil]
      # @param namespace [String, nil]
      # @param name [String, nil]
      # @param before [String, nil] a task uuid
      # @param limit [String, Integer, nil]
      # @param default_limit [Integer]
      def initialize(default_limit:, status: nil, namespace: nil, name: nil, before: nil, limit: nil)
        @status = status_param(status)
        @namespace = text_param("namespace", namespace)
        @name = text_param("name", name)
        @before = before_param(before)
        @limit = limit_param(limit, default_limit)
      end

      # @return [Hash] the keyword arguments of Source#tasks, asking one task more than the
      #   page holds so the listing knows whether an older page exists
      def source_arguments
        { status: status, namespace: namespace, name: name, before: before, limit: limit + 1 }
      end

      # @return [Hash{String => String}] the filters as query parameters (no cursor)
      def filter_params
        { "status" => status, "namespace" => namespace, "name" => name }.compact
      end

      # @return [Boolean] whether any filter is set
      def filtered?
        !filter_params.empty?
      end

      # Splits what Source#tasks returned for #source_arguments into the page and the cursor
      # of the next (older) page.
      # @param rows [Array<Hash>]
      # @return [Array(Array<Hash>, String or nil)]
      def page(rows)
        rows = Array(rows)
        return [rows, nil] if rows.size <= limit

        shown = rows.first(limit)
        [shown, shown.last["task_uuid"]]
      end

      private

      def status_param(value)
        value = blank_to_nil(value)
        return nil if value.nil?
        return value if STATUSES.include?(value)

        raise BadRequest, "status must be one of #{STATUSES.join(', ')}; got #{value.inspect}"
      end

      def text_param(key, value)
        value = blank_to_nil(value)
        return nil if value.nil?
        raise BadRequest, "#{key} must be at most #{MAX_TEXT} characters" if value.length > MAX_TEXT

        value
      end

      def before_param(value)
        value = blank_to_nil(value)
        return nil if value.nil?
        return value.downcase if UUID.match?(value)

        raise BadRequest, "before must be a task uuid; got #{value.inspect}"
      end

      def limit_param(value, default)
        return default if value.nil? || (value.is_a?(String) && value.strip.empty?)

        number = Integer(value, 10, exception: false) if value.is_a?(String)
        number = value if value.is_a?(Integer)
        return number if number && number.between?(1, MAX_LIMIT)

        raise BadRequest, "limit must be an integer from 1 to #{MAX_LIMIT}; got #{value.inspect}"
      end

      def blank_to_nil(value)
        raise BadRequest, "filters take one value each; got #{value.inspect}" unless value.nil? || value.is_a?(String)

        text = value&.strip
        text.nil? || text.empty? ? nil : text
      end
    end
  end
end
