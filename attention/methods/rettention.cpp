// Re-ttention (methods.md §5): a static token band (flat or per-frame) with the softmax statistics reshaped
// from a cached full step. Per (layer, branch): at caching steps the output is dense and
// ρ = exp(LSE_band − LSE_full), R = O_full − ρ·O_band are stored; at sparse steps O = ρ·O_band + R (kernel
// epilogue), then ρ ← ρ + λ, clamped to ≤ 1 (the reference omits the clamp; `clamp_rho: false` drops it).
// R is kept in head space [L, NH, HD] (before W_o; equivalent because W_o is linear). Not here: the
// CogVideoX text/video pair caching of the reference (text rows and columns are simply unrestricted).
#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "attention/block_sparse_cpu.h"
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

class RettentionMethod : public AttentionMethod {
 public:
  nlohmann::json preset(const ModelInfo& model) const override {
    // No published Wan configuration (methods.md §7); derived from the CogVideoX setting: a per-frame band
    // keeping 3.125% of a frame, the first 30% of steps full, a caching full step every 5, λ = 0.04.
    const int steps = model.num_steps > 0 ? model.num_steps : 50;
    return {{"window_fraction", 0.03125}, {"band", "frame"},     {"full_steps", static_cast<int>(std::lround(0.3 * steps))},
            {"cache_every", 5},           {"lambda", 0.04}};
  }

  void reset() override { states_.clear(); }

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
  std::map<std::tuple<int64_t, int, int64_t, int64_t, int64_t, int64_t>, std::shared_ptr<const BlockLayout>> cache_;
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(rettention, "Re-ttention: band attention with cached softmax statistics",
                               vdit::attn::RettentionMethod);
