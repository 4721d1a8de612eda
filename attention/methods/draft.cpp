// DraftAttention (methods.md §3): average-pool Q/K over ph x pw regions per frame, softmax draft map per
// head, keep entries >= the head's global (1 − r) quantile (the reference's count) and attend region blocks
// of the reordered sequence; text rows/columns always computed. Exactly tiling grids run as a BlockLayout
// (plan()); other grids pad edge regions to whole blocks on the gathered kernel. The self region block is
// always kept (the reference can leave a region without keys).
// GPU (forward_device): the whole plan runs on the device (cuda/planners/draft_device.h) and feeds the
// gathered block-sparse kernel (cuda/block_sparse_gathered.h) without a host round trip, on any grid:
// blocks of padded edge regions are masked blocks there (pad keys dropped), the others full.
#include <algorithm>
#include <cmath>

#include "attention/block_sparse_cpu.h"
#include "attention/cuda/planners/draft_device.h"
#include "attention/methods/draft_plan.h"
#include "attention/methods/method.h"
#include "attention/methods/vmoba_kernel.h"

namespace vdit::attn {
namespace {

// One call's plan: geometry, draft map and, for exactly tiling grids, the block layout (else null).
struct DraftPlan {
  DraftGeometry geo;
  DraftMap map;
  std::shared_ptr<const BlockLayout> layout;
};

class DraftMethod : public AttentionMethod {
 public:
  nlohmann::json preset(const ModelInfo& model) const override {
    // methods.md §3.2: Wan2.1 (the 14B scripts; the same code path serves 1.3B): r = 0.75, dense while
    // t > 925 (≈ the first 30% of 50 steps at shift 5) and in block 0. HunyuanVideo: r = 0.9, t > 945
    // (≈ 30%), the first 2 double-stream blocks dense.
    if (model.family == "hunyuan") {
      return {{"sparsity", 0.9}, {"pool", {8, 16}}, {"dense_step_fraction", 0.3}, {"dense_layers", 2}};
    }
    return {{"sparsity", 0.75}, {"pool", {8, 16}}, {"dense_step_fraction", 0.3}, {"dense_layers", 1}};
  }

 protected:
  Status configure_method(ConfigReader& cfg) override {
    VDIT_TRY(cfg.get_double("sparsity", &sparsity_, 0.0, 1.0, /*lo_open=*/true));
    if (cfg.has("pool")) {
      std::vector<int> pool;
      VDIT_TRY(cfg.get_int_list("pool", &pool, 1, 128));
      if (pool.size() != 2 || (pool[0] * pool[1] != 64 && pool[0] * pool[1] != 128)) {
        return invalid_argument(strfmt("draft attention config: key \"pool\" = %s: expected [rows, cols] covering 64 "
                                       "or 128 tokens (default [8, 16])",
                                       nlohmann::json(pool).dump().c_str()));
      }
      ph_ = pool[0];
      pw_ = pool[1];
    }
    // One region is one kernel block, so the block size follows the pool.
    if (cfg.has("block") && schedule_.block != ph_ * pw_) {
      return invalid_argument(strfmt("draft attention config: \"block\" = %d but the pool %dx%d makes %d-token "
                                     "blocks; leave \"block\" out",
                                     schedule_.block, ph_, pw_, ph_ * pw_));
    }
    schedule_.block = ph_ * pw_;
    return Status::ok();
  }

  nlohmann::json describe_method() const override {
    return {{"sparsity", sparsity_}, {"pool", nlohmann::json::array({ph_, pw_})}};
  }

  // Exactly tiling grids only (padded grids have no BlockLayout; they run in forward_sparse()).
  Result<std::shared_ptr<const BlockLayout>> plan(const AttentionCall& call, const QKV& in) override {
    VDIT_ASSIGN(DraftPlan p, make_plan(call, in));
    if (!p.layout) {
      return unsupported(strfmt("draft attention: grid %lldx%lld is not a multiple of the %dx%d pool, so its "
                                "regions are padded and have no block layout; run the call instead of planning",
                                static_cast<long long>(p.geo.h), static_cast<long long>(p.geo.w), ph_, pw_));
    }
    return p.layout;
  }

