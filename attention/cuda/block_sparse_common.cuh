// Internal to the block-sparse kernel: compile-time geometry (traits), the io element types, and the PTX
// wrappers it uses (cp.async, ldmatrix, mma.sync m16n8k16, ex2). sm_80+ instructions only; a wgmma/TMA
// main loop would bring its own wrappers. No host code here.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace vdit::attn::cuda_bs {

// Geometry of one instance. One CTA computes one query block (kBlock rows) of one head. Keys are consumed in
// 64-row tiles (a listed block of 128 is two tiles), double-buffered in shared memory.
//  * mma.sync main loop (WGMMA_ = false): 4 warps, each owning kMTiles·16 query rows (32 for block 128, 16 for
//    block 64: a block-64 query tile halves K/V reuse but keeps one CTA per listed row, which the layout
//    needs); a 64-key tile keeps the S accumulator at 32 (block 128: 64) registers next to the 128-register
//    O accumulator of HD 128 (FA2's choice for d128).
//  * wgmma main loop (WGMMA_ = true, sm_90a): one warpgroup per 64 query rows (2 for block 128), each warp
//    16 rows; operands in the 128-byte-swizzled "slab" layout wgmma descriptors describe (rows of 64
//    elements, a head dim of 128 is two slabs). 2 CTAs per SM for both loops (the wgmma one then gets 128
//    registers per thread): 96 KB of shared memory each at HD 128, block 128.
//  * GATHERED_: the instance of gathered calls (block_sparse_gathered.h): masked tiles drop pad keys and apply
//    the chunk rule; its extra shared memory holds the query rows' selection words and the key codes of the
//    two KV stages. The other instances carry none of that code.
template <int HD_, int BLOCK_, class T_, bool WGMMA_ = false, bool GATHERED_ = false>
struct Traits {
  using T = T_;
  static constexpr bool kWgmma = WGMMA_;
  static constexpr bool kGathered = GATHERED_;
  static constexpr int kHD = HD_;
  static constexpr int kBlock = BLOCK_;
  static constexpr int kWarps = kWgmma ? kBlock / 16 : 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMinBlocksPerSm = 2;
  static constexpr int kRowsQ = kBlock;
  static constexpr int kMTiles = kRowsQ / (16 * kWarps);
  static constexpr int kKvTile = 64;
  static constexpr int kSubTiles = kBlock / kKvTile;  // KV tiles per listed block
  static constexpr int kNTiles = kKvTile / 8;         // n8 tiles of S per warp
  static constexpr int kDTiles = kHD / 8;             // n8 tiles of O per warp
  static constexpr int kChunks = kHD / 8;             // 16-byte chunks per row
  static constexpr int kQElems = kRowsQ * kHD;
  static constexpr int kKvElems = kKvTile * kHD;
  static constexpr int kSelWords = 4;                                 // selection words per query row (max)
  static constexpr int kSelBytes = kGathered ? kRowsQ * kSelWords * 4 : 0;
  static constexpr int kCodeBytes = kGathered ? 2 * kKvTile : 0;    // one byte per key of each KV stage
  // Q + 2 stages × (K, V), then (gathered) the selection words and the key codes.
  static constexpr int kSmemBytes = (kQElems + 4 * kKvElems) * 2 + kSelBytes + kCodeBytes;

  static_assert(kHD == 64 || kHD == 128, "head dims 64 and 128 only");
  static_assert(kBlock == 64 || kBlock == 128, "blocks of 64 or 128 tokens only");
  static_assert(kMTiles >= 1 && kMTiles * 16 * kWarps == kRowsQ, "query rows must split into m16 tiles per warp");
  static_assert(!kWgmma || kMTiles == 1, "wgmma: one warp = 16 rows of its warpgroup's 64");
  static_assert(kBlock % kKvTile == 0, "a listed block must be whole KV tiles");
  static_assert(kChunks >= 8, "the XOR swizzle permutes 8 chunks of 16 bytes per row");
  static_assert((kRowsQ * kChunks) % kThreads == 0 && (kKvTile * kChunks) % kThreads == 0,
                "tile loads must split evenly over the CTA");
  static_assert(sizeof(T) == 2, "16-bit io types only");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory of one CTA exceeds the sm_90 limit");
};

// Shared-memory element offset of (row, 16-byte chunk) in a [rows, kHD] tile with the 128-byte XOR swizzle
// (chunk ^ (row & 7)), which makes the 8 rows an ldmatrix reads hit 8 different bank groups.
template <int HD>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * HD + ((chunk ^ (row & 7)) << 3);
}

// The wgmma layout of a [ROWS, HD] tile: HD/64 slabs of [ROWS, 64] elements (128-byte rows), each with the
// 128-byte XOR swizzle; slab bases are multiples of 1024 bytes when the tile base is.
template <int HD, int ROWS>
__device__ __forceinline__ int swizzle_slab(int row, int chunk) {
  return (chunk >> 3) * (ROWS * 64) + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global → shared copy; src_bytes = 0 zero-fills (rows past the sequence end).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Per-dtype packing and the m16n8k16 MMA with f32 accumulation: d += a·b.
template <class T>
struct Mma;

template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct Mma<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

}  // namespace vdit::attn::cuda_bs
