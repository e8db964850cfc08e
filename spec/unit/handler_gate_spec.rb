# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::Worker::HandlerGate do
  subject(:gate) { described_class.new }

  let(:context) { TaskerCore::StepHandler::Context.new(UnitSupport.build_event, ffi: UnitSupport::FakeFFI.new) }
  let(:timeout_error) { TaskerCore::Errors::TimeoutError }

  it "returns the block's value and is idle outside it" do
    expect(gate.guard(context) { :value }).to eq(:value)
    expect(gate.snapshot).to be_nil
    expect(gate.interrupt(context, "late")).to be(false)
  end

  it "publishes the running context" do
    seen = gate.guard(context) { gate.snapshot }
    expect(seen.context).to equal(context)
    expect(seen.interrupted_at).to be_nil
  end

  it "interrupts a handler inside the gate, once" do
    entered = Queue.new
    thread = Thread.new do
      gate.guard(context) { entered << true; sleep 5; :finished }
    rescue timeout_error => e
      e.message
    end
    entered.pop
    expect(gate.interrupt(context, "too slow")).to be(true)
    expect(gate.interrupt(context, "again")).to be(false)
    expect(thread.value).to eq("too slow")
  end

  it "refuses to interrupt on behalf of an earlier run" do
    other = TaskerCore::StepHandler::Context.new(UnitSupport.build_event, ffi: UnitSupport::FakeFFI.new)
    gate.guard(context) { nil }
    result = gate.guard(other) { gate.interrupt(context, "stale") }
    expect(result).to be(false)
  end

  it "drains an interrupt sent just before the handler left, so it never reaches the worker's code" do
    allow(gate).to receive(:leave).and_wrap_original do |original|
      # The watchdog fires after the handler returned but before the gate closed.
      Thread.new { gate.interrupt(context, "raced") }.join
      original.call
    end
    expect(gate.guard(context) { :handler_result }).to eq(:handler_result)
    leaked = Thread.handle_interrupt(timeout_error => :immediate) { sleep 0.05; :nothing_leaked }
    expect(leaked).to eq(:nothing_leaked)
  end

  it "never delivers a watchdog interrupt outside the gate or to a later run (stress)" do
    stop = false
    runs = 0
    interrupted = 0
    misattributed = []
    worker = Thread.new do
      until stop
        run_context = TaskerCore::StepHandler::Context.new({ "event_id" => "run-#{runs}" })
        begin
          gate.guard(run_context) { rand(4).times { Thread.pass } }
        rescue timeout_error => e
          interrupted += 1
          misattributed << e.message unless e.message == run_context.event_id
        end
        # "Bookkeeping": unmasked code with interrupt checkpoints. A leaked interrupt
        # would raise here and end the thread with an exception.
        5.times { Thread.pass }
        runs += 1
      end
      :clean
    end
    watchdog = Thread.new do
      until stop
        snapshot = gate.snapshot
        gate.interrupt(snapshot.context, snapshot.context.event_id) if snapshot
        Thread.pass
      end
    end
    # Enough races to matter, however slow the machine: at least 0.3 s, 300 runs and
    # 30 interrupts (or give up after 15 s, which the expectations below then report).
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    loop do
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      break if elapsed > 15 || !worker.alive? || (elapsed > 0.3 && runs >= 300 && interrupted >= 30)

      sleep 0.05
    end
    stop = true
    watchdog.join
    expect(worker.value).to eq(:clean)
    expect(misattributed).to eq([])
    expect(runs).to be >= 300
    expect(interrupted).to be >= 30
  end
end
