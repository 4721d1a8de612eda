// PAROAttention (methods.md §4): each head attends in its own F/H/W axis order under a static block mask of
// its (step group, layer, head) from a plan file (attention/paro_plan.h, made by `vdit calibrate paro`).
// Text rows/columns, the plan's last block row/column (forced on, as PARO's code does) and a video tail the
// plan leaves out are computed in full; the diagonal block is always kept. Not here: INT8/INT4 quantization,
// "empty head" flags, the simulation's post-softmax masking without renormalisation (a reference quirk).
#include <array>
#include <memory>

#include "attention/block_sparse_cpu.h"
#include "attention/methods/method.h"
#include "attention/methods/paro_orders.h"
#include "attention/paro_plan.h"

namespace vdit::attn {
namespace {

class ParoMethod : public AttentionMethod {
 public:
  bool static_layout() const override { return true; }

 protected:
  // GPU (forward_device): each (step group, layer) layout, with its per-head permutations, is planned on the
  // host and uploaded on first use, then reused for every later step of the group (no per-call planning).
  std::string device_layout_key(const AttentionCall& call, const DeviceQKV& qkv) const override {
    if (!plan_) return {};
    return strfmt("%d,%d,%lld,%d,%lld,%d", paro_step_group(call.step, call.num_steps, plan_->groups), call.layer,
                  static_cast<long long>(qkv.L), qkv.NH, static_cast<long long>(call.text_len),
                  call.text_first ? 1 : 0);
  }

  Status configure_method(ConfigReader& cfg) override {
    VDIT_TRY(cfg.get_string("plan", &plan_path_));
    if (plan_path_.empty()) {
      return invalid_argument("paro attention needs a plan: set \"plan\" to a safetensors file made by `vdit calibrate "
                              "paro` (per-head orders and block masks for this model and latent size)");
    }
    VDIT_ASSIGN(ParoPlan plan, load_paro_plan(plan_path_));
    auto shape_error = [&](const std::string& what) {
      return invalid_argument(strfmt("PARO plan \"%s\" is for %d layers x %d heads at grid %lldx%lldx%lld + %lld text "
                                     "tokens, but %s; calibrate a plan for this model and size",
                                     plan_path_.c_str(), plan.layers, plan.heads, (long long)plan.grid.f,
                                     (long long)plan.grid.h, (long long)plan.grid.w, (long long)plan.text_len,
                                     what.c_str()));
    };
    if (model_.num_layers != plan.layers) return shape_error(strfmt("the model has %d layers", model_.num_layers));
    if (model_.num_heads > 0 && model_.num_heads != plan.heads) {
      return shape_error(strfmt("the model has %d heads", model_.num_heads));
    }
    if (model_.grid.f > 0 && (model_.grid.f != plan.grid.f || model_.grid.h != plan.grid.h ||
                              model_.grid.w != plan.grid.w)) {
      return shape_error(strfmt("this run's latent grid is %lldx%lldx%lld", (long long)model_.grid.f,
                                (long long)model_.grid.h, (long long)model_.grid.w));
    }
    if (cfg.has("block") && schedule_.block != plan.block) {
      return invalid_argument(strfmt("paro attention config: \"block\" = %d but the plan's masks use %d-token blocks; "
                                     "leave \"block\" out",
                                     schedule_.block, plan.block));
    }
    schedule_.block = plan.block;
    plan_ = std::make_shared<const ParoPlan>(std::move(plan));
    for (int o = 0; o < kParoOrders; ++o) video_perm_[o] = paro_video_perm(plan_->grid, o);
    return Status::ok();
  }

  nlohmann::json describe_method() const override {
    nlohmann::json j = {{"plan", plan_path_}};
    if (plan_) {
      j["plan_groups"] = plan_->groups;
      j["plan_steps"] = plan_->steps;
    }
    return j;
  }

