// Re-ttention (methods.md §5): a static token band (flat or per-frame) with the softmax statistics reshaped
// from a cached full step. Per (layer, branch): at caching steps the output is dense and
// ρ = exp(LSE_band − LSE_full), R = O_full − ρ·O_band are stored; at sparse steps O = ρ·O_band + R (kernel
// epilogue), then ρ ← ρ + λ, clamped to ≤ 1 (the reference omits the clamp; `clamp_rho: false` drops it).
// R is kept in head space [L, NH, HD] (before W_o; equivalent because W_o is linear). Not here: the
// CogVideoX text/video pair caching of the reference (text rows and columns are simply unrestricted).
// GPU (forward_device): the band layout is uploaded once per shape; ρ [NH, L] and R [L, NH, HD] (f32) stay on
// the device per (layer, branch); caching steps run cuDNN dense + the band kernel, sparse steps the band
// kernel with its ρ/R epilogue. At Wan 14B 720p R is 1.5 GB per (layer, branch): 80 pairs do not fit.
#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "attention/block_sparse_cpu.h"
#include "attention/cuda/planners/rettention_device.h"
#include "attention/dense_cpu.h"
#include "attention/methods/method.h"

namespace vdit::attn {
namespace {

struct RettentionState {
  int64_t L = 0;
  int NH = 0, HD = 0;
  std::vector<float> rho;       // [NH, L]
  std::vector<float> residual;  // [L, NH, HD]
};

// The same state on the GPU (forward_device).
struct DeviceRettentionState {
  int64_t L = 0;
  int NH = 0, HD = 0;
  DeviceBuffer rho;       // [NH, L] f32
  DeviceBuffer residual;  // [L, NH, HD] f32
};

class RettentionMethod : public AttentionMethod {
 public:
  nlohmann::json preset(const ModelInfo& model) const override {
    // No published Wan configuration (methods.md §7); derived from the CogVideoX setting: a per-frame band
    // keeping 3.125% of a frame, the first 30% of steps full, a caching full step every 5, λ = 0.04.
    const int steps = model.num_steps > 0 ? model.num_steps : 50;
    return {{"window_fraction", 0.03125}, {"band", "frame"},     {"full_steps", static_cast<int>(std::lround(0.3 * steps))},
            {"cache_every", 5},           {"lambda", 0.04}};
  }

  void reset() override {
    states_.clear();
    device_states_.clear();
  }

  bool static_layout() const override { return true; }

 protected:
  Status configure_method(ConfigReader& cfg) override {
    const int given = (cfg.has("half_width") ? 1 : 0) + (cfg.has("frame_half_width") ? 1 : 0);
    if (given > 1) {
      return invalid_argument("rettention config: give either \"half_width\" (flat band) or \"frame_half_width\" "
                              "(per-frame band), not both");
    }
    if (cfg.has("half_width")) {
      mode_ = "flat";
      VDIT_TRY(cfg.get_int64("half_width", &half_width_, 0, int64_t{1} << 40));
    } else if (cfg.has("frame_half_width")) {
      mode_ = "frame";
      VDIT_TRY(cfg.get_int64("frame_half_width", &half_width_, 0, int64_t{1} << 40));
    }
    if (given == 1) {
      // A preset's fractional window is superseded by an explicit width.
      cfg.accept("window_fraction");
      cfg.accept("band");
      window_fraction_ = 0;
    } else {
      VDIT_TRY(cfg.get_double("window_fraction", &window_fraction_, 0.0, 1.0, /*lo_open=*/true));
      VDIT_TRY(cfg.get_string("band", &mode_, {"flat", "frame"}));
    }
    VDIT_TRY(cfg.get_int("full_steps", &full_steps_, 0, 1000000));
    VDIT_TRY(cfg.get_int("cache_every", &cache_every_, 1, 1000000));
    VDIT_TRY(cfg.get_double("lambda", &lambda_, 0.0, 1.0));
    VDIT_TRY(cfg.get_bool("clamp_rho", &clamp_rho_));
    return Status::ok();
  }

  nlohmann::json describe_method() const override {
    nlohmann::json j = {{"band", mode_},        {"full_steps", full_steps_}, {"cache_every", cache_every_},
                        {"lambda", lambda_},    {"clamp_rho", clamp_rho_}};
    if (window_fraction_ > 0) {
      j["window_fraction"] = window_fraction_;
    } else {
      j[mode_ == "flat" ? "half_width" : "frame_half_width"] = half_width_;
    }
    return j;
  }

  bool is_dense(const AttentionCall& call) const override {
    return schedule_.is_dense(call) || call.step < full_steps_;
  }

