# frozen_string_literal: true

module TaskerCore
  class Web
    # The HTML pages: overview, task list, one task, workers. Each reads what it shows from
    # the source in a bounded number of calls (never every task), so pages stay fast on a
    # large store.
    class Pages
      # Tasks the overview lists.
      RECENT_TASKS = 10
      # Steps beyond which the task page shows no graph (the table still lists them all).
      MAX_DAG_STEPS = 400
      # Notices a redirect after a control may ask the task page to show.
      NOTICES = { "cancel" => "Cancel requested.", "retry" => "Retry requested." }.freeze

      # @param source [Source]
      # @param page_size [Integer]
      def initialize(source:, page_size:)
        @source = source
        @page_size = page_size
      end

      # GET /
      def overview(call)
        stats = @source.stats
        recent = @source.tasks(limit: RECENT_TASKS)
        chart = ThroughputChart.new(stats["throughput"])
        body = call.view.page(:overview, title: "Overview", stats: stats, recent: Array(recent), chart: chart,
                                         api_url: call.view.url("/api/stats"))
        Responses.html(body)
      end

      # GET /tasks?status=&namespace=&name=&before=
      def tasks(call)
        query = TaskQuery.from_params(query_params(call.request), default_limit: @page_size)
        tasks, older = query.page(@source.tasks(**query.source_arguments))
        body = call.view.page(:tasks, title: "Tasks", query: query, tasks: tasks, older: older)
        Responses.html(body)
      end

      # GET /tasks/:uuid
      def task(call)
        task = @source.task(call.params.fetch("uuid"))
        steps = Array(task["steps"])
        dag = (DagDiagram.new(steps, anchor: ->(index) { call.view.step_anchor(index) }).to_html if steps.size.between?(1, MAX_DAG_STEPS))
        notice = notice_for(query_params(call.request))
        body = call.view.page(:task, title: "Task #{call.view.short_uuid(task['task_uuid'])}", task: task,
                                     steps: steps, dag: dag, notice: notice)
        Responses.html(body)
      end

      # GET /workers
      def workers(call)
        workers = Array(@source.workers)
        backend = @source.stats["backend"]
        body = call.view.page(:workers, title: "Workers", workers: workers, backend: backend)
        Responses.html(body)
      end

      private

      def query_params(request)
        request.GET
      rescue StandardError => e
        raise BadRequest, "malformed query string: #{e.message}"
      end

      # The text of a notice named by the redirect, and the outcome it reported.
      def notice_for(params)
        text = NOTICES[params["notice"]]
        return nil unless text

        outcome = params["outcome"].to_s
        outcome.match?(/\A[a-z_]{1,40}\z/) ? "#{text} The core answered: #{outcome.tr('_', ' ')}." : text
      end
    end
  end
end
