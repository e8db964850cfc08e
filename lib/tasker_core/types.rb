# frozen_string_literal: true

require "tasker_core/types/indifferent_hash"
require "tasker_core/types/step_handler_call_result"
