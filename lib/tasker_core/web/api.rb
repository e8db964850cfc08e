# frozen_string_literal: true

module TaskerCore
  class Web
    # The JSON API: the same data as the pages, as the core returns it.
    #
    # - GET /api/stats: TaskerCore.stats
    # - GET /api/tasks?status=&namespace=&name=&before=&limit=: {"tasks" => [...], "next_before" => uuid or nil}
    # - GET /api/tasks/:uuid: TaskerCore.task_status
    # - GET /api/workers: TaskerCore.workers
    #
    # Errors are {"error" => message, "status" => code} with that HTTP status.
    class Api
      # @param source [Source]
      # @param page_size [Integer] the default `limit`
      def initialize(source:, page_size:)
        @source = source
        @page_size = page_size
      end

      # GET /api/stats
      def api_stats(_call)
        Responses.json(@source.stats)
      end

      # GET /api/tasks
      def api_tasks(call)
        params = begin
          call.request.GET
        rescue StandardError => e
          raise BadRequest, "malformed query string: #{e.message}"
        end
        query = TaskQuery.from_params(params, default_limit: @page_size)
        tasks, older = query.page(@source.tasks(**query.source_arguments))
        Responses.json({ "tasks" => tasks, "next_before" => older, "limit" => query.limit })
      end

      # GET /api/tasks/:uuid
      def api_task(call)
        Responses.json(@source.task(call.params.fetch("uuid")))
      end

      # GET /api/workers
      def api_workers(_call)
        Responses.json(Array(@source.workers))
      end
    end
  end
end
