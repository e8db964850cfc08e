# frozen_string_literal: true

# Tasks of the fleet's chain template (spec/postgres/fixtures/templates), created and read
# straight through SQL on a PG::Connection, so a spec process needs no core of its own.
module FleetTasks
  module_function

  # Creates `count` chain tasks with n = 0, 1, ... through tasker.create_task.
  # @param conn [PG::Connection]
  # @return [Hash{String => Integer}] task uuid => n
  def create(conn, count, from: 0)
    (from...(from + count)).to_h do |n|
      uuid = conn.exec_params("SELECT tasker.create_task('fleet', 'chain', NULL, $1::jsonb)", [%({"n": #{n}})])
                 .getvalue(0, 0)
      [uuid, n]
    end
  end

  # Waits until every task of `uuids` is finished; raises after `timeout` seconds.
  # @return [Hash{String => String}] task uuid => status
  def wait_finished(conn, uuids, timeout:)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      statuses = statuses(conn, uuids)
      return statuses if statuses.values.all? { |s| %w[complete error cancelled].include?(s) }
      raise "tasks not finished after #{timeout}s: #{statuses.values.tally}" if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.1
    end
  end

  # @return [Hash{String => String}] task uuid => status
  def statuses(conn, uuids)
    conn.exec_params("SELECT task_uuid, status FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[])",
                     [PG::TextEncoder::Array.new.encode(uuids)])
        .to_h { |row| [row["task_uuid"], row["status"]] }
  end

  # The last step's value of each task.
  # @return [Hash{String => Integer}]
  def final_values(conn, uuids)
    conn.exec_params("SELECT task_uuid, (result->>'value')::bigint AS value FROM tasker.steps " \
                     "WHERE task_uuid = ANY($1::uuid[]) AND step_index = 2",
                     [PG::TextEncoder::Array.new.encode(uuids)])
        .to_h { |row| [row["task_uuid"], Integer(row["value"])] }
  end

  # Every ended attempt of every step of `uuids`: outcomes by (task, step).
  # @return [Hash{Array(String, String) => Array<String>}]
  def histories(conn, uuids)
    rows = conn.exec_params("SELECT s.task_uuid, ts.name, s.history FROM tasker.steps s " \
                            "JOIN tasker.tasks t ON t.task_uuid = s.task_uuid " \
                            "JOIN tasker.template_steps ts ON ts.revision_id = t.revision_id " \
                            "AND ts.step_index = s.step_index WHERE s.task_uuid = ANY($1::uuid[])",
                            [PG::TextEncoder::Array.new.encode(uuids)])
    rows.to_h do |row|
      outcomes = JSON.parse(row["history"] || "[]").map { |attempt| attempt["outcome"] }
      [[row["task_uuid"], row["name"]], outcomes]
    end
  end
end
