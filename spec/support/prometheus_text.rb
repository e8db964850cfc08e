# frozen_string_literal: true

require "set"

# A strict reader of the Prometheus text exposition format 0.0.4, for the /metrics specs.
# It raises PrometheusText::Malformed naming the line on anything the format does not
# allow: a sample before its family's # TYPE, a family split in two, a bad metric or label
# name, a bad escape, a value that is not a float, a counter not named *_total, a
# histogram whose buckets fall or whose +Inf bucket differs from its _count.
#
#   text = PrometheusText.parse(body)
#   text.value("tasker_tasks_finished_total", "status" => "error") # => 2.0
class PrometheusText
  class Malformed < StandardError; end

  # One sample line.
  Sample = Struct.new(:name, :labels, :value, keyword_init: true)

  METRIC_NAME = /\A[a-zA-Z_:][a-zA-Z0-9_:]*\z/.freeze
  LABEL_NAME = /\A[a-zA-Z_][a-zA-Z0-9_]*\z/.freeze
  TYPES = %w[counter gauge histogram summary untyped].freeze
  HISTOGRAM_SUFFIXES = %w[_bucket _sum _count].freeze

  # @return [Array<Sample>]
  attr_reader :samples
  # @return [Hash{String => String}] family name => type
  attr_reader :types
  # @return [Hash{String => String}] family name => help text
  attr_reader :helps

  # @param text [String]
  # @return [PrometheusText]
  # @raise [Malformed]
  def self.parse(text)
    new(text)
  end

  def initialize(text)
    @samples = []
    @seen = Set.new
    @types = {}
    @helps = {}
    raise Malformed, "the exposition must end with a newline" unless text.end_with?("\n")

    read(text)
    @by_name = @samples.group_by(&:name)
    check_histograms
  end

  # The value of the one sample with this name and exactly these labels.
  # @return [Float]
  def value(name, labels = {})
    wanted = labels.transform_keys(&:to_s)
    found = @by_name.fetch(name, []).select { |s| s.labels == wanted }
    raise KeyError, "no sample #{name}#{wanted}" if found.empty?
    raise KeyError, "#{found.size} samples #{name}#{wanted}" if found.size > 1

    found.first.value
  end

  # Samples of `name` whose labels include `labels`.
  # @return [Array<Sample>]
  def matching(name, labels = {})
    wanted = labels.transform_keys(&:to_s)
    @by_name.fetch(name, []).select { |s| wanted.all? { |k, v| s.labels[k] == v } }
  end

  # A histogram series' buckets, ascending: [[upper bound, cumulative count], ...].
  def buckets(name, labels = {})
    matching("#{name}_bucket", labels).map { |s| [float(s.labels.fetch("le"), "le"), s.value] }.sort_by(&:first)
  end

  private

  def read(text)
    current = nil
    done = []
    text.each_line(chomp: true).with_index(1) do |line, number|
      raise Malformed, "line #{number} is blank" if line.empty?

      if line.start_with?("#")
        comment(line, number)
        next
      end
      sample = sample(line, number)
      family = family_of(sample.name)
      raise Malformed, "line #{number}: sample of #{family} before its # TYPE" unless @types.key?(family)

      if family != current
        raise Malformed, "line #{number}: family #{family} is split" if done.include?(family)

        done << current if current
        current = family
      end
      @samples << sample
      @seen << family
    end
    @types.each do |name, type|
      raise Malformed, "family #{name} has no # HELP" unless @helps.key?(name)
      raise Malformed, "counter #{name} is not named *_total" if type == "counter" && !name.end_with?("_total")
    end
  end

  def comment(line, number)
    keyword, name, rest = line.delete_prefix("# ").split(" ", 3)
    return unless %w[HELP TYPE].include?(keyword) # other comments are allowed and ignored
    raise Malformed, "line #{number}: bad metric name in #{line.inspect}" unless METRIC_NAME.match?(name.to_s)

    table = keyword == "HELP" ? @helps : @types
    raise Malformed, "line #{number}: second # #{keyword} for #{name}" if table.key?(name)
    raise Malformed, "line #{number}: unknown type #{rest.inspect}" if keyword == "TYPE" && !TYPES.include?(rest)
    raise Malformed, "line #{number}: # TYPE after samples of #{name}" if keyword == "TYPE" && @seen.include?(name)

    table[name] = rest.to_s
  end

  def sample(line, number)
    name = line[/\A[^{ ]+/]
    raise Malformed, "line #{number}: bad metric name in #{line.inspect}" unless name && METRIC_NAME.match?(name)

    rest = line[name.size..]
    labels = {}
    rest = read_labels(rest, labels, number) if rest.start_with?("{")
    raise Malformed, "line #{number}: no single space before the value in #{line.inspect}" unless rest.start_with?(" ")

    value, timestamp, extra = rest[1..].split(" ")
    raise Malformed, "line #{number}: too many fields in #{line.inspect}" if extra
    raise Malformed, "line #{number}: bad timestamp #{timestamp.inspect}" if timestamp && !/\A-?\d+\z/.match?(timestamp)

    Sample.new(name: name, labels: labels, value: float(value.to_s, "line #{number}"))
  end

  # Reads `{a="x",b="y"}` from the start of `rest` into `labels`; answers what follows.
  def read_labels(rest, labels, number)
    position = 1
    loop do
      return rest[(position + 1)..] if rest[position] == "}"

      label = rest[position..][/\A[^=]*/]
      raise Malformed, "line #{number}: bad label name #{label.inspect}" unless LABEL_NAME.match?(label)
      raise Malformed, "line #{number}: label #{label} twice" if labels.key?(label)

      position += label.size
      raise Malformed, "line #{number}: label #{label} without =\"" unless rest[position, 2] == '="'

      position += 2
      value = +""
      loop do
        char = rest[position]
        raise Malformed, "line #{number}: unterminated value of #{label}" if char.nil?

        position += 1
        break if char == '"'

        if char == "\\"
          escaped = { "\\" => "\\", '"' => '"', "n" => "\n" }[rest[position]]
          raise Malformed, "line #{number}: bad escape \\#{rest[position]} in #{label}" unless escaped

          value << escaped
          position += 1
        else
          value << char
        end
      end
      labels[label] = value
      position += 1 if rest[position] == ","
    end
  end

  def float(text, where)
    case text
    when "+Inf" then Float::INFINITY
    when "-Inf" then -Float::INFINITY
    when "NaN" then Float::NAN
    else Float(text)
    end
  rescue ArgumentError
    raise Malformed, "#{where}: #{text.inspect} is not a float"
  end

  def family_of(name)
    HISTOGRAM_SUFFIXES.each do |suffix|
      base = name.delete_suffix(suffix)
      return base if base != name && @types[base] == "histogram"
    end
    name
  end

  def check_histograms
    @types.select { |_, type| type == "histogram" }.each_key do |name|
      series = matching("#{name}_count").map(&:labels)
      series.each do |labels|
        buckets = buckets(name, labels)
        raise Malformed, "#{name}#{labels}: no +Inf bucket" unless buckets.last&.first == Float::INFINITY
        raise Malformed, "#{name}#{labels}: bucket counts fall" unless buckets.each_cons(2).all? { |a, b| a[1] <= b[1] }
        raise Malformed, "#{name}#{labels}: +Inf differs from _count" unless buckets.last[1] == value("#{name}_count", labels)

        value("#{name}_sum", labels)
      end
    end
  end
end
