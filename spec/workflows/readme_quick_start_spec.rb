# frozen_string_literal: true

require "tmpdir"

# The README's quick start, run as a reader would: its template into templates/, its
# Ruby into quick_start.rb, `ruby quick_start.rb` in a fresh process.
RSpec.describe "The README quick start" do
  let(:readme) { File.read(File.expand_path("../../README.md", __dir__)) }
  let(:section) { readme[/^## Quick start\n(.*?)^### /m, 1] or raise "README has no Quick start section" }

  it "runs and prints the finished task with its steps" do
    yaml = section[/```yaml\n(.*?)```/m, 1]
    ruby = section[/```ruby\n(.*?)```/m, 1]
    expect([yaml, ruby]).to all(be_a(String))
    Dir.mktmpdir("tasker_core_quick_start") do |dir|
      Dir.mkdir(File.join(dir, "templates"))
      File.write(File.join(dir, "templates", "order_fulfillment.yaml"), yaml)
      File.write(File.join(dir, "quick_start.rb"), ruby)
      lib = File.expand_path("../../lib", __dir__)
      env = { "TASKER_ENV" => "development", "TASKER_TEMPLATE_PATH" => nil, "TASKER_CONFIG_ROOT" => nil }
      out, err, status = Open3.capture3(env, RbConfig.ruby, "-I", lib, "quick_start.rb", chdir: dir)
      expect(status).to be_success, err
      expect(out).to match(/\Atask \h{8}-\h{4}-\h{4}-\h{4}-\h{12}: complete\n/)
      expect(out).to include("  validate_order: complete {\"item_count\"=>1}", "  reserve_inventory: complete {\"reserved\"=>1}")
    end
  end
end