  Result<std::shared_ptr<const BlockLayout>> plan(const AttentionCall& call, const QKV& in) override {
    const int64_t s = call.grid.h * call.grid.w, vb = call.video_begin(), ve = vb + call.grid.tokens();
    ElementPredicate pred;
    pred.video_begin = vb;
    pred.video_end = ve;
    if (mode_ == "frame") {
      if (s <= 0) return invalid_argument("rettention per-frame band needs the latent grid (H, W) of the call");
      pred.kind = ElementPredicate::Kind::frame_band;
      pred.frame_tokens = s;
      // Reference windows: int(N·fraction) keys, half of it on each side (|i − j| ≤ int(N·f)//2).
      pred.half_width = window_fraction_ > 0 ? static_cast<int64_t>(s * window_fraction_) / 2 : half_width_;
    } else {
      pred.kind = ElementPredicate::Kind::band;
      pred.half_width =
          window_fraction_ > 0 ? static_cast<int64_t>(call.grid.tokens() * window_fraction_) / 2 : half_width_;
    }
    const auto key = std::make_tuple(in.L, in.NH, vb, ve, pred.frame_tokens, pred.half_width);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    VDIT_ASSIGN(BlockLayout lay, band_layout(pred, in.L, in.NH, schedule_.block));
    auto shared = std::make_shared<const BlockLayout>(std::move(lay));
    cache_[key] = shared;
    return shared;
  }

  Status forward_sparse(const AttentionCall& call, const QKV& in, const AttentionDst& dst, CallRecord* rec) override {
    VDIT_ASSIGN(std::shared_ptr<const BlockLayout> layout, plan(call, in));
    rec->layout = layout;
    RettentionState& st = states_[{call.layer, call.branch}];
    const bool have_cache = st.L == in.L && st.NH == in.NH && st.HD == in.HD && !st.rho.empty();
    const bool caching = (call.step - full_steps_) % cache_every_ == 0 || !have_cache;
    const size_t n = static_cast<size_t>(in.L) * in.NH * in.HD, nl = static_cast<size_t>(in.L) * in.NH;
    if (caching) {
      // Full output, plus the band pass that defines ρ and R.
      std::vector<float> lse_full(nl), o_band(n), lse_band(nl);
      dense_attention_cpu(dst.out, lse_full.data(), in.q, in.k, in.v, in.L, in.L, in.NH, in.HD, in.scale());
      VDIT_TRY(block_sparse_attention_cpu(o_band.data(), lse_band.data(), *layout, in.q, in.k, in.v, in.L, in.NH, in.HD,
                                          in.scale()));
      st.L = in.L;
      st.NH = in.NH;
      st.HD = in.HD;
      st.rho.resize(nl);
      st.residual.resize(n);
      for (size_t i = 0; i < nl; ++i) st.rho[i] = std::exp(lse_band[i] - lse_full[i]);  // [NH, L]
      for (int64_t t = 0; t < in.L; ++t) {
        for (int h = 0; h < in.NH; ++h) {
          const float rho = st.rho[static_cast<size_t>(h) * in.L + t];
          const size_t base = (static_cast<size_t>(t) * in.NH + h) * in.HD;
          for (int d = 0; d < in.HD; ++d) st.residual[base + d] = dst.out[base + d] - rho * o_band[base + d];
        }
      }
      if (dst.lse) std::copy(lse_full.begin(), lse_full.end(), dst.lse);
      rec->density = 1.0;  // a full pass was computed (plus the band pass)
      VDIT_ASSIGN(Tensor res, Tensor::from_f32(st.residual, {in.L, in.NH, in.HD}));
      rec->extras["residual"] = std::move(res);
    } else {
      SparseEpilogue epi{st.rho.data(), st.residual.data()};
      VDIT_TRY(block_sparse_attention_cpu(dst.out, dst.lse, *layout, in.q, in.k, in.v, in.L, in.NH, in.HD, in.scale(),
                                          epi));
      const float lam = static_cast<float>(lambda_);
      for (float& r : st.rho) r = clamp_rho_ ? std::min(r + lam, 1.0f) : r + lam;
    }
    VDIT_ASSIGN(Tensor rho, Tensor::from_f32(st.rho, {in.NH, in.L}));
    rec->extras["rho"] = std::move(rho);
    return Status::ok();
  }

  std::string device_layout_key(const AttentionCall& call, const DeviceQKV& qkv) const override {
    return strfmt("%lld,%d,%lld,%lld,%lld,%lld,%d", static_cast<long long>(qkv.L), qkv.NH,
                  static_cast<long long>(call.grid.f), static_cast<long long>(call.grid.h),
                  static_cast<long long>(call.grid.w), static_cast<long long>(call.text_len), call.text_first ? 1 : 0);
  }

