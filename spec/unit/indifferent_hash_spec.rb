# frozen_string_literal: true

require_relative "unit_helper"

RSpec.describe TaskerCore::Types::IndifferentHash do
  let(:hash) { described_class.deep("order" => { "items" => [{ "sku" => "A", "qty" => 2 }] }, total: 9.5) }

  it "answers a Symbol as the String of the same name, all the way down" do
    expect(hash[:order][:items][0][:sku]).to eq("A")
    expect(hash["order"]["items"][0]["qty"]).to eq(2)
    expect(hash.dig(:order, :items, 0, :qty)).to eq(2)
    expect(hash.fetch(:total)).to eq(9.5)
    expect(hash.values_at(:total, "order")).to eq([9.5, hash["order"]])
    expect([hash.key?(:order), hash.include?("total"), hash.member?(:nope)]).to eq([true, true, false])
    expect { hash.fetch(:missing) }.to raise_error(KeyError)
  end

  it "stores Symbol keys as Strings, so a key is never there twice" do
    hash[:added] = 1
    hash["added"] = 2
    expect(hash.keys).to eq(%w[order total added])
    expect(hash.delete(:added)).to eq(2)
    expect(hash.merge(total: 1)["total"]).to eq(1)
    expect(hash.merge(extra: { deep: 1 })[:extra][:deep]).to eq(1)
    expect(hash.slice(:total)).to eq("total" => 9.5)
    expect(hash.except(:order)).to eq("total" => 9.5)
  end

  it "converts as ActiveSupport's Hash methods do, without ActiveSupport" do
    expect(defined?(ActiveSupport)).to be_nil
    expect(hash.deep_symbolize_keys).to eq(order: { items: [{ sku: "A", qty: 2 }] }, total: 9.5)
    expect(hash.deep_symbolize_keys).to be_an_instance_of(Hash)
    expect(hash.symbolize_keys.keys).to eq(%i[order total])
    expect(hash.deep_stringify_keys).to eq("order" => { "items" => [{ "sku" => "A", "qty" => 2 }] }, "total" => 9.5)
    expect(hash.with_indifferent_access).to equal(hash)
    expect(hash.to_h).to be_an_instance_of(Hash)
  end

  it "is a Hash and leaves Hash itself alone" do
    expect(hash).to be_a(Hash)
    expect({ "a" => 1 }[:a]).to be_nil
    expect(Hash.instance_method(:[]).owner).to eq(Hash)
  end
end
