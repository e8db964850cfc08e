# frozen_string_literal: true

RSpec.describe "TaskerCore::FFI.bootstrap_worker" do
  let(:ffi) { TaskerCore::FFI }

  it "answers \"started\" for a new worker, then \"already_running\" with the same worker id" do
    ffi.stop_worker
    first = ffi.bootstrap_worker(environment: "test")
    second = ffi.bootstrap_worker(environment: "test")

    expect(first["status"]).to eq("started")
    expect(second["status"]).to eq("already_running")
    expect(second["worker_id"]).to eq(first["worker_id"])
    expect(first["worker_id"]).to match(/\Aworker-#{Process.pid}-\d+\z/o)
    expect(ffi.worker_status).to include("running" => true, "worker_id" => first["worker_id"], "consumer" => "ffi")
  end

  it "returns the worker's identity, environment, templates and effective config" do
    info = ffi.bootstrap_worker(environment: "test", template_path: sample_templates_dir)

    expect(info.keys).to contain_exactly("status", "worker_id", "environment", "backend", "templates_loaded",
                                         "template_path", "config")
    expect(info["backend"]).to eq("embedded")
    expect(info["environment"]).to eq("test")
    expect(info["templates_loaded"]).to eq(Dir[File.join(sample_templates_dir, "*.yaml")].size)
    expect(info["template_path"]).to eq(sample_templates_dir)
    expect(info["config"].keys).to contain_exactly(
      "max_concurrent_handlers", "handler_timeout_ms", "dispatch_buffer_size", "completion_buffer_size",
      "concurrency", "poll_timeout_ms", "shutdown_timeout_ms", "hung_handler_grace_ms"
    )
    expect(info["config"].values).to all(be_a(Integer))
    # config/tasker/environments/test/*.toml over base/*.toml; in flight: the configured
    # 10, raised to twice the default concurrency (10) so each thread has a step waiting
    expect(info["config"]).to include("handler_timeout_ms" => 5000, "shutdown_timeout_ms" => 5000,
                                      "hung_handler_grace_ms" => 1000, "max_concurrent_handlers" => 20,
                                      "concurrency" => 10)
  end

  it "accepts String option names and Pathname paths" do
    info = ffi.bootstrap_worker("environment" => "test", "template_path" => Pathname(sample_templates_dir))

    expect(info["template_path"]).to eq(sample_templates_dir)
    expect(info["templates_loaded"]).to be_positive
  end

  it "rejects an unknown option with an ArgumentError naming it and the known ones" do
    expect { ffi.bootstrap_worker(environment: "test", max_handlers: 4) }
      .to raise_error(ArgumentError, /unknown bootstrap_worker option :max_handlers.*max_concurrent_handlers/)
  end

  it "rejects a non-Hash options argument and extra arguments" do
    expect { ffi.bootstrap_worker("test") }.to raise_error(TypeError, /options must be a Hash, got String/)
    expect { ffi.bootstrap_worker({}, {}) }.to raise_error(ArgumentError, /0\.\.1 arguments, got 2/)
  end

  {
    max_concurrent_handlers: "10",
    handler_timeout_ms: 1.5,
    concurrency: "4",
    template_path: 42,
    config_root: :config,
    environment: 1
  }.each do |option, value|
    it "rejects #{option}: #{value.inspect} with a TypeError naming :#{option}" do
      expect { ffi.bootstrap_worker(environment: "test", option => value) }
        .to raise_error(TypeError, /option :#{option} must be/)
    end
  end

  it "rejects an out-of-range override with a ConfigurationError naming the key, leaving the worker as it was" do
    before = ffi.worker_status

    expect { ffi.bootstrap_worker(environment: "test", max_concurrent_handlers: 0) }
      .to raise_error(TaskerCore::Errors::ConfigurationError,
                      /mpsc_channels\.worker\.handler_dispatch\.max_concurrent_handlers.*got 0/)
    expect { ffi.bootstrap_worker(environment: "test", dispatch_buffer_size: -5) }
      .to raise_error(TaskerCore::Errors::ConfigurationError, /dispatch_buffer_size/)
    expect(ffi.worker_status).to include("running" => true, "worker_id" => before["worker_id"])
  end

  it "rejects concurrency out of 1..10000 with an ArgumentError naming it" do
    expect { ffi.bootstrap_worker(environment: "test", concurrency: 0) }
      .to raise_error(ArgumentError, /:concurrency must be 1\.\.=10000, got 0/)
  end

  it "refuses to switch a running process's core to another environment" do
    expect { ffi.bootstrap_worker(environment: "production") }
      .to raise_error(TaskerCore::Errors::ConfigurationError,
                      /environment "production" was asked for.*already runs with "test".*once per process/)
    expect(ffi.bootstrap_worker(environment: "test")["environment"]).to eq("test")
  end

  it "rejects an unknown environment with a ConfigurationError naming it" do
    expect { ffi.bootstrap_worker(environment: "no_such_env") }
      .to raise_error(TaskerCore::Errors::ConfigurationError, /no_such_env/)
  end

  it "raises a TemplateError naming the broken file and loads none of the directory's templates" do
    set = new_template_set
    good = set.add("good", steps: [{ name: "only", handler: "SpecHandlers::Echo" }])
    broken = set.write_raw("broken_workflow.yaml", <<~YAML)
      name: broken_workflow
      namespace_name: spec
      version: 1.0.0
      steps:
        - name: a
          handler: { callable: SpecHandlers::Echo }
          dependencies: [missing_step]
    YAML

    expect { load_templates(set.dir) }
      .to raise_error(TaskerCore::Errors::TemplateError, /#{Regexp.escape(broken)}.*missing_step/m)
    expect { create_task(good) }.to raise_error(TaskerCore::Errors::TemplateError, /#{good.name}/)
  end

  it "raises a TemplateError naming a template directory that does not exist" do
    missing = File.join(templates.dir, "nope")

    expect { ffi.bootstrap_worker(environment: "test", template_path: missing) }
      .to raise_error(TaskerCore::Errors::TemplateError, /#{Regexp.escape(missing)} does not exist/)
  end

  it "raises max_concurrent_handlers to twice concurrency: when the worker starts" do
    info = restart_core(concurrency: 16)

    expect(info["status"]).to eq("started")
    expect(info["config"]).to include("max_concurrent_handlers" => 32, "concurrency" => 16)
    expect(ffi.worker_status["max_concurrent_handlers"]).to eq(32)
  end

  it "honours a max_concurrent_handlers: below the configured default concurrency" do
    info = restart_core(max_concurrent_handlers: 3)

    expect(info["config"]).to include("max_concurrent_handlers" => 3, "concurrency" => 10)
    expect(ffi.worker_status["max_concurrent_handlers"]).to eq(3)
  end

  it "keeps a larger max_concurrent_handlers than concurrency:" do
    info = restart_core(concurrency: 2, max_concurrent_handlers: 12)

    expect(info["config"]).to include("max_concurrent_handlers" => 12, "concurrency" => 2)
  end

  it "honours handler_timeout_ms: as the deadline of steps without timeout_seconds" do
    restart_core(handler_timeout_ms: 1234)
    ref = define_workflow("default_timeout", steps: [{ name: "a", handler: "SpecHandlers::Echo", timeout_seconds: nil }])
    uuid = create_task(ref)

    event = next_event(uuid)
    expect(event["timeout_ms"]).to eq(1234)
    complete_ok(event)
  end
end
