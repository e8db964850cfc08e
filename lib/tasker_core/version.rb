# frozen_string_literal: true

module TaskerCore
  # Version of the tasker_core gem (the Rust crates carry the same version).
  VERSION = "0.1.0"
end
