# frozen_string_literal: true

require_relative "unit_helper"
require "rack"
require "tasker_core/web"

RSpec.describe TaskerCore::Web::CsrfGuard do
  let(:guard) { described_class.new(secret: "unit-spec-secret-0123456789") }

  def post_with(token, cookie: token)
    Rack::Request.new(Rack::MockRequest.env_for("/x", method: "POST", "HTTP_COOKIE" => "tasker_csrf=#{cookie}",
                                                                  "HTTP_X_CSRF_TOKEN" => token))
  end

  def token_with_nonce(nonce)
    "#{nonce}--#{OpenSSL::HMAC.hexdigest('SHA256', 'unit-spec-secret-0123456789', nonce)}"
  end

  it "accepts a token whose nonce itself contains -- (URL-safe base64 can)" do
    token = token_with_nonce("ab--cd-")
    expect(guard.valid?(post_with(token))).to be(true)
  end

  it "accepts every minted token and refuses one whose MAC was altered or whose cookie differs" do
    200.times do
      token = guard.token_for(Rack::Request.new(Rack::MockRequest.env_for("/")))
      expect(guard.valid?(post_with(token))).to be(true), token
    end
    token = token_with_nonce("nonce")
    expect(guard.valid?(post_with(token.sub(/.\z/) { |c| c == "0" ? "1" : "0" }))).to be(false)
    expect(guard.valid?(post_with(token, cookie: token_with_nonce("other")))).to be(false)
    expect(guard.valid?(post_with("no-separator"))).to be(false)
  end
end
