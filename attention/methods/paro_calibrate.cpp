// PARO calibration from recorded dense q/k (see paro_calibrate.h). The scaled scores of a chunk of query rows
// come from one f32 GEMM (ops::sgemm), the softmax and the block sums are taken in double; the cost is that of
// one dense attention per head and call, plus six block-index scatters per row in the order pass.
#include "attention/methods/paro_calibrate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attention/dense_cpu.h"
#include "attention/methods/paro_orders.h"
#include "dit/core/parallel.h"
#include "dit/ops/gemm.h"

namespace vdit::attn {
namespace {

// Score elements per GEMM ([rows, L] f32, 64 MB): the whole head at the built-in model's 1280 tokens, chunks of
// rows at Wan sizes. Few large GEMMs also keep BLAS's and the loop's thread pools from trading the cores.
constexpr int64_t kScoreElems = int64_t{1} << 24;

// Sum of the `k` largest entries of `v`.
double top_sum(std::vector<double> v, int64_t k) {
  k = std::min<int64_t>(k, static_cast<int64_t>(v.size()));
  if (k <= 0) return 0.0;
  std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), std::greater<double>());
  return std::accumulate(v.begin(), v.begin() + k, 0.0);
}

}  // namespace

ParoCalibrator::ParoCalibrator(const ParoCalibrationOptions& o) : opt_(o) {}

Result<std::unique_ptr<ParoCalibrator>> ParoCalibrator::create(const ParoCalibrationOptions& o) {
  if (o.grid.f <= 0 || o.grid.h <= 0 || o.grid.w <= 0) {
    return invalid_argument("paro calibration: the latent grid F,H,W must be positive");
  }
  if (o.block != 64 && o.block != 128) {
    return invalid_argument(strfmt("paro calibration: block %d is not supported (64 or 128)", o.block));
  }
  if (!(o.density > 0.0 && o.density <= 1.0)) {
    return invalid_argument(strfmt("paro calibration: density %g must be in (0, 1]", o.density));
  }
  if (o.layers < 1 || o.heads < 1 || o.groups < 1 || o.num_steps < 1 || o.text_len < 0) {
    return invalid_argument(strfmt("paro calibration: %d layers, %d heads, %d groups, %d steps, %lld text tokens: "
                                   "counts must be >= 1 (text >= 0)",
                                   o.layers, o.heads, o.groups, o.num_steps, static_cast<long long>(o.text_len)));
  }
  if (o.groups > o.num_steps) {
    return invalid_argument(strfmt("paro calibration: %d step groups for %d steps leaves groups without steps",
                                   o.groups, o.num_steps));
  }
  std::unique_ptr<ParoCalibrator> c(new ParoCalibrator(o));
  const int64_t Lv = o.grid.tokens();
  c->nq_ = (Lv + o.block - 1) / o.block;
  // ⌈density·nQ²⌉ blocks per mask (the small slack keeps exact products such as 0.5·64 from rounding up).
  const double blocks = static_cast<double>(c->nq_ * c->nq_);
  c->keep_ = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.density * blocks - 1e-9)));
  c->blk_.resize(kParoOrders);
  for (int ord = 0; ord < kParoOrders; ++ord) {
    std::vector<int32_t> pos = paro_video_pos(o.grid, ord);
    for (auto& p : pos) p /= o.block;
    c->blk_[ord] = std::move(pos);
  }
  c->order_score_.assign(static_cast<size_t>(o.layers) * o.heads * kParoOrders, 0.0);
  c->order_calls_.assign(static_cast<size_t>(o.layers), 0);
  c->mask_calls_.assign(static_cast<size_t>(o.groups) * o.layers, 0);
  return c;
}

