# frozen_string_literal: true

require_relative "lib/tasker_core/version"

Gem::Specification.new do |spec|
  spec.name = "tasker_core"
  spec.version = TaskerCore::VERSION
  spec.authors = ["tasker_core developers"]
  spec.license = "MIT"

  spec.summary = "Workflow step execution for Ruby on a Rust core: DAG tasks, bounded dispatch, deadlines"
  spec.description = <<~DESC.tr("\n", " ").strip
    tasker_core runs workflows declared as YAML task templates (named steps, dependencies
    forming a DAG, retry policies, timeouts) with step handlers written in Ruby. A Rust core
    (tokio, built as a native extension with magnus) decides which steps are ready, dispatches
    them through bounded channels, keeps each step's deadline on its own threads, retries and
    advances the DAG; a Ruby worker (TaskerCore::Worker or the tasker-worker executable) polls
    it for step events and runs handlers on a bounded pool of threads. Embedded mode keeps all
    state in process and needs no server. Installing the gem compiles the Rust extension, so
    it needs cargo (Rust 1.80+) and libclang.
  DESC

  spec.required_ruby_version = ">= 3.1"
  spec.requirements = ["cargo and rustc 1.80 or newer", "libclang (bindgen in rb-sys)", "Ruby headers (ruby-dev)"]
  spec.metadata["rubygems_mfa_required"] = "true"

  # Globs, not `git ls-files`: the gem must also build from a plain directory.
  # Dir[] returns nothing for a pattern that matches nothing, so optional
  # directories (exe/, crates/*/tests, ...) may be absent.
  root = __dir__
  patterns = %w[
    lib/**/*.rb
    lib/tasker_core/web/views/*.erb
    lib/tasker_core/web/assets/*
    exe/*
    config/**/*
    ext/tasker_core/extconf.rb
    ext/tasker_core/Cargo.toml
    ext/tasker_core/src/**/*.rs
    crates/*/Cargo.toml
    crates/*/build.rs
    crates/*/src/**/*
    crates/*/migrations/*.sql
    crates/*/tests/**/*
    crates/*/examples/**/*
    crates/*/benches/**/*
    Cargo.toml
    Cargo.lock
    README.md
    LICENSE
  ]
  spec.files = Dir.glob(patterns, base: root)
                  .select { |path| File.file?(File.join(root, path)) }
                  .uniq
                  .sort

  spec.require_paths = ["lib"]
  spec.bindir = "exe"
  spec.executables = ["tasker-worker"]
  spec.extensions = ["ext/tasker_core/extconf.rb"]

  # The dashboard (TaskerCore::Web, `tasker-worker web` and `--web-port`): Rack and the
  # WEBrick server, both Debian packages (ruby-rack, ruby-webrick).
  spec.add_dependency "rack", ">= 2.2", "< 4"
  spec.add_dependency "webrick", "~> 1.7"

  spec.add_development_dependency "rack-test", "~> 2.0"
  spec.add_development_dependency "rake", "~> 13.0"
  spec.add_development_dependency "rake-compiler", "~> 1.2"
  spec.add_development_dependency "rspec", "~> 3.12"
end
