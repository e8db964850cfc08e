# frozen_string_literal: true

require "open3"
require "pg"
require "rbconfig"

# The task controls' specs (spec/ffi/task_controls_spec.rb) again, on PostgreSQL: a child
# rspec whose default core uses a fresh database of the private server. The embedded
# store's own limits (memory budget, backlog bound) are left out there.
RSpec.describe "Task controls on PostgreSQL" do
  it "passes every control spec with the core on a PostgreSQL database" do
    url = PrivatePostgres.shared.fresh_database(prefix: "controls")
    spec = File.expand_path("../ffi/task_controls_spec.rb", __dir__)
    out, err, status = Open3.capture3({ "TASKER_SPEC_DATABASE_URL" => url, "TASKER_DATABASE_URL" => nil },
                                      RbConfig.ruby, "-S", "rspec", "--tag", "~embedded_only", spec,
                                      chdir: File.expand_path("../..", __dir__))
    expect(status.exitstatus).to eq(0), "#{out}\n#{err}"
    examples = out[/(\d+) examples?, 0 failures/, 1]
    expect(Integer(examples || "0")).to be >= 12, out
    tasks = PG.connect(url) { |conn| Integer(conn.exec("SELECT count(*) FROM tasker.tasks").getvalue(0, 0)) }
    expect(tasks).to be >= 12, "the child's tasks were created in the PostgreSQL database"
  end
end
