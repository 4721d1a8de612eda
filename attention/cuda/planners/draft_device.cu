// Host side of draft_device.h; the kernels are in draft_device_map.cuh (pool, map) and draft_device_select.cuh
// (select + lists). Per call, three launches and no host synchronization:
//   pool      region means of q/k (clipped edge regions), and clears the select scratch
//   map       softmax draft map per head (scores on FP64 tensor cores for HD 64/128), and the first
//             radix-select histogram (top 11 bits)
//   select    one cooperative launch, NH × S CTAs (S ≈ g² / 2048, as many as fit resident): two more radix
//             passes (11 + 10 bits, a grid barrier after each) give the per-head threshold; row counts (full /
//             part blocks), a grid barrier, then the CSR pointers (per-head totals + in-CTA scans), the
//             ballot-compacted lists and the launch order
// H200, 12 heads (Timing.DraftWanShapes): Wan 480p (336 regions, padded) plans in ~0.14 ms = 2.1 % of its
// 6.4 ms of attention (pool 75 µs: reads all of q and k; map 33 µs; select + lists 38 µs); the 12-launch
// planner before this one took 0.24 ms at 512x768 (7.4 %).
// Shapes: q/k [L, NH, HD] bf16|f16; pooled [2, g, NH, HD] f32; map [NH, g, g] f32.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/cuda/planners/draft_device.h"
#include "attention/cuda/planners/draft_device_map.cuh"
#include "attention/cuda/planners/draft_device_select.cuh"
#include "dit/core/check_cuda.h"

