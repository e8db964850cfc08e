# frozen_string_literal: true

# The README's recipe for putting the dashboard behind HTTP basic authentication, mounted
# under a prefix with Rack::Builder, works as written.
RSpec.describe "TaskerCore::Web behind Rack::Auth::Basic (the README's recipe)" do
  include WebHelpers

  def app
    @app ||= Rack::Builder.new do
      map "/tasker" do
        use Rack::Auth::Basic, "tasker_core" do |user, password|
          Rack::Utils.secure_compare(user, "ops") & Rack::Utils.secure_compare(password, "s3cret-password")
        end
        run TaskerCore::Web.new(secret: WebHelpers::SECRET)
      end
    end.to_app
  end

  it "asks for credentials, refuses wrong ones and serves the pages under the prefix with the right ones" do
    uuid = create_task(diamond_workflow)

    expect(visit("/tasker/tasks/#{uuid}").status).to eq(401)
    expect(last_response.headers["www-authenticate"]).to eq('Basic realm="tasker_core"')
    basic_authorize("ops", "wrong")
    expect(visit("/tasker/api/tasks/#{uuid}").status).to eq(401)

    basic_authorize("ops", "s3cret-password")
    body = expect_ok(visit("/tasker/tasks/#{uuid}")).body
    expect(body).to include(%(action="/tasker/tasks/#{uuid}/cancel"))
    expect(visit("/tasker/api/tasks/#{uuid}").status).to eq(200)
    expect(json_body["task_uuid"]).to eq(uuid)
  end

  it "still wants the CSRF token from an authenticated browser" do
    uuid = create_task(diamond_workflow)
    basic_authorize("ops", "s3cret-password")
    post("/tasker/tasks/#{uuid}/cancel")

    expect(last_response.status).to eq(403)
  end
end
