// The block-sparse attention layout every sparse method produces and every kernel consumes.
// Contract:
//  * One square block size B ∈ {64, 128} for queries and keys; L needs not be a multiple of B: the last
//    block is clipped to L by the kernels (the "sequence tail" needs no predicate).
//  * Per (head, query block) two sorted, disjoint key-block lists in CSR form: `full` blocks computed in full
//    and `partial` blocks where an element is kept only if `predicate.allows(qi, kj)`.
//  * `head_shared`: one list set for all heads (broadcast; Radial). Otherwise one per head.
//  * Optional token permutation `perm` (x_perm[n] = x[perm[n]]), shared ([L]) or per head ([NH, L]). Block
//    lists index blocks of the permuted sequence ("the method's own token order"); kernels gather before and
//    scatter after, so outputs and LSE are always in the original order.
//  * The diagonal (self) block of every row must be listed (validate() checks it, ensure_diagonal() adds it),
//    so no query row is ever left without keys.
// This header holds only data and index logic; kernels are in block_sparse_cpu.h, planners in methods/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit::attn {

// Which elements of a `partial` block are computed. Indices are positions in the method's token order,
// or, with `original_order`, the original token indices perm[head][n] (e.g. a spatial band under a
// reordering). Tokens outside [video_begin, video_end) (text) are never restricted.
struct ElementPredicate {
  enum class Kind : uint8_t {
    none,        // every element of a partial block is kept (a partial block then equals a full one)
    band,        // |qi - kj| <= half_width on the flattened sequence
    frame_band,  // video tokens: |pos(qi) - pos(kj)| <= half_width with pos = (i - video_begin) % frame_tokens,
                 // in every frame (Re-ttention's per-frame band across all frames)
  };
  Kind kind = Kind::none;
  int64_t half_width = 0;
  int64_t frame_tokens = 0;  // frame_band only: tokens per frame (h*w)
  int64_t video_begin = 0;
  int64_t video_end = -1;    // -1: up to L
  bool original_order = false;

  // Whether query qi may attend key kj (indices as described above; L is the sequence length).
  bool allows(int64_t qi, int64_t kj, int64_t L) const {
    if (kind == Kind::none) return true;
    const int64_t ve = video_end < 0 ? L : video_end;
    if (qi < video_begin || qi >= ve || kj < video_begin || kj >= ve) return true;
    if (kind == Kind::band) {
      const int64_t d = qi - kj;
      return (d < 0 ? -d : d) <= half_width;
    }
    const int64_t pq = (qi - video_begin) % frame_tokens, pk = (kj - video_begin) % frame_tokens;
    const int64_t d = pq - pk;
    return (d < 0 ? -d : d) <= half_width;
  }
  std::string describe() const;  // "band(w=64)", "frame_band(w=21,s=1350)", "none"
};

// Block states in the dense [rows, nQ, nK] encoding planners build first (see from_block_states()).
enum BlockState : uint8_t { kBlockAbsent = 0, kBlockFull = 1, kBlockPartial = 2 };

struct BlockLayout {
  int block = 128;           // B: query and key block size (64 or 128)
  int64_t seq_len = 0;       // L
  int num_heads = 1;         // NH of the attention call
  bool head_shared = true;   // one set of lists for all heads
  // CSR over rows r = head_row * num_q_blocks() + qb, head_row in [0, list_heads()).
  std::vector<int64_t> full_ptr;   // [rows + 1]
  std::vector<int32_t> full_idx;   // sorted key-block ids per row
  std::vector<int64_t> part_ptr;   // [rows + 1]
  std::vector<int32_t> part_idx;   // sorted key-block ids per row, disjoint from the full ones
  ElementPredicate predicate;
  std::vector<int32_t> perm;       // empty (identity), [L] (shared) or [NH, L] (per head)

  int64_t num_q_blocks() const { return (seq_len + block - 1) / block; }
  int64_t num_k_blocks() const { return num_q_blocks(); }
  int list_heads() const { return head_shared ? 1 : num_heads; }
  int64_t rows() const { return list_heads() * num_q_blocks(); }
  int64_t row(int head, int64_t qb) const { return (head_shared ? 0 : head) * num_q_blocks() + qb; }
  bool has_perm() const { return !perm.empty(); }
  bool perm_shared() const { return static_cast<int64_t>(perm.size()) == seq_len; }
  // perm row for `head` (nullptr when there is no permutation).
  const int32_t* perm_of(int head) const {
    if (perm.empty()) return nullptr;
    return perm.data() + (perm_shared() ? 0 : static_cast<int64_t>(head) * seq_len);
  }

  // Listed blocks / (NH · nQ · nK), counting a shared layout once per head (it is computed for every head).
  double block_density() const;
  // Kept (query, key) elements / (NH · L²): exact, with tails clipped and the predicate applied.
  double element_density() const;
  // Checks sizes, block size, sorted/disjoint/in-range lists, the diagonal block in every row, and that
  // every perm row is a permutation of [0, L). The message names the first offending row.
  Status validate() const;
  // Adds the diagonal block (as full) to any row that lacks it.
  void ensure_diagonal();
  // [list_heads, nQ, nK] uint8 in the method's token order: 1 = block listed (full or partial), else 0.
  std::vector<uint8_t> block_mask() const;
};

// Builds the CSR lists from a dense [list_heads, nQ, nK] array of BlockState values (head_shared when
// list_heads == 1 and num_heads > 1, or when num_heads == 1). The diagonal block is forced on (as full
// unless already partial). `perm` and `predicate` are copied in as given; the result is validated.
Result<BlockLayout> layout_from_block_states(const std::vector<uint8_t>& states, int list_heads, int num_heads,
                                             int64_t seq_len, int block, const ElementPredicate& predicate = {},
                                             std::vector<int32_t> perm = {});

// Every block full (for tests and the density-1 end of benchmarks).
BlockLayout dense_layout(int64_t seq_len, int num_heads, int block);

// Checks that `block` is 64 or 128 (the sizes every kernel supports).
Status check_block_size(int block);

}  // namespace vdit::attn
