// CUDA kernels and host side of draft_device.h. Per call: pool, map, threshold select (init + 3 passes of
// histogram + pick), row counts, launch order, CSR scan, CSR fill — 12 launches, no host synchronization.
// Shapes: q/k [L, NH, HD] bf16|f16; pooled [2, g, NH, HD] f32; map [NH, g, g] f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <limits>

#include "attention/cuda/planners/draft_device.h"
#include "dit/core/check_cuda.h"

namespace vdit::attn {
namespace {

constexpr int kMaxRegions = 5120;  // the map kernel keeps ≥ 1 row of g doubles in shared memory (40 KB)
constexpr int kMaxHeadDim = 256;   // q̃ rows staged in shared memory

__device__ __forceinline__ float load16(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float load16(const __half* p, int64_t i) { return __half2float(p[i]); }

// Region geometry for the pool kernel (aligned grids: region r = (frame, pooled row, pooled col)).
struct PoolGeometry {
  int64_t Hp, Wp, h, w, video_begin;
  int ph, pw;
};

// grid (g, ⌈NH·HD/8 / 256⌉), 256 threads, 8 consecutive channels per thread (16-byte loads): region means of
// q and k in double, summed row-major inside the region (the host's slot order), so the f32 means are
// bit-identical to the host planner's. pooled: [2, g, NH·HD] (q̃ then k̃).
template <class T>
__global__ void pool_kernel(float* pooled, const T* q, const T* k, PoolGeometry pg, int64_t g, int64_t ld) {
  const int64_t r = blockIdx.x;
  const int64_t c8 = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 8;  // first channel
  if (c8 >= ld) return;
  const int64_t f = r / (pg.Hp * pg.Wp), a = r / pg.Wp % pg.Hp, b = r % pg.Wp;
  double sq[8], sk[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) sq[i] = sk[i] = 0;
  for (int y = 0; y < pg.ph; ++y) {
    const int64_t t0 = pg.video_begin + (f * pg.h + a * pg.ph + y) * pg.w + b * pg.pw;
#pragma unroll 2
    for (int x = 0; x < pg.pw; ++x) {
      const int64_t e = (t0 + x) * ld + c8;
      const uint4 qv = *reinterpret_cast<const uint4*>(q + e);
      const uint4 kv = *reinterpret_cast<const uint4*>(k + e);
      const T* qe = reinterpret_cast<const T*>(&qv);
      const T* ke = reinterpret_cast<const T*>(&kv);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        sq[i] += load16(qe, i);
        sk[i] += load16(ke, i);
      }
    }
  }
  const int n = pg.ph * pg.pw;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    pooled[r * ld + c8 + i] = static_cast<float>(sq[i] / n);
    pooled[(g + r) * ld + c8 + i] = static_cast<float>(sk[i] / n);
  }
}

// grid (⌈g / R⌉, NH), 256 threads: rows i0 … i0+R−1 of head h of the draft map. Each pooled key is read
// once per CTA for R rows; the dots run in d order in double (as the host), then per row (one warp each):
// max, exp, a serial sum in j order, and the division rounded to f32 — the host's arithmetic.
constexpr int kMapRows = 8;

__global__ void map_kernel(float* map, const float* pooled, int64_t g, int NH, int HD, int R, double inv_sqrt_d) {
  extern __shared__ double srow[];  // [R, g]
  __shared__ float qs[kMapRows][256];
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * R;
  const int h = blockIdx.y;
  const int rows = static_cast<int>(g - i0 < R ? g - i0 : R);
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const float* kp = pooled + g * ld + static_cast<int64_t>(h) * HD;
  for (int e = threadIdx.x; e < kMapRows * HD; e += blockDim.x) {
    qs[e / HD][e % HD] = e / HD < rows ? pooled[(i0 + e / HD) * ld + static_cast<int64_t>(h) * HD + e % HD] : 0.f;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < g; j += blockDim.x) {
    const float* kj = kp + j * ld;
    double acc[kMapRows];
#pragma unroll
    for (int r = 0; r < kMapRows; ++r) acc[r] = 0;
    for (int d = 0; d < HD; ++d) {
      const double kv = kj[d];
#pragma unroll
      for (int r = 0; r < kMapRows; ++r) acc[r] += static_cast<double>(qs[r][d]) * kv;
    }
    for (int r = 0; r < rows; ++r) srow[r * g + j] = acc[r] * inv_sqrt_d;
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int r = warp; r < rows; r += blockDim.x >> 5) {
    double* s = srow + static_cast<int64_t>(r) * g;
    double mx = -INFINITY;
    for (int64_t j = lane; j < g; j += 32) mx = fmax(mx, s[j]);
    for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    for (int64_t j = lane; j < g; j += 32) s[j] = exp(s[j] - mx);
    __syncwarp();
    double sum = 0;
    if (lane == 0) {
      for (int64_t j = 0; j < g; ++j) sum += s[j];
    }
    sum = __shfl_sync(0xffffffffu, sum, 0);
    float* out = map + (static_cast<int64_t>(h) * g + i0 + r) * g;
    for (int64_t j = lane; j < g; j += 32) out[j] = static_cast<float>(s[j] / sum);
  }
}

// The per-head threshold: the kx-th smallest (1-based) of the head's n map entries, by a radix select on the
// f32 bit patterns (entries are ≥ 0, so the bit order is the value order) in three passes of 11/11/10 bits.
// Each pass: a histogram over many CTAs per head (shared-memory counts, then global adds), then one CTA per
// head picks the digit holding the kx-th entry and clears the histogram for the next pass.
constexpr int kSelBins = 2048;
constexpr int64_t kSelChunk = 8192;  // map entries per histogram CTA

struct SelectState {
  unsigned int prefix;   // digits chosen so far
  long long remaining;   // rank of the wanted entry among those matching the prefix
};

__global__ void select_init_kernel(SelectState* st, unsigned int* hist, int NH, long long kx) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < static_cast<int64_t>(NH) * kSelBins;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    hist[i] = 0;
    if (i < NH) st[i] = SelectState{0u, kx};
  }
}