namespace vdit::attn {

bool DraftDevicePlanner::prepared_for(const DraftGeometry& geo, int NH, int HD) const {
  return g_ > 0 && geo.F == F_ && geo.h == h_ && geo.w == w_ && geo.ph == ph_ && geo.pw == pw_ &&
         geo.block == block_ && geo.text_len == text_len_ && geo.video_begin == video_begin_ && geo.g == g_ &&
         NH == NH_ && HD == HD_;
}

Status DraftDevicePlanner::prepare(const DraftGeometry& geo, int NH, int HD) {
  if (prepared_for(geo, NH, HD)) return Status::ok();
  if (geo.g < 1 || geo.g > kMaxRegions) {
    return unsupported(strfmt("DraftAttention on the GPU: %lld regions (1 to %d)", static_cast<long long>(geo.g),
                              kMaxRegions));
  }
  if (HD > kMaxHeadDim || HD < 8 || HD % 8 != 0) {
    return unsupported(strfmt("DraftAttention on the GPU: head dim %d (multiples of 8 up to %d)", HD, kMaxHeadDim));
  }
  if (NH < 1) return invalid_argument("DraftAttention on the GPU: no heads");
  const int64_t Lp = static_cast<int64_t>(geo.slots.size()), B = geo.block;
  if (Lp < geo.L || Lp >= (int64_t{1} << 30)) {
    return unsupported(strfmt("DraftAttention on the GPU: %lld positions for %lld tokens", static_cast<long long>(Lp),
                              static_cast<long long>(geo.L)));
  }
  g_ = 0;  // not prepared until everything below succeeded
  const int64_t nb = (Lp + B - 1) / B, rows = static_cast<int64_t>(NH) * nb;
  std::vector<uint8_t> pad(static_cast<size_t>(nb), 0);
  std::vector<int32_t> real(static_cast<size_t>(nb), 0);
  for (int64_t n = 0; n < Lp; ++n) {
    if (geo.slots[static_cast<size_t>(n)] < 0) {
      pad[static_cast<size_t>(n / B)] = 1;
    } else {
      ++real[static_cast<size_t>(n / B)];
    }
  }
  int64_t padded = 0;
  for (uint8_t x : pad) padded += x;
  VDIT_TRY(upload(&slots_, geo.slots));
  VDIT_TRY(upload(&block_pad_, pad));
  VDIT_TRY(reallocate(&pooled_, sizeof(float) * 2 * geo.g * NH * HD));
  VDIT_TRY(reallocate(&map_, sizeof(float) * NH * geo.g * geo.g));
  VDIT_TRY(reallocate(&threshold_, sizeof(float) * NH));
  VDIT_TRY(reallocate(&scratch_, scratch_bytes(NH)));
  VDIT_TRY(reallocate(&counts_, sizeof(int2) * rows));
  VDIT_TRY(reallocate(&full_ptr_, sizeof(int64_t) * (rows + 1)));
  VDIT_TRY(reallocate(&part_ptr_, sizeof(int64_t) * (rows + 1)));
  // Capacity: every block of every row (a row lists each key block at most once, in one of the lists).
  VDIT_TRY(reallocate(&full_idx_, sizeof(int32_t) * rows * (nb - padded)));
  VDIT_TRY(reallocate(&part_idx_, sizeof(int32_t) * rows * padded));
  VDIT_TRY(reallocate(&items_, sizeof(int32_t) * rows));
  VDIT_TRY(reallocate(&stamps_, sizeof(long long) * 8));
  // The cooperative launch needs all of its CTAs resident at once.
  int dev = 0, sms = 0, coop = 0, per_sm = 0;
  VDIT_CHECK(cudaGetDevice(&dev));
  VDIT_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  VDIT_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  if (!coop) return unsupported("DraftAttention on the GPU: the device does not support cooperative launches");
  const size_t smem = select_smem_bytes(nb);
  if (smem > 48 * 1024) {
    VDIT_CHECK(cudaFuncSetAttribute(select_lists_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  }
  VDIT_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, select_lists_kernel, kSelThreads, smem));
  const int64_t resident = static_cast<int64_t>(per_sm) * sms;
  if (resident < NH) {
    return unsupported(strfmt("DraftAttention on the GPU: %d heads but only %lld planner CTAs fit on the device", NH,
                              static_cast<long long>(resident)));
  }
  const int64_t want = (geo.g * geo.g + kSelEntriesPerCta - 1) / kSelEntriesPerCta;
  select_ctas_ = static_cast<int>(std::clamp<int64_t>(want, 1, resident / NH));
  block_real_ = std::move(real);
  Hp_ = geo.Hp, Wp_ = geo.Wp, ph_ = geo.ph, pw_ = geo.pw;
  F_ = geo.F, h_ = geo.h, w_ = geo.w, block_ = geo.block, text_len_ = geo.text_len, video_begin_ = geo.video_begin;
  L_ = geo.L, Lp_ = Lp, nb_ = nb, NH_ = NH, HD_ = HD, aligned_ = padded == 0;
  g_ = geo.g;
  return Status::ok();
}

Status DraftDevicePlanner::plan(const DeviceQKV& qkv, double sparsity) { return plan_impl(qkv, sparsity, nullptr); }

Status DraftDevicePlanner::plan_impl(const DeviceQKV& qkv, double sparsity, void* const* events) {
  if (g_ <= 0) return invalid_argument("DraftAttention GPU planner: prepare() was not called");
  if (qkv.L != L_ || qkv.NH != NH_ || qkv.HD != HD_) {
    return invalid_argument(strfmt("DraftAttention GPU planner: prepared for L=%lld NH=%d HD=%d, called with L=%lld "
                                   "NH=%d HD=%d",
                                   static_cast<long long>(L_), NH_, HD_, static_cast<long long>(qkv.L), qkv.NH,
                                   qkv.HD));
  }
  auto stream = static_cast<cudaStream_t>(qkv.stream);
  // Stage boundaries for profile(): events[0..3] around pool | map | select + lists.
  auto mark = [&](int i) {
    if (events) cudaEventRecord(static_cast<cudaEvent_t>(events[i]), stream);
  };
  const int64_t n = g_ * g_, kx = draft_excluded_count(sparsity, n);
  const int mode = kx <= 0 ? 1 : kx >= n ? 2 : 0;  // 1: keep everything (-inf), 2: only the forced blocks (+inf)
  auto* hist = scratch_.as<uint32_t>();
  auto* tot = reinterpret_cast<unsigned long long*>(hist + scratch_hist_words(NH_));
  mark(0);
  float* pooled = pooled_.as<float>();
  const PoolGeometry pg{Hp_, Wp_, h_, w_, video_begin_, ph_, pw_};
  const int64_t ld = static_cast<int64_t>(NH_) * HD_;
  const dim3 pool_grid(static_cast<unsigned>(g_),
                       static_cast<unsigned>((ld / 8 + kPoolChannelGroups - 1) / kPoolChannelGroups));
  const int64_t words = static_cast<int64_t>(scratch_bytes(NH_) / sizeof(uint32_t));
  if (qkv.dtype == DeviceDType::bf16) {
    pool_kernel<<<pool_grid, kPoolChannelGroups * kPoolRowGroups, 0, stream>>>(
        pooled, static_cast<const __nv_bfloat16*>(qkv.q),
                                               static_cast<const __nv_bfloat16*>(qkv.k), pg, g_, ld, hist, words);
  } else {
    pool_kernel<<<pool_grid, kPoolChannelGroups * kPoolRowGroups, 0, stream>>>(
        pooled, static_cast<const __half*>(qkv.q),
                                               static_cast<const __half*>(qkv.k), pg, g_, ld, hist, words);
  }
  VDIT_CHECK_LAUNCH();
  mark(1);
  VDIT_TRY(launch_map_any(map_.as<float>(), mode == 0 ? hist : nullptr, pooled, g_, NH_, HD_, stream));
  mark(2);
  SelectArgs a{};
  a.map = map_.as<float>();
  a.g = g_;
  a.nb = nb_;
  a.NH = NH_;
  a.S = select_ctas_;
  a.mode = mode;
  a.kx = kx;
  a.hist = hist;
  a.tot = tot;
  a.threshold = threshold_.as<float>();
  a.block_pad = block_pad_.as<uint8_t>();
  a.counts = counts_.as<int2>();
  a.full_ptr = full_ptr_.as<int64_t>();
  a.part_ptr = part_ptr_.as<int64_t>();
  a.full_idx = full_idx_.as<int32_t>();
  a.part_idx = part_idx_.as<int32_t>();
  a.items = items_.as<int32_t>();
  a.stamps = events ? stamps_.as<long long>() : nullptr;
  void* args[] = {&a};
  VDIT_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(select_lists_kernel),
                                         dim3(static_cast<unsigned>(NH_ * select_ctas_)), dim3(kSelThreads), args,
                                         select_smem_bytes(nb_), stream));
  VDIT_CHECK_LAUNCH();
  mark(3);
  return Status::ok();
}

