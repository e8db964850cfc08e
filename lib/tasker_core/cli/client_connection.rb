# frozen_string_literal: true

require "tasker_core/errors"

module TaskerCore
  class CLI
    # Makes this process a client of the PostgreSQL store (TaskerCore.connect), for the
    # commands that only read it: `web`, `status`, `task`.
    module ClientConnection
      module_function

      # @param database_url [String]
      # @param template_path [String, nil]
      # @raise [TaskerCore::Errors::ConfigurationError] when this build has no PostgreSQL client
      def connect(database_url:, template_path: nil)
        unless TaskerCore.respond_to?(:connect)
          raise TaskerCore::Errors::ConfigurationError,
                "--database-url needs TaskerCore.connect, which this build of tasker_core does not have"
        end

        TaskerCore.connect(**{ database_url: database_url, template_path: template_path }.compact)
      end
    end
  end
end