// grid (⌈n / kSelChunk⌉, NH), 256 threads.
__global__ void select_hist_kernel(unsigned int* hist, const SelectState* st, const float* map, int64_t n,
                                   unsigned int mask, int shift, unsigned int digit_mask) {
  __shared__ unsigned int sh[kSelBins];
  const int h = blockIdx.y;
  for (int b = threadIdx.x; b < kSelBins; b += blockDim.x) sh[b] = 0;
  __syncthreads();
  const unsigned int prefix = st[h].prefix;
  const unsigned int* bits = reinterpret_cast<const unsigned int*>(map + static_cast<int64_t>(h) * n);
  const int64_t begin = blockIdx.x * kSelChunk, end = min(n, begin + kSelChunk);
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    const unsigned int u = bits[e];
    if ((u & mask) == prefix) atomicAdd(&sh[(u >> shift) & digit_mask], 1u);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < kSelBins; b += blockDim.x) {
    if (sh[b]) atomicAdd(&hist[static_cast<int64_t>(h) * kSelBins + b], sh[b]);
  }
}

// One CTA of 1024 threads per head (2 bins each): block scan of the histogram, the bin where the running
// count reaches `remaining`, the new prefix; the histogram is cleared; the last pass writes the threshold.
__global__ void select_pick_kernel(SelectState* st, unsigned int* hist, float* threshold, int shift, bool last) {
  __shared__ long long part[1024];
  __shared__ SelectState result;
  const int h = blockIdx.x, t = threadIdx.x;
  unsigned int* hh = hist + static_cast<int64_t>(h) * kSelBins;
  const long long c0 = hh[2 * t], c1 = hh[2 * t + 1], s = c0 + c1;
  hh[2 * t] = 0;
  hh[2 * t + 1] = 0;
  const SelectState cur = st[h];
  part[t] = s;
  __syncthreads();
  for (int off = 1; off < 1024; off <<= 1) {
    const long long v = t >= off ? part[t - off] : 0;
    __syncthreads();
    part[t] += v;
    __syncthreads();
  }
  const long long excl = part[t] - s, rem = cur.remaining;
  if (excl < rem && rem <= excl + s) {
    const bool first = excl + c0 >= rem;
    const unsigned int bin = 2u * t + (first ? 0u : 1u);
    result.prefix = cur.prefix | (bin << shift);
    result.remaining = rem - (first ? excl : excl + c0);
  }
  __syncthreads();
  if (t == 0) {
    st[h] = result;
    if (last) threshold[h] = __uint_as_float(result.prefix);
  }
}

