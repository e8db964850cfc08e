# frozen_string_literal: true

require "fileutils"
require "tmpdir"

# Headless Chromium (Debian's `chromium`, installed by bin/setup) for the dashboard's
# browser spec: the rendered DOM after the page's script ran, and screenshots. Each run
# gets a fresh profile and its own process group, killed if it overruns.
module Chromium
  BINARY = ENV.fetch("CHROMIUM", "/usr/bin/chromium")
  FLAGS = %w[
    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
    --disable-component-update --disable-sync --disable-extensions --hide-scrollbars --mute-audio
  ].freeze
  TIMEOUT = 60

  module_function

  # @return [Boolean]
  def available?
    File.executable?(BINARY)
  end

  # What a page rendered to, and what the browser logged on the way (console messages,
  # Content-Security-Policy violations).
  Page = Struct.new(:dom, :log, keyword_init: true)

  # The DOM once the page loaded and its script ran for `budget_ms` of virtual time.
  # @return [Page]
  def load(url, budget_ms: 5000)
    dom, log = run_with_log("--virtual-time-budget=#{budget_ms}", "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    Page.new(dom: dom, log: log)
  end

  # @return [String] the DOM (see #load)
  def dump_dom(url, budget_ms: 5000)
    load(url, budget_ms: budget_ms).dom
  end

  # Saves a PNG of the page (`width` x `height` CSS pixels) after `budget_ms` of virtual time.
  # @return [String] the path
  def screenshot(url, path, width: 1280, height: 1000, budget_ms: 3000)
    FileUtils.mkdir_p(File.dirname(path))
    FileUtils.rm_f(path)
    run("--virtual-time-budget=#{budget_ms}", "--window-size=#{width},#{height}", "--screenshot=#{path}", url)
    raise "chromium wrote no screenshot at #{path}" unless File.file?(path)

    path
  end

  # @return [String] stdout
  def run(*args)
    run_with_log(*args).first
  end

  # @return [Array(String, String)] stdout and stderr
  def run_with_log(*args)
    Dir.mktmpdir("tasker_chromium") do |profile|
      out_path = File.join(profile, "stdout")
      err_path = File.join(profile, "stderr")
      pid = Process.spawn(BINARY, *FLAGS, "--user-data-dir=#{profile}/data", *args,
                          out: out_path, err: err_path, in: File::NULL, pgroup: true)
      unless wait(pid, TIMEOUT)
        Process.kill("KILL", -pid)
        Process.wait(pid)
        raise "chromium did not finish within #{TIMEOUT}s (#{args.last}); stderr: #{tail(err_path)}"
      end
      raise "chromium failed (#{$?.inspect}) for #{args.last}: #{tail(err_path)}" unless $?.success?

      [File.read(out_path), File.read(err_path)]
    end
  end

  def tail(path)
    text = File.read(path)
    text.size > 2000 ? text[-2000..] : text
  end

  def wait(pid, timeout)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      return true if Process.wait(pid, Process::WNOHANG)
      return false if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.05
    end
  end
end
