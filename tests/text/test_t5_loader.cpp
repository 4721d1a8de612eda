// T5 checkpoint loading beyond safetensors: the tiny weights as a bf16 torch.save .pth (the official file's
// format, read through io's .pth reader), and the full-size UMT5-XXL key set and shapes (wan.md §7.4
// manifest) in official and HF names, checked without the 11 GB of data.
#include <gtest/gtest.h>

#include "dit/text/t5_encoder.h"
#include "io/safetensors_writer.h"
#include "tests/text/text_test_util.h"

using namespace vdit;
using namespace vdit::text;

namespace {

// A TensorFile holding a manifest's names and shapes as bf16, all pointing at one small zero buffer: enough
// for load_t5_weights with weights_f32 = false, which converts only the norms and bias tables (< 16 KiB).
class ManifestFile : public TensorFile {
 public:
  ManifestFile(const nlohmann::json& tensors, const std::function<std::string(const std::string&)>& rename) {
    path_ = "manifest";
    format_ = "manifest";
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
      TensorEntry e;
      e.name = rename(it.key());
      e.dtype = DType::bf16;
      e.shape = it.value().get<Shape>();
      e.nbytes = static_cast<size_t>(shape_numel(e.shape)) * 2;
      e.data = e.nbytes <= sizeof zeros_ ? zeros_ : big_;
      add_entry(e);
    }
  }

 private:
  static inline uint8_t zeros_[16384] = {};
  static inline uint8_t big_[1] = {};  // never read: matrices stay in "file" memory
};

}  // namespace

TEST(T5Loader, OfficialBf16Pth) {
  T5LoadOptions low;
  low.weights_f32 = false;
  auto pth = T5Encoder::load(test::text_data("t5_tiny_bf16.pth"));
  auto pth_low = T5Encoder::load(test::text_data("t5_tiny_bf16.pth"), low);
  ASSERT_TRUE(pth) << pth.status().to_string();
  ASSERT_TRUE(pth_low) << pth_low.status().to_string();
  EXPECT_EQ(pth->weights().layout, "official");
  EXPECT_EQ(pth_low->weights().layers[1].fc2.dtype(), DType::bf16);

  // The same bf16 values through safetensors must give identical outputs.
  test::TempDir dir;
  auto f = open_tensor_file(test::text_data("t5_tiny_weights.safetensors"));
  ASSERT_TRUE(f);
  NamedTensors bf16;
  for (const auto& e : (*f)->entries()) bf16.emplace_back(e.name, *(*f)->tensor(e.name)->to(DType::bf16));
  ASSERT_TRUE(save_safetensors(dir.file("bf16.safetensors"), bf16).is_ok());
  auto st = T5Encoder::load(dir.file("bf16.safetensors"));
  ASSERT_TRUE(st);

  auto g = open_tensor_file(test::text_data("t5_tiny_golden.safetensors"));
  ASSERT_TRUE(g);
  auto ids64 = (*g)->tensor("in.ids");
  auto mask64 = (*g)->tensor("in.mask");
  std::vector<int32_t> ids(ids64->data<int64_t>(), ids64->data<int64_t>() + 512);
  std::vector<uint8_t> mask(mask64->data<int64_t>(), mask64->data<int64_t>() + 512);
  auto a = pth->encode(ids, mask);
  auto b = pth_low->encode(ids, mask);
  auto c = st->encode(ids, mask);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(0, std::memcmp(a->raw(), c->raw(), a->nbytes())) << ".pth and safetensors bf16 weights differ";
  EXPECT_EQ(0, std::memcmp(b->raw(), c->raw(), b->nbytes())) << ".pth low-memory output differs";
  // bf16-rounded weights vs the f32 golden: see kBf16WeightTol in test_t5_encoder.cpp.
  test::expect_close(*a, test::golden_f32(**g, "out.full", {512, 64}), 5e-2, ".pth bf16 vs f32 golden");
}

TEST(T5Loader, FullSizeUmt5XxlKeySet) {
  const auto manifest = test::read_json(test::text_data("manifest_t5_umt5_xxl_enc.json"));
  const auto& tensors = manifest.at("tensors");
  ASSERT_EQ(tensors.size(), 242u);
  const std::string want =
      "vocab 256384, dim 4096, 64 heads x 64, ffn 10240, 24 layers, 32 buckets (per layer), "
      "max_distance 128";
  T5LoadOptions low;
  low.weights_f32 = false;

  ManifestFile official(tensors, [](const std::string& n) { return n; });
  auto w = load_t5_weights(official, {}, "official manifest", low);
  ASSERT_TRUE(w) << w.status().to_string();
  EXPECT_EQ(w->config.summary(), want);
  EXPECT_EQ(w->layout, "official");

  ManifestFile hf(tensors, test::t5_hf_name);
  const std::map<std::string, std::string> hf_config = {{"model_type", "umt5"},
                                                        {"d_model", "4096"},
                                                        {"d_kv", "64"},
                                                        {"d_ff", "10240"},
                                                        {"num_heads", "64"},
                                                        {"num_layers", "24"},
                                                        {"vocab_size", "256384"},
                                                        {"relative_attention_num_buckets", "32"},
                                                        {"relative_attention_max_distance", "128"},
                                                        {"layer_norm_epsilon", "1e-06"},
                                                        {"feed_forward_proj", "gated-gelu"}};
  auto wh = load_t5_weights(hf, hf_config, "HF manifest", low);
  ASSERT_TRUE(wh) << wh.status().to_string();
  EXPECT_EQ(wh->config.summary(), want);
  EXPECT_EQ(wh->layout, "hf");

  // A checkpoint cut short (e.g. a missing last shard) is caught by the config's layer count.
  ManifestFile cut(tensors, [](const std::string& n) { return n.rfind("blocks.23.", 0) == 0 ? "dropped." + n : n; });
  auto wc = load_t5_weights(cut, hf_config, "truncated", low);
  ASSERT_FALSE(wc);
  EXPECT_NE(wc.status().message().find("num_layers = 24, but the tensors say 23 (layers)"), std::string::npos)
      << wc.status().message();
}
