# frozen_string_literal: true

require "net/http"
require "open3"
require "tasker_core/cli"
require "tasker_core/web/server"

RSpec.describe "tasker-worker status, task and --web-port, against the real core" do
  include WebHelpers

  EXE = File.expand_path("../../exe/tasker-worker", __dir__)

  after { @server&.stop }

  # Serves the dashboard of this process's core on an ephemeral port.
  def dashboard_url
    @server ||= TaskerCore::Web::Server.new(app: TaskerCore::Web.new, port: 0).start
    @server.url
  end

  # Runs the executable's CLI in this process.
  # @return [Array(Integer, String, String)] exit status, stdout, stderr
  def tasker_worker(*argv)
    out = StringIO.new
    err = StringIO.new
    status = TaskerCore::CLI.new(argv, out: out, err: err).run
    [status, out.string, err.string]
  end

  describe "task UUID --url" do
    it "prints the task, its steps and the failed step's error with its backtrace" do
      uuid = create_task(payment_workflow)
      fail_second_step(uuid)
      status, out, err = tasker_worker("task", uuid, "--url", dashboard_url)

      expect([status, err]).to eq([0, ""])
      expect(out).to include("task       #{uuid}", "template   spec/#{payment_workflow.name} 1.0.0", "status     error")
      expect(out).to match(/^validate +complete +1\/3 /)
      expect(out).to match(/^charge +error +1\/1 /)
      expect(out).to include("charge: <img src=x onerror=alert(1)> (not retryable): #{WebHelpers::SCRIPT}")
      expect(out).to include("    app/handlers/#{WebHelpers::SCRIPT}.rb:12:in `call'\n    lib/worker.rb:3")
    end

    it "prints the task as JSON with --json" do
      uuid = create_task(diamond_workflow)
      run_to_completion(uuid)
      status, out, = tasker_worker("task", uuid, "--url", dashboard_url, "--json")

      expect(status).to eq(0)
      expect(JSON.parse(out)).to eq(TaskerCore.task_status(uuid))
    end

    it "exits 1 naming an unknown task, and 2 for a malformed uuid or no source" do
      unknown = SecureRandom.uuid
      status, out, err = tasker_worker("task", unknown, "--url", dashboard_url)
      expect([status, out]).to eq([1, ""])
      expect(err).to include("TaskNotFoundError", unknown)

      status, _, err = tasker_worker("task", "1234", "--url", dashboard_url)
      expect(status).to eq(2)
      expect(err).to include("tasker-worker task: not a task UUID: 1234", "Usage: tasker-worker task UUID")

      status, _, err = tasker_worker("task", unknown)
      expect(status).to eq(2)
      expect(err).to include("needs --url of a running dashboard")
    end

    it "exits 1 naming the address when no dashboard answers there" do
      port = TCPServer.open("127.0.0.1", 0) { |socket| socket.addr[1] }
      status, _, err = tasker_worker("task", SecureRandom.uuid, "--url", "http://127.0.0.1:#{port}/")

      expect(status).to eq(1)
      expect(err).to include("cannot reach the dashboard at http://127.0.0.1:#{port}/api/tasks/")
    end
  end

  describe "tasks, cancel and retry --url" do
    it "lists the newest tasks, filtered" do
      finished = create_task(diamond_workflow)
      run_to_completion(finished)
      failed = create_task(payment_workflow)
      fail_second_step(failed)
      status, out, err = tasker_worker("tasks", "--url", dashboard_url, "--name", payment_workflow.name)
      expect([status, err]).to eq([0, ""])
      expect(out).to match(/\ATASK +STATUS +TEMPLATE +CREATED +TOOK\n#{failed} +error +spec\/#{payment_workflow.name} 1\.0\.0/)
      expect(out).not_to include(finished)
      status, out, = tasker_worker("tasks", "--url", dashboard_url, "--status", "complete", "--json")
      expect(status).to eq(0)
      expect(JSON.parse(out).map { |t| t["task_uuid"] }).to include(finished)
      expect(tasker_worker("tasks", "--url", dashboard_url, "--status", "done").first).to eq(2)
    end

    it "cancels a running task through the dashboard's form and prints it" do
      uuid = create_task(diamond_workflow)
      event = next_event(uuid)
      status, out, err = tasker_worker("cancel", uuid, "--url", dashboard_url, "--reason", "duplicate order")
      expect([status, err]).to eq([0, ""])
      expect(out).to include("cancel: in_progress", "task       #{uuid}", "reason     duplicate order")
      complete_ok(event)
      expect(wait_for(uuid)).to include("status" => "cancelled", "cancel_reason" => "duplicate order")
    end

    it "retries a task in error, and names the refusal of one that is complete" do
      uuid = create_task(payment_workflow)
      fail_second_step(uuid)
      status, out, err = tasker_worker("retry", uuid, "--url", dashboard_url)
      expect([status, err]).to eq([0, ""])
      expect(out).to include("retry: in_progress", "status     in_progress")
      run_to_completion(uuid)
      status, _, err = tasker_worker("retry", uuid, "--url", dashboard_url)
      expect(status).to eq(1)
      expect(err).to include("task #{uuid} is complete: the dashboard offers no retry for it")
      expect(TaskerCore.task_status(uuid)["status"]).to eq("complete")
    end
  end

  describe "status --url" do
    it "prints the counts by status, the dispatch figures and this process's worker" do
      run_to_completion(create_task(diamond_workflow))
      status, out, err = tasker_worker("status", "--url", dashboard_url)
      stats = TaskerCore.stats

      expect([status, err]).to eq([0, ""])
      expect(out).to include("backend    #{CoreHelpers::SPEC_DATABASE_URL ? "postgres" : "embedded"}")
      expect(out).to include("tasks      pending #{stats['tasks']['pending']} · in progress #{stats['tasks']['in_progress']} · " \
                             "complete #{stats['tasks']['complete'].to_s.reverse.scan(/\d{1,3}/).join(',').reverse}")
      expect(out).to match(/^steps      in flight \d+ · ready \d+ · waiting for retry \d+$/)
      expect(out).to match(/^WORKER +HOST +PID +STARTED \(UTC\) +HEARTBEAT +IN FLIGHT$/)
      expect(out).to include(TaskerCore::FFI.worker_status["worker_id"])
    end

    it "prints stats and workers as JSON with --json" do
      status, out, = tasker_worker("status", "--url", dashboard_url, "--json")

      expect(status).to eq(0)
      expect(JSON.parse(out).keys).to eq(%w[stats workers])
      expect(JSON.parse(out)["stats"]["backend"]).to eq(CoreHelpers::SPEC_DATABASE_URL ? "postgres" : "embedded")
    end
  end

  describe "--web-port (a worker serving its own dashboard, in a subprocess)" do
    it "serves the dashboard and its /metrics on 127.0.0.1 while the worker runs and stops both on TERM" do
      handlers = File.expand_path("../../lib/tasker_core/demo/handlers.rb", __dir__)
      env = { "TASKER_ENV" => "test", "TASKER_CONFIG_ROOT" => nil, "TASKER_TEMPLATE_PATH" => nil }
      stdin, stdout, stderr, waiter = Open3.popen3(env, RbConfig.ruby, EXE, "-r", handlers, "-t", sample_templates_dir,
                                                   "--web-port", "0")
      stdin.close
      lines = []
      url = Timeout.timeout(20) do
        loop do
          line = stdout.gets or raise "tasker-worker exited early: #{stderr.read}"
          lines << line
          break line[%r{dashboard at (http://127\.0\.0\.1:\d+/)}, 1] if line.include?("dashboard at")
        end
      end
      unknown = SecureRandom.uuid
      response = Net::HTTP.get_response(URI("#{url}api/tasks/#{unknown}"))
      expect(response.code).to eq("404")
      expect(JSON.parse(response.body)["error"]).to include(unknown)
      asset = Net::HTTP.get_response(URI("#{url}assets/tasker.css"))
      expect([asset.code, asset["content-type"]]).to eq(["200", "text/css; charset=utf-8"])
      workers = Net::HTTP.get_response(URI("#{url}api/workers"))
      expect(workers.code).to eq("200"), workers.body
      expect(JSON.parse(workers.body).map { |w| w["pid"] }).to include(waiter.pid)
      metrics = Net::HTTP.get_response(URI("#{url}metrics"))
      expect([metrics.code, metrics["content-type"]]).to eq(["200", "text/plain; version=0.0.4; charset=utf-8"])
      scraped = PrometheusText.parse(metrics.body)
      expect([scraped.value("tasker_worker_running"), scraped.value("tasker_workers_alive")]).to eq([1, 1])

      Process.kill("TERM", waiter.pid)
      expect(Timeout.timeout(20) { waiter.value }.exitstatus).to eq(0)
      expect(lines.join + stdout.read).to include("tasker-worker: stopped")
      expect { Net::HTTP.get_response(URI("#{url}api/stats")) }.to raise_error(Errno::ECONNREFUSED)
    ensure
      if waiter&.alive?
        Process.kill("KILL", waiter.pid)
        waiter.join
      end
      [stdout, stderr].each { |io| io&.close }
    end
  end
end