  Status forward_sparse(const AttentionCall& call, const QKV& in, const AttentionDst& dst, CallRecord* rec) override {
    VDIT_ASSIGN(DraftPlan p, make_plan(call, in));
    if (p.layout) {
      VDIT_TRY(block_sparse_attention_cpu(dst.out, dst.lse, *p.layout, in.q, in.k, in.v, in.L, in.NH, in.HD,
                                          in.scale()));
      rec->layout = p.layout;
      return record_extras(p.geo, p.map, rec);
    }
    const DraftGeometry& geo = p.geo;
    const DraftMap& dm = p.map;
    const int64_t g = geo.g, B = geo.block, NH = in.NH;
    GatheredOrder order;
    order.block = geo.block;
    order.slots = geo.slots;
    const int64_t nb = order.num_blocks();
    auto kept = [&](int h, int64_t qb, int64_t kb) {
      return qb >= g || kb >= g || qb == kb || dm.mask[static_cast<size_t>((h * g + qb) * g + kb)] != 0;
    };
    auto list = [&](int h, int64_t qb, std::vector<GatheredKeyBlock>* blocks) {
      for (int64_t kb = 0; kb < nb; ++kb)
        if (kept(h, qb, kb)) blocks->push_back({static_cast<int32_t>(kb), false});
    };
    auto keep = [](int, int64_t, int64_t) { return true; };  // only pad slots are dropped
    gathered_attention_cpu(dst.out, dst.lse, in.q, in.k, in.v, in.L, in.NH, in.HD, in.scale(), order, list, keep);

    // Exact density and the block mask of the padded order.
    std::vector<int64_t> real(static_cast<size_t>(nb), 0);
    for (size_t s = 0; s < geo.slots.size(); ++s) real[s / static_cast<size_t>(B)] += geo.slots[s] >= 0 ? 1 : 0;
    VDIT_ASSIGN(Tensor bm, Tensor::create(DType::u8, {NH, nb, nb}));  // [NH, nb, nb], padded reordered blocks
    double pairs = 0;
    for (int h = 0; h < NH; ++h)
      for (int64_t qb = 0; qb < nb; ++qb)
        for (int64_t kb = 0; kb < nb; ++kb) {
          const bool on = kept(h, qb, kb);
          bm.data<uint8_t>()[(h * nb + qb) * nb + kb] = on ? 1 : 0;
          if (on) pairs += static_cast<double>(real[qb]) * static_cast<double>(real[kb]);
        }
    rec->density = pairs / (static_cast<double>(NH) * static_cast<double>(in.L) * static_cast<double>(in.L));
    rec->extras["block_mask"] = bm;
    return record_extras(geo, dm, rec);
  }

  Status forward_sparse_device(const AttentionCall& call, const DeviceQKV& qkv, CallRecord* rec) override {
    const bool same = dev_geo_ && dev_grid_.f == call.grid.f && dev_grid_.h == call.grid.h &&
                      dev_grid_.w == call.grid.w && dev_text_ == call.text_len && dev_text_first_ == call.text_first;
    if (!same) {
      VDIT_ASSIGN(DraftGeometry geo, draft_geometry(call.grid, call.text_len, call.text_first, ph_, pw_));
      dev_geo_ = std::make_shared<const DraftGeometry>(std::move(geo));
      dev_grid_ = call.grid;
      dev_text_ = call.text_len;
      dev_text_first_ = call.text_first;
    }
    VDIT_TRY(dev_.prepare(*dev_geo_, qkv.NH, qkv.HD));
    VDIT_TRY(dev_.plan(qkv, sparsity_));
    VDIT_TRY(block_sparse_gathered_cuda(qkv, dev_.view()));
    if (stats_on()) {
      VDIT_ASSIGN(rec->density, dev_.density(qkv.stream));  // as the CPU path: block density, exact on padded grids
    }
    return Status::ok();
  }