Status ParoCalibrator::check_call(const ParoCall& c) const {
  const int64_t L = opt_.grid.tokens() + opt_.text_len;
  if (!c.q || !c.k || c.L != L || c.NH != opt_.heads || c.HD <= 0) {
    return invalid_argument(strfmt("paro calibration: a call with L=%lld, %d heads, head dim %d; expected L=%lld "
                                   "(grid + text) and %d heads",
                                   static_cast<long long>(c.L), c.NH, c.HD, static_cast<long long>(L), opt_.heads));
  }
  if (c.layer < 0 || c.layer >= opt_.layers || c.step < 0 || c.step >= opt_.num_steps) {
    return invalid_argument(strfmt("paro calibration: call at step %d, layer %d is outside %d steps x %d layers",
                                   c.step, c.layer, opt_.num_steps, opt_.layers));
  }
  return Status::ok();
}

void ParoCalibrator::block_mass(std::vector<std::vector<double>>* dst, const ParoCall& c, int h,
                                const std::vector<int>& orders) const {
  const int64_t L = c.L, Lv = opt_.grid.tokens(), vb = opt_.text_first ? opt_.text_len : 0, nq2 = nq_ * nq_;
  const int HD = c.HD;
  const int64_t ld = static_cast<int64_t>(c.NH) * HD;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HD)));
  std::vector<float> kh(static_cast<size_t>(L * HD));  // [L, HD] keys of head h
  for (int64_t j = 0; j < L; ++j) std::copy_n(c.k + j * ld + static_cast<int64_t>(h) * HD, HD, kh.data() + j * HD);
  const int T = std::max(1, num_threads());
  std::vector<std::vector<double>> acc(static_cast<size_t>(T), std::vector<double>(orders.size() * nq2, 0.0));
  const int64_t chunk = std::max<int64_t>(1, std::min(Lv, kScoreElems / L));
  std::vector<float> scores(static_cast<size_t>(chunk * L));  // [chunk, L] scaled q·k
  for (int64_t m0 = 0; m0 < Lv; m0 += chunk) {  // video query rows in chunks
    const int64_t rows = std::min(chunk, Lv - m0);
    ops::sgemm(false, true, rows, L, HD, scale, c.q + (vb + m0) * ld + static_cast<int64_t>(h) * HD, ld, kh.data(),
               HD, 0.0f, scores.data(), L);
    parallel_for(T, [&](int64_t t) {
      std::vector<double>& a = acc[static_cast<size_t>(t)];
      std::vector<double> p(static_cast<size_t>(L));
      for (int64_t r = rows * t / T; r < rows * (t + 1) / T; ++r) {
        const float* sr = scores.data() + r * L;
        const float mx = *std::max_element(sr, sr + L);
        double sum = 0;  // f32 exponentials (arguments <= 0), double sums
        for (int64_t j = 0; j < L; ++j) sum += (p[static_cast<size_t>(j)] = std::exp(sr[j] - mx));
        const double inv = 1.0 / sum;
        const int64_t m = m0 + r;
        for (size_t oi = 0; oi < orders.size(); ++oi) {
          const int32_t* blk = blk_[static_cast<size_t>(orders[oi])].data();
          double* row = a.data() + oi * static_cast<size_t>(nq2) + static_cast<int64_t>(blk[m]) * nq_;  // [nq]
          for (int64_t n = 0; n < Lv; ++n) row[blk[n]] += p[static_cast<size_t>(vb + n)] * inv;
        }
      }
    });
  }
  for (size_t oi = 0; oi < orders.size(); ++oi) {
    std::vector<double>& d = (*dst)[oi];
    d.assign(static_cast<size_t>(nq2), 0.0);
    for (const auto& a : acc)
      for (int64_t e = 0; e < nq2; ++e) d[e] += a[oi * static_cast<size_t>(nq2) + e];
  }
}

