# frozen_string_literal: true

require "open3"
require "rbconfig"

# bin/demo --postgres, as its runner: a private server, two worker processes, one killed
# with SIGKILL in the middle; every task finishes right and the recovery time is shown.
RSpec.describe "bin/demo --postgres" do
  it "finishes every task after killing a worker, and says how long recovery took" do
    script = 'require "tasker_core/demo/postgres_runner"; exit TaskerCore::Demo::PostgresRunner.new(ARGV).run'
    out, err, status = Open3.capture3({ "TASKER_DATABASE_URL" => nil }, RbConfig.ruby, "-I", WorkerFleet::LIB,
                                      "-e", script, "--", "--tasks", "20", "--concurrency", "2")
    expect(status.exitstatus).to eq(0), "#{out}\n#{err}"
    expect(out).to match(/killed worker-1 \(pid \d+\) with SIGKILL/)
    expect(out).to include("tasks       100 (100 complete, 0 not)", "results     100/100 tasks checked")
    recovery = out[/recovery\s+(.*)$/, 1]
    expect(recovery).to match(/ran again on worker-2: \d+\.\d s after the kill|held no step when it died/)
    latest = recovery[/(\d+\.\d) s after the kill/, 1]
    expect(Float(latest)).to be <= 10.0 if latest
  end
end