 private:
  Result<DraftPlan> make_plan(const AttentionCall& call, const QKV& in) const {
    DraftPlan p;
    VDIT_ASSIGN(p.geo, draft_geometry(call.grid, call.text_len, call.text_first, ph_, pw_));
    p.map = draft_map(p.geo, in.q, in.k, in.NH, in.HD, sparsity_);
    if (!p.geo.aligned) return p;
    const int64_t g = p.geo.g, nb = (p.geo.L + p.geo.block - 1) / p.geo.block;
    std::vector<uint8_t> states(static_cast<size_t>(in.NH * nb * nb), kBlockFull);  // text rows/cols stay on
    for (int h = 0; h < in.NH; ++h)
      for (int64_t i = 0; i < g; ++i)
        for (int64_t j = 0; j < g; ++j)
          states[static_cast<size_t>((h * nb + i) * nb + j)] =
              p.map.mask[static_cast<size_t>((h * g + i) * g + j)] ? kBlockFull : kBlockAbsent;
    // Without pads the slots are exactly a permutation of [0, L): the layout's shared perm.
    VDIT_ASSIGN(BlockLayout lay, layout_from_block_states(states, in.NH, in.NH, p.geo.L, p.geo.block, {}, p.geo.slots));
    p.layout = std::make_shared<const BlockLayout>(std::move(lay));
    return p;
  }

  static Status record_extras(const DraftGeometry& geo, const DraftMap& dm, CallRecord* rec) {
    const int64_t g = dm.g;
    VDIT_ASSIGN(Tensor qp, Tensor::from_f32(dm.q_pooled, {g, dm.NH, dm.HD}));  // [g, NH, HD]
    VDIT_ASSIGN(Tensor kp, Tensor::from_f32(dm.k_pooled, {g, dm.NH, dm.HD}));  // [g, NH, HD]
    VDIT_ASSIGN(Tensor map, Tensor::from_f32(dm.map, {dm.NH, g, g}));          // [NH, g, g]
    VDIT_ASSIGN(Tensor thr, Tensor::from_f32(dm.threshold, {dm.NH}));         // [NH]
    VDIT_ASSIGN(Tensor mask, Tensor::create(DType::u8, {dm.NH, g, g}));        // [NH, g, g]
    std::copy(dm.mask.begin(), dm.mask.end(), mask.data<uint8_t>());
    const int64_t Lp = static_cast<int64_t>(geo.slots.size());
    VDIT_ASSIGN(Tensor reorg, Tensor::create(DType::i32, {Lp}));  // [g·B + text], -1 = pad slot
    std::copy(geo.slots.begin(), geo.slots.end(), reorg.data<int32_t>());
    VDIT_ASSIGN(Tensor restore, Tensor::create(DType::i32, {geo.L}));  // [L]
    std::copy(geo.restore.begin(), geo.restore.end(), restore.data<int32_t>());
    rec->extras["q_pooled"] = qp;
    rec->extras["k_pooled"] = kp;
    rec->extras["draft_map"] = map;
    rec->extras["threshold"] = thr;
    rec->extras["mask_headwise"] = mask;
    rec->extras["reorg_idx"] = reorg;
    rec->extras["restore_idx"] = restore;
    return Status::ok();
  }

  double sparsity_ = 0.75;
  int ph_ = 8, pw_ = 16;
  // GPU planner and the geometry it was prepared for.
  DraftDevicePlanner dev_;
  std::shared_ptr<const DraftGeometry> dev_geo_;
  VideoGrid dev_grid_;
  int64_t dev_text_ = 0;
  bool dev_text_first_ = false;
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(draft, "DraftAttention: pooled 8x16 draft map, per-head top-(1-r) region blocks",
                               vdit::attn::DraftMethod);
