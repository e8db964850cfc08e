# frozen_string_literal: true

require "tasker_core/step_handler/base"

# Step handlers of the sample workflows in config/templates. Each workflow starts from
# the task context's "number" and does a little arithmetic per step, so a finished
# task's results can be checked by hand (the formulas are in each template's
# description). The order fulfillment handlers model a shop whose payment gateway times
# out on the first attempt.
module Demo
  # A handler whose result is computed by the block given to {.computes} from the
  # step context: `computes { |context| ... }`.
  class ArithmeticHandler < TaskerCore::StepHandler::Base
    class << self
      # @yieldparam context [TaskerCore::StepHandler::Context]
      # @yieldreturn [Integer] the step's result
      def computes(&block)
        define_method(:compute, &block)
      end
    end

    # @param context [TaskerCore::StepHandler::Context]
    def call(context)
      success(result: compute(context))
    end

    private

    def number(context)
      Integer(context.task_context.fetch("number"))
    end

    def parent(context, name)
      context.dependency_result(name)
    end
  end

  # linear_workflow: double_number → add_ten → triple_number → subtract_four (6n + 26).
  module Linear
    class DoubleNumberHandler < ArithmeticHandler
      computes { |c| number(c) * 2 }
    end

    class AddTenHandler < ArithmeticHandler
      computes { |c| parent(c, "double_number") + 10 }
    end

    class TripleNumberHandler < ArithmeticHandler
      computes { |c| parent(c, "add_ten") * 3 }
    end

    class SubtractFourHandler < ArithmeticHandler
      computes { |c| parent(c, "triple_number") - 4 }
    end
  end

  # diamond_workflow: start → left, right → join (8n + 3).
  module Diamond
    class StartHandler < ArithmeticHandler
      computes { |c| number(c) * 2 }
    end

    class LeftHandler < ArithmeticHandler
      computes { |c| parent(c, "start") + 3 }
    end

    class RightHandler < ArithmeticHandler
      computes { |c| parent(c, "start") * 3 }
    end

    class JoinHandler < ArithmeticHandler
      computes { |c| parent(c, "left") + parent(c, "right") }
    end
  end

  # tree_workflow: root → two branches → four leaves → merge (20n + 15).
  module Tree
    class RootHandler < ArithmeticHandler
      computes { |c| number(c) * 2 }
    end

    class LeftBranchHandler < ArithmeticHandler
      computes { |c| parent(c, "root") + 1 }
    end

    class RightBranchHandler < ArithmeticHandler
      computes { |c| parent(c, "root") + 2 }
    end

    class LeftLeafDoubleHandler < ArithmeticHandler
      computes { |c| parent(c, "left_branch") * 2 }
    end

    class LeftLeafTripleHandler < ArithmeticHandler
      computes { |c| parent(c, "left_branch") * 3 }
    end

    class RightLeafDoubleHandler < ArithmeticHandler
      computes { |c| parent(c, "right_branch") * 2 }
    end

    class RightLeafTripleHandler < ArithmeticHandler
      computes { |c| parent(c, "right_branch") * 3 }
    end

    class MergeHandler < ArithmeticHandler
      computes { |c| c.dependency_results.values.sum }
    end
  end

  # mixed_dag_workflow: a DAG with a three-parent step and a grandparent edge
  # (with i = n + 1: 3i² + 7i + 7).
  module MixedDag
    class InitHandler < ArithmeticHandler
      computes { |c| number(c) + 1 }
    end

    class DoubleHandler < ArithmeticHandler
      computes { |c| parent(c, "init") * 2 }
    end

    class TripleHandler < ArithmeticHandler
      computes { |c| parent(c, "init") * 3 }
    end

    class OffsetHandler < ArithmeticHandler
      computes { |c| parent(c, "double") + 7 }
    end

    class CombineHandler < ArithmeticHandler
      computes { |c| parent(c, "double") + parent(c, "triple") + parent(c, "offset") }
    end

    class ScaleHandler < ArithmeticHandler
      computes { |c| parent(c, "triple") * parent(c, "init") }
    end

    class FinalizeHandler < ArithmeticHandler
      computes { |c| parent(c, "combine") + parent(c, "scale") }
    end
  end

  # order_fulfillment (namespace ecommerce): validate → reserve, pay → ship.
  module Ecommerce
    class ValidateOrderHandler < TaskerCore::StepHandler::Base
      def call(context)
        order = context.task_context["order"] || {}
        items = order["items"]
        if !items.is_a?(Array) || items.empty?
          return failure(message: "order #{order['id'].inspect} has no items", error_type: "InvalidOrder",
                         retryable: false)
        end
        bad = items.find { |item| !item["quantity"].is_a?(Integer) || item["quantity"] <= 0 }
        if bad
          return failure(message: "item #{bad['sku'].inspect} has quantity #{bad['quantity'].inspect}",
                         error_type: "InvalidOrder", retryable: false)
        end

        total = items.sum { |item| item["quantity"] * item["price"].to_f }
        success(result: { "order_id" => order["id"], "item_count" => items.sum { |i| i["quantity"] },
                          "total" => total.round(2) })
      end
    end

    class ReserveInventoryHandler < TaskerCore::StepHandler::Base
      def call(context)
        validated = context.dependency_result("validate_order")
        skus = context.task_context["order"]["items"].map { |item| item["sku"] }
        success(result: { "reserved" => validated["item_count"], "skus" => skus })
      end
    end

    # The payment gateway times out on the first attempt; the retry succeeds.
    class ProcessPaymentHandler < TaskerCore::StepHandler::Base
      def call(context)
        raise TaskerCore::Errors::RetryableError, "payment gateway timeout" if context.attempt == 1

        success(result: { "charged" => context.dependency_result("validate_order")["total"],
                          "attempt" => context.attempt })
      end
    end

    class ShipOrderHandler < TaskerCore::StepHandler::Base
      def call(context)
        context.dependency_result("reserve_inventory") # both parents must have run
        context.dependency_result("process_payment")
        order_id = context.task_context["order"]["id"]
        success(result: { "shipped" => true, "order_id" => order_id, "carrier" => context.inputs["carrier"],
                          "tracking_number" => "TRACK-#{order_id}" })
      end
    end
  end
end
