# frozen_string_literal: true

require "open3"
require "pg"
require "rbconfig"

# The dashboard's specs for its pages, JSON, controls, metrics and the inspect commands
# (spec/web) again, on PostgreSQL: a child rspec whose core uses a fresh database of the
# private server.
RSpec.describe "TaskerCore::Web on PostgreSQL" do
  specs = %w[overview_and_lists_spec.rb task_page_spec.rb controls_spec.rb metrics_spec.rb cli_spec.rb]

  it "passes the page, JSON, control, metrics and CLI specs with the core on a PostgreSQL database" do
    url = PrivatePostgres.shared.fresh_database(prefix: "web")
    files = specs.map { |file| File.expand_path("../web/#{file}", __dir__) }
    out, err, status = Open3.capture3({ "TASKER_SPEC_DATABASE_URL" => url, "TASKER_DATABASE_URL" => nil },
                                      RbConfig.ruby, "-S", "rspec", *files, chdir: File.expand_path("../..", __dir__))
    expect(status.exitstatus).to eq(0), "#{out}\n#{err}"
    expect(Integer(out[/(\d+) examples?, 0 failures/, 1] || "0")).to be >= 45, out
    tasks = PG.connect(url) { |conn| Integer(conn.exec("SELECT count(*) FROM tasker.tasks").getvalue(0, 0)) }
    expect(tasks).to be >= 10, "the pages showed tasks of the PostgreSQL database"
  end
end
