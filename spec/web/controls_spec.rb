# frozen_string_literal: true

RSpec.describe "TaskerCore::Web controls (POST /tasks/:uuid/cancel and /retry) and their CSRF protection" do
  include WebHelpers

  # A task whose first step is in flight (polled, not completed).
  def task_in_flight
    uuid = create_task(diamond_workflow)
    [uuid, next_event(uuid)]
  end

  describe "without a valid CSRF token" do
    it "answers 403 to a POST with no token and no cookie, and leaves the task alone" do
      uuid, event = task_in_flight
      post("/tasks/#{uuid}/cancel", "reason" => "forged")

      expect(last_response.status).to eq(403)
      expect(last_response.body).to include("Missing or invalid CSRF token")
      expect(TaskerCore::FFI.task_status(uuid)["status"]).to eq("in_progress")
      complete_ok(event)
      expect(next_event(uuid)).to be_a(Hash)
    end

    it "answers 403 to a token in the form without the cookie" do
      uuid, = task_in_flight
      visit("/tasks/#{uuid}")
      token = form_token
      clear_cookies
      post("/tasks/#{uuid}/cancel", "_csrf" => token)

      expect(last_response.status).to eq(403)
    end

    it "answers 403 when the form's token differs from the cookie's" do
      uuid, = task_in_flight
      visit("/tasks/#{uuid}")
      other = TaskerCore::Web::CsrfGuard.new(secret: WebHelpers::SECRET).token_for(Rack::Request.new({}))
      post("/tasks/#{uuid}/retry", "_csrf" => other)

      expect(last_response.status).to eq(403)
    end

    it "answers 403 to a matching cookie and field signed with another secret" do
      uuid, = task_in_flight
      forged = TaskerCore::Web::CsrfGuard.new(secret: "an attacker's own secret key!!").token_for(Rack::Request.new({}))
      set_cookie("tasker_csrf=#{forged}")
      post("/tasks/#{uuid}/cancel", "_csrf" => forged)

      expect(last_response.status).to eq(403)
      expect(TaskerCore::FFI.task_status(uuid)["status"]).to eq("in_progress")
    end

    it "answers 403 to an unsigned token" do
      uuid, = task_in_flight
      set_cookie("tasker_csrf=plain")
      post("/tasks/#{uuid}/cancel", "_csrf" => "plain")

      expect(last_response.status).to eq(403)
    end
  end

  it "answers 405 with Allow: POST to a GET of a control" do
    uuid, = task_in_flight
    visit("/tasks/#{uuid}/cancel")

    expect(last_response.status).to eq(405)
    expect(last_response.headers["allow"]).to eq("POST")
  end

  it "cancels a running task with the form's token and reason, then shows the outcome" do
    uuid, event = task_in_flight
    visit("/tasks/#{uuid}")
    post("/tasks/#{uuid}/cancel", "_csrf" => form_token, "reason" => "stopped by the <web> spec")

    expect(last_response.status).to eq(303)
    expect(last_response.headers["location"]).to match(%r{\A/tasks/#{uuid}\?notice=cancel(&outcome=[a-z_]+)?\z})
    complete_ok(event)
    final = wait_until("the task is cancelled") do
      status = TaskerCore::FFI.task_status(uuid)
      status if status["status"] == "cancelled"
    end
    expect(final["cancel_reason"]).to eq("stopped by the <web> spec")
    expect(final["steps"].map { |s| s["status"] }).to eq(%w[complete skipped skipped skipped])
    follow_redirect!
    expect(last_response.body).to include("Cancel requested.", "stopped by the &lt;web&gt; spec")
  end

  it "accepts the token in the X-CSRF-Token header" do
    uuid, event = task_in_flight
    visit("/tasks/#{uuid}")
    post("/tasks/#{uuid}/cancel", {}, "HTTP_X_CSRF_TOKEN" => form_token)

    expect(last_response.status).to eq(303)
    complete_ok(event)
    expect(wait_until("cancelled") { TaskerCore::FFI.task_status(uuid)["status"] == "cancelled" }).to be(true)
  end

  it "retries a failed task: the failed step runs again, then the rest" do
    uuid = create_task(payment_workflow)
    fail_second_step(uuid)
    visit("/tasks/#{uuid}")
    post("/tasks/#{uuid}/retry", "_csrf" => form_token)

    expect(last_response.status).to eq(303)
    expect(last_response.headers["location"]).to start_with("/tasks/#{uuid}?notice=retry")
    again = next_event(uuid)
    expect(event_step_name(again)).to eq("charge")
    complete_ok(again, { "charged" => true })
    final = run_to_completion(uuid)
    expect(final["status"]).to eq("complete")
    expect(final["steps"].map { |s| s["status"] }).to eq(%w[complete complete complete])
  end

  it "redirects under the mount point" do
    mounted_at("/tasker")
    uuid, event = task_in_flight
    visit("/tasker/tasks/#{uuid}")
    post("/tasker/tasks/#{uuid}/cancel", "_csrf" => form_token)

    expect(last_response.status).to eq(303)
    expect(last_response.headers["location"]).to start_with("/tasker/tasks/#{uuid}?notice=cancel")
    complete_ok(event)
  end
end