__global__ void fill_value_kernel(float* dst, int n, float value) {
  if (static_cast<int>(threadIdx.x) < n) dst[threadIdx.x] = value;
}

__device__ __forceinline__ bool kept(const float* map, const float* threshold, int h, int64_t qb, int64_t kb,
                                     int64_t g) {
  if (qb >= g || kb >= g || qb == kb) return true;
  return map[(static_cast<int64_t>(h) * g + qb) * g + kb] >= threshold[h];
}

// One warp per row (h, qb): the number of listed key blocks.
__global__ void count_kernel(int32_t* counts, const float* map, const float* threshold, int64_t g, int64_t nb,
                             int64_t rows) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const int h = static_cast<int>(row / nb);
  const int64_t qb = row % nb;
  int c = 0;
  for (int64_t kb = lane; kb < nb; kb += 32) c += kept(map, threshold, h, qb, kb, g) ? 1 : 0;
  for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
  if (lane == 0) counts[row] = c;
}

// One CTA per head: the kernel's launch order of the head's rows, longest list first, ties by query block
// (= block_sparse_work_order on the host): rank(qb) = #rows ahead of qb, O(nb²) comparisons per head.
// The shared array is padded by kOrderPad entries: compute-sanitizer showed the unrolled comparison loop
// loading a few entries past nb (results unaffected); the padding keeps those loads in bounds.
constexpr int kOrderPad = 4;

__global__ void order_kernel(int32_t* items, const int32_t* counts, int64_t nb) {
  extern __shared__ int32_t cnt[];  // [nb + kOrderPad]
  const int64_t h = blockIdx.x;
  for (int64_t i = threadIdx.x; i < nb + kOrderPad; i += blockDim.x) cnt[i] = i < nb ? counts[h * nb + i] : 0;
  __syncthreads();
  for (int64_t qb = threadIdx.x; qb < nb; qb += blockDim.x) {
    const int32_t c = cnt[qb];
    int64_t rank = 0;
    for (int64_t o = 0; o < nb; ++o) rank += (cnt[o] > c || (cnt[o] == c && o < qb)) ? 1 : 0;
    items[h * nb + rank] = static_cast<int32_t>(h * nb + qb);
  }
}

// One CTA of 1024 threads: ptr[0] = 0, ptr[r + 1] = counts[0] + … + counts[r].
__global__ void scan_kernel(int64_t* ptr, const int32_t* counts, int64_t rows) {
  __shared__ long long part[1024];
  const int64_t per = (rows + blockDim.x - 1) / blockDim.x;
  const int64_t a = threadIdx.x * per, b = min(rows, a + per);
  long long s = 0;
  for (int64_t r = a; r < b; ++r) s += counts[r];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int off = 1; off < static_cast<int>(blockDim.x); off <<= 1) {
    const long long v = threadIdx.x >= static_cast<unsigned>(off) ? part[threadIdx.x - off] : 0;
    __syncthreads();
    part[threadIdx.x] += v;
    __syncthreads();
  }
  long long run = part[threadIdx.x] - s;  // exclusive prefix of this thread's chunk
  if (threadIdx.x == 0) ptr[0] = 0;
  for (int64_t r = a; r < b; ++r) {
    run += counts[r];
    ptr[r + 1] = run;
  }
}

// One warp per row: the sorted key-block list, compacted with ballots.
__global__ void fill_kernel(int32_t* idx, const int64_t* ptr, const float* map, const float* threshold, int64_t g,
                            int64_t nb, int64_t rows) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const int h = static_cast<int>(row / nb);
  const int64_t qb = row % nb;
  int64_t base = ptr[row];
  for (int64_t kb0 = 0; kb0 < nb; kb0 += 32) {
    const int64_t kb = kb0 + lane;
    const bool on = kb < nb && kept(map, threshold, h, qb, kb, g);
    const unsigned int ballot = __ballot_sync(0xffffffffu, on);
    if (on) idx[base + __popc(ballot & ((1u << lane) - 1u))] = static_cast<int32_t>(kb);
    base += __popc(ballot);
  }
}

