# frozen_string_literal: true

# Loaded first for every spec (see .rspec). It loads the whole gem with the native
# extension, and the helpers of the end-to-end specs under spec/ffi, spec/worker,
# spec/workflows and spec/web (the dashboard). Those specs share the one embedded core of this process: every example
# there gets CoreHelpers and, after it runs, a cleanup that stops its workers, fails any
# step it left behind and restores the default core (see CoreHelpers#finish_core_example).
#
# spec/unit keeps working unchanged: its files load only pure-Ruby parts through their
# own unit_helper and inject a fake core, so neither the extension nor these hooks touch
# them.

lib = File.expand_path("../lib", __dir__)
$LOAD_PATH.unshift(lib) unless $LOAD_PATH.include?(lib)

# The end-to-end specs run the "test" environment with the shipped configuration, and no
# template directory other than the ones they name.
ENV["TASKER_ENV"] = "test"
ENV.delete("TASKER_CONFIG_ROOT")
ENV.delete("TASKER_TEMPLATE_PATH")

require "pathname"
require "tasker_core"
require "tasker_core/demo/handlers"

Dir[File.join(__dir__, "support", "**", "*.rb")].sort.each { |file| require file }

RSpec.configure do |config|
  config.expect_with :rspec do |expectations|
    expectations.include_chain_clauses_in_custom_matcher_descriptions = true
  end
  config.mock_with :rspec do |mocks|
    mocks.verify_partial_doubles = true
  end
  config.shared_context_metadata_behavior = :apply_to_host_groups
  config.disable_monkey_patching!
  config.order = :random
  Kernel.srand config.seed

  config.define_derived_metadata(file_path: %r{/spec/(ffi|worker|workflows|web)/}) do |metadata|
    metadata[:core] = true
  end
  config.include CoreHelpers, :core
  config.before(:each, :core) { start_core_example }
  config.after(:each, :core) { finish_core_example }
end