  // GPU layout of the per-frame band: video tokens position-major (token p·F + f for in-frame position p
  // and frame f, text last), so |pos(i) − pos(j)| ≤ w is a contiguous band of positions: the inner blocks
  // are full and only the edges are partial (frame_band on original indices). In frame-major order every
  // block pair that touches the band is partial, ~4x more blocks at Wan 480p. Same kept elements as plan().
  Result<std::shared_ptr<const BlockLayout>> plan_for_device(const AttentionCall& call, const QKV& in) override {
    VDIT_ASSIGN(std::shared_ptr<const BlockLayout> flat, plan(call, in));
    const ElementPredicate& pr = flat->predicate;
    if (pr.kind != ElementPredicate::Kind::frame_band || call.grid.f <= 1) return flat;
    const int64_t F = call.grid.f, S = pr.frame_tokens, Lv = F * S, vb = pr.video_begin, L = in.L, B = schedule_.block;
    const int64_t text_begin = call.text_first ? 0 : Lv, nb = (L + B - 1) / B, w = pr.half_width;
    std::vector<int32_t> perm(static_cast<size_t>(L));
    for (int64_t n = 0; n < Lv; ++n) perm[static_cast<size_t>(n)] = static_cast<int32_t>(vb + (n % F) * S + n / F);
    for (int64_t i = 0; i < call.text_len; ++i) perm[static_cast<size_t>(Lv + i)] = static_cast<int32_t>(text_begin + i);
    // Per block of the permuted order: its in-frame position interval and whether it holds text.
    std::vector<int64_t> lo(static_cast<size_t>(nb)), hi(static_cast<size_t>(nb));
    std::vector<uint8_t> text(static_cast<size_t>(nb)), video(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t n0 = b * B, n1 = std::min(L, n0 + B) - 1;
      text[b] = n1 >= Lv;
      video[b] = n0 < Lv;
      lo[b] = n0 / F;
      hi[b] = std::min(n1, Lv - 1) / F;
    }
    std::vector<uint8_t> states(static_cast<size_t>(nb * nb), kBlockAbsent);
    for (int64_t qb = 0; qb < nb; ++qb) {
      for (int64_t kb = 0; kb < nb; ++kb) {
        uint8_t st = kBlockAbsent;
        if (text[qb] || text[kb]) {
          st = kBlockPartial;  // text rows/columns are unrestricted (the predicate keeps them)
        } else if (video[qb] && video[kb]) {
          const int64_t mind = std::max<int64_t>({0, lo[kb] - hi[qb], lo[qb] - hi[kb]});
          const int64_t maxd = std::max(hi[qb] - lo[kb], hi[kb] - lo[qb]);
          st = maxd <= w ? kBlockFull : mind <= w ? kBlockPartial : kBlockAbsent;
        }
        states[static_cast<size_t>(qb * nb + kb)] = st;
      }
    }
    ElementPredicate dp = pr;
    dp.original_order = true;
    VDIT_ASSIGN(BlockLayout lay, layout_from_block_states(states, 1, in.NH, L, static_cast<int>(B), dp, std::move(perm)));
    return std::make_shared<const BlockLayout>(std::move(lay));
  }

  Status forward_sparse_device(const AttentionCall& call, const DeviceQKV& qkv, CallRecord* rec) override {
    VDIT_ASSIGN(const DeviceBlockLayout* layout, cached_device_layout(call, qkv));
    DeviceRettentionState& st = device_states_[{call.layer, call.branch}];
    const bool have_cache = st.L == qkv.L && st.NH == qkv.NH && st.HD == qkv.HD && st.rho.size() > 0;
    const bool caching = (call.step - full_steps_) % cache_every_ == 0 || !have_cache;
    const size_t n = static_cast<size_t>(qkv.L) * qkv.NH * qkv.HD, nl = static_cast<size_t>(qkv.L) * qkv.NH;
    if (caching) {
      if (!have_cache) {
        st.rho = DeviceBuffer();
        st.residual = DeviceBuffer();
        VDIT_ASSIGN(st.rho, DeviceBuffer::allocate(nl * sizeof(float)));
        VDIT_ASSIGN(st.residual, DeviceBuffer::allocate(n * sizeof(float)));
        st.L = qkv.L;
        st.NH = qkv.NH;
        st.HD = qkv.HD;
      }
      VDIT_TRY(grow(&ws_band_, n * 2));  // o_band [L, NH, HD] in the io dtype
      VDIT_TRY(grow(&ws_lse_, 2 * nl * sizeof(float)));
      float* lse_band = ws_lse_.as<float>();
      DeviceQKV full = qkv;
      if (!full.lse) full.lse = lse_band + nl;  // lse_full [NH, L]
      VDIT_TRY(dense_device(full));
      DeviceQKV band = qkv;
      band.out = ws_band_.data();
      band.lse = lse_band;
      VDIT_TRY(block_sparse_attention_cuda(band, *layout));
      VDIT_TRY(rettention_cache_update(st.rho.as<float>(), st.residual.as<float>(), qkv.out, ws_band_.data(), full.lse,
                                       lse_band, qkv.L, qkv.NH, qkv.HD, qkv.dtype, qkv.stream));
      rec->density = 1.0;  // a full pass was computed (plus the band pass)
    } else {
      DeviceSparseEpilogue epi{st.rho.as<float>(), st.residual.as<float>()};
      VDIT_TRY(block_sparse_attention_cuda(qkv, *layout, epi));
      VDIT_TRY(rettention_rho_step(st.rho.as<float>(), static_cast<int64_t>(nl), static_cast<float>(lambda_),
                                   clamp_rho_, qkv.stream));
      rec->density = layout->block_density();
    }
    return Status::ok();
  }