template <class T>
Status upload(DeviceBuffer* buf, const std::vector<T>& v) {
  *buf = DeviceBuffer();
  VDIT_ASSIGN(*buf, DeviceBuffer::allocate(std::max<size_t>(16, v.size() * sizeof(T))));
  if (!v.empty()) VDIT_TRY(buf->copy_from_host(v.data(), v.size() * sizeof(T)));
  return Status::ok();
}

Status alloc(DeviceBuffer* buf, size_t bytes) {
  *buf = DeviceBuffer();
  VDIT_ASSIGN(*buf, DeviceBuffer::allocate(std::max<size_t>(16, bytes)));
  return Status::ok();
}

}  // namespace

bool DraftDevicePlanner::prepared_for(const DraftGeometry& geo, int NH, int HD) const {
  return g_ > 0 && geo.F == F_ && geo.h == h_ && geo.w == w_ && geo.block == block_ && geo.text_len == text_len_ &&
         geo.video_begin == video_begin_ && geo.g == g_ && NH == NH_ && HD == HD_;
}

Status DraftDevicePlanner::prepare(const DraftGeometry& geo, int NH, int HD) {
  if (prepared_for(geo, NH, HD)) return Status::ok();
  if (!geo.aligned) {
    return unsupported(strfmt("DraftAttention on the GPU: grid %lldx%lld is not a multiple of the %dx%d pool; padded "
                              "edge regions have no kernel layout yet (use --device cpu)",
                              static_cast<long long>(geo.h), static_cast<long long>(geo.w), geo.ph, geo.pw));
  }
  if (geo.g > kMaxRegions) {
    return unsupported(strfmt("DraftAttention on the GPU: %lld regions (at most %d)", static_cast<long long>(geo.g),
                              kMaxRegions));
  }
  if (HD > kMaxHeadDim || HD < 8 || HD % 8 != 0) {
    return unsupported(strfmt("DraftAttention on the GPU: head dim %d (multiples of 8 up to %d)", HD, kMaxHeadDim));
  }
  g_ = 0;  // not prepared until everything below succeeded
  const int64_t nb = (geo.L + geo.block - 1) / geo.block, rows = static_cast<int64_t>(NH) * nb;
  // The all-full skeleton: per-head lists (capacity NH·nb·nb), the region order as the shared permutation.
  {
    std::vector<uint8_t> all(static_cast<size_t>(rows * nb), kBlockFull);
    VDIT_ASSIGN(BlockLayout skeleton, layout_from_block_states(all, NH, NH, geo.L, geo.block, {}, geo.slots));
    layout_ = DeviceBlockLayout();
    VDIT_ASSIGN(layout_, DeviceBlockLayout::upload(skeleton));
  }
  VDIT_TRY(alloc(&pooled_, sizeof(float) * 2 * geo.g * NH * HD));
  VDIT_TRY(alloc(&map_, sizeof(float) * NH * geo.g * geo.g));
  VDIT_TRY(alloc(&threshold_, sizeof(float) * NH));
  VDIT_TRY(alloc(&counts_, sizeof(int32_t) * rows));
  VDIT_TRY(alloc(&select_state_, sizeof(SelectState) * NH));
  VDIT_TRY(alloc(&select_hist_, sizeof(unsigned int) * kSelBins * NH));
  Hp_ = geo.Hp, Wp_ = geo.Wp, ph_ = geo.ph, pw_ = geo.pw;
  F_ = geo.F, h_ = geo.h, w_ = geo.w, block_ = geo.block, text_len_ = geo.text_len, video_begin_ = geo.video_begin;
  L_ = geo.L, nb_ = nb, NH_ = NH, HD_ = HD;
  g_ = geo.g;
  return Status::ok();
}

Status DraftDevicePlanner::plan(const DeviceQKV& qkv, double sparsity) { return plan_impl(qkv, sparsity, nullptr); }

