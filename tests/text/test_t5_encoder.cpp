// UMT5 encoder against the official tiny golden (wan.md §7.4): full output with the mask, trimmed output;
// the same weights under HF UMT5 names (sharded + index + config.json, diffusers folder), with a prefix, as
// bf16 (resident f32 and low-memory modes), with a shared bias table; and clear errors for bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "dit/text/t5_encoder.h"
#include "io/safetensors_writer.h"
#include "tests/text/text_test_util.h"

using namespace vdit;
using namespace vdit::text;

// Tolerances (max|Δ|/max|ref|) and why:
constexpr double kGoldenTol = 1e-5;      // f32 vs torch f32 (brief's bound); summation order differs only
constexpr double kBf16WeightTol = 5e-2;  // weights rounded to bf16 (rel 2^-9 each) move a 2-layer output ~1e-2

namespace {

const char* kWeights = "t5_tiny_weights.safetensors";
const char* kGolden = "t5_tiny_golden.safetensors";

struct Golden {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  Tensor full;     // [512, 64]
  Tensor trimmed;  // [10, 64]
};

Golden read_golden() {
  Golden g;
  auto f = open_tensor_file(test::text_data(kGolden));
  EXPECT_TRUE(f) << f.status().to_string();
  if (!f) return g;
  auto ids = (*f)->tensor("in.ids");
  auto mask = (*f)->tensor("in.mask");
  EXPECT_TRUE(ids && mask);
  for (int64_t i = 0; i < 512; ++i) {
    g.ids.push_back(static_cast<int32_t>(ids->data<int64_t>()[i]));
    g.mask.push_back(static_cast<uint8_t>(mask->data<int64_t>()[i]));
  }
  g.full = test::golden_f32(**f, "out.full", {512, 64});
  g.trimmed = test::golden_f32(**f, "out.trimmed", {10, 64});
  return g;
}

T5Encoder load_official(const T5LoadOptions& o = {}) {
  auto e = T5Encoder::load(test::text_data(kWeights), o);
  EXPECT_TRUE(e) << e.status().to_string();
  return e ? *e : T5Encoder();
}

// The official tensors, renamed by `rename` (an empty result drops the tensor), optionally cast.
NamedTensors renamed(const std::function<std::string(const std::string&)>& rename, DType dtype = DType::f32) {
  NamedTensors out;
  auto f = open_tensor_file(test::text_data(kWeights));
  EXPECT_TRUE(f);
  for (const auto& e : (*f)->entries()) {
    std::string name = rename(e.name);
    if (name.empty()) continue;
    auto t = (*f)->tensor(e.name);
    auto c = t->to(dtype);
    out.emplace_back(name, *c);
  }
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

const char* kHfConfig = R"({"model_type": "umt5", "d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4,
  "num_layers": 2, "vocab_size": 1000, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
  "layer_norm_epsilon": 1e-06, "feed_forward_proj": "gated-gelu"})";

void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(shape_str(a.shape()), shape_str(b.shape())) << what;
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes())) << what << ": outputs differ";
}

}  // namespace

TEST(T5Encoder, ConfigFromShapes) {
  T5Encoder e = load_official();
  const T5Config& c = e.config();
  EXPECT_EQ(c.vocab, 1000);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.dim_attn, 64);
  EXPECT_EQ(c.dim_ffn, 128);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_buckets, 32);
  EXPECT_EQ(c.max_distance, 128);
  EXPECT_FALSE(c.shared_pos);
  EXPECT_EQ(e.weights().layout, "official");
}

TEST(T5Encoder, MatchesGoldenFullAndTrimmed) {
  const Golden g = read_golden();
  T5Encoder e = load_official();
  ASSERT_EQ(std::count(g.mask.begin(), g.mask.end(), 1), 10);
  auto full = e.encode(g.ids, g.mask);
  ASSERT_TRUE(full) << full.status().to_string();
  test::expect_close(*full, g.full, kGoldenTol, "out.full");
  auto trimmed = e.encode_trimmed(g.ids, g.mask);
  ASSERT_TRUE(trimmed) << trimmed.status().to_string();
  test::expect_close(*trimmed, g.trimmed, kGoldenTol, "out.trimmed");
  // Without the mask every position is a key: the valid rows must then differ from the golden.
  auto unmasked = e.encode(g.ids);
  ASSERT_TRUE(unmasked);
  const test::Diff d = test::compare(unmasked->f32(), g.full.f32(), 10 * 64);
  EXPECT_GT(d.rel(), 1e-3) << "the key mask has no effect";
}

