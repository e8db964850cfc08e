# frozen_string_literal: true

require "timeout"

RSpec.describe "TaskerCore::FFI.poll_step_events" do
  let(:ffi) { TaskerCore::FFI }
  let(:workflow) { define_workflow("poll", steps: [{ name: "only", handler: "SpecHandlers::Echo" }]) }

  # Raised into polling threads by these specs.
  let(:interrupt_class) { Class.new(StandardError) }

  # Starts a thread blocked in poll_step_events(seconds) and waits until it sleeps there.
  def blocked_poller(seconds = 10, &block)
    thread = Thread.new(&block || -> { ffi.poll_step_events(seconds) })
    thread.report_on_exception = false
    wait_until("the poller blocks") { thread.status == "sleep" || !thread.alive? }
    thread
  end

  it "returns nil at once when no event is waiting" do
    event = :not_called
    took = elapsed { event = ffi.poll_step_events }

    expect(event).to be_nil
    expect(took).to be < 0.05
    expect(elapsed { ffi.poll_step_events(0) }).to be < 0.05
    expect(elapsed { ffi.poll_step_events(nil) }).to be < 0.05
  end

  it "waits about the timeout, then returns nil" do
    event = :not_called
    took = elapsed { event = ffi.poll_step_events(0.3) }

    expect(event).to be_nil
    expect(took).to be_between(0.28, 1.0)
  end

  it "accepts an Integer timeout" do
    uuid = create_task(workflow)
    event = ffi.poll_step_events(5)
    @spec_events << event if event

    expect(event).to include("task_uuid" => uuid)
    complete_ok(event)
  end

  it "returns as soon as an event is ready when the task is created during the wait" do
    ref = workflow
    creator = Thread.new do
      sleep 0.15
      create_task(ref)
    end
    event = nil
    took = elapsed { event = ffi.poll_step_events(5) }
    uuid = creator.value
    @spec_events << event if event

    expect(event).to include("task_uuid" => uuid)
    expect(took).to be_between(0.1, 1.0)
    complete_ok(event)
  end

  {
    -1 => [ArgumentError, /timeout_seconds must be a finite, non-negative number of seconds, got -1/],
    -0.5 => [ArgumentError, /timeout_seconds must be a finite, non-negative/],
    "1" => [TypeError, /timeout_seconds must be a Numeric number of seconds or nil, got String/],
    :soon => [TypeError, /timeout_seconds must be a Numeric.*got Symbol/],
    Float::NAN => [ArgumentError, /timeout_seconds must be a finite.*NaN/],
    Float::INFINITY => [ArgumentError, /timeout_seconds must be a finite.*inf/]
  }.each do |timeout, (error, message)|
    it "rejects a timeout of #{timeout.inspect} with #{error}" do
      expect { ffi.poll_step_events(timeout) }.to raise_error(error, message)
    end
  end

  it "rejects more than one argument" do
    expect { ffi.poll_step_events(1, 2) }.to raise_error(ArgumentError, /0\.\.1 arguments, got 2/)
  end

  it "is interrupted by Timeout.timeout" do
    took = elapsed do
      expect { Timeout.timeout(0.2) { ffi.poll_step_events(10) } }.to raise_error(Timeout::Error)
    end

    expect(took).to be < 1.0
  end

  it "lets Thread#kill end a thread blocked in it promptly" do
    thread = blocked_poller
    took = elapsed do
      thread.kill
      expect(thread.join(2)).to eq(thread)
    end

    expect(thread).not_to be_alive
    expect(took).to be < 1.0
  end

  it "lets Thread#raise interrupt a thread blocked in it" do
    thread = blocked_poller do
      ffi.poll_step_events(10)
    rescue interrupt_class => e
      e
    end
    thread.raise(interrupt_class, "wake up")

    expect(thread.join(2)).to eq(thread)
    expect(thread.value).to be_a(interrupt_class).and(have_attributes(message: "wake up"))
  end

  it "keeps working for other threads after a poller was interrupted" do
    thread = blocked_poller
    thread.kill
    thread.join(2)
    uuid = create_task(workflow)

    event = next_event(uuid)
    complete_ok(event)
    expect(wait_for(uuid)["status"]).to eq("complete")
  end

  it "never loses an event when the waits are interrupted, whatever the timing" do
    ref = workflow
    outcomes = Queue.new
    tasks = Array.new(30) do |i|
      # The interrupt is taken only while the poll blocks, so an event the poll returned
      # is always recorded (as a careful worker loop would do it).
      thread = blocked_poller do
        Thread.handle_interrupt(interrupt_class => :never) do
          Thread.handle_interrupt(interrupt_class => :on_blocking) { outcomes << (ffi.poll_step_events(5) || :none) }
        rescue interrupt_class
          outcomes << :interrupted
        end
      end
      if i.even?
        thread.raise(interrupt_class)
        uuid = create_task(ref)
      else
        uuid = create_task(ref)
        thread.raise(interrupt_class)
      end
      thread.join(5) or raise "poller #{i} did not end"
      uuid
    end

    received = []
    received << outcomes.pop until outcomes.empty?
    events = received.grep(Hash)
    @spec_events.concat(events)
    events.each { |event| complete_ok(event) }
    remaining = tasks - events.map { |event| event["task_uuid"] }
    remaining.size.times { complete_ok(next_event(nil)) }

    # How many pollers are interrupted depends on timing: an event that reaches the queue
    # after its poller was interrupted is taken at once by the next poller. What must
    # hold whatever the timing: interrupts did land, every poller ended with exactly one
    # outcome, and every event was handed out exactly once.
    expect(received.count(:interrupted)).to be >= 1
    expect(received.size).to eq(30)
    expect(tasks.map { |uuid| wait_for(uuid)["status"] }).to all(eq("complete"))
    expect(tasks.map { |uuid| step_of(ffi.task_status(uuid), "only")["attempts"] }).to all(eq(1))
    expect(metrics).to include("pending_count" => 0, "waiting_in_dispatch" => 0)
  end

  it "is interrupted by Ctrl-C (SIGINT) while the process's only thread is blocked in it" do
    report = RubySubprocess.interrupt_blocked_call(
      setup: 'TaskerCore::FFI.bootstrap_worker(environment: "test")',
      call: "TaskerCore::FFI.poll_step_events(20)"
    )

    expect(report["outcome"]).to eq("Interrupt")
    expect(report["seconds"]).to be < 2
  end

  it "raises NotRunningError while no worker runs" do
    ffi.stop_worker

    expect { ffi.poll_step_events }.to raise_error(TaskerCore::Errors::NotRunningError, /bootstrap_worker/)
    expect { ffi.poll_step_events(0.1) }.to raise_error(TaskerCore::Errors::NotRunningError)
  end
end
