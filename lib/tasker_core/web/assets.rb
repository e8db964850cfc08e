# frozen_string_literal: true

require "digest"

module TaskerCore
  class Web
    # The stylesheet and script of the dashboard, served from the gem (no CDN). Only the
    # files listed here are served; each is read once.
    module Assets
      DIR = File.expand_path("assets", __dir__)
      TYPES = {
        "tasker.css" => "text/css; charset=utf-8",
        "tasker.js" => "text/javascript; charset=utf-8"
      }.freeze

      # One served file.
      Asset = Struct.new(:body, :type, :digest, keyword_init: true)

      FILES = TYPES.to_h do |name, type|
        body = File.binread(File.join(DIR, name)).freeze
        [name, Asset.new(body: body, type: type, digest: Digest::SHA256.hexdigest(body)[0, 12]).freeze]
      end.freeze

      module_function

      # @param name [String]
      # @return [Asset, nil]
      def find(name)
        FILES[name]
      end

      # GET /assets/:name. Cached for a year when asked with the current digest (`?v=`),
      # which every page uses, else revalidated.
      # @param call [Call]
      # @return [Rack::Response]
      def asset(call)
        asset = find(call.params.fetch("name"))
        return Responses.not_found(call.view, "No asset #{call.params['name']}") unless asset

        current = call.request.GET["v"] == asset.digest
        Rack::Response.new([asset.body], 200,
                           "content-type" => asset.type,
                           "cache-control" => current ? "public, max-age=31536000, immutable" : "no-cache",
                           "etag" => %("#{asset.digest}"))
      end

      # @param name [String]
      # @return [String] a short digest of the file's content
      # @raise [KeyError] for a file that is not an asset
      def digest(name)
        FILES.fetch(name).digest
      end
    end
  end
end