Status DraftDevicePlanner::plan_impl(const DeviceQKV& qkv, double sparsity, void* const* events) {
  if (g_ <= 0 || layout_.empty()) return invalid_argument("DraftAttention GPU planner: prepare() was not called");
  if (qkv.L != L_ || qkv.NH != NH_ || qkv.HD != HD_) {
    return invalid_argument(strfmt("DraftAttention GPU planner: prepared for L=%lld NH=%d HD=%d, called with L=%lld "
                                   "NH=%d HD=%d",
                                   static_cast<long long>(L_), NH_, HD_, static_cast<long long>(qkv.L), qkv.NH,
                                   qkv.HD));
  }
  auto stream = static_cast<cudaStream_t>(qkv.stream);
  // Stage boundaries for profile(): events[0..5] around pool | map | select | count+order | scan+fill.
  auto mark = [&](int i) {
    if (events) cudaEventRecord(static_cast<cudaEvent_t>(events[i]), stream);
  };
  mark(0);
  float* pooled = pooled_.as<float>();
  const PoolGeometry pg{Hp_, Wp_, h_, w_, video_begin_, ph_, pw_};
  const int64_t ld = static_cast<int64_t>(NH_) * HD_;
  const dim3 pool_grid(static_cast<unsigned>(g_), static_cast<unsigned>((ld / 8 + 255) / 256));
  if (qkv.dtype == DeviceDType::bf16) {
    pool_kernel<<<pool_grid, 256, 0, stream>>>(pooled, static_cast<const __nv_bfloat16*>(qkv.q),
                                               static_cast<const __nv_bfloat16*>(qkv.k), pg, g_, ld);
  } else {
    pool_kernel<<<pool_grid, 256, 0, stream>>>(pooled, static_cast<const __half*>(qkv.q),
                                               static_cast<const __half*>(qkv.k), pg, g_, ld);
  }
  VDIT_CHECK_LAUNCH();
  mark(1);
  // Rows per CTA: up to kMapRows, as many as fit g doubles each in 40 KB of shared memory (+ 8 KB static).
  const int R = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(kMapRows, kMaxRegions / g_)));
  const size_t smem = sizeof(double) * static_cast<size_t>(g_) * R;
  if (smem > 40 * 1024) return internal_error("DraftAttention GPU planner: map rows exceed shared memory");
  const dim3 map_grid(static_cast<unsigned>((g_ + R - 1) / R), static_cast<unsigned>(NH_));
  map_kernel<<<map_grid, 256, smem, stream>>>(map_.as<float>(), pooled, g_, NH_, HD_, R,
                                              1.0 / std::sqrt(static_cast<double>(HD_)));
  VDIT_CHECK_LAUNCH();
  mark(2);
  const int64_t n = g_ * g_, kx = draft_excluded_count(sparsity, n);
  float* threshold = threshold_.as<float>();
  if (kx <= 0 || kx >= n) {
    // Keep everything (-inf) or nothing but the forced blocks (+inf), as the host planner.
    fill_value_kernel<<<1, 1024, 0, stream>>>(threshold, NH_, kx <= 0 ? -INFINITY : INFINITY);
    VDIT_CHECK_LAUNCH();
  } else {
    auto* st = reinterpret_cast<SelectState*>(select_state_.data());
    auto* hist = select_hist_.as<unsigned int>();
    select_init_kernel<<<64, 256, 0, stream>>>(st, hist, NH_, kx);
    VDIT_CHECK_LAUNCH();
    struct Pass {
      unsigned int mask;
      int shift;
      unsigned int digit;
    };
    const Pass passes[3] = {{0u, 21, 0x7FFu}, {0xFFE00000u, 10, 0x7FFu}, {0xFFFFFC00u, 0, 0x3FFu}};
    const dim3 hgrid(static_cast<unsigned>((n + kSelChunk - 1) / kSelChunk), static_cast<unsigned>(NH_));
    for (int p = 0; p < 3; ++p) {
      select_hist_kernel<<<hgrid, 256, 0, stream>>>(hist, st, map_.as<float>(), n, passes[p].mask, passes[p].shift,
                                                    passes[p].digit);
      VDIT_CHECK_LAUNCH();
      select_pick_kernel<<<NH_, 1024, 0, stream>>>(st, hist, threshold, passes[p].shift, p == 2);
      VDIT_CHECK_LAUNCH();
    }
  }
  mark(3);
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  const unsigned warps_grid = static_cast<unsigned>((rows * 32 + 255) / 256);
  count_kernel<<<warps_grid, 256, 0, stream>>>(counts_.as<int32_t>(), map_.as<float>(), threshold_.as<float>(), g_,
                                               nb_, rows);
  VDIT_CHECK_LAUNCH();
  // The skeleton's lists are sized for every block of every row, so any plan fits (see the header).
  order_kernel<<<NH_, 256, sizeof(int32_t) * static_cast<size_t>(nb_ + kOrderPad), stream>>>(
      const_cast<int32_t*>(layout_.items()), counts_.as<int32_t>(), nb_);
  VDIT_CHECK_LAUNCH();
  mark(4);
  int64_t* full_ptr = const_cast<int64_t*>(layout_.full_ptr());
  int32_t* full_idx = const_cast<int32_t*>(layout_.full_idx());
  scan_kernel<<<1, 1024, 0, stream>>>(full_ptr, counts_.as<int32_t>(), rows);
  VDIT_CHECK_LAUNCH();
  fill_kernel<<<warps_grid, 256, 0, stream>>>(full_idx, full_ptr, map_.as<float>(), threshold_.as<float>(), g_, nb_,
                                              rows);
  VDIT_CHECK_LAUNCH();
  mark(5);
  return Status::ok();
}

