# frozen_string_literal: true

require "openssl"
require "rack/utils"
require "securerandom"

module TaskerCore
  class Web
    # Session-less CSRF protection by a signed double-submit cookie.
    #
    # A page that shows a form gives the browser a token in an HttpOnly, SameSite=Strict
    # cookie and the same token in the form's hidden field. A POST is accepted only when
    # the field (or the X-CSRF-Token header) equals the cookie and the token carries a
    # valid HMAC of its nonce under the app's secret. Another site can neither read the
    # cookie nor mint a token it could plant in one, so it cannot forge a POST.
    class CsrfGuard
      COOKIE = "tasker_csrf"
      FIELD = "_csrf"
      HEADER = "HTTP_X_CSRF_TOKEN"
      # Shortest secret accepted, in bytes.
      MIN_SECRET = 16

      # @param secret [String] HMAC key; shared by every process serving the same dashboard
      # @raise [ArgumentError] when the secret is too short
      def initialize(secret:)
        unless secret.is_a?(String) && secret.bytesize >= MIN_SECRET
          raise ArgumentError, "secret must be a String of at least #{MIN_SECRET} bytes"
        end

        @secret = secret
      end

      # The token to put in this request's forms: the cookie's when it is valid, a new one
      # otherwise (then #issue must set the cookie on the response).
      # @param request [Rack::Request]
      # @return [String]
      def token_for(request)
        current = request.cookies[COOKIE]
        signed?(current) ? current : mint
      end

      # Sets the cookie unless the request already carries this token.
      # @param request [Rack::Request]
      # @param response [Rack::Response]
      # @param token [String]
      def issue(request, response, token)
        return if request.cookies[COOKIE] == token

        path = request.script_name.to_s.empty? ? "/" : request.script_name
        response.set_cookie(COOKIE, value: token, path: path, httponly: true, same_site: :strict,
                                    secure: request.ssl?)
      end

      # @param request [Rack::Request] a POST
      # @return [Boolean] whether it carries a valid token matching its cookie
      def valid?(request)
        cookie = request.cookies[COOKIE]
        submitted = submitted_token(request)
        return false unless cookie.is_a?(String) && submitted.is_a?(String)
        return false unless cookie.bytesize == submitted.bytesize && Rack::Utils.secure_compare(cookie, submitted)

        signed?(cookie)
      end

      private

      def submitted_token(request)
        request.get_header(HEADER) || request.POST[FIELD]
      rescue StandardError
        nil
      end

      def mint
        nonce = SecureRandom.urlsafe_base64(24)
        "#{nonce}--#{signature(nonce)}"
      end

      def signed?(token)
        return false unless token.is_a?(String)

        # The last "--": the nonce is URL-safe base64, which can contain "--" itself
        # (about one token in 130); the MAC is hex and cannot.
        nonce, separator, mac = token.rpartition("--")
        return false if separator.empty? || nonce.empty? || mac.empty?

        expected = signature(nonce)
        expected.bytesize == mac.bytesize && Rack::Utils.secure_compare(expected, mac)
      end

      def signature(nonce)
        OpenSSL::HMAC.hexdigest("SHA256", @secret, nonce)
      end
    end
  end
end
