// .pth reader against checkpoints written by torch.save (tools/testdata/make_pth_fixtures.py): every
// tensor bit-exact against the values torch wrote beside it, zero-copy for plain tensors, owned copies
// for views, nested dicts flattened, zip64 and pickle protocol 4, and tensors outliving the file.
#include <gtest/gtest.h>

#include "io/tensor_file.h"
#include "io/zip_archive.h"
#include "tests/harness/test_util.h"
#include "tests/io/io_test_util.h"

using namespace vdit;

namespace {

std::string pth(const std::string& name) { return test::data_path("io/pth/" + name); }

class PthFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(PthFixture, MatchesTorchValuesBitExactly) {
  std::string name = GetParam();
  auto got = open_tensor_file(pth(name + ".pth"));
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ((*got)->format(), "pth");
  auto want = open_safetensors(pth(name + ".expected.safetensors"));
  ASSERT_TRUE(want) << want.status().to_string();
  test::expect_same_tensors(**got, **want);
  for (const auto& [k, v] : (*want)->metadata()) {
    auto it = (*got)->metadata().find(k);
    ASSERT_NE(it, (*got)->metadata().end()) << name << ": metadata " << k;
    EXPECT_EQ(it->second, v) << name << ": metadata " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Torch, PthFixture, ::testing::Values("tensors", "protocol4", "zip64", "nested", "parameters"));

TEST(PthReader, ListsEveryDtypeAndView) {
  auto f = open_pth(pth("tensors.pth"));
  ASSERT_TRUE(f) << f.status().to_string();
  const TensorFile& t = **f;
  ASSERT_EQ(t.entries().size(), 26u);
  EXPECT_EQ(t.entries()[0].name, "steps");  // the dict's order: the module's own buffer, then its children's
  EXPECT_EQ(t.find("bf16")->dtype, DType::bf16);
  EXPECT_EQ(t.find("i64")->dtype, DType::i64);
  EXPECT_EQ(t.find("bool")->dtype, DType::boolean);
  EXPECT_EQ(shape_str(t.find("transposed")->shape), "[6, 4]");
  EXPECT_EQ(shape_str(t.find("scalar")->shape), "[]");
  EXPECT_EQ(t.find("empty")->nbytes, 0u);
  EXPECT_NE(t.metadata().count("torch.format_version"), 0u);
  EXPECT_NE(t.find("proj.weight")->source.find("/data/"), std::string::npos);
}

TEST(PthReader, PlainTensorsPointIntoTheFileAndViewsAreCopied) {
  auto f = open_pth(pth("tensors.pth"));
  ASSERT_TRUE(f) << f.status().to_string();
  const TensorFile& t = **f;
  // One storage under two names, and two contiguous views of one storage: the same mapped bytes.
  EXPECT_EQ(t.find("f32")->data, t.find("tied")->data);
  EXPECT_EQ(t.find("shared_a")->data, t.find("shared_b")->data);
  // torch aligns every storage record to 64 bytes in the zip; mapped data keeps that alignment.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.find("proj.weight")->data) % 64, 0u);
  // A row slice (offset) and a column slice of one storage are separate owned copies.
  EXPECT_NE(t.find("rows")->data, t.find("cols")->data);
  EXPECT_EQ(shape_str(t.find("cols")->shape), "[10, 2]");
}

TEST(PthReader, TensorsOutliveTheFile) {
  Tensor mapped, copied;
  {
    auto f = open_pth(pth("tensors.pth"));
    ASSERT_TRUE(f) << f.status().to_string();
    auto a = (*f)->tensor("f32");
    auto b = (*f)->tensor("transposed");
    ASSERT_TRUE(a && b);
    mapped = *a;
    copied = *b;
  }
  auto want = open_safetensors(pth("tensors.expected.safetensors"));
  ASSERT_TRUE(want);
  EXPECT_EQ(0, std::memcmp(mapped.raw(), (*want)->find("f32")->data, mapped.nbytes()));
  EXPECT_EQ(0, std::memcmp(copied.raw(), (*want)->find("transposed")->data, copied.nbytes()));
}

TEST(PthReader, ConvertsToF32) {
  auto f = open_pth(pth("tensors.pth"));
  auto want = open_safetensors(pth("tensors.expected.safetensors"));
  ASSERT_TRUE(f && want);
  for (const char* name : {"bf16", "f16", "cols", "expanded"}) {
    auto a = (*f)->tensor_f32(name);
    auto b = (*want)->tensor_f32(name);
    ASSERT_TRUE(a && b) << name;
    test::expect_close(*a, *b, 0.0, name);
  }
}

TEST(PthReader, NestedDictIsFlattenedWithADot) {
  auto f = open_pth(pth("nested.pth"));
  ASSERT_TRUE(f) << f.status().to_string();
  EXPECT_NE((*f)->find("state_dict.proj.weight"), nullptr);
  EXPECT_EQ((*f)->find("proj.weight"), nullptr);
  EXPECT_EQ((*f)->metadata().at("epoch"), "7");
  EXPECT_EQ((*f)->metadata().at("note"), "tiny");
}

TEST(PthReader, Zip64ArchiveIsRecognised) {
  std::vector<uint8_t> bytes = test::read_bytes(pth("zip64.pth"));
  auto z = ZipArchive::parse(bytes.data(), bytes.size(), "zip64.pth");
  ASSERT_TRUE(z) << z.status().to_string();
  EXPECT_TRUE(z->is_zip64());
  int pickles = 0;
  for (const ZipEntry& e : z->entries()) pickles += e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0;
  EXPECT_EQ(pickles, 1);
}

TEST(PthReader, MissingFileIsNotFound) {
  auto f = open_pth(pth("no_such_file.pth"));
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().code(), StatusCode::not_found);
  EXPECT_NE(f.status().message().find("no_such_file.pth"), std::string::npos);
}

}  // namespace
