// ONNX reader (built only with ONNX): the fixtures encoded by tools/testdata/make_io_fixtures.py
// (raw_data, typed fields, external data in two files) against their expected values bit for bit,
// model metadata, and models built here with the protobuf API for a symlink escape and unaligned data.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/tensor_file.h"
#include "tests/harness/test_util.h"
#include "tests/io/io_test_util.h"

using namespace vdit;

namespace {

std::string onnx_path(const std::string& name) { return test::data_path("io/onnx/" + name); }

class OnnxFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(OnnxFixture, MatchesExpectedValuesBitExactly) {
  auto got = open_tensor_file(onnx_path(GetParam()));
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ((*got)->format(), "onnx");
  auto want = open_safetensors(onnx_path("model.expected.safetensors"));
  ASSERT_TRUE(want) << want.status().to_string();
  test::expect_same_tensors(**got, **want);
  const auto& m = (*got)->metadata();
  EXPECT_EQ(m.at("onnx.producer_name"), "vdit-fixtures");
  EXPECT_EQ(m.at("onnx.producer_version"), "1.0");
  EXPECT_EQ(m.at("onnx.opset"), "ai.onnx:17, com.microsoft:1");
  EXPECT_EQ(m.at("onnx.ir_version"), "8");
  EXPECT_EQ(m.at("onnx.graph_name"), "tiny");
  EXPECT_EQ(m.at("author"), "vdit tests");
  EXPECT_EQ((*got)->entries()[0].name, "f32");  // the graph's order
}

INSTANTIATE_TEST_SUITE_P(Encodings, OnnxFixture, ::testing::Values("model_raw.onnx", "model_typed.onnx", "model_external.onnx"));

TEST(OnnxReader, ExternalDataIsMappedFromItsFiles) {
  auto f = open_onnx(onnx_path("model_external.onnx"));
  ASSERT_TRUE(f) << f.status().to_string();
  const std::string& src_f16 = (*f)->find("f16")->source;
  const std::string& src_f32 = (*f)->find("f32")->source;
  EXPECT_NE(src_f16.find("weights/extra.bin"), std::string::npos) << src_f16;
  EXPECT_NE(src_f32.find("model_external.bin"), std::string::npos) << src_f32;
  auto t = (*f)->tensor_f32("bf16");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->f32()[1], -3.5f);
}

// A model with one f32 initializer [n] stored as external data.
void write_external_model(const std::string& path, const std::string& location, int64_t offset, int64_t n) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  onnx::TensorProto* t = m.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  t->add_dims(n);
  t->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto* loc = t->add_external_data();
  loc->set_key("location");
  loc->set_value(location);
  auto* off = t->add_external_data();
  off->set_key("offset");
  off->set_value(std::to_string(offset));
  test::write_bytes(path, m.SerializeAsString());
}

std::string fresh_dir(const std::string& name) {
  std::string d = std::string(VDIT_BINARY_DIR) + "/test_tmp_" + name;
  ::mkdir(d.c_str(), 0755);
  return d;
}

TEST(OnnxReader, UnalignedExternalDataIsCopied) {
  std::string dir = fresh_dir("onnx_unaligned");
  float v[3] = {1.5f, -2.f, 8.f};
  std::string bytes = "x" + std::string(reinterpret_cast<const char*>(v), sizeof(v));
  test::write_bytes(dir + "/w.bin", bytes);
  write_external_model(dir + "/m.onnx", "w.bin", 1, 3);
  auto f = open_onnx(dir + "/m.onnx");
  ASSERT_TRUE(f) << f.status().to_string();
  const TensorEntry* e = (*f)->find("w");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(e->data) % 4, 0u);
  EXPECT_EQ(0, std::memcmp(e->data, v, sizeof(v)));
}

TEST(OnnxReader, SymlinkOutOfTheModelFolderIsRefused) {
  std::string outside = fresh_dir("onnx_outside");
  std::string dir = fresh_dir("onnx_symlink");
  test::write_bytes(outside + "/secret.bin", std::string(16, '\0'));
  std::string link = dir + "/link.bin";
  ::unlink(link.c_str());
  ASSERT_EQ(0, ::symlink((outside + "/secret.bin").c_str(), link.c_str()));
  write_external_model(dir + "/m.onnx", "link.bin", 0, 4);
  auto f = open_onnx(dir + "/m.onnx");
  ASSERT_FALSE(f);
  EXPECT_NE(f.status().message().find("outside the model's folder"), std::string::npos) << f.status().message();
  // A symlink that stays inside the folder is fine.
  test::write_bytes(dir + "/real.bin", std::string(16, '\0'));
  ::unlink(link.c_str());
  ASSERT_EQ(0, ::symlink("real.bin", link.c_str()));
  auto g = open_onnx(dir + "/m.onnx");
  EXPECT_TRUE(g) << g.status().to_string();
}

TEST(OnnxReader, EmptyGraphHasNoTensors) {
  std::string dir = fresh_dir("onnx_empty");
  onnx::ModelProto m;
  m.mutable_graph()->set_name("g");
  auto* kv = m.add_metadata_props();
  kv->set_key("k");
  kv->set_value("v");
  test::write_bytes(dir + "/e.onnx", m.SerializeAsString());
  auto f = open_onnx(dir + "/e.onnx");
  ASSERT_TRUE(f) << f.status().to_string();
  EXPECT_TRUE((*f)->entries().empty());
  EXPECT_EQ((*f)->metadata().at("k"), "v");
}

}  // namespace
