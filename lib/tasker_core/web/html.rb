# frozen_string_literal: true

require "erb"
require "cgi"

module TaskerCore
  class Web
    # Markup that is already safe to emit as is (built by the templates or the SVG
    # renderers, with every user-supplied string escaped inside it).
    class SafeHtml < String
      # ERB calls to_s on every `<%= %>` value; keep the class so the buffer knows.
      def to_s
        self
      end
    end

    # HTML escaping and the auto-escaping templates of the dashboard.
    module Html
      module_function

      # Escapes text for HTML element content and quoted attribute values (also inside SVG):
      # & < > " ' become entities.
      # @param value [Object] anything; nil becomes ""
      # @return [SafeHtml]
      def escape(value)
        return value if value.is_a?(SafeHtml)

        SafeHtml.new(CGI.escapeHTML(value.to_s))
      end

      # Marks markup as safe.
      # @param markup [String]
      # @return [SafeHtml]
      def raw(markup)
        SafeHtml.new(markup.to_s)
      end

      # The output buffer of a compiled template: template text goes in as is, every `<%= %>`
      # value is escaped unless it is SafeHtml.
      class Buffer
        def initialize
          @out = +""
        end

        # @param text [String] template text
        def raw(text)
          @out << text
        end

        # @param value [Object] a `<%= %>` value
        def escaped(value)
          @out << Html.escape(value)
        end

        # @return [SafeHtml]
        def result
          SafeHtml.new(@out)
        end
      end

      # An ERB file compiled once into a method of a view module, so that rendering runs the
      # template as Ruby with the view's helpers, and `<%= %>` escapes by default.
      class Template
        # Defines `render_<name>(locals)` on `target` from `path`.
        # @param target [Module]
        # @param name [String]
        # @param path [String]
        def self.define(target, name, path)
          compiler = ERB::Compiler.new("-")
          compiler.pre_cmd = ["__out = ::TaskerCore::Web::Html::Buffer.new"]
          compiler.put_cmd = "__out.raw"
          compiler.insert_cmd = "__out.escaped"
          compiler.post_cmd = ["__out.result"]
          source, encoding = compiler.compile(File.read(path, encoding: "UTF-8"))
          source = source.dup.force_encoding(encoding || Encoding::UTF_8).sub(/\A#coding:[^\n]*\n/, "")
          target.module_eval("def render_#{name}(locals)\n#{source}\nend", path, 0)
        end
      end
    end
  end
end
