// VMoBA's planner on the GPU (methods.md §2; the host planner is methods/vmoba_select.h): per call, the chunk
// means of the rearranged keys (double sums, so the f32 means equal the host's), the gates
// g[h, c, n] = <k̄[c, h], q_r[n, h]> on tensor cores (the f32 mean split into three 16-bit parts, so the
// products are exact and only the f32 accumulation differs from the host's double dot), the local + top-k
// rule per (head, query) (self chunk always kept, ties towards the lower chunk index, as vmoba_select) as the
// `select` bitmask of block_sparse_gathered.h, and the per-(head, query block) CSR key-block lists built from
// the OR / AND of the block's rows (counts, scan, fill; longest row first). No host synchronization.
// The partition (box-major order, chunk ids, block → chunk ranges) is uploaded once per (partition, block).
// Not here: the threshold rule and the head_global pool (host only), text tokens in the sequence.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/methods/vmoba_select.h"
#include "dit/core/device_buffer.h"

namespace vdit::attn {

// What plan() leaves on the device, copied back (download(); tests and debugging).
struct VmobaDevicePlan {
  int C = 0, NH = 0, HD = 0, block = 0, words = 0;
  int64_t L = 0, nb = 0;
  std::vector<float> key_mean;     // [C, NH, HD] f32 chunk means of the keys
  std::vector<uint32_t> select;    // [NH, L, words] bit c of query position n (rearranged) of head h
  std::vector<int64_t> full_ptr;   // [NH · nb + 1]
  std::vector<int32_t> full_idx;   // key blocks computed whole
  std::vector<int64_t> part_ptr;   // [NH · nb + 1]
  std::vector<int32_t> part_idx;   // key blocks masked by the chunk rule
  std::vector<int32_t> items;      // [NH · nb] work order
  uint64_t kept = 0;               // Σ over (head, query) of the keys of its selected chunks
};

class VmobaDevicePlanner {
 public:
  // Largest chunk count the bitmask holds (4 words of 32).
  static constexpr int kMaxChunks = 128;

  // Plans one call on qkv.stream (asynchronous): q/k [L, NH, HD] bf16|f16 video tokens (L = the
  // partition's length), HD 64 or 128, `block` 64 or 128, `topk` chunks per query including its own
  // (clamped to the chunk count). The partition is uploaded on first use and kept (with a reference to it)
  // for later calls; pass the same shared object for the same partition.
  Status plan(const DeviceQKV& qkv, const std::shared_ptr<const VmobaPartition>& part, int block, int topk);

  // The plan for block_sparse_gathered_cuda (valid after plan(), on the same stream, until the next plan()).
  const DeviceGatheredView& view() const { return view_; }

  // Reads the last plan back (synchronizes `stream`).
  Result<VmobaDevicePlan> download(void* stream) const;
  // kept keys / (NH · L²): the element density, as the CPU method reports it (synchronizes `stream`).
  Result<double> element_density(void* stream) const;
  // listed blocks / (NH · nb²) (synchronizes `stream`).
  Result<double> block_density(void* stream) const;
  // Mean milliseconds of the planning stages over `reps` plans (synchronizes): key means, gates + top-k
  // (+ block masks), list counts + order, scan + fill.
  Result<std::vector<double>> profile(const DeviceQKV& qkv, const std::shared_ptr<const VmobaPartition>& part,
                                      int block, int topk, int reps);

 private:
  // One partition on the device for one block size.
  struct DevicePartition {
    std::shared_ptr<const VmobaPartition> host;  // keeps the key's address alive
    int C = 0;
    int64_t L = 0, nb = 0, slabs = 0;
    DeviceBuffer perm;        // [L] int32 original token of rearranged position n (= the kernel's slots)
    DeviceBuffer chunk_of;    // [L] int32
    DeviceBuffer chunk_len;   // [C] int32
    DeviceBuffer slab_range;  // [slabs] int2 (n0, n1): key-mean work items, inside one chunk each
    DeviceBuffer slab_begin;  // [C + 1] int32 first slab of each chunk
    DeviceBuffer block_chunks;  // [nb] int2 (first, last) chunk overlapping key block kb
  };

  Result<const DevicePartition*> device_partition(const std::shared_ptr<const VmobaPartition>& part, int block);
  Status reserve(const DevicePartition& dp, int NH, int HD);
  Status plan_impl(const DeviceQKV& qkv, const std::shared_ptr<const VmobaPartition>& part, int block, int topk,
                   void* const* events);

  std::map<std::pair<const VmobaPartition*, int>, std::unique_ptr<DevicePartition>> parts_;
  // Workspace of the last plan (grown, never shrunk).
  DeviceBuffer partial_;    // [slabs, NH · HD] f64 partial key sums
  DeviceBuffer key_mean_;   // [C, NH, HD] f32
  DeviceBuffer key_split_;  // [3, NH, Cpad, HD] io dtype: the means as hi + mid + lo 16-bit parts
  DeviceBuffer select_;     // [NH, L, words] u32
  DeviceBuffer block_or_;   // [NH, nb, words] u32 OR of the q-block's rows
  DeviceBuffer block_and_;  // [NH, nb, words] u32 AND of the q-block's rows
  DeviceBuffer counts_;     // [2, NH · nb] int32 full, partial
  DeviceBuffer full_ptr_, part_ptr_;  // [NH · nb + 1] int64
  DeviceBuffer full_idx_, part_idx_;  // [NH · nb · nb] int32
  DeviceBuffer items_;      // [NH · nb] int32
  DeviceBuffer kept_;       // [1] u64
  DeviceGatheredView view_;
  int C_ = 0, NH_ = 0, HD_ = 0, words_ = 0;
  int64_t L_ = 0, nb_ = 0;
};

}  // namespace vdit::attn
