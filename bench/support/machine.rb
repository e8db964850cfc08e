# frozen_string_literal: true

require "etc"
require "open3"

module Bench
  # What the numbers were measured on: CPU, cores, RAM and load from /proc, and the
  # versions of Ruby, Rust, Sidekiq, redis and this checkout.
  module Machine
    module_function

    # @return [String] e.g. "Intel(R) Xeon(R) Processor"
    def cpu_model
      File.read("/proc/cpuinfo")[/^model name\s*:\s*(.+)$/, 1]&.strip || "unknown"
    rescue SystemCallError
      "unknown"
    end

    # @return [Integer]
    def cores
      Etc.nprocessors
    end

    # @return [Float, nil] GiB
    def ram_gib
      kb = File.read("/proc/meminfo")[/^MemTotal:\s+(\d+)\s+kB/, 1]
      kb && (Integer(kb) / 1024.0 / 1024.0)
    rescue SystemCallError
      nil
    end

    # @return [String] the 1, 5 and 15 minute load averages
    def load_average
      File.read("/proc/loadavg").split.first(3).join(" ")
    rescue SystemCallError
      "unknown"
    end

    # @return [String]
    def ruby
      RUBY_DESCRIPTION
    end

    # @return [String]
    def rust
      rustc = ENV.fetch("RUSTC", "rustc")
      candidates = [rustc, File.join(ENV.fetch("CARGO_HOME", File.join(Dir.home, ".cargo")), "bin", "rustc")]
      candidates.each do |candidate|
        out, status = Open3.capture2e(candidate, "--version")
        return out.strip if status.success?
      rescue SystemCallError
        next
      end
      "unknown (rustc not found)"
    end

    # @param name [String] a gem name
    # @return [String]
    def gem_version(name)
      Gem::Specification.find_by_name(name).version.to_s
    rescue Gem::MissingSpecError
      "not installed"
    end

    # @return [String] e.g. "f468679 (with uncommitted changes)"
    def commit(root)
      head, status = Open3.capture2e("git", "-C", root, "rev-parse", "--short", "HEAD")
      return "unknown" unless status.success?

      dirty, = Open3.capture2e("git", "-C", root, "status", "--porcelain", "--untracked-files=no")
      dirty.strip.empty? ? head.strip : "#{head.strip} (with uncommitted changes)"
    rescue SystemCallError
      "unknown"
    end

    # @return [String] one line
    def summary
      ram = ram_gib
      "#{cpu_model}, #{cores} cores, #{ram ? format('%.1f GiB', ram) : 'unknown'} RAM"
    end
  end
end
