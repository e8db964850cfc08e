# frozen_string_literal: true

require "json"
require "tasker_core/logging"

module TaskerCore
  # Upstream tasker-core's logger object (`TaskerCore::Logger.instance`), writing to
  # {TaskerCore.logger}, so replacing that logger moves every line.
  #
  #   TaskerCore::Logger.instance.info("starting")
  #   TaskerCore::Logger.instance.log_step(:warn, "payment_retry", step_uuid: uuid, retry_count: 2)
  class Logger
    LEVELS = %i[debug info warn error fatal].freeze

    class << self
      # @return [TaskerCore::Logger] the process's one instance
      def instance
        @instance ||= new
      end
    end

    LEVELS.each do |level|
      # @param message [String, nil]
      define_method(level) do |message = nil, &block|
        target.public_send(level, message, &block)
      end
    end

    # One structured line: the event name and its fields as JSON.
    # @param level [Symbol, String] debug, info, warn, error or fatal
    # @param event [String, Symbol] what happened
    # @param fields [Hash] anything JSON-like (step_uuid, step_name, message, ...)
    # @return [void]
    def log_step(level, event, **fields)
      level = level.to_sym
      raise ArgumentError, "log level must be one of #{LEVELS.join(', ')}, got #{level.inspect}" unless LEVELS.include?(level)

      target.public_send(level, "#{event} #{JSON.generate(fields)}")
    end

    private

    def target
      TaskerCore.logger
    end
  end
end