Status ParoCalibrator::add_order_call(const ParoCall& c) {
  if (orders_chosen_) return invalid_argument("paro calibration: orders were already chosen (pass 1 is over)");
  VDIT_TRY(check_call(c));
  std::vector<int> all(kParoOrders);
  std::iota(all.begin(), all.end(), 0);
  std::vector<std::vector<double>> mass(kParoOrders);
  for (int h = 0; h < opt_.heads; ++h) {
    block_mass(&mass, c, h, all);
    for (int o = 0; o < kParoOrders; ++o) {
      const double total = std::accumulate(mass[o].begin(), mass[o].end(), 0.0);
      const double share = total > 0 ? top_sum(mass[o], keep_) / total : 0.0;
      order_score_[(static_cast<size_t>(c.layer) * opt_.heads + h) * kParoOrders + o] += share;
    }
  }
  ++order_calls_[static_cast<size_t>(c.layer)];
  return Status::ok();
}

Status ParoCalibrator::choose_orders() {
  if (orders_chosen_) return Status::ok();
  order_.assign(static_cast<size_t>(opt_.layers) * opt_.heads, 0);
  for (int l = 0; l < opt_.layers; ++l) {
    const int64_t n = order_calls_[static_cast<size_t>(l)];
    if (n == 0) return invalid_argument(strfmt("paro calibration: no calibration call for layer %d", l));
    for (int h = 0; h < opt_.heads; ++h) {
      double* s = order_score_.data() + (static_cast<size_t>(l) * opt_.heads + h) * kParoOrders;
      int best = 0;
      for (int o = 0; o < kParoOrders; ++o) {
        s[o] /= static_cast<double>(n);
        if (s[o] > s[best]) best = o;  // ties keep the lower order (FHW first)
      }
      order_[static_cast<size_t>(l) * opt_.heads + h] = best;
    }
  }
  mass_.assign(static_cast<size_t>(opt_.groups) * opt_.layers * opt_.heads * static_cast<size_t>(nq_ * nq_), 0.f);
  orders_chosen_ = true;
  return Status::ok();
}

Status ParoCalibrator::add_mask_call(const ParoCall& c) {
  if (!orders_chosen_) return invalid_argument("paro calibration: choose the orders (end pass 1) before pass 2");
  VDIT_TRY(check_call(c));
  const int g = paro_step_group(c.step, opt_.num_steps, opt_.groups);
  const size_t nq2 = static_cast<size_t>(nq_ * nq_);
  std::vector<std::vector<double>> mass(1);
  for (int h = 0; h < opt_.heads; ++h) {
    block_mass(&mass, c, h, {order_[static_cast<size_t>(c.layer) * opt_.heads + h]});
    float* dst = mass_.data() + ((static_cast<size_t>(g) * opt_.layers + c.layer) * opt_.heads + h) * nq2;
    for (size_t e = 0; e < nq2; ++e) dst[e] += static_cast<float>(mass[0][e]);
  }
  ++mask_calls_[static_cast<size_t>(g) * opt_.layers + c.layer];
  return Status::ok();
}

