# frozen_string_literal: true

# Configures the build of the tasker_core native extension.
#
# The extension is a Rust cdylib (this directory's Cargo crate, a member of the
# workspace two levels up), so there is nothing for mkmf to compile: this
# script writes a Makefile whose targets drive cargo instead.
#
#   make          cargo build --release, then copy libtasker_core.so to tasker_core.so
#   make install  copy tasker_core.so to $(DESTDIR)$(sitearchdir)$(target_prefix)/
#                 (target_prefix is /tasker_core: the library is required as
#                 "tasker_core/tasker_core" and never shadows lib/tasker_core.rb)
#   make clean    remove tasker_core.so
#   make distclean  also remove cargo's target dir and the Makefile
#
# Both callers set sitearchdir before running this script:
# - RubyGems (`gem install`) runs it inside the unpacked gem's ext/tasker_core
#   and installs into a temporary directory that it then copies into the gem's
#   lib/ and extensions dir;
# - rake-compiler (`rake compile`) runs it in tmp/<platform>/tasker_core/<ruby>
#   and runs `make install target_prefix=` with sitearchdir = lib/tasker_core.
#
# Cargo's output goes to ./target in the build directory (never the source tree
# of a checkout). A build made inside the source directory (the `gem install`
# layout) deletes that target dir, hundreds of MB, once `make install` is done.
#
# Environment:
#   CARGO                          cargo executable (default: cargo on PATH, then
#                                  $CARGO_HOME/bin/cargo, then ~/.cargo/bin/cargo)
#   TASKER_CORE_KEEP_CARGO_TARGET  1 keeps ./target after `make install`,
#                                  0 deletes it even for an out-of-tree build
require "rbconfig"
require "shellwords"