TEST(T5Encoder, HfNamesShardedWithConfigAndDiffusersFolder) {
  const Golden g = read_golden();
  auto ref = load_official().encode(g.ids, g.mask);
  ASSERT_TRUE(ref);
  test::TempDir dir;
  const auto te = dir.path() / "text_encoder";
  std::filesystem::create_directories(te);
  NamedTensors all = renamed(test::t5_hf_name);
  // HF keeps the embedding under both names when saved untied; split the rest over two shards.
  const auto shared = std::find_if(all.begin(), all.end(), [](const auto& nt) { return nt.first == "shared.weight"; });
  ASSERT_NE(shared, all.end());
  all.emplace_back("encoder.embed_tokens.weight", Tensor(shared->second));
  NamedTensors s1(all.begin(), all.begin() + all.size() / 2), s2(all.begin() + all.size() / 2, all.end());
  ASSERT_TRUE(save_safetensors((te / "model-00001-of-00002.safetensors").string(), s1).is_ok());
  ASSERT_TRUE(save_safetensors((te / "model-00002-of-00002.safetensors").string(), s2).is_ok());
  nlohmann::json index;
  index["metadata"]["total_size"] = 0;
  for (const auto& [n, t] : s1) index["weight_map"][n] = "model-00001-of-00002.safetensors";
  for (const auto& [n, t] : s2) index["weight_map"][n] = "model-00002-of-00002.safetensors";
  write_text((te / "model.safetensors.index.json").string(), index.dump());
  write_text((te / "config.json").string(), kHfConfig);

  for (const std::string& path : {dir.path().string(), te.string(), (te / "model.safetensors.index.json").string()}) {
    auto e = T5Encoder::load(path);
    ASSERT_TRUE(e) << path << ": " << e.status().to_string();
    EXPECT_EQ(e->weights().layout, "hf");
    auto out = e->encode(g.ids, g.mask);
    ASSERT_TRUE(out);
    expect_same(*out, *ref, "HF names from " + path);
  }

  // A config.json that disagrees with the tensors is an error that names both numbers.
  std::string wrong = kHfConfig;
  wrong.replace(wrong.find("\"d_ff\": 128"), 11, "\"d_ff\": 256");
  write_text((te / "config.json").string(), wrong);
  auto bad = T5Encoder::load(te.string());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::format_error);
  EXPECT_NE(bad.status().message().find("d_ff = 256"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("128"), std::string::npos) << bad.status().message();
}

TEST(T5Encoder, PrefixedNames) {
  const Golden g = read_golden();
  auto ref = load_official().encode(g.ids, g.mask);
  ASSERT_TRUE(ref);
  test::TempDir dir;
  // Official names under a prefix, and HF names under a prefix with the embedding only as embed_tokens.
  const std::string official = dir.file("official.safetensors"), hf = dir.file("hf.safetensors");
  ASSERT_TRUE(save_safetensors(official, renamed([](const std::string& n) { return "text_encoder." + n; })).is_ok());
  ASSERT_TRUE(save_safetensors(hf, renamed([](const std::string& n) {
                                 const std::string h = test::t5_hf_name(n);
                                 return "model." +
                                        (h == "shared.weight" ? std::string("encoder.embed_tokens.weight") : h);
                               }))
                  .is_ok());
  for (const std::string& path : {official, hf}) {
    auto e = T5Encoder::load(path);
    ASSERT_TRUE(e) << e.status().to_string();
    auto out = e->encode(g.ids, g.mask);
    ASSERT_TRUE(out);
    expect_same(*out, *ref, "prefixed names in " + path);
  }
}

TEST(T5Encoder, Bf16WeightsResidentAndLowMemory) {
  const Golden g = read_golden();
  test::TempDir dir;
  const std::string path = dir.file("t5_bf16.safetensors");
  ASSERT_TRUE(save_safetensors(path, renamed([](const std::string& n) { return n; }, DType::bf16)).is_ok());
  T5LoadOptions resident, low;
  low.weights_f32 = false;
  auto a = T5Encoder::load(path, resident);
  auto b = T5Encoder::load(path, low);
  ASSERT_TRUE(a && b) << a.status().to_string() << b.status().to_string();
  EXPECT_EQ(a->weights().layers[0].q.dtype(), DType::f32);
  EXPECT_EQ(b->weights().layers[0].q.dtype(), DType::bf16);
  EXPECT_EQ(b->weights().token_embedding.dtype(), DType::bf16);
  auto oa = a->encode(g.ids, g.mask);
  auto ob = b->encode(g.ids, g.mask);
  ASSERT_TRUE(oa && ob);
  expect_same(*oa, *ob, "bf16 weights: resident f32 vs low-memory");
  test::expect_close(*oa, g.full, kBf16WeightTol, "bf16 weights vs f32 golden");
}

