// Internal to the block-sparse kernel: the wgmma (sm_90a) main loop. Same contract as the mma.sync loop
// (block_sparse_mainloop_sm80.cuh: list walk, cp.async double-buffered K/V tiles, masking, online softmax,
// Accumulators layout), but each warpgroup of the CTA computes its 64 query rows with warpgroup MMAs:
// S = Q·Kᵀ from shared memory (m64n64k16, both operands K-major), O += P·V with P from registers and V
// N-major (m64nHDk16). Operands use the 128-byte-swizzled slab layout (swizzle_slab). Compiled only for
// sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); elsewhere block_sparse_wgmma_compiled() reports 0.
#pragma once

#include "attention/cuda/block_sparse_mainloop_sm80.cuh"

namespace vdit::attn::cuda_bs {

// 1 when this translation unit's device code was built for sm_90a (read by the host to decide whether the
// wgmma loop can run).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define VDIT_BS_WGMMA 1
#else
#define VDIT_BS_WGMMA 0
#endif

#if VDIT_BS_WGMMA

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  uint64_t d = static_cast<uint64_t>((smem_addr & 0x3FFFFu) >> 4);
  d |= static_cast<uint64_t>((lbo_bytes >> 4) & 0x3FFFu) << 16;
  d |= static_cast<uint64_t>((sbo_bytes >> 4) & 0x3FFFu) << 32;
  d |= static_cast<uint64_t>(1) << 62;
  return d;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Keeps the compiler from moving accesses of wgmma accumulators across the asynchronous region.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j) {
    asm volatile("" : "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])::"memory");
  }
}

// m64nNk16 with f32 accumulation, D += A·B, per io dtype: ss = both operands from shared memory (K-major),
// rs = A from registers and B N-major (transposed) from shared memory.
template <class T>
struct Wgmma;

template <>
struct Wgmma<__nv_bfloat16> {
  static __device__ __forceinline__ void ss_n64(float (&d)[8][4], uint64_t desc_a, uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "l"(desc_a), "l"(desc_b), "r"(1));
  }
  static __device__ __forceinline__ void rs_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
  }
  static __device__ __forceinline__ void rs_n128(float (&d)[16][4], const uint32_t (&a)[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
  }
};

template <>
struct Wgmma<__half> {
  static __device__ __forceinline__ void ss_n64(float (&d)[8][4], uint64_t desc_a, uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "l"(desc_a), "l"(desc_b), "r"(1));
  }
  static __device__ __forceinline__ void rs_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
  }
  static __device__ __forceinline__ void rs_n128(float (&d)[16][4], const uint32_t (&a)[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
  }
};


template <class Tr>
__device__ __forceinline__ void wgmma_pv(float (&o)[Tr::kDTiles][4], const uint32_t (&a)[4], uint64_t desc_v) {
  if constexpr (Tr::kHD == 128) {
    Wgmma<typename Tr::T>::rs_n128(o, a, desc_v);
  } else {
    Wgmma<typename Tr::T>::rs_n64(o, a, desc_v);
  }
}

// The wgmma counterpart of MainLoop (block_sparse_mainloop_sm80.cuh).
template <class Tr>
struct MainLoopWgmma {
  using T = typename Tr::T;
  static constexpr int kSlabQ = Tr::kRowsQ * 64;   // elements per Q slab
  static constexpr int kSlabKv = Tr::kKvTile * 64;  // elements per K or V slab
  const BlockSparseParams& p;
  const RowWork<Tr>& w;
  uint32_t sq_base;
  T* skv;
  int num_tiles, tid, lane, wrow, wg;
  int key_cur, key_next;