  Result<std::shared_ptr<const BlockLayout>> plan(const AttentionCall& call, const QKV& in) override {
    const ParoPlan& p = *plan_;
    if (call.grid.f != p.grid.f || call.grid.h != p.grid.h || call.grid.w != p.grid.w || call.text_len != p.text_len) {
      return invalid_argument(strfmt("PARO plan \"%s\" is for grid %lldx%lldx%lld + %lld text tokens, the call has "
                                     "%lldx%lldx%lld + %lld",
                                     plan_path_.c_str(), (long long)p.grid.f, (long long)p.grid.h, (long long)p.grid.w,
                                     (long long)p.text_len, (long long)call.grid.f, (long long)call.grid.h,
                                     (long long)call.grid.w, (long long)call.text_len));
    }
    if (in.NH != p.heads || call.layer < 0 || call.layer >= p.layers) {
      return invalid_argument(strfmt("PARO plan \"%s\" has %d layers x %d heads; the call is layer %d with %d heads",
                                     plan_path_.c_str(), p.layers, p.heads, call.layer, in.NH));
    }
    const int group = paro_step_group(call.step, call.num_steps, p.groups);
    const int64_t Lv = p.grid.tokens(), L = in.L, B = p.block, nb = (L + B - 1) / B, nq = p.nq;
    const int64_t vb = call.video_begin(), text_begin = call.text_first ? 0 : Lv;
    const int NH = in.NH;
    // Per-head permutation [NH, L]: the head's permuted video tokens, then the text, so the plan's blocks
    // (which start at the first video token) are kernel blocks even when the call has its text first.
    std::vector<int32_t> perm(static_cast<size_t>(NH) * L);
    std::vector<uint8_t> states(static_cast<size_t>(NH) * nb * nb, kBlockFull);
    for (int h = 0; h < NH; ++h) {
      const std::vector<int32_t>& vp = video_perm_[p.order_of(call.layer, h)];
      int32_t* ph = perm.data() + static_cast<int64_t>(h) * L;
      for (int64_t m = 0; m < Lv; ++m) ph[m] = static_cast<int32_t>(vb + vp[m]);
      for (int64_t i = 0; i < call.text_len; ++i) ph[Lv + i] = static_cast<int32_t>(text_begin + i);
      const uint8_t* mk = p.mask(group, call.layer, h);  // [nq, nq]
      for (int64_t qb = 0; qb + 1 < nq; ++qb)
        for (int64_t kb = 0; kb + 1 < nq; ++kb)
          if (!mk[qb * nq + kb]) states[static_cast<size_t>((h * nb + qb) * nb + kb)] = kBlockAbsent;
    }
    VDIT_ASSIGN(BlockLayout lay, layout_from_block_states(states, NH, NH, L, static_cast<int>(B), {}, std::move(perm)));
    return std::make_shared<const BlockLayout>(std::move(lay));
  }

  Status forward_sparse(const AttentionCall& call, const QKV& in, const AttentionDst& dst, CallRecord* rec) override {
    VDIT_ASSIGN(std::shared_ptr<const BlockLayout> layout, plan(call, in));
    VDIT_TRY(block_sparse_attention_cpu(dst.out, dst.lse, *layout, in.q, in.k, in.v, in.L, in.NH, in.HD, in.scale()));
    rec->layout = layout;
    return record_extras(call, in, *layout, rec);
  }

 private:
  // The permutation in the reference's convention (text in place) and the mask actually applied.
  Status record_extras(const AttentionCall& call, const QKV& in, const BlockLayout& lay, CallRecord* rec) const {
    const ParoPlan& p = *plan_;
    const int NH = in.NH;
    const int64_t L = in.L, nq = p.nq, nb = lay.num_q_blocks();
    VDIT_ASSIGN(Tensor perm, Tensor::create(DType::i32, {NH, L}));  // [NH, L] permuted[n] = x[perm[n]]
    VDIT_ASSIGN(Tensor inv, Tensor::create(DType::i32, {NH, L}));   // [NH, L] x[m] = permuted[inv[m]]
    VDIT_ASSIGN(Tensor order, Tensor::create(DType::i32, {NH}));    // [NH]
    VDIT_ASSIGN(Tensor mask, Tensor::create(DType::u8, {NH, nq, nq}));  // [NH, nq, nq] mask applied
    const std::vector<uint8_t> bm = lay.block_mask();                  // [NH, nb, nb]
    std::vector<int32_t> pv, iv;
    for (int h = 0; h < NH; ++h) {
      const int o = p.order_of(call.layer, h);
      order.data<int32_t>()[h] = o;
      paro_sequence_perm(&pv, &iv, p.grid, o, call.text_len, call.text_first);
      std::copy(pv.begin(), pv.end(), perm.data<int32_t>() + static_cast<int64_t>(h) * L);
      std::copy(iv.begin(), iv.end(), inv.data<int32_t>() + static_cast<int64_t>(h) * L);
      for (int64_t qb = 0; qb < nq; ++qb)
        for (int64_t kb = 0; kb < nq; ++kb)
          mask.data<uint8_t>()[(h * nq + qb) * nq + kb] = bm[static_cast<size_t>((h * nb + qb) * nb + kb)];
    }
    VDIT_ASSIGN(Tensor group, Tensor::create(DType::i32, {1}));
    group.data<int32_t>()[0] = paro_step_group(call.step, call.num_steps, p.groups);
    rec->extras["paro_perm"] = perm;
    rec->extras["paro_inv"] = inv;
    rec->extras["paro_order"] = order;
    rec->extras["paro_block_mask"] = mask;
    rec->extras["paro_group"] = group;
    return Status::ok();
  }

  std::string plan_path_;
  std::shared_ptr<const ParoPlan> plan_;
  std::array<std::vector<int32_t>, kParoOrders> video_perm_;  // [Lv] per order, for the plan's grid
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(paro, "PAROAttention: per-head F/H/W reordering with calibrated static block masks",
                               vdit::attn::ParoMethod);