# Writes the cargo-driven Makefile for the tasker_core extension.
class TaskerCoreMakefile
  CRATE_LIB = "libtasker_core"
  EXTENSION = "tasker_core"
  TARGET_PREFIX = "/tasker_core"

  # @param source_dir [String] directory holding this script and the ext crate
  # @param build_dir [String] directory the Makefile is written to (cwd)
  # @param env [Hash{String=>String}] environment to read settings from
  def initialize(source_dir:, build_dir:, env: ENV)
    @source_dir = File.expand_path(source_dir)
    @build_dir = File.expand_path(build_dir)
    @env = env
  end

  # Checks the toolchain and writes ./Makefile.
  # @return [void]
  def write
    cargo = find_cargo
    report(cargo)
    File.write(File.join(@build_dir, "Makefile"), makefile(cargo))
    puts "tasker_core: wrote #{File.join(@build_dir, 'Makefile')}"
  end

  private

  def in_source_build?
    File.identical?(@source_dir, @build_dir)
  end

  def workspace_root
    File.expand_path("../..", @source_dir)
  end

  def manifest_path
    File.join(@source_dir, "Cargo.toml")
  end

  def lockfile
    File.join(workspace_root, "Cargo.lock")
  end

  # A gem install builds what was tested: the shipped Cargo.lock, unchanged.
  # A development build may be run right after someone edited a Cargo.toml.
  def locked?
    in_source_build? && File.file?(lockfile)
  end

  def remove_target_after_install?
    case @env["TASKER_CORE_KEEP_CARGO_TARGET"]
    when "1", "true", "yes" then false
    when "0", "false", "no" then true
    else in_source_build?
    end
  end

  def dlext
    RbConfig::CONFIG.fetch("DLEXT")
  end

  def find_cargo
    explicit = @env["CARGO"]
    if explicit && !explicit.empty?
      path = executable_path(explicit)
      return path if path

      abort "tasker_core: CARGO is set to #{explicit.inspect}, which is not an executable file."
    end

    candidates = path_entries.map { |dir| File.join(dir, "cargo") }
    candidates << File.join(@env["CARGO_HOME"], "bin", "cargo") if @env["CARGO_HOME"]
    candidates << File.join(Dir.home, ".cargo", "bin", "cargo") if home_known?
    found = candidates.find { |path| File.file?(path) && File.executable?(path) }
    return found if found

    abort <<~MSG
      tasker_core: cargo was not found, so the Rust extension cannot be built.
        Looked on PATH, in $CARGO_HOME/bin and in ~/.cargo/bin.
        Install the Rust toolchain (https://rustup.rs, Rust 1.80 or newer), or set
        CARGO=/path/to/cargo, then install the gem again.
    MSG
  end

  def executable_path(name)
    if name.include?(File::SEPARATOR)
      path = File.expand_path(name)
      return File.file?(path) && File.executable?(path) ? path : nil
    end

    path_entries.map { |dir| File.join(dir, name) }
                .find { |path| File.file?(path) && File.executable?(path) }
  end

  def path_entries
    @env.fetch("PATH", "").split(File::PATH_SEPARATOR).reject(&:empty?)
  end

  def home_known?
    Dir.home
    true
  rescue ArgumentError
    false
  end

  def report(cargo)
    puts "tasker_core: cargo         #{cargo}"
    puts "tasker_core: crate         #{manifest_path}"
    puts "tasker_core: target dir    #{File.join(@build_dir, 'target')}"
    puts "tasker_core: sitearchdir   #{RbConfig::CONFIG['sitearchdir']} " \
         "(make install puts #{EXTENSION}.#{dlext} in its #{TARGET_PREFIX.delete('/')}/ unless given target_prefix=)"
    puts "tasker_core: Cargo.lock    #{locked? ? 'used as is (--locked)' : 'may be updated'}"
    puts "tasker_core: target dir is #{remove_target_after_install? ? 'removed' : 'kept'} after make install"
  end

  # Quotes a value for a shell command line inside a Makefile recipe.
  def sh(value)
    Shellwords.escape(value.to_s).gsub("$", "$$")
  end

  def cargo_args
    args = ["build", "--release", "--lib", "--manifest-path", manifest_path]
    args << "--locked" if locked?
    args.map { |arg| sh(arg) }.join(" ")
  end

  # Directory holding cargo, put first on PATH so a rustup proxy found outside
  # PATH also finds its rustc.
  def cargo_bin_dir(cargo)
    File.dirname(cargo)
  end

  def makefile(cargo)
    <<~MAKE
      # Generated by #{File.join(@source_dir, 'extconf.rb')}: builds the tasker_core
      # Rust extension with cargo. Edit extconf.rb, not this file.
      SHELL = /bin/sh

      DLEXT = #{dlext}
      DLLIB = #{EXTENSION}.$(DLEXT)
      DESTDIR =
      sitearchdir = #{RbConfig::CONFIG.fetch('sitearchdir')}
      target_prefix = #{TARGET_PREFIX}
      RUBYARCHDIR = $(DESTDIR)$(sitearchdir)$(target_prefix)

      CARGO = #{sh(cargo)}
      CARGO_BIN_DIR = #{sh(cargo_bin_dir(cargo))}
      RUBY_FOR_CARGO = #{sh(RbConfig.ruby)}
      CARGO_TARGET = #{sh(File.join(@build_dir, 'target'))}
      CARGO_ARGS = #{cargo_args}
      CARGO_ARTIFACT = $(CARGO_TARGET)/release/#{CRATE_LIB}.$(DLEXT)
      REMOVE_TARGET_AFTER_INSTALL = #{remove_target_after_install? ? 'yes' : 'no'}

      .PHONY: all cargo-build install clean distclean remove-cargo-target

      all: cargo-build

      # cargo decides what is out of date, so it runs on every `make`.
      cargo-build:
      \t@echo "tasker_core: CARGO_TARGET_DIR=$(CARGO_TARGET) $(CARGO) $(CARGO_ARGS)"
      \t@PATH=$(CARGO_BIN_DIR):"$$PATH" CARGO_TARGET_DIR=$(CARGO_TARGET) RUBY=$(RUBY_FOR_CARGO) \\
      \t  $(CARGO) $(CARGO_ARGS) || { \\
      \t  echo "tasker_core: cargo build failed; its error is above. If it is about libclang or ruby.h," >&2; \\
      \t  echo "tasker_core: install them (Debian/Ubuntu: apt-get install libclang-dev ruby-dev)." >&2; \\
      \t  exit 1; }
      \t@echo "tasker_core: cp $(CARGO_ARTIFACT) $(DLLIB)"
      \t@cp $(CARGO_ARTIFACT) $(DLLIB).tmp && mv -f $(DLLIB).tmp $(DLLIB)

      # Only built here when missing: `make install` after `make` does not run cargo again.
      $(DLLIB):
      \t@$(MAKE) cargo-build

      install: $(DLLIB)
      \t@echo "tasker_core: install $(DLLIB) -> $(RUBYARCHDIR)/$(DLLIB)"
      \t@mkdir -p "$(RUBYARCHDIR)"
      \t@cp $(DLLIB) "$(RUBYARCHDIR)/$(DLLIB).tmp" && mv -f "$(RUBYARCHDIR)/$(DLLIB).tmp" "$(RUBYARCHDIR)/$(DLLIB)"
      \t@if [ "$(REMOVE_TARGET_AFTER_INSTALL)" = yes ]; then $(MAKE) --no-print-directory remove-cargo-target; rm -f $(DLLIB); fi

      remove-cargo-target:
      \t@echo "tasker_core: rm -rf $(CARGO_TARGET)"
      \t@rm -rf $(CARGO_TARGET)

      clean:
      \t@rm -f $(DLLIB) $(DLLIB).tmp

      distclean: clean remove-cargo-target
      \t@rm -f Makefile mkmf.log
    MAKE
  end
end

TaskerCoreMakefile.new(source_dir: __dir__, build_dir: Dir.pwd).write
