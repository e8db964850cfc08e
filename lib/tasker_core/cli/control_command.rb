# frozen_string_literal: true

require "tasker_core/cli/inspect_command"
require "tasker_core/cli/report"

module TaskerCore
  class CLI
    # What `tasker-worker cancel UUID` and `tasker-worker retry UUID` share: one task uuid,
    # a control asked of the store (--database-url) or of a running dashboard (--url), and
    # the task printed as it is afterwards.
    class ControlCommand < InspectCommand
      private

      def usage = "#{command_name} UUID"

      def check_arguments(options)
        check_one_task_uuid(options)
      end

      def report(source, options)
        uuid = options[:arguments].first.downcase
        outcome = control(source, uuid, options)
        task = source.task(uuid)
        return json("outcome" => outcome, "task" => task) if options[:json]

        "#{command_name}: #{Report.clean(outcome['outcome'] || 'done')}\n#{Report.task(task)}"
      end

      # @return [Hash] what the control answered
      def control(_source, _uuid, _options)
        raise NotImplementedError
      end
    end

    # `tasker-worker cancel UUID [--reason TEXT]`: no new step of the task starts; it is
    # cancelled once its running steps finish.
    class CancelCommand < ControlCommand
      private

      def command_name = "cancel"

      def summary = "Cancels the task: no new step starts; it is cancelled once running steps finish."

      def parser(options)
        super.tap do |opts|
          opts.on("--reason TEXT", "Kept as the task's cancel reason") { |text| options[:reason] = text }
        end
      end

      def control(source, uuid, options)
        source.cancel_task(uuid, reason: options[:reason])
      end
    end

    # `tasker-worker retry UUID`: a task in error runs its failed steps again.
    class RetryCommand < ControlCommand
      private

      def command_name = "retry"

      def summary = "Runs a task in error again: its failed steps with a fresh attempt budget, then the rest."

      def control(source, uuid, _options)
        source.retry_task(uuid)
      end
    end
  end
end
