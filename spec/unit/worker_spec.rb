# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::Worker do
  include UnitSupport

  let(:config) { {} }
  let(:ffi) { UnitSupport::FakeFFI.new(config: config) }
  let(:options) { {} }
  let(:worker) { described_class.new(ffi: ffi, logger: UnitSupport.null_logger, **options) }

  after { worker.stop(timeout: 0) if worker.running? }

  def push(**event_options)
    ffi.push(UnitSupport.build_event(**event_options))
  end

  def completion_of(event, timeout: 5)
    wait_until(timeout: timeout, message: "completion of #{event['event_id']}") do
      ffi.completions_for(event["event_id"]).last
    end[:result]
  end

  describe "options" do
    it "rejects unknown options and bad concurrency" do
      expect { described_class.new(ffi: ffi, threads: 3) }.to raise_error(ArgumentError, /unknown TaskerCore::Worker option\(s\) :threads/)
      expect { described_class.new(ffi: ffi, concurrency: 0) }.to raise_error(ArgumentError, /concurrency must be a positive Integer/)
    end
  end

  describe "#start" do
    let(:options) { { concurrency: 3, template_path: "/srv/templates", environment: "test" } }

    it "bootstraps the core with its options and starts that many threads" do
      info = worker.start
      expect(ffi.bootstrap_calls).to eq([{ environment: "test", template_path: "/srv/templates", concurrency: 3 }])
      expect(info["worker_id"]).to eq("worker-test-1")
      expect(worker).to be_running
      expect(worker.started_core?).to be(true)
      expect(worker.stats[:threads].size).to eq(3)
      expect(worker.stats[:threads].map { |t| t[:name] }).to all(start_with("tasker-worker-"))
      expect { worker.start }.to raise_error(TaskerCore::Errors::Error, /already running/)
    end

    context "without a concurrency" do
      let(:options) { {} }
      let(:config) { { "concurrency" => 4 } }

      it "uses the core's configured concurrency" do
        worker.start
        expect(ffi.bootstrap_calls.first).not_to have_key(:concurrency)
        expect(worker.concurrency).to eq(4)
      end
    end

    context "when the core's config is incomplete" do
      let(:config) { { "poll_timeout_ms" => nil } }

      it "raises a ConfigurationError naming the key and stops the core it started" do
        expect { worker.start }.to raise_error(TaskerCore::Errors::ConfigurationError, /"poll_timeout_ms"/)
        expect(ffi.stop_calls).to eq(1)
        expect(worker).not_to be_running
      end
    end
  end

  describe "running steps" do
    let(:options) { { concurrency: 2 } }

    it "polls, runs the handler and completes each event" do
      worker.start
      events = Array.new(4) { push(callable: "UnitHandlers::Succeed") }
      results = events.map { |event| completion_of(event) }
      expect(results.map { |r| r["result"]["order_id"] }).to eq([7, 7, 7, 7])
      wait_until { worker.stats[:steps_run] == 4 }
      expect(worker.stats).to include(succeeded: 4, failed: 0, rejected_completions: 0)
    end

    it "keeps the same threads alive through every kind of handler exception" do
      worker.start
      names = worker.stats[:threads].map { |t| t[:name] }
      callables = %w[RaiseStandard RaiseRetryable RaisePermanent NotImplemented RaiseNonStandard CallsExit
                     ReturnNil ReturnsProc Nope]
      events = callables.map { |name| push(callable: "UnitHandlers::#{name}") }
      types = events.map { |event| completion_of(event)["error"]["error_type"] }
      expect(types).to eq(["ArgumentError", "TaskerCore::Errors::RetryableError", "CardDeclined",
                           "NotImplementedError", "UnitHandlers::DeepException", "SystemExit",
                           "invalid_handler_result", "invalid_handler_result", "handler_not_found"])
      wait_until { worker.stats[:steps_run] == callables.size }
      expect(worker.stats[:threads].map { |t| t[:name] }).to eq(names)
      expect(worker.stats[:threads]).to all(include(alive: true))
      expect(worker.stats).to include(failed: callables.size, processor_deaths: 0, invalid_results: 2)
    end

    it "fails the event and replaces the thread when a handler kills its own thread" do
      worker.start
      event = push(callable: "UnitHandlers::KillsThread")
      expect(completion_of(event)["error"]).to include("error_type" => "worker_thread_terminated", "retryable" => true)
      wait_until { worker.stats[:processor_deaths] == 1 }
      expect(worker.stats[:threads].count { |t| t[:alive] }).to eq(2)
      expect(completion_of(push(callable: "UnitHandlers::Succeed"))["success"]).to be(true)
    end
  end

  describe "#stop" do
    let(:options) { { concurrency: 2 } }

    it "lets in-flight handlers finish within the timeout" do
      worker.start
      event = push(callable: "UnitHandlers::Sleeper", inputs: { "sleep" => 0.1 })
      wait_until { worker.stats[:threads].any? { |t| t[:busy] } }
      report = worker.stop(timeout: 2)
      expect(report).to eq(abandoned: [], stopped_core: true)
      expect(ffi.completions_for(event["event_id"]).map { |c| c[:result]["result"] }).to eq(["woke"])
    end

    it "stops polling, kills handlers still running at the timeout and fails them as worker_shutdown" do
      worker.start
      slow = Array.new(2) { |i| push(step_name: "slow_#{i}", callable: "UnitHandlers::Sleeper", inputs: { "sleep" => 30 }) }
      wait_until { worker.stats[:threads].count { |t| t[:busy] } == 2 }
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      report = worker.stop(timeout: 0.2)
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started

      expect(elapsed).to be < 2
      expect(report[:abandoned].map { |a| a[:step_name] }).to contain_exactly("slow_0", "slow_1")
      expect(report[:abandoned]).to all(include(accepted: true))
      slow.each do |event|
        results = ffi.completions_for(event["event_id"]).map { |c| c[:result] }
        expect(results.size).to eq(1)
        expect(results.first["error"]).to include("error_type" => "worker_shutdown", "retryable" => true)
        expect(results.first["error"]["message"]).to include("'#{event.dig('task_sequence_step', 'workflow_step', 'name')}'", "0.2s")
      end
      expect(worker.stats[:threads]).to all(include(alive: false))
      expect(worker.stats[:shutdown_failures]).to eq(2)
      expect(ffi.stop_calls).to eq(1)

      polls = ffi.poll_calls
      late = push(callable: "UnitHandlers::Succeed")
      sleep 0.1
      expect(ffi.poll_calls).to eq(polls)
      expect(ffi.completions_for(late["event_id"])).to be_empty
    end

    it "is idempotent and returns the first report" do
      worker.start
      first = worker.stop(timeout: 0.5)
      expect(worker.stop).to equal(first)
      expect(ffi.stop_calls).to eq(1)
      expect(worker).not_to be_running
    end

    it "marks contexts as cancelled once stopping begins" do
      worker.start
      event = push(callable: "UnitHandlers::Cooperative")
      wait_until { worker.stats[:threads].any? { |t| t[:busy] } }
      expect(worker.stop(timeout: 2)[:abandoned]).to eq([])
      expect(ffi.completions_for(event["event_id"]).first[:result]["error"]["message"]).to eq("gave up: cancelled")
    end

    context "when the core was already running" do
      let(:ffi) { UnitSupport::FakeFFI.new(status: "already_running") }

      it "leaves the core running" do
        worker.start
        expect(worker.started_core?).to be(false)
        expect(worker.stop(timeout: 0.5)).to eq(abandoned: [], stopped_core: false)
        expect(ffi.stop_calls).to eq(0)
      end
    end
  end

  describe "watchdog" do
    let(:options) { { concurrency: 1 } }
    let(:config) { { "hung_handler_grace_ms" => 100 } }

    it "interrupts a handler hung past its deadline plus grace, and the thread carries on" do
      worker.start
      hung = push(step_name: "hung", callable: "UnitHandlers::Sleeper", timeout_ms: 50, inputs: { "sleep" => 30 })
      result = completion_of(hung, timeout: 3)
      expect(result["error"]).to include("error_type" => "TaskerCore::Errors::TimeoutError", "retryable" => true)
      expect(result["error"]["message"]).to include("'hung'", "50 ms deadline", "watchdog")
      expect(result["metadata"]["execution_time_ms"]).to be_between(140, 2000)
      expect(worker.stats).to include(interrupts: 1, replacements: 0)

      names = worker.stats[:threads].map { |t| t[:name] }
      expect(completion_of(push(callable: "UnitHandlers::Succeed"))["success"]).to be(true)
      expect(worker.stats[:threads].map { |t| t[:name] }).to eq(names)
    end

    it "retires a thread that ignores the interrupt and starts a replacement" do
      worker.start
      stubborn = push(step_name: "stubborn", callable: "UnitHandlers::Stubborn", timeout_ms: 50,
                      inputs: { "sleep" => 30, "after_interrupt" => 30 })
      wait_until(timeout: 3) { worker.stats[:replacements] == 1 }
      expect(UnitHandlers::Stubborn::INTERRUPTS.pop).to include("'stubborn'")
      expect(worker.stats[:interrupts]).to eq(1)

      threads = worker.stats[:threads]
      expect(threads.size).to eq(2)
      expect(threads.find { |t| t[:retired] }).to include(busy: true, step_name: "stubborn", alive: true)
      expect(threads.find { |t| !t[:retired] }).to include(busy: false, alive: true)

      # Capacity is back: the replacement runs the next step while the stubborn one sleeps.
      expect(completion_of(push(callable: "UnitHandlers::Succeed"))["success"]).to be(true)
      expect(ffi.completions_for(stubborn["event_id"])).to be_empty

      report = worker.stop(timeout: 0.1)
      expect(report[:abandoned].map { |a| a[:step_name] }).to eq(["stubborn"])
      expect(worker.stats[:threads]).to all(include(alive: false))
    end
  end
end
