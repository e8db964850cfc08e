# frozen_string_literal: true

require "fileutils"
require "securerandom"
require "tmpdir"
require "yaml"

# A temporary directory of task templates written by a spec. Every template gets a
# unique name (the core's registry lives as long as the process, so names from other
# examples must never collide), and the directory is removed by #cleanup.
#
#   set = TemplateSet.new
#   ref = set.add("fan_out", steps: [{ name: "a", handler: "SpecHandlers::Echo" }])
#   ref.name # => "fan_out_3f9a1c2e"
class TemplateSet
  # Where a written template can be found in the core.
  Ref = Struct.new(:namespace, :name, :version, :path, keyword_init: true)

  # Step keys a spec may give, as in the YAML (handler: a class name String).
  STEP_KEYS = %i[name handler initialization dependencies retry timeout_seconds inputs].freeze

  # @return [String]
  attr_reader :dir

  # @param namespace [String] the namespace_name of templates added without one
  def initialize(namespace: "spec")
    @namespace = namespace
    @dir = Dir.mktmpdir("tasker_core_spec_templates")
  end

  # Writes one template.
  # @param base_name [String] the template's name before the unique suffix
  # @param steps [Array<Hash>] see STEP_KEYS
  # @param version [String]
  # @param namespace [String, nil]
  # @param name [String, nil] an exact name instead of base_name plus a suffix
  # @param extra [Hash] more top-level keys (e.g. max_in_flight)
  # @return [Ref]
  def add(base_name, steps:, version: "1.0.0", namespace: nil, name: nil, extra: {})
    name ||= "#{base_name}_#{SecureRandom.hex(4)}"
    namespace ||= @namespace
    document = {
      "name" => name,
      "namespace_name" => namespace,
      "version" => version,
      "steps" => steps.map { |step| step_document(step) }
    }.merge(stringify(extra))
    path = File.join(@dir, "#{name}-#{version}.yaml")
    File.write(path, YAML.dump(document))
    Ref.new(namespace: namespace, name: name, version: version, path: path)
  end

  # Writes a file as given (for broken templates).
  # @return [String] its path
  def write_raw(file_name, text)
    path = File.join(@dir, file_name)
    File.write(path, text)
    path
  end

  # @return [void]
  def cleanup
    FileUtils.rm_rf(@dir)
  end

  private

  def step_document(step)
    unknown = step.keys - STEP_KEYS
    raise ArgumentError, "unknown template step key(s) #{unknown.inspect}" unless unknown.empty?

    handler = { "callable" => step.fetch(:handler) }
    handler["initialization"] = stringify(step[:initialization]) if step.key?(:initialization)
    document = {
      "name" => step.fetch(:name),
      "handler" => handler,
      "dependencies" => step.fetch(:dependencies, [])
    }
    document["retry"] = stringify(step[:retry]) if step[:retry]
    document["timeout_seconds"] = step.fetch(:timeout_seconds, 5)
    document["inputs"] = stringify(step[:inputs]) if step.key?(:inputs)
    document
  end

  def stringify(value)
    case value
    when Hash then value.to_h { |k, v| [k.to_s, stringify(v)] }
    when Array then value.map { |v| stringify(v) }
    else value
    end
  end
end