DeviceGatheredView DraftDevicePlanner::view() const {
  DeviceGatheredView v;
  v.block = block_;
  v.positions = Lp_;
  v.slots = slots_.as<int32_t>();
  v.head_shared = false;
  v.full_ptr = full_ptr_.as<int64_t>();
  v.full_idx = full_idx_.as<int32_t>();
  v.part_ptr = part_ptr_.as<int64_t>();
  v.part_idx = part_idx_.as<int32_t>();
  v.items = items_.as<int32_t>();
  return v;
}

Result<std::vector<std::pair<std::string, double>>> DraftDevicePlanner::profile(const DeviceQKV& qkv, double sparsity,
                                                                                 int reps) {
  constexpr int kEvents = 4;
  cudaEvent_t ev[kEvents];
  for (auto& e : ev) VDIT_CHECK(cudaEventCreate(&e));
  auto destroy = [&] {
    for (auto& e : ev) cudaEventDestroy(e);
  };
  std::vector<double> ms(kEvents - 1, 0.0), cycles(4, 0.0);
  int dev = 0, khz = 0;
  VDIT_CHECK(cudaGetDevice(&dev));
  VDIT_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
  for (int r = 0; r < reps; ++r) {
    void* raw[kEvents] = {ev[0], ev[1], ev[2], ev[3]};
    const Status st = plan_impl(qkv, sparsity, raw);
    if (!st.is_ok()) {
      destroy();
      return st;
    }
    if (cudaEventSynchronize(ev[kEvents - 1]) != cudaSuccess) {
      destroy();
      return internal_error("DraftAttention GPU planner: profiling failed");
    }
    for (int i = 0; i + 1 < kEvents; ++i) {
      float t = 0;
      cudaEventElapsedTime(&t, ev[i], ev[i + 1]);
      ms[static_cast<size_t>(i)] += t / reps;
    }
    long long stamp[5] = {};
    if (stamps_.copy_to_host(stamp, sizeof(stamp)).is_ok()) {
      for (int i = 0; i < 4; ++i) {
        cycles[static_cast<size_t>(i)] += static_cast<double>(stamp[i + 1] - stamp[i]) / reps;
      }
    }
  }
  destroy();
  // Inside the select + lists launch, from CTA 0's clock (SM cycles at the nominal clock rate; approximate).
  const double to_ms = khz > 0 ? 1.0 / khz : 0.0;
  return std::vector<std::pair<std::string, double>>{
      {"pool", ms[0]},
      {"map+hist", ms[1]},
      {"select+lists", ms[2]},
      {"[select pass 2 + sync]", cycles[0] * to_ms},
      {"[pass 3 + sync]", cycles[1] * to_ms},
      {"[counts + sync]", cycles[2] * to_ms},
      {"[scan + fill + order]", cycles[3] * to_ms}};
}

