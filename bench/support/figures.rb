# frozen_string_literal: true

module Bench
  # How the suite writes numbers: shared by the report (docs/benchmarks.md) and
  # bin/bench-compare, so both group digits the same way. Pure Ruby: loads nothing else.
  module Figures
    module_function

    # 37233.1 -> "37,233"
    def rate(value)
      count(value.round)
    end

    # 1234567 -> "1,234,567"
    def count(value)
      value.to_i.to_s.reverse.scan(/\d{1,3}/).join(",").reverse.then { |s| value.negative? ? "-#{s}" : s }
    end
  end
end
