# frozen_string_literal: true

require "tasker_core/errors"

module TaskerCore
  # Module functions of the native extension live here (bootstrap_worker,
  # poll_step_events, complete_step_event, ...). This file only adds the Ruby-side
  # pieces: the removed-API guard.
  module FFI
    # The replacement of the removed completion API.
    COMPLETE_STEP_EVENT_USAGE = "TaskerCore::FFI.complete_step_event(event['event_id'], result)"

    # Removed: completions are correlated by the event id, not the step uuid.
    # @raise [TaskerCore::Errors::RemovedApiError] always, naming the replacement
    def self.send_step_completion_event(*_args, **_kwargs)
      raise Errors::RemovedApiError,
            "TaskerCore::FFI.send_step_completion_event was removed; " \
            "use #{COMPLETE_STEP_EVENT_USAGE} instead (completions are correlated by event_id)"
    end
  end
end