 private:
  // Blocks that contain any kept element: full when every element is kept, else partial.
  static Result<BlockLayout> band_layout(const ElementPredicate& pred, int64_t L, int NH, int B) {
    const int64_t nb = (L + B - 1) / B;
    std::vector<uint8_t> states(static_cast<size_t>(nb * nb), kBlockAbsent);
    const int64_t vb = pred.video_begin, ve = pred.video_end, w = pred.half_width;
    // Video part of a block as an index range, and its in-frame position intervals (1 or 2, or all).
    struct Span {
      int64_t a = 0, b = -1;  // video token range [a, b] (empty when b < a)
      bool text = false;      // the block also holds text tokens
    };
    auto span = [&](int64_t blk) {
      Span sp;
      const int64_t t0 = blk * B, t1 = std::min(L, t0 + B) - 1;
      sp.a = std::max(t0, vb);
      sp.b = std::min(t1, ve - 1);
      sp.text = t0 < vb || t1 >= ve;
      return sp;
    };
    auto positions = [&](const Span& sp, std::vector<std::pair<int64_t, int64_t>>* out) {
      out->clear();
      const int64_t s = pred.frame_tokens;
      if (sp.b - sp.a + 1 >= s) {
        out->push_back({0, s - 1});
        return;
      }
      const int64_t pa = (sp.a - vb) % s, pb = (sp.b - vb) % s;
      if (pa <= pb) {
        out->push_back({pa, pb});
      } else {
        out->push_back({pa, s - 1});
        out->push_back({0, pb});
      }
    };
    std::vector<std::pair<int64_t, int64_t>> pq, pk;
    for (int64_t qb = 0; qb < nb; ++qb) {
      const Span sq = span(qb);
      if (pred.kind == ElementPredicate::Kind::frame_band && sq.b >= sq.a) positions(sq, &pq);
      for (int64_t kb = 0; kb < nb; ++kb) {
        const Span sk = span(kb);
        uint8_t state = kBlockAbsent;
        if (sq.text || sk.text) {
          state = kBlockPartial;  // text rows/columns are unrestricted
        } else if (pred.kind == ElementPredicate::Kind::band) {
          const int64_t mind = std::max<int64_t>({0, sk.a - sq.b, sq.a - sk.b});
          const int64_t maxd = std::max(sq.b - sk.a, sk.b - sq.a);
          state = maxd <= w ? kBlockFull : mind <= w ? kBlockPartial : kBlockAbsent;
        } else {
          positions(sk, &pk);
          for (const auto& x : pq)
            for (const auto& y : pk)
              if (std::max<int64_t>({0, y.first - x.second, x.first - y.second}) <= w) state = kBlockPartial;
          if (state == kBlockPartial && w >= pred.frame_tokens - 1) state = kBlockFull;
        }
        states[static_cast<size_t>(qb * nb + kb)] = state;
      }
    }
    return layout_from_block_states(states, 1, NH, L, B, pred);
  }

  std::string mode_ = "frame";
  int64_t half_width_ = 0;
  double window_fraction_ = 0.03125;
  int full_steps_ = 15;
  int cache_every_ = 5;
  double lambda_ = 0.04;
  bool clamp_rho_ = true;
  std::map<std::pair<int, int>, RettentionState> states_;
  std::map<std::pair<int, int>, DeviceRettentionState> device_states_;
  DeviceBuffer ws_band_, ws_lse_;  // caching-step workspace (GPU)
  std::map<std::tuple<int64_t, int, int64_t, int64_t, int64_t, int64_t>, std::shared_ptr<const BlockLayout>> cache_;
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(rettention, "Re-ttention: band attention with cached softmax statistics",
                               vdit::attn::RettentionMethod);
