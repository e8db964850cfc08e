# frozen_string_literal: true

require "logger"

module TaskerCore
  class << self
    # The logger tasker_core's Ruby side writes to. Defaults to $stderr at the level named
    # by TASKER_LOG_LEVEL (debug, info, warn, error; info when unset).
    # @return [Logger]
    def logger
      @logger ||= default_logger
    end

    # @param logger [Logger] any object answering debug/info/warn/error
    attr_writer :logger

    private

    def default_logger
      logger = ::Logger.new($stderr, progname: "tasker_core")
      level = ENV.fetch("TASKER_LOG_LEVEL", "info").downcase
      logger.level = %w[debug info warn error fatal].include?(level) ? level.to_sym : :info
      logger
    end
  end
end