Result<ParoPlan> ParoCalibrator::finish() const {
  if (!orders_chosen_) return invalid_argument("paro calibration: no orders chosen yet");
  ParoPlan p;
  p.groups = opt_.groups;
  p.layers = opt_.layers;
  p.heads = opt_.heads;
  p.block = opt_.block;
  p.nq = nq_;
  p.grid = opt_.grid;
  p.text_len = opt_.text_len;
  p.steps = opt_.num_steps;
  p.order = order_;
  const size_t nq2 = static_cast<size_t>(nq_ * nq_);
  VDIT_ASSIGN(p.block_mask, Tensor::zeros(DType::u8, {opt_.groups, opt_.layers, opt_.heads, nq_, nq_}));
  uint8_t* out = p.block_mask.data<uint8_t>();
  double kept = 0;
  for (int g = 0; g < opt_.groups; ++g) {
    for (int l = 0; l < opt_.layers; ++l) {
      if (mask_calls_[static_cast<size_t>(g) * opt_.layers + l] == 0) {
        return invalid_argument(strfmt("paro calibration: step group %d of layer %d has no calibration call (steps "
                                       "[%d, %d) of %d map to it); record those steps or use fewer groups",
                                       g, l, (g * opt_.num_steps + opt_.groups - 1) / opt_.groups,
                                       ((g + 1) * opt_.num_steps + opt_.groups - 1) / opt_.groups, opt_.num_steps));
      }
      for (int h = 0; h < opt_.heads; ++h) {
        const size_t base = ((static_cast<size_t>(g) * opt_.layers + l) * opt_.heads + h) * nq2;
        const float* m = mass_.data() + base;
        uint8_t* mk = out + base;
        int64_t count = 0;
        for (int64_t i = 0; i < nq_; ++i)  // forced: diagonal, last row, last column
          for (int64_t j = 0; j < nq_; ++j)
            if (i == j || i == nq_ - 1 || j == nq_ - 1) mk[i * nq_ + j] = 1, ++count;
        std::vector<int64_t> rest;
        for (int64_t e = 0; e < static_cast<int64_t>(nq2); ++e)
          if (!mk[e]) rest.push_back(e);
        const int64_t take = std::min<int64_t>(std::max<int64_t>(keep_ - count, 0), static_cast<int64_t>(rest.size()));
        if (take > 0) {
          // Heaviest blocks first; ties go to the lower index.
          std::partial_sort(rest.begin(), rest.begin() + take, rest.end(),
                            [&](int64_t a, int64_t b) { return m[a] > m[b] || (m[a] == m[b] && a < b); });
          for (int64_t i = 0; i < take; ++i) mk[rest[static_cast<size_t>(i)]] = 1;
        }
        kept += static_cast<double>(count + take);
      }
    }
  }
  p.metadata["density"] = strfmt("%.6g", opt_.density);
  p.metadata["achieved_density"] =
      strfmt("%.6g", kept / (static_cast<double>(opt_.groups) * opt_.layers * opt_.heads * static_cast<double>(nq2)));
  p.metadata["text_first"] = opt_.text_first ? "true" : "false";
  p.metadata["source"] = "vdit calibrate paro (block concentration order choice, top block mass masks)";
  return p;
}

Status ParoCalibrationAttention::forward(const AttentionCall& call, const float* q, const float* k, const float* v,
                                         int64_t L, int NH, int HD, float* out) {
  const ParoCalibrationOptions& o = calibrator_->options();
  if (call.num_steps != o.num_steps || call.num_layers != o.layers || call.text_len != o.text_len ||
      call.grid.f != o.grid.f || call.grid.h != o.grid.h || call.grid.w != o.grid.w) {
    return invalid_argument(strfmt("paro calibration: the run has %d steps, %d layers, grid %lldx%lldx%lld + %lld "
                                   "text tokens; the calibration was set up for %d steps, %d layers, grid "
                                   "%lldx%lldx%lld + %lld",
                                   call.num_steps, call.num_layers, (long long)call.grid.f, (long long)call.grid.h,
                                   (long long)call.grid.w, (long long)call.text_len, o.num_steps, o.layers,
                                   (long long)o.grid.f, (long long)o.grid.h, (long long)o.grid.w,
                                   (long long)o.text_len));
  }
  dense_attention_cpu(out, nullptr, q, k, v, L, L, NH, HD, 1.0f / std::sqrt(static_cast<float>(HD)));
  return calibrator_->add_call({call.step, call.layer, q, k, L, NH, HD});
}

Result<ParoPlan> calibrate_paro_plan(const ParoCalibrationOptions& options,
                                     const std::function<Status(const ParoCallSink&)>& replay) {
  VDIT_ASSIGN(std::unique_ptr<ParoCalibrator> cal, ParoCalibrator::create(options));
  VDIT_TRY(replay([&](const ParoCall& c) { return cal->add_order_call(c); }).with_context("paro calibration, pass 1"));
  VDIT_TRY(cal->choose_orders());
  VDIT_TRY(replay([&](const ParoCall& c) { return cal->add_mask_call(c); }).with_context("paro calibration, pass 2"));
  return cal->finish();
}

}  // namespace vdit::attn
