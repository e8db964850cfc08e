# frozen_string_literal: true

require "pg"
require "rbconfig"
require "timeout"
require "tmpdir"

# The private PostgreSQL every PostgreSQL spec, the demo and the benchmarks run on: it is
# durable (fsync on), reachable only through its unix socket, gives each spec its own
# database, survives a restart with its data, and never outlives its owner, even one
# killed with SIGKILL.
RSpec.describe PrivatePostgres do
  let(:server) { described_class.shared }

  # Whether `pid` runs: gone, or exited and waiting to be reaped (a zombie), is not.
  def running?(pid)
    state = File.read("/proc/#{pid}/stat")[/\) (\S)/, 1]
    state != "Z"
  rescue Errno::ENOENT
    false
  end

  def wait_until(timeout: 15)
    Timeout.timeout(timeout) do
      sleep 0.05 until yield
    end
  end

  it "is a durable server on a unix socket only" do
    settings = server.with_connection do |conn|
      conn.exec("SELECT name, setting FROM pg_settings WHERE name IN " \
                "('fsync', 'synchronous_commit', 'listen_addresses', 'unix_socket_directories')")
          .to_h { |row| [row["name"], row["setting"]] }
    end
    expect(settings).to eq("fsync" => "on", "synchronous_commit" => "on", "listen_addresses" => "",
                           "unix_socket_directories" => server.root)
    expect(File.socket?(File.join(server.root, ".s.PGSQL.5432"))).to be(true)
  end

  it "gives every caller its own empty database" do
    first = server.fresh_database
    second = server.fresh_database
    expect(first).not_to eq(second)
    PG.connect(first) { |conn| conn.exec("CREATE TABLE only_here (id int)") }
    tables = PG.connect(second) do |conn|
      conn.exec("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'").getvalue(0, 0).to_i
    end
    expect(tables).to eq(0)
  end

  it "keeps its data across a restart, which breaks open connections" do
    url = server.fresh_database
    conn = PG.connect(url)
    conn.exec("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    server.restart
    expect { conn.exec("SELECT 1") }.to raise_error(PG::Error)
    conn.close
    value = PG.connect(url) { |fresh| fresh.exec("SELECT v FROM kept").getvalue(0, 0) }
    expect(value).to eq("still here")
  end

  it "refuses connections while paused and accepts them again when resumed" do
    url = server.fresh_database
    server.pause
    begin
      expect { PG.connect(url).close }.to raise_error(PG::ConnectionBad)
    ensure
      server.resume
    end
    expect(PG.connect(url) { |conn| conn.exec("SELECT 1").getvalue(0, 0) }).to eq("1")
  end

  it "is stopped and removed when its owner is killed with SIGKILL" do
    script = <<~RUBY
      require #{File.expand_path('../support/private_postgres', __dir__).inspect}
      server = PrivatePostgres.start
      $stdout.puts server.root
      $stdout.flush
      sleep
    RUBY
    reader, writer = IO.pipe
    owner = Process.spawn(RbConfig.ruby, "-e", script, out: writer)
    writer.close
    root = reader.gets&.chomp
    expect(root).to start_with(Dir.tmpdir)
    postmaster = Integer(File.read(File.join(root, "data", "postmaster.pid")).lines.first)
    Process.kill(:KILL, owner)
    # Not reaped yet: a zombie owner counts as gone too.
    wait_until { !File.exist?(root) }
    expect(running?(postmaster)).to be(false)
  ensure
    reader&.close
    Process.wait(owner) if owner
  end

  it "names the failure when the script is asked for something it cannot do" do
    orphan = described_class.new(root: Dir.mktmpdir("not-a-server-"))
    expect { orphan.restart }.to raise_error(PrivatePostgres::Error, /is not a directory made by bin\/private-postgres/)
  ensure
    FileUtils.rm_rf(orphan.root) if orphan
  end
end
