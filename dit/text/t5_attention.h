// T5 self-attention pieces: the bidirectional relative-position bucket (W t5.py T5RelativeEmbedding), and
// attention with an additive relative bias and a key mask, no 1/sqrt(HD) scaling (T5 convention). A plain
// double-precision reference sits beside the threaded f32 kernel; tests hold the two together. CPU only;
// lengths are those of text prompts (L <= 512 in Wan), so each row's scores fit in a small buffer.
#pragma once

#include <cstdint>
#include <vector>

namespace vdit::text {

// Bucket of relative position r = key - query (bidirectional): 16·[r>0] + (|r| < 8 ? |r| :
// min(15, 8 + trunc(ln(|r|/8) / ln(max_distance/8) · 8))) for 32 buckets, computed in float32 as torch does.
int32_t t5_relative_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance);

// Buckets for every r in [-(L-1), L-1], indexed r + L - 1.                      // [2L-1]
std::vector<int32_t> t5_relative_buckets(int64_t L, int64_t num_buckets, int64_t max_distance);

// The per-head bias of each relative position: out[h, r + L - 1] = table[bucket[r + L - 1], h], with the
// layer's table [NB, NH] row-major.                                            // [NH, 2L-1]
void t5_relative_bias(float* out, const float* table, const std::vector<int32_t>& buckets, int64_t num_heads);

// One attention call. q, k, v and out are [L, NH, HD] with rows `row_stride` floats apart (NH·HD when
// packed). For head h and query i: out_i = Σ_j softmax_j(q_i·k_j + rel_bias[h, j - i + L - 1]) v_j over the
// keys with key_mask[j] != 0 (all keys when key_mask is null). Masked keys get weight exactly 0, as with
// torch's finfo.min fill; at least one key must be valid (callers check).
struct T5AttentionParams {
  const float* q = nullptr;           // [L, NH, HD]
  const float* k = nullptr;           // [L, NH, HD]
  const float* v = nullptr;           // [L, NH, HD]
  float* out = nullptr;               // [L, NH, HD]
  const float* rel_bias = nullptr;    // [NH, 2L-1]
  const uint8_t* key_mask = nullptr;  // [L] or null
  int64_t L = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  int64_t row_stride = 0;
};

// Threaded f32 kernel (rows split over heads and query blocks through dit/core/parallel.h).
void t5_attention(const T5AttentionParams& p);

// Reference: double accumulation; ignores p.rel_bias and takes each element's bias straight from the layer's
// table [NB, NH] through t5_relative_bucket(j - i), so the [NH, 2L-1] offset indexing of the fast path is
// checked by a different formulation.
void t5_attention_reference(const T5AttentionParams& p, const float* table, int64_t num_buckets, int64_t max_distance);

}  // namespace vdit::text
