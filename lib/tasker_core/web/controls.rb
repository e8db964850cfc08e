# frozen_string_literal: true

module TaskerCore
  class Web
    # The two controls: POST /tasks/:uuid/retry and POST /tasks/:uuid/cancel. Each needs a
    # valid CSRF token (403 otherwise), asks the core, and redirects to the task's page with
    # a notice; a refusal by the core is shown as a 409 page with its message.
    class Controls
      ACTIONS = %i[retry_task cancel_task].freeze
      # Longest cancel reason accepted from the form.
      MAX_REASON = 500
      DEFAULT_REASON = "cancelled from the dashboard"

      # @param source [Source]
      # @param guard [CsrfGuard]
      def initialize(source:, guard:)
        @source = source
        @guard = guard
      end

      # POST /tasks/:uuid/retry
      def retry_task(call)
        control(call, "retry") { |uuid| @source.retry_task(uuid) }
      end

      # POST /tasks/:uuid/cancel (form field "reason", optional)
      def cancel_task(call)
        control(call, "cancel") { |uuid| @source.cancel_task(uuid, reason: reason(call.request)) }
      end

      private

      def control(call, name)
        unless @guard.valid?(call.request)
          return Responses.error_page(call.view, 403, "Missing or invalid CSRF token: reload the page and try again.")
        end

        uuid = call.params.fetch("uuid")
        outcome = begin
          yield uuid
        rescue TaskerCore::Errors::TaskNotFoundError, TaskerCore::Errors::NotRunningError
          raise
        rescue ArgumentError, TaskerCore::Errors::Error => e
          return Responses.error_page(call.view, 409, "Could not #{name} task #{uuid}: #{e.message}",
                                      back: ["/tasks/#{uuid}", "Back to the task"])
        end
        status = outcome.is_a?(Hash) ? outcome["status"] : nil
        Responses.redirect(call.view.url("/tasks/#{uuid}", "notice" => name, "outcome" => status))
      end

      def reason(request)
        text = request.POST["reason"]
        text = text.strip if text.is_a?(String)
        return DEFAULT_REASON if text.nil? || !text.is_a?(String) || text.empty?
        raise BadRequest, "reason must be at most #{MAX_REASON} characters" if text.length > MAX_REASON

        text
      end
    end
  end
end
