// T5 attention: the bucket rule against the golden 512x512 table, and the threaded f32 kernel against the
// double reference (which takes each bias straight from the bucket rule) over head dims, head counts,
// lengths that are not multiples of the 16-row task size, and masks (none, prefix, random).
#include <gtest/gtest.h>

#include <random>

#include "dit/text/t5_attention.h"
#include "tests/text/text_test_util.h"

using namespace vdit;
using namespace vdit::text;

// Tolerances (max|Δ|/max|ref|) and why:
//   f32 kernel vs double reference: the only error is f32 rounding over HD-term dots and L-term sums with
//   |scores| up to ~10, far below 1e-5; a wrong index or a leaked masked key is O(1).
constexpr double kAttentionTol = 1e-5;

TEST(T5Attention, BucketsMatchGoldenTable) {
  auto f = open_tensor_file(test::text_data("t5_tiny_golden.safetensors"));
  ASSERT_TRUE(f) << f.status().to_string();
  const TensorEntry* e = (*f)->find("const.rel_bucket_512");
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(shape_str(e->shape), "[512, 512]");
  ASSERT_EQ(e->dtype, DType::i64);
  const auto* ref = reinterpret_cast<const int64_t*>(e->data);
  const std::vector<int32_t> b = t5_relative_buckets(512, 32, 128);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < 512; ++i) {
    for (int64_t j = 0; j < 512; ++j) {
      const int64_t want = ref[i * 512 + j];
      if (b[static_cast<size_t>(j - i + 511)] != want || t5_relative_bucket(j - i, 32, 128) != want) {
        if (++mismatches <= 5) ADD_FAILURE() << "bucket(query " << i << ", key " << j << ") want " << want;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  // Spot values of the rule: exact below 8, log-spaced to 15 at distance >= 128, +16 for keys after the query.
  EXPECT_EQ(t5_relative_bucket(0, 32, 128), 0);
  EXPECT_EQ(t5_relative_bucket(-7, 32, 128), 7);
  EXPECT_EQ(t5_relative_bucket(7, 32, 128), 23);
  EXPECT_EQ(t5_relative_bucket(-16, 32, 128), 10);
  EXPECT_EQ(t5_relative_bucket(-127, 32, 128), 15);
  EXPECT_EQ(t5_relative_bucket(1000, 32, 128), 31);
}

TEST(T5Attention, KernelMatchesReference) {
  std::mt19937 rng(20240607);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t NB = 32, max_distance = 128;
  int cases = 0;
  for (int64_t HD : {64, 8, 13}) {
    for (int64_t NH : {1, 3}) {
      for (int64_t L : {1, 5, 17, 130}) {
        for (const char* mask_kind : {"none", "prefix", "random"}) {
          const int64_t DA = NH * HD;
          std::vector<float> q(L * DA), k(L * DA), v(L * DA), table(NB * NH);
          for (auto* vec : {&q, &k, &v}) {
            for (float& x : *vec) x = normal(rng) * 0.5f;
          }
          for (float& x : table) x = normal(rng);
          std::vector<uint8_t> mask(L, 1);
          if (std::string(mask_kind) == "prefix") {
            for (int64_t j = (L + 1) / 2; j < L; ++j) mask[j] = 0;
          } else if (std::string(mask_kind) == "random") {
            for (auto& m : mask) m = rng() % 3 != 0;
            mask[rng() % L] = 1;
          }
          const std::vector<int32_t> buckets = t5_relative_buckets(L, NB, max_distance);
          std::vector<float> rel(NH * (2 * L - 1));
          t5_relative_bias(rel.data(), table.data(), buckets, NH);
          std::vector<float> out(L * DA, NAN), ref(L * DA, NAN);
          T5AttentionParams p;
          p.q = q.data();
          p.k = k.data();
          p.v = v.data();
          p.rel_bias = rel.data();
          p.key_mask = std::string(mask_kind) == "none" ? nullptr : mask.data();
          p.L = L;
          p.num_heads = NH;
          p.head_dim = HD;
          p.row_stride = DA;
          p.out = out.data();
          t5_attention(p);
          p.out = ref.data();
          t5_attention_reference(p, table.data(), NB, max_distance);
          const test::Diff d = test::compare(out.data(), ref.data(), L * DA);
          EXPECT_TRUE(d.finite && d.rel() <= kAttentionTol)
              << "t5_attention(hd=" << HD << ", nh=" << NH << ", L=" << L << ", mask=" << mask_kind
              << "): rel=" << d.rel() << " worst index " << d.worst << " finite=" << d.finite;
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 72);
}
