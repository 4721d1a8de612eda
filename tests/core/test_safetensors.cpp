// safetensors reader/writer: golden file listing, round trip, sharded index, malformed inputs.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

using namespace vdit;

namespace {

std::string tmp_path(const std::string& name) {
  return std::string(VDIT_BINARY_DIR) + "/test_tmp_" + name;
}

void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream f(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>(n >> (8 * i)));
  f << header;
  for (size_t i = 0; i < data_bytes; ++i) f.put(static_cast<char>(i));
}

}  // namespace

TEST(Safetensors, ListsTinyDitGolden) {
  auto f = open_tensor_file(test::data_path("wan_tiny/dit_tiny_weights.safetensors"));
  ASSERT_TRUE(f) << f.status().to_string();
  EXPECT_EQ((*f)->entries().size(), 69u);
  EXPECT_FALSE((*f)->metadata().empty());
  const TensorEntry* e = (*f)->find("patch_embedding.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(shape_str(e->shape), "[256, 16, 1, 2, 2]");
  EXPECT_EQ(e->dtype, DType::f32);
}

TEST(Safetensors, RoundTripAllDtypes) {
  NamedTensors ts;
  for (DType dt : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i64, DType::i32, DType::u8, DType::boolean}) {
    auto t = Tensor::from_f32({1, 0, 3, 4, 5, 6}, {2, 3});
    ASSERT_TRUE(t);
    auto c = t->to(dt);
    ASSERT_TRUE(c);
    ts.emplace_back(std::string("t_") + dtype_name(dt), *c);
  }
  std::string p = tmp_path("roundtrip.safetensors");
  ASSERT_TRUE(save_safetensors(p, ts, {{"config", "{\"a\":1}"}}).is_ok());
  auto f = open_safetensors(p);
  ASSERT_TRUE(f) << f.status().to_string();
  EXPECT_EQ((*f)->metadata().at("config"), "{\"a\":1}");
  for (auto& [name, t] : ts) {
    auto back = (*f)->tensor(name);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->dtype(), t.dtype());
    EXPECT_EQ(0, std::memcmp(back->raw(), t.raw(), t.nbytes())) << name;
  }
  std::remove(p.c_str());
}

TEST(Safetensors, ShardedIndex) {
  auto a = Tensor::from_f32({1, 2}, {2});
  auto b = Tensor::from_f32({3, 4, 5}, {3});
  std::string dir = std::string(VDIT_BINARY_DIR) + "/";
  ASSERT_TRUE(save_safetensors(dir + "test_tmp_shard-1.safetensors", {{"a", *a}}).is_ok());
  ASSERT_TRUE(save_safetensors(dir + "test_tmp_shard-2.safetensors", {{"b", *b}}).is_ok());
  std::ofstream(dir + "test_tmp_model.safetensors.index.json")
      << R"({"metadata": {"total_size": 20}, "weight_map": {"a": "test_tmp_shard-1.safetensors", "b": "test_tmp_shard-2.safetensors"}})";
  auto f = open_tensor_file(dir + "test_tmp_model.safetensors.index.json");
  ASSERT_TRUE(f) << f.status().to_string();
  EXPECT_EQ((*f)->entries().size(), 2u);
  auto bt = (*f)->tensor_f32("b");
  ASSERT_TRUE(bt);
  EXPECT_EQ(bt->f32()[2], 5.0f);
  std::ofstream(dir + "test_tmp_bad.safetensors.index.json")
      << R"({"weight_map": {"a": "test_tmp_shard-1.safetensors", "c": "test_tmp_shard-1.safetensors"}})";
  auto bad = open_tensor_file(dir + "test_tmp_bad.safetensors.index.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("\"c\""), std::string::npos) << bad.status().message();
}

struct MalformedCase {
  const char* name;
  std::string header;
  size_t data;
  const char* expect;  // substring of the message
};

TEST(Safetensors, MalformedFilesGiveClearErrors) {
  const MalformedCase cases[] = {
      {"bad_json", "{not json", 0, "not a valid JSON"},
      {"unknown_dtype", R"({"x":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", 4, "unknown dtype"},
      {"offset_past_end", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "outside the data section"},
      {"bytes_mismatch", R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "needs 12 bytes"},
      {"overlap", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, "overlap"},
      {"missing_fields", R"({"x":{"dtype":"F32"}})", 0, "needs dtype"},
      {"negative_dim", R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "not a non-negative integer"},
  };
  for (const auto& c : cases) {
    std::string p = tmp_path(std::string(c.name) + ".safetensors");
    write_raw(p, c.header, c.data);
    auto f = open_safetensors(p);
    ASSERT_FALSE(f) << c.name;
    EXPECT_EQ(f.status().code(), StatusCode::format_error) << c.name;
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos) << c.name << ": " << f.status().message();
    EXPECT_NE(f.status().message().find(p), std::string::npos) << "message names the file";
    std::remove(p.c_str());
  }
  // header length past the end
  std::string p = tmp_path("trunc.safetensors");
  {
    std::ofstream f(p, std::ios::binary);
    uint64_t n = 9999;
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>(n >> (8 * i)));
    f << "{}";
  }
  auto f = open_safetensors(p);
  ASSERT_FALSE(f);
  EXPECT_NE(f.status().message().find("past the end"), std::string::npos);
  auto missing = open_tensor_file(tmp_path("does_not_exist.safetensors"));
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);
  std::remove(p.c_str());
}
