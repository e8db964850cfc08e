# frozen_string_literal: true

require "tasker_core/errors"

module TaskerCore
  # Turns a step definition's handler callable (a Ruby constant name such as
  # "Ecommerce::ValidateOrderHandler") into a handler instance.
  #
  # Instances are cached per callable and `initialization` Hash and shared by all worker
  # threads, so handlers must not keep per-step state in instance variables.
  class HandlerRegistry
    CONSTANT_PATH = /\A(::)?[A-Z]\w*(::[A-Z]\w*)*\z/.freeze

    def initialize
      @lock = Mutex.new
      @instances = {}
    end

    # @param callable [String] a constant name
    # @param initialization [Hash, nil] passed to the handler as `config:`
    # @return [#call] the handler instance
    # @raise [TaskerCore::Errors::HandlerNotFoundError] no such constant (error_type "handler_not_found")
    # @raise [TaskerCore::Errors::InvalidHandlerError] the constant is not a handler class
    #   (error_type "invalid_handler")
    def resolve(callable, initialization = nil)
      config = initialization || {}
      unless config.is_a?(Hash)
        raise Errors::InvalidHandlerError, "handler #{callable.inspect} initialization must be a Hash, got #{config.class}"
      end

      # Reads need no lock (a Hash lookup is atomic under the GVL); only inserts take it.
      # Handlers without initialization (the common case) are found by callable alone.
      key = config.empty? ? callable : [callable, config]
      cached = @instances[key]
      return cached if cached

      instance = instantiate(handler_class(callable), config)
      @lock.synchronize { @instances[key] ||= instance }
    end

    # Checks that `callable` names a handler class, without creating one.
    # @param callable [String]
    # @return [nil, String] nil when it does, else what is wrong
    def problem_with(callable)
      handler_class(callable)
      nil
    rescue Errors::HandlerNotFoundError, Errors::InvalidHandlerError => e
      e.message
    end

    def clear
      @lock.synchronize { @instances.clear }
    end

    # @return [Integer] number of cached handler instances
    def size
      @lock.synchronize { @instances.size }
    end

    private

    def handler_class(callable)
      unless callable.is_a?(String) && CONSTANT_PATH.match?(callable)
        raise Errors::InvalidHandlerError,
              "handler callable #{callable.inspect} is not a Ruby class name " \
              "(expected e.g. \"Ecommerce::ValidateOrderHandler\")"
      end

      klass = lookup(callable)
      unless klass.is_a?(Class)
        raise Errors::InvalidHandlerError,
              "handler #{callable} is a #{klass.class}, not a class; define it as a class with #call(context)"
      end
      unless klass.method_defined?(:call)
        raise Errors::InvalidHandlerError,
              "handler class #{callable} does not define #call(context); subclass TaskerCore::StepHandler::Base"
      end

      klass
    end

    def lookup(callable)
      Object.const_get(callable.delete_prefix("::"))
    rescue NameError => e
      raise Errors::HandlerNotFoundError,
            "handler class #{callable} is not defined (#{e.message}); require the file that defines it " \
            "(tasker-worker --require FILE)"
    end

    def instantiate(klass, config)
      params = klass.instance_method(:initialize).parameters
      if params.any? { |type, _| type == :req }
        raise Errors::InvalidHandlerError,
              "handler class #{klass.name}#initialize takes positional arguments; accept `config: {}` instead"
      end

      accepts_config = params.any? { |type, name| (%i[key keyreq].include?(type) && name == :config) || type == :keyrest }
      accepts_config ? klass.new(config: config) : klass.new
    end
  end
end