  template <bool kPartial>
  __device__ __forceinline__ void step(int t, Accumulators<Tr>& acc) {
    cp_async_wait<0>();
    fence_proxy_async();  // cp.async wrote through the generic proxy; wgmma reads through the async one
    __syncthreads();
    if (t + 1 < num_tiles) {
      T* sk_next = skv + ((t + 1) & 1) * 2 * Tr::kKvElems;
      load_rows<Tr, Tr::kKvTile>(sk_next, w.k, w.v, sk_next + Tr::kKvElems, key_next, p.Lp, w.ld, w.perm, tid);
      cp_async_commit();
      if constexpr (Tr::kGathered) write_key_codes<Tr>(p, w, key_next, (t + 1) & 1, tid);
    }
    const int key_after = t + 2 < num_tiles ? tile_key0(w, t + 2) : 0;

    const T* sk = skv + (t & 1) * 2 * Tr::kKvElems;
    const uint32_t sk_base = smem_addr(sk), sv_base = smem_addr(sk + Tr::kKvElems);

    // S = Q Kᵀ: the warpgroup's 64 rows × 64 keys.
    float s[1][Tr::kNTiles][4];
#pragma unroll
    for (int nt = 0; nt < Tr::kNTiles; ++nt) s[0][nt][0] = s[0][nt][1] = s[0][nt][2] = s[0][nt][3] = 0.f;
    fence_operands(s[0]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < Tr::kHD / 16; ++kk) {
      const uint32_t qa = sq_base + 2 * ((kk >> 2) * kSlabQ + wg * 64 * 64) + (kk & 3) * 32;
      const uint32_t ka = sk_base + 2 * ((kk >> 2) * kSlabKv) + (kk & 3) * 32;
      Wgmma<T>::ss_n64(s[0], wgmma_desc(qa, 16, 1024), wgmma_desc(ka, 16, 1024));
    }
    wgmma_commit();
    wgmma_wait0();
    fence_operands(s[0]);

    if (kPartial) {
      apply_mask<Tr>(s, p, w, w.q0 + wrow, key_cur, t & 1, true, lane);
    } else if (key_cur + Tr::kKvTile > p.Lp) {
      apply_mask<Tr>(s, p, w, w.q0 + wrow, key_cur, t & 1, false, lane);
    }
    softmax_update<Tr>(s, acc, p.scale_log2);

    // O += P V: P (registers, the S accumulator layout = the wgmma A fragment layout) times V (N-major).
    uint32_t pa[Tr::kKvTile / 16][4];
#pragma unroll
    for (int kk = 0; kk < Tr::kKvTile / 16; ++kk) {
      pa[kk][0] = Mma<T>::pack(s[0][2 * kk][0], s[0][2 * kk][1]);
      pa[kk][1] = Mma<T>::pack(s[0][2 * kk][2], s[0][2 * kk][3]);
      pa[kk][2] = Mma<T>::pack(s[0][2 * kk + 1][0], s[0][2 * kk + 1][1]);
      pa[kk][3] = Mma<T>::pack(s[0][2 * kk + 1][2], s[0][2 * kk + 1][3]);
    }
    fence_operands(acc.o[0]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < Tr::kKvTile / 16; ++kk) {
      wgmma_pv<Tr>(acc.o[0], pa[kk], wgmma_desc(sv_base + kk * 16 * 128, kSlabKv * 2, 1024));
    }
    wgmma_commit();
    wgmma_wait0();
    fence_operands(acc.o[0]);
    key_cur = key_next;
    key_next = key_after;
  }
};

template <class Tr>
__device__ __forceinline__ void mainloop_wgmma(const BlockSparseParams& p, const RowWork<Tr>& w,
                                               const typename Tr::T* sq, typename Tr::T* skv,
                                               Accumulators<Tr>& acc) {
  const int tid = threadIdx.x;
  acc.m[0][0] = acc.m[0][1] = -INFINITY;
  acc.l[0][0] = acc.l[0][1] = 0.f;
#pragma unroll
  for (int dt = 0; dt < Tr::kDTiles; ++dt) acc.o[0][dt][0] = acc.o[0][dt][1] = acc.o[0][dt][2] = acc.o[0][dt][3] = 0.f;
  MainLoopWgmma<Tr> ml{p, w, smem_addr(sq), skv, (w.np + w.nf) * Tr::kSubTiles, tid, tid & 31,
                       (tid >> 5) * 16, tid >> 7, 0, 0};
  ml.key_cur = ml.num_tiles > 0 ? tile_key0(w, 0) : 0;
  ml.key_next = ml.num_tiles > 1 ? tile_key0(w, 1) : 0;
  if (ml.num_tiles > 0) {
    load_rows<Tr, Tr::kKvTile>(skv, w.k, w.v, skv + Tr::kKvElems, ml.key_cur, p.Lp, w.ld, w.perm, tid);
    if constexpr (Tr::kGathered) write_key_codes<Tr>(p, w, ml.key_cur, 0, tid);
  }
  cp_async_commit();
  const int partial_tiles = p.pred_kind != kPredNone ? w.np * Tr::kSubTiles : 0;
  int t = 0;
  for (; t < partial_tiles; ++t) ml.template step<true>(t, acc);
  for (; t < ml.num_tiles; ++t) ml.template step<false>(t, acc);
  cp_async_wait<0>();
  __syncthreads();
}

#endif  // VDIT_BS_WGMMA

}  // namespace vdit::attn::cuda_bs