Result<std::vector<double>> DraftDevicePlanner::profile(const DeviceQKV& qkv, double sparsity, int reps) {
  cudaEvent_t ev[6];
  for (auto& e : ev) VDIT_CHECK(cudaEventCreate(&e));
  auto destroy = [&] {
    for (auto& e : ev) cudaEventDestroy(e);
  };
  std::vector<double> ms(5, 0.0);
  for (int r = 0; r < reps; ++r) {
    void* raw[6] = {ev[0], ev[1], ev[2], ev[3], ev[4], ev[5]};
    const Status st = plan_impl(qkv, sparsity, raw);
    if (!st.is_ok()) {
      destroy();
      return st;
    }
    if (cudaEventSynchronize(ev[5]) != cudaSuccess) {
      destroy();
      return internal_error("DraftAttention GPU planner: profiling failed");
    }
    for (int i = 0; i < 5; ++i) {
      float t = 0;
      cudaEventElapsedTime(&t, ev[i], ev[i + 1]);
      ms[i] += t / reps;
    }
  }
  destroy();
  return ms;
}

Status DraftDevicePlanner::download(std::vector<float>* map, std::vector<float>* threshold,
                                    std::vector<int64_t>* full_ptr, std::vector<int32_t>* full_idx,
                                    void* stream) const {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  if (map) {
    map->resize(static_cast<size_t>(NH_ * g_ * g_));
    VDIT_TRY(map_.copy_to_host(map->data(), map->size() * sizeof(float)));
  }
  if (threshold) {
    threshold->resize(static_cast<size_t>(NH_));
    VDIT_TRY(threshold_.copy_to_host(threshold->data(), threshold->size() * sizeof(float)));
  }
  std::vector<int64_t> ptr(static_cast<size_t>(rows + 1));
  VDIT_CHECK(cudaMemcpy(ptr.data(), layout_.full_ptr(), ptr.size() * sizeof(int64_t), cudaMemcpyDeviceToHost));
  if (full_idx) {
    full_idx->resize(static_cast<size_t>(ptr.back()));
    if (ptr.back() > 0) {
      VDIT_CHECK(cudaMemcpy(full_idx->data(), layout_.full_idx(), full_idx->size() * sizeof(int32_t),
                            cudaMemcpyDeviceToHost));
    }
  }
  if (full_ptr) *full_ptr = std::move(ptr);
  return Status::ok();
}

Result<double> DraftDevicePlanner::block_density(void* stream) const {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  int64_t total = 0;
  VDIT_CHECK(cudaMemcpy(&total, layout_.full_ptr() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  return static_cast<double>(total) / (static_cast<double>(rows) * static_cast<double>(nb_));
}

}  // namespace vdit::attn
