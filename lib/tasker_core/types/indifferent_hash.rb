# frozen_string_literal: true

module TaskerCore
  module Types
    # A Hash whose keys are Strings and that answers a Symbol as the String of the same
    # name: `context[:order]` and `context["order"]` read the same entry, and writing
    # `h[:x] = 1` stores under "x". What handlers read (the task context, inputs, step
    # results) comes as these, built by the core's conversion itself (no copy), nested
    # Hashes included. It is a Hash (`is_a?(Hash)`), so code that takes Hashes keeps
    # working; Hash itself is not changed.
    #
    # `deep_symbolize_keys`, `symbolize_keys`, `deep_stringify_keys`, `stringify_keys` and
    # `with_indifferent_access` answer as ActiveSupport's do, without loading it.
    class IndifferentHash < Hash
      class << self
        # A deep copy of `value` with every Hash inside made indifferent (Symbol keys
        # become Strings). Arrays are copied; other values are kept.
        # @param value [Object]
        # @return [Object]
        def deep(value)
          case value
          when IndifferentHash then value
          when Hash then value.each_with_object(new) { |(k, v), out| out[k] = deep(v) }
          when Array then value.map { |item| deep(item) }
          else value
          end
        end
      end

      # Hash's own fetch, for String keys (see #default).
      alias string_fetch fetch
      private :string_fetch

      # Reading: `[]` and `dig` are Hash's own (String keys at native speed); a missing
      # key comes here, and a Symbol is looked up again as its String.
      def default(key = nil)
        key.is_a?(Symbol) ? string_fetch(key.name, nil) : nil
      end

      def []=(key, value)
        super(key.is_a?(Symbol) ? key.name : key, value)
      end
      alias store []=

      def fetch(key, *default, &block)
        super(key.is_a?(Symbol) ? key.name : key, *default, &block)
      end

      def key?(key)
        super(key.is_a?(Symbol) ? key.name : key)
      end
      alias has_key? key?
      alias include? key?
      alias member? key?

      def delete(key, &block)
        super(key.is_a?(Symbol) ? key.name : key, &block)
      end

      def values_at(*keys)
        keys.map { |key| self[key] }
      end

      def fetch_values(*keys, &block)
        keys.map { |key| fetch(key, &block) }
      end

      def slice(*keys)
        super(*keys.map { |key| key.is_a?(Symbol) ? key.name : key })
      end

      def except(*keys)
        super(*keys.map { |key| key.is_a?(Symbol) ? key.name : key })
      end

      def merge(*others, &block)
        super(*others.map { |other| self.class.deep(other) }, &block)
      end

      def update(*others, &block)
        super(*others.map { |other| self.class.deep(other) }, &block)
      end
      alias merge! update

      # @return [self]
      def with_indifferent_access
        self
      end

      # @return [Hash] a plain Hash with Symbol keys, all the way down
      def deep_symbolize_keys
        IndifferentHash.transform(self) { |key| key.to_sym }
      end

      # @return [Hash] a plain Hash with String keys, all the way down
      def deep_stringify_keys
        IndifferentHash.transform(self, &:to_s)
      end

      # @return [Hash] a plain Hash with Symbol keys at this level
      def symbolize_keys
        to_h.transform_keys(&:to_sym)
      end

      # @return [Hash] a plain Hash with String keys at this level
      def stringify_keys
        to_h
      end

      # @return [Hash] a plain Hash with the same (String) keys
      def to_h(&block)
        block ? super : Hash[self]
      end

      # Plain Hashes with keys mapped by the block, recursing into Hashes and Arrays.
      # @api private
      def self.transform(value, &block)
        case value
        when Hash then value.each_with_object({}) { |(k, v), out| out[block.call(k)] = transform(v, &block) }
        when Array then value.map { |item| transform(item, &block) }
        else value
        end
      end
    end
  end
end