Status DraftDevicePlanner::download(std::vector<float>* map, std::vector<float>* threshold, Lists* lists,
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
  if (lists) {
    lists->full_ptr.resize(static_cast<size_t>(rows + 1));
    lists->part_ptr.resize(static_cast<size_t>(rows + 1));
    VDIT_TRY(full_ptr_.copy_to_host(lists->full_ptr.data(), lists->full_ptr.size() * sizeof(int64_t)));
    VDIT_TRY(part_ptr_.copy_to_host(lists->part_ptr.data(), lists->part_ptr.size() * sizeof(int64_t)));
    lists->full_idx.resize(static_cast<size_t>(lists->full_ptr.back()));
    lists->part_idx.resize(static_cast<size_t>(lists->part_ptr.back()));
    if (!lists->full_idx.empty()) {
      VDIT_TRY(full_idx_.copy_to_host(lists->full_idx.data(), lists->full_idx.size() * sizeof(int32_t)));
    }
    if (!lists->part_idx.empty()) {
      VDIT_TRY(part_idx_.copy_to_host(lists->part_idx.data(), lists->part_idx.size() * sizeof(int32_t)));
    }
    lists->items.resize(static_cast<size_t>(rows));
    VDIT_TRY(items_.copy_to_host(lists->items.data(), lists->items.size() * sizeof(int32_t)));
  }
  return Status::ok();
}

Result<double> DraftDevicePlanner::block_density(void* stream) const {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  int64_t f = 0, p = 0;
  VDIT_CHECK(cudaMemcpy(&f, full_ptr_.as<int64_t>() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  VDIT_CHECK(cudaMemcpy(&p, part_ptr_.as<int64_t>() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  return static_cast<double>(f + p) / (static_cast<double>(rows) * static_cast<double>(nb_));
}

Result<double> DraftDevicePlanner::density(void* stream) const {
  if (aligned_) return block_density(stream);
  Lists l;
  VDIT_TRY(download(nullptr, nullptr, &l, stream));
  double pairs = 0;
  for (int64_t r = 0; r < static_cast<int64_t>(NH_) * nb_; ++r) {
    const double rq = block_real_[static_cast<size_t>(r % nb_)];
    for (int pass = 0; pass < 2; ++pass) {
      const auto& ptr = pass == 0 ? l.full_ptr : l.part_ptr;
      const auto& idx = pass == 0 ? l.full_idx : l.part_idx;
      for (int64_t e = ptr[static_cast<size_t>(r)]; e < ptr[static_cast<size_t>(r + 1)]; ++e) {
        pairs += rq * block_real_[static_cast<size_t>(idx[static_cast<size_t>(e)])];
      }
    }
  }
  return pairs / (static_cast<double>(NH_) * static_cast<double>(L_) * static_cast<double>(L_));
}

}  // namespace vdit::attn