TEST(T5Encoder, SharedRelativeBiasTable) {
  const Golden g = read_golden();
  test::TempDir dir;
  // Per-layer file whose layers all use layer 0's table, vs the same table stored once (official shared_pos
  // layout) and once in block 0 only (HF T5 layout): all three must agree exactly.
  auto f = open_tensor_file(test::text_data(kWeights));
  ASSERT_TRUE(f);
  auto table0 = (*f)->tensor("blocks.0.pos_embedding.embedding.weight");
  ASSERT_TRUE(table0);
  NamedTensors per_layer = renamed([](const std::string& n) { return n; });
  for (auto& [n, t] : per_layer) {
    if (n == "blocks.1.pos_embedding.embedding.weight") t = *table0;
  }
  NamedTensors shared =
      renamed([](const std::string& n) { return n.find("pos_embedding") != std::string::npos ? std::string() : n; });
  shared.emplace_back("pos_embedding.embedding.weight", *table0);
  NamedTensors hf_block0 = renamed([](const std::string& n) {
    return n == "blocks.1.pos_embedding.embedding.weight" ? std::string() : test::t5_hf_name(n);
  });
  ASSERT_TRUE(save_safetensors(dir.file("per_layer.safetensors"), per_layer).is_ok());
  ASSERT_TRUE(save_safetensors(dir.file("shared.safetensors"), shared).is_ok());
  ASSERT_TRUE(save_safetensors(dir.file("hf_block0.safetensors"), hf_block0).is_ok());
  auto a = T5Encoder::load(dir.file("per_layer.safetensors"));
  auto b = T5Encoder::load(dir.file("shared.safetensors"));
  auto c = T5Encoder::load(dir.file("hf_block0.safetensors"));
  ASSERT_TRUE(a && b && c) << a.status().to_string() << b.status().to_string() << c.status().to_string();
  EXPECT_FALSE(a->config().shared_pos);
  EXPECT_TRUE(b->config().shared_pos);
  EXPECT_TRUE(c->config().shared_pos);
  auto oa = a->encode(g.ids, g.mask);
  auto ob = b->encode(g.ids, g.mask);
  auto oc = c->encode(g.ids, g.mask);
  ASSERT_TRUE(oa && ob && oc);
  expect_same(*ob, *oa, "official shared table");
  expect_same(*oc, *oa, "HF block-0 table");
}

TEST(T5Encoder, BadInputsGiveClearErrors) {
  T5Encoder e = load_official();
  auto expect_error = [](const Result<Tensor>& r, const char* needle, const char* what) {
    ASSERT_FALSE(r) << what << " was accepted";
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << what;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << what << ": " << r.status().message();
  };
  expect_error(e.encode({5, 1000, 1}), "ids[1] = 1000 is outside this encoder's vocabulary [0, 1000)", "id = vocab");
  expect_error(e.encode({-3, 1}), "ids[0] = -3", "negative id");
  expect_error(e.encode({5, 6, 1}, {1, 1}), "mask has 2 entries but ids has 3", "short mask");
  expect_error(e.encode({5, 1}, {0, 0}), "mask is all zeros", "empty mask");
  expect_error(e.encode({}), "ids is empty", "no ids");
  expect_error(e.encode_trimmed({5, 6, 1}, {1, 0, 1}), "not ones-then-zeros", "holey mask for trimming");
}

TEST(T5Encoder, WrongCheckpointsGiveClearErrors) {
  // Another model's weights (the tiny Wan DiT).
  auto dit = T5Encoder::load(test::data_path("wan_tiny/dit_tiny_weights.safetensors"));
  ASSERT_FALSE(dit);
  EXPECT_EQ(dit.status().code(), StatusCode::format_error);
  EXPECT_NE(dit.status().message().find("not a UMT5/T5 text encoder checkpoint"), std::string::npos)
      << dit.status().message();

  test::TempDir dir;
  // A missing tensor names itself.
  NamedTensors missing =
      renamed([](const std::string& n) { return n == "blocks.1.ffn.fc2.weight" ? std::string() : n; });
  ASSERT_TRUE(save_safetensors(dir.file("missing.safetensors"), missing).is_ok());
  auto m = T5Encoder::load(dir.file("missing.safetensors"));
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().message().find("\"blocks.1.ffn.fc2.weight\" is missing"), std::string::npos)
      << m.status().message();

  // A tensor of the wrong shape names both shapes.
  NamedTensors wrong = renamed([](const std::string& n) { return n; });
  auto small = Tensor::zeros(DType::f32, {64, 32});
  for (auto& [n, t] : wrong) {
    if (n == "blocks.1.attn.k.weight") t = *small;
  }
  ASSERT_TRUE(save_safetensors(dir.file("wrong.safetensors"), wrong).is_ok());
  auto w = T5Encoder::load(dir.file("wrong.safetensors"));
  ASSERT_FALSE(w);
  EXPECT_NE(w.status().message().find("has shape [64, 32], expected [64, 64]"), std::string::npos)
      << w.status().message();

  // Metadata that disagrees with the tensors.
  auto meta = save_safetensors(dir.file("meta.safetensors"), renamed([](const std::string& n) { return n; }),
                               {{"num_layers", "3"}});
  ASSERT_TRUE(meta.is_ok());
  auto md = T5Encoder::load(dir.file("meta.safetensors"));
  ASSERT_FALSE(md);
  EXPECT_NE(md.status().message().find("num_layers = 3, but the tensors say 2 (layers)"), std::string::npos)
      << md.status().message();

  auto none = T5Encoder::load("/nonexistent/t5.safetensors");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.status().code(), StatusCode::not_found);
}
