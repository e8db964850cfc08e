# frozen_string_literal: true

require "json"
require "pg"

# Three tasker-worker processes and a client process on one database: the client
# (TaskerCore.connect, no worker threads) creates tasks, reads them and waits for them
# across processes; each step runs once, on whichever worker claims it. A process that
# loaded a template nobody else has handlers for keeps its tasks to itself.
RSpec.describe "Worker processes and a client process on one PostgreSQL database" do
  let(:url) { PrivatePostgres.shared.fresh_database(prefix: "fleet") }
  let(:fleet) { WorkerFleet.new(database_url: url) }

  after { fleet.cleanup }

  # Runs `script` in a fresh Ruby process with tasker_core loaded and TaskerCore
  # connected to the database; answers the JSON the script prints last.
  def client(script, template_path: nil)
    RubySubprocess.json(<<~RUBY, env: { "TASKER_DATABASE_URL" => url }, timeout: 90)
      require "json"
      require "tasker_core"
      connected = TaskerCore.connect(database_url: ENV.fetch("TASKER_DATABASE_URL")#{template_path ? ", template_path: #{template_path.inspect}" : ''})
      #{script}
    RUBY
  end

  it "runs a client's tasks on three workers, each step once, and the client sees them finish" do
    workers = %w[a b c].map { |name| fleet.start(name, concurrency: 3) }
    workers.each { |worker| fleet.wait_started(worker) }

    answer = client(<<~RUBY)
      uuids = (0...60).map { |n| TaskerCore.create_task(namespace: "fleet", name: "chain", context: { "n" => n }) }
      finished = uuids.map { |uuid| TaskerCore.wait_for_task(uuid, timeout: 60) }
      puts JSON.generate(
        "connected" => connected,
        "workers" => TaskerCore.workers.map { |w| w["pid"] }.sort,
        "statuses" => finished.map { |t| t["status"] }.tally,
        "values" => finished.map { |t| t["steps"].last.dig("result", "value") },
        "complete" => TaskerCore.tasks(status: "complete", namespace: "fleet", limit: 1000).size,
        "stats" => TaskerCore.stats.slice("backend", "tasks", "workers_alive")
      )
    RUBY

    expect(answer["connected"]).to include("status" => "connected", "backend" => "postgres")
    expect(answer["workers"]).to eq(workers.map(&:pid).sort)
    expect(answer["statuses"]).to eq("complete" => 60)
    expect(answer["values"]).to eq((0...60).map { |n| (2 * n) + 5 })
    expect(answer["complete"]).to eq(60)
    expect(answer["stats"]).to include("backend" => "postgres", "workers_alive" => 3)
    expect(answer["stats"]["tasks"]).to include("complete" => 60, "pending" => 0, "in_progress" => 0)
    starts = fleet.executions.select { |e| e.kind == "START" }
    expect(starts.size).to eq(180)
    expect(starts.map(&:event).uniq.size).to eq(180)
    expect(starts.map { |e| [e.task, e.step] }.uniq.size).to eq(180), "each step ran once"
  end

  it "keeps a template's tasks for the processes that loaded it" do
    worker = fleet.start("a", concurrency: 2)
    fleet.wait_started(worker)
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "private.yaml"), <<~YAML)
        name: private
        namespace_name: fleet
        version: 1.0.0
        steps:
          - { name: only, handler: { callable: Nobody::HasThis } }
      YAML
      answer = client(<<~RUBY, template_path: dir)
        mine = TaskerCore.create_task(namespace: "fleet", name: "private")
        theirs = TaskerCore.create_task(namespace: "fleet", name: "chain", context: { "n" => 1 })
        done = TaskerCore.wait_for_task(theirs, timeout: 30)
        sleep 0.5
        puts JSON.generate("connected" => connected, "done" => done["status"],
                           "mine" => TaskerCore.task_status(mine)["status"],
                           "templates" => TaskerCore.templates.map { |t| t["name"] }.sort)
      RUBY
      expect(answer["connected"]).to include("templates_loaded" => 1)
      expect(answer).to include("done" => "complete", "mine" => "pending", "templates" => %w[chain private])
    end
  end

  it "runs a TaskerCore::Worker started with database_url:, as FFI.bootstrap_worker does" do
    answer = RubySubprocess.json(<<~RUBY, env: { "FLEET_LOG" => fleet.log }, timeout: 60)
      require "json"
      require "tasker_core"
      require #{WorkerFleet::HANDLERS.inspect}
      worker = TaskerCore::Worker.new(database_url: #{url.inspect}, template_path: #{WorkerFleet::TEMPLATES.inspect},
                                      concurrency: 2)
      info = worker.start
      uuid = TaskerCore.create_task(namespace: "fleet", name: "chain", context: { "n" => 20 })
      task = TaskerCore.wait_for_task(uuid, timeout: 30)
      worker.stop
      puts JSON.generate("backend" => info["backend"], "value" => task["steps"].last.dig("result", "value"),
                         "again" => TaskerCore::FFI.bootstrap_worker(database_url: #{url.inspect})["backend"])
    RUBY
    expect(answer).to eq("backend" => "postgres", "value" => 45, "again" => "postgres")
  end
end
